// Lab results as a service: stored, published and sent to the platform by the result service; a
// result whose analyte is a declared point of its instrument is also a reading, so rules see it (a
// value outside its reference range can raise an alarm like any other).
import type { Reading } from '../../drivers/types.js';
import { createResultService, type ResultService, type ResultServiceDeps } from '../lab/results.js';
import type { Service } from './service.js';

export interface LabService extends Service {
  readonly results: ResultService;
}

export function labService(deps: ResultServiceDeps, readings: (batch: Reading[]) => void): LabService {
  const results = createResultService(deps);
  const analytePoints = new Map(deps.config.equipment.map((e) => [e.id, new Set(e.points.map((p) => p.name))]));
  results.onResults((r) => {
    const batch = r
      .filter((x) => analytePoints.get(x.instrument)?.has(x.analyte) && (typeof x.value === 'number' || typeof x.value === 'string'))
      .map((x) => ({ equipment: x.instrument, point: x.analyte, value: x.value, quality: 'good' as const, ts: Date.parse(x.resultAt) }));
    if (batch.length > 0) readings(batch);
  });
  return { id: 'lab', name: 'lab results', results, start: () => results.start(), stop: () => results.stop() };
}
