// When a reading's value held, and readings in that order: shared by the pipeline (telemetry and
// InfluxDB times) and the rule engine (which moves a batch's source times onto the gateway's clock
// when they are off; rules/engine.ts batchClock).
import type { Reading } from '../types.js';

/**
 * A reading's own time: its source time (device or OPC UA server) when it has one, else when the
 * gateway received it. A source time after the receive time is a source clock running ahead of the
 * gateway's: it is clamped to the receive time, so nothing is published or stored in the future;
 * 0 or less (OPC UA's "no time") counts as none.
 */
export function pointTime(r: Reading): number {
  const s = r.sourceTs;
  return s !== undefined && s > 0 && s <= r.ts ? s : r.ts;
}

/** The readings by `timeOf`, oldest first and stably; the same array when they already are (a poll). */
export function inTimeOrder(readings: readonly Reading[], timeOf: (r: Reading) => number = pointTime): readonly Reading[] {
  let last = -Infinity;
  for (const r of readings) {
    const t = timeOf(r);
    if (t < last) return [...readings].sort((a, b) => timeOf(a) - timeOf(b));
    last = t;
  }
  return readings;
}
