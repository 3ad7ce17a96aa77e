import type { DriverDefinition } from '../types.js';
import { lazyDriver } from '../common/lazy-driver.js';
import { opcuaConnectionSchema, opcuaEquipmentSchema, opcuaPointSchema, type OpcuaConnection } from './schema.js';
import type { Equipment } from './driver.js';

export const opcuaDriver: DriverDefinition = {
  type: 'opcua',
  summary:
    'OPC UA client: subscriptions (or polling), security None / Sign / SignAndEncrypt, certificate trust, reconnection with subscriptions restored.',
  connectionSchema: opcuaConnectionSchema,
  equipmentSchema: opcuaEquipmentSchema,
  pointSchema: opcuaPointSchema,
  // The site loader parsed both with the schemas above. node-opcua takes seconds to load: it is
  // imported when an OPC UA connection is initialised.
  create: (connection, equipment, ctx) =>
    lazyDriver(async () =>
      (await import('./driver.js')).createOpcuaDriver(connection as unknown as OpcuaConnection, equipment as unknown as Equipment[], ctx),
    ),
};
