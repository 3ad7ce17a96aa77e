// The driver registry: every driver folder is listed here explicitly (a test checks it).
import { modbusRtuDriver, modbusRtuOverTcpDriver, modbusTcpDriver } from './modbus/index.js';
import { opcuaDriver } from './opcua/index.js';
import { simDriver } from './sim/index.js';
import { astmDriver, astmSerialDriver } from './astm/index.js';
import type { DriverDefinition } from './types.js';

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

export type { ConnectionConfig, Driver, DriverContext, DriverDefinition, EquipmentConfig, Quality, Reading, ReadingSink } from './types.js';
