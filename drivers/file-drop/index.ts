// The file-drop driver as the registry lists it, with the file-exporting instrument simulator.
import { defineDriver, defineSimulator, type Driver, type DriverContext, type EquipmentBase } from '../types.js';
import { lazyDriver } from '../common/lazy-driver.js';
import { lazySimulator } from '../common/lazy-simulator.js';
import {
  fileDropConnectionSchema,
  fileDropEquipmentSchema,
  fileDropPointSchema,
  fileInstrumentSimulatorSchema,
  type FileDropConnection,
} from './schema.js';

const create = (connection: FileDropConnection, equipment: EquipmentBase[], ctx: DriverContext): Driver => {
  if (equipment.length > 1)
    ctx.log.warn(
      { equipment: equipment.map((e) => e.id) },
      'A file-drop connection serves one instrument: its results go to the first equipment entry',
    );
  // The parsers (saxes with them) are imported when the connection is initialised.
  return lazyDriver(async () => (await import('./driver.js')).createFileDropDriver(connection, equipment[0]!, ctx));
};

/** An instrument whose software exports result files, as the demo's file-writing instrument. */
const fileInstrumentSimulator = defineSimulator({
  type: 'file-instrument',
  schema: fileInstrumentSimulatorSchema,
  create: (s, ctx) => lazySimulator(async () => (await import('./simulator.js')).createFileInstrument(s, ctx.log)),
});

export const fileDropDriver = defineDriver({
  type: 'file-drop',
  summary:
    'Instruments whose software writes result files (CSV, TSV, XML, JSON) into a folder, local or a mounted share. A file is taken once complete, read by a declared mapping, each result captured once by a stable id (instrument + content hash + record index), then archived; a file that does not read goes to rejected/ with its reason.',
  connectionSchema: fileDropConnectionSchema,
  equipmentSchema: fileDropEquipmentSchema,
  pointSchema: fileDropPointSchema,
  // Results come when a file does: nothing is read on an interval.
  capabilities: { reportsOnChange: true, labResults: true, resultFiles: true, writes: false },
  simulators: [fileInstrumentSimulator],
  create,
});
