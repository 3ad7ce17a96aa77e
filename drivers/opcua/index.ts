import type { Driver, DriverDefinition } from '../types.js';
import { opcuaConnectionSchema, opcuaEquipmentSchema, opcuaPointSchema, type OpcuaConnection } from './schema.js';
import type { Equipment } from './driver.js';

/**
 * node-opcua takes seconds to load, so it is imported when an OPC UA connection is initialised,
 * not when the registry is read (`gateway check`, Modbus-only sites).
 */
class LazyOpcuaDriver implements Driver {
  private inner: Driver | undefined;
  constructor(private readonly make: () => Promise<Driver>) {}
  async init(): Promise<void> {
    this.inner = await this.make();
    await this.inner.init();
  }
  start = () => this.inner!.start();
  stop = async () => this.inner?.stop();
  stats = () => this.inner?.stats?.() ?? {};
}

export const opcuaDriver: DriverDefinition = {
  type: 'opcua',
  summary: 'OPC UA client: subscriptions (or polling), security None / Sign / SignAndEncrypt, certificate trust, reconnection with subscriptions restored.',
  connectionSchema: opcuaConnectionSchema,
  equipmentSchema: opcuaEquipmentSchema,
  pointSchema: opcuaPointSchema,
  // The site loader parsed both with the schemas above.
  create: (connection, equipment, ctx) =>
    new LazyOpcuaDriver(async () => (await import('./driver.js')).createOpcuaDriver(connection as unknown as OpcuaConnection, equipment as unknown as Equipment[], ctx)),
};
