// The driver registry: every driver folder is listed here explicitly (a test checks it). Adding a
// protocol is a folder with its definition (defineDriver in drivers/types.ts) and one line here.
import { modbusRtuDriver, modbusRtuOverTcpDriver, modbusTcpDriver } from './modbus/index.js';
import { opcuaDriver } from './opcua/index.js';
import { simDriver } from './sim/index.js';
import { astmDriver, astmSerialDriver } from './astm/index.js';
import type { DriverDefinition, SimulatorDefinition } from './types.js';

export const DRIVERS: readonly DriverDefinition[] = [
  simDriver,
  modbusTcpDriver,
  modbusRtuDriver,
  modbusRtuOverTcpDriver,
  opcuaDriver,
  astmDriver,
  astmSerialDriver,
];

export function findDriver(type: string): DriverDefinition | undefined {
  return DRIVERS.find((d) => d.type === type);
}

/** The device simulators the drivers bring (a `simulators:` entry's type names one). */
export const DRIVER_SIMULATORS: readonly SimulatorDefinition[] = DRIVERS.flatMap((d) => d.simulators);

export type {
  ConnectionConfig,
  Driver,
  DriverContext,
  DriverDefinition,
  EquipmentConfig,
  Quality,
  Reading,
  ReadingSink,
  Simulator,
  SimulatorContext,
  SimulatorDefinition,
} from './types.js';
