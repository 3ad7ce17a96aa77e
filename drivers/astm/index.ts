// The ASTM drivers as the registry lists them (over TCP and on a serial line), with the analyzer simulator.
import { defineDriver, defineSimulator, type Driver, type DriverContext, type EquipmentBase } from '../types.js';
import { lazyDriver } from '../common/lazy-driver.js';
import { lazySimulator } from '../common/lazy-simulator.js';
import {
  astmConnectionSchema,
  astmEquipmentSchema,
  astmPointSchema,
  astmSerialConnectionSchema,
  astmSimulatorSchema,
  type AstmConnection,
} from './schema.js';

const create = (connection: AstmConnection, equipment: EquipmentBase[], ctx: DriverContext): Driver => {
  if (equipment.length > 1)
    ctx.log.warn(
      { equipment: equipment.map((e) => e.id) },
      'An ASTM connection serves one analyzer: its results go to the first equipment entry',
    );
  // The driver (and serialport with it) is imported when the connection is initialised.
  return lazyDriver(async () => (await import('./driver.js')).createAstmDriver(connection, equipment[0]!, ctx));
};

/** An analyzer that sends its results over ASTM, as the demo's lab instrument. */
const analyzerSimulator = defineSimulator({
  type: 'astm-analyzer',
  schema: astmSimulatorSchema,
  create: (s) => lazySimulator(async () => (await import('./simulator.js')).createAstmAnalyzer(s)),
});

// An analyzer sends a result when it has one: nothing is read on an interval.
const capabilities = { reportsOnChange: true, labResults: true, writes: false };

export const astmSerialDriver = defineDriver({
  type: 'astm-serial',
  summary:
    'Laboratory analyzers speaking ASTM E1381/E1394 on a serial line (RS-232), as many still do; the same protocol handling as astm-tcp.',
  connectionSchema: astmSerialConnectionSchema,
  equipmentSchema: astmEquipmentSchema,
  pointSchema: astmPointSchema,
  capabilities,
  create,
});

export const astmDriver = defineDriver({
  type: 'astm-tcp',
  summary:
    'Laboratory analyzers speaking ASTM E1381 (low level: ENQ/ACK/NAK/EOT, numbered and checksummed frames) and E1394 (H/P/O/R/L records) over TCP. Each result is captured once, by a stable id, and stored before the analyzer gets its acknowledgement.',
  connectionSchema: astmConnectionSchema,
  equipmentSchema: astmEquipmentSchema,
  pointSchema: astmPointSchema,
  capabilities,
  simulators: [analyzerSimulator],
  create,
});
