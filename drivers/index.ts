// The driver registry: every driver folder is listed here explicitly (a test checks it). Adding a
// protocol is a folder with its definition (defineDriver in drivers/types.ts) and one line here.
import { modbusRtuDriver, modbusRtuOverTcpDriver, modbusTcpDriver } from './modbus/index.js';
import { opcuaDriver } from './opcua/index.js';
import { simDriver } from './sim/index.js';
import { astmDriver, astmSerialDriver } from './astm/index.js';
import { hl7Driver } from './hl7/index.js';
import { mqttInDriver } from './mqtt-in/index.js';
import { fileDropDriver } from './file-drop/index.js';
import type { ConnectionConfig, DriverDefinition, EquipmentConfig, SimulatorDefinition } from './types.js';

export const DRIVERS: readonly DriverDefinition[] = [
  simDriver,
  modbusTcpDriver,
  modbusRtuDriver,
  modbusRtuOverTcpDriver,
  opcuaDriver,
  astmDriver,
  astmSerialDriver,
  hl7Driver,
  mqttInDriver,
  fileDropDriver,
];

export function findDriver(type: string): DriverDefinition | undefined {
  return DRIVERS.find((d) => d.type === type);
}

/**
 * Whether an equipment's values come on change (an old value is not stale), by its connection's
 * driver; false for an id the site does not have.
 */
export function reportsOnChangeOf(site: {
  connections: readonly ConnectionConfig[];
  equipment: readonly EquipmentConfig[];
}): (equipment: string) => boolean {
  const types = new Map(site.connections.map((c) => [c.id, c.type]));
  const onChange = new Map(
    site.equipment.map((e) => [e.id, findDriver(types.get(e.connection) ?? '')?.capabilities.reportsOnChange(e) ?? false]),
  );
  return (equipment) => onChange.get(equipment) ?? false;
}

/** The connections whose driver takes result files (drivers/file-drop): their instruments can have a file refused. */
export function resultFileConnectionsOf(site: { connections: readonly ConnectionConfig[] }): Set<string> {
  return new Set(site.connections.filter((c) => findDriver(c.type)?.capabilities.resultFiles).map((c) => c.id));
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
