// The ASTM drivers as the registry lists them: over TCP and on a serial line.
import type { ConnectionConfig, Driver, DriverContext, DriverDefinition, EquipmentBase, EquipmentConfig } from '../types.js';
import { lazyDriver } from '../common/lazy-driver.js';
import { astmConnectionSchema, astmEquipmentSchema, astmPointSchema, astmSerialConnectionSchema, type AstmConnection } from './schema.js';

const create = (connection: ConnectionConfig, equipment: EquipmentConfig[], ctx: DriverContext): Driver => {
  if (equipment.length > 1)
    ctx.log.warn(
      { equipment: equipment.map((e) => e.id) },
      'An ASTM connection serves one analyzer: its results go to the first equipment entry',
    );
  // The driver (and serialport with it) is imported when the connection is initialised.
  return lazyDriver(async () =>
    (await import('./driver.js')).createAstmDriver(connection as unknown as AstmConnection, equipment[0] as EquipmentBase, ctx),
  );
};

export const astmSerialDriver: DriverDefinition = {
  type: 'astm-serial',
  summary:
    'Laboratory analyzers speaking ASTM E1381/E1394 on a serial line (RS-232), as many still do; the same protocol handling as astm-tcp.',
  connectionSchema: astmSerialConnectionSchema,
  equipmentSchema: astmEquipmentSchema,
  pointSchema: astmPointSchema,
  create,
};

export const astmDriver: DriverDefinition = {
  type: 'astm-tcp',
  summary:
    'Laboratory analyzers speaking ASTM E1381 (low level: ENQ/ACK/NAK/EOT, numbered and checksummed frames) and E1394 (H/P/O/R/L records) over TCP. Each result is captured once, by a stable id, and stored before the analyzer gets its acknowledgement.',
  connectionSchema: astmConnectionSchema,
  equipmentSchema: astmEquipmentSchema,
  pointSchema: astmPointSchema,
  create,
};
