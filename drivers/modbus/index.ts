// The Modbus drivers as the registry lists them (TCP, RTU, RTU over TCP).
import type { DriverDefinition } from '../types.js';
import { lazyDriver } from '../common/lazy-driver.js';
import type { Equipment } from './driver.js';
import {
  type ModbusConnection,
  modbusEquipmentSchema,
  modbusPointSchema,
  modbusRtuConnectionSchema,
  modbusRtuOverTcpConnectionSchema,
  modbusTcpConnectionSchema,
} from './schema.js';

const definition = (
  type: ModbusConnection['type'],
  summary: string,
  connectionSchema: DriverDefinition['connectionSchema'],
): DriverDefinition => ({
  type,
  summary,
  connectionSchema,
  equipmentSchema: modbusEquipmentSchema,
  pointSchema: modbusPointSchema,
  // The site loader parsed both with the schemas above. The driver (and serialport with it) is
  // imported when a Modbus connection is initialised.
  create: (connection, equipment, ctx) =>
    lazyDriver(async () =>
      (await import('./driver.js')).createModbusDriver(connection as unknown as ModbusConnection, equipment as unknown as Equipment[], ctx),
    ),
});

export const modbusTcpDriver = definition(
  'modbus-tcp',
  'Modbus TCP: PLCs, gateways and devices on Ethernet; several unit ids share one connection.',
  modbusTcpConnectionSchema,
);
export const modbusRtuDriver = definition(
  'modbus-rtu',
  'Modbus RTU on a local serial port (RS-485/RS-232): one request at a time on the bus.',
  modbusRtuConnectionSchema,
);
export const modbusRtuOverTcpDriver = definition(
  'modbus-rtu-over-tcp',
  'Modbus RTU frames through a serial device server (transparent TCP).',
  modbusRtuOverTcpConnectionSchema,
);
