// The HL7 v2 over MLLP driver as the registry lists it, with the analyzer simulator.
import { defineDriver, defineSimulator, type Driver, type DriverContext, type EquipmentBase } from '../types.js';
import { lazyDriver } from '../common/lazy-driver.js';
import { lazySimulator } from '../common/lazy-simulator.js';
import { hl7ConnectionSchema, hl7EquipmentSchema, hl7PointSchema, hl7SimulatorSchema, type Hl7Connection } from './schema.js';

const create = (connection: Hl7Connection, equipment: EquipmentBase[], ctx: DriverContext): Driver => {
  if (equipment.length > 1)
    ctx.log.warn(
      { equipment: equipment.map((e) => e.id) },
      'An HL7 connection serves one analyzer: its results go to the first equipment entry',
    );
  // The driver (and iconv-lite with it) is imported when the connection is initialised.
  return lazyDriver(async () => (await import('./driver.js')).createHl7Driver(connection, equipment[0]!, ctx));
};

/** An analyzer that sends its results as HL7 ORU^R01 over MLLP, controls included. */
const analyzerSimulator = defineSimulator({
  type: 'hl7-analyzer',
  schema: hl7SimulatorSchema,
  create: (s) => lazySimulator(async () => (await import('./simulator.js')).createHl7Analyzer(s)),
});

export const hl7Driver = defineDriver({
  type: 'hl7-mllp',
  summary:
    'Laboratory analyzers and lab middleware sending HL7 v2 (2.3 to 2.8) ORU^R01 results over MLLP, listening or connecting. Each result is captured once, by a stable id (sender, message control id, OBX and its content), and stored before the message is acknowledged (AA); a message that cannot be taken is answered AE with the reason, one refused for now AR.',
  connectionSchema: hl7ConnectionSchema,
  equipmentSchema: hl7EquipmentSchema,
  pointSchema: hl7PointSchema,
  // An analyzer sends a result when it has one: nothing is read on an interval.
  capabilities: { reportsOnChange: true, labResults: true, writes: false },
  simulators: [analyzerSimulator],
  create,
});
