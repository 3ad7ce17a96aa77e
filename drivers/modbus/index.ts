// The Modbus drivers as the registry lists them (TCP, RTU, RTU over TCP), with the boiler simulator.
import { defineDriver, defineSimulator, type DriverContext, type EquipmentBase } from '../types.js';
import { lazyDriver } from '../common/lazy-driver.js';
import { lazySimulator } from '../common/lazy-simulator.js';
import { modbusCommands } from './cli.js';
import {
  type ModbusConnection,
  type ModbusEquipment,
  modbusEquipmentSchema,
  modbusPointSchema,
  modbusRtuConnectionSchema,
  modbusRtuOverTcpConnectionSchema,
  modbusSimulatorSchema,
  modbusTcpConnectionSchema,
} from './schema.js';

// The driver (and serialport with it) is imported when a Modbus connection is initialised.
const create = (connection: ModbusConnection, equipment: Array<EquipmentBase & ModbusEquipment>, ctx: DriverContext) =>
  lazyDriver(async () => (await import('./driver.js')).createModbusDriver(connection, equipment, ctx));

// Polled on each equipment's interval; a results block brings lab results.
const capabilities = { reportsOnChange: false, labResults: true, writes: false };

/** A steam boiler's controller on Modbus TCP, as the demo's boiler. */
const boilerSimulator = defineSimulator({
  type: 'modbus-boiler',
  schema: modbusSimulatorSchema,
  create: (s) =>
    lazySimulator(async () => {
      const { BoilerDevice, createModbusTcpSimulator } = await import('./simulator.js');
      return createModbusTcpSimulator({
        host: s.host,
        port: s.port,
        devices: new Map([[s.unit_id, new BoilerDevice(s.scenario, s.seed)]]),
      });
    }),
});

export const modbusTcpDriver = defineDriver({
  type: 'modbus-tcp',
  summary: 'Modbus TCP: PLCs, gateways and devices on Ethernet; several unit ids share one connection.',
  connectionSchema: modbusTcpConnectionSchema,
  equipmentSchema: modbusEquipmentSchema,
  pointSchema: modbusPointSchema,
  capabilities,
  simulators: [boilerSimulator],
  commands: modbusCommands,
  create,
});

export const modbusRtuDriver = defineDriver({
  type: 'modbus-rtu',
  summary: 'Modbus RTU on a local serial port (RS-485/RS-232): one request at a time on the bus.',
  connectionSchema: modbusRtuConnectionSchema,
  equipmentSchema: modbusEquipmentSchema,
  pointSchema: modbusPointSchema,
  capabilities,
  create,
});

export const modbusRtuOverTcpDriver = defineDriver({
  type: 'modbus-rtu-over-tcp',
  summary: 'Modbus RTU frames through a serial device server (transparent TCP).',
  connectionSchema: modbusRtuOverTcpConnectionSchema,
  equipmentSchema: modbusEquipmentSchema,
  pointSchema: modbusPointSchema,
  capabilities,
  create,
});
