// Lines InfluxDB refused for good (HTTP 400/422). A field type conflict takes that field out of the
// lines, which are sent again, and keeps it out from then on; anything else is dropped and counted.
import type { Logger } from '../log.js';
import type { Spool, SpoolChunk } from '../spool.js';
import type { InfluxWriteError } from './client.js';
import { withoutField } from './line-protocol.js';
import type { WriterMetrics } from './writer-metrics.js';

const FIELD_TYPE_CONFLICT =
  /field type conflict: input field "((?:[^"\\]|\\.)+)" on measurement "((?:[^"\\]|\\.)+)" is type (\w+), already exists as type (\w+)/;

export interface RefusalOptions {
  target: string;
  log: Logger;
  metrics: WriterMetrics;
  /** Fields refused for good, by measurement: the writer leaves their values out of new lines too. */
  quarantine: Map<string, Set<string>>;
  /** The equipment writing to a measurement, for the log line. */
  equipmentIn(measurement: string): string[];
}

export class Refusals {
  constructor(private readonly opts: RefusalOptions) {}

  /** The chunks leave the spool, or go back to it without the refused field. */
  handle(spool: Spool, chunks: SpoolChunk[], e: InfluxWriteError): void {
    const conflict = FIELD_TYPE_CONFLICT.exec(e.influxMessage);
    if (!conflict) return this.drop(spool, chunks, e);
    const [, field, measurement, type, existing] = conflict as unknown as [string, string, string, string, string];
    this.quarantine(field, measurement, type, existing, e);
    // Send the same lines again without that field; InfluxDB overwrites what it already took.
    let removed = 0;
    const kept = chunks.map((c) => {
      const out: string[] = [];
      for (const line of c.text.split('\n')) {
        const rest = withoutField(line, measurement, field);
        if (rest !== line) removed++;
        if (rest !== undefined) out.push(rest);
      }
      return out;
    });
    // The conflict is not in these lines: nothing to take out, so they cannot succeed.
    if (removed === 0) return this.drop(spool, chunks, e);
    this.opts.metrics.skippedValues(removed);
    const emptied = chunks.filter((_, k) => kept[k]!.length === 0);
    const rewritten = chunks.flatMap((c, k) => (kept[k]!.length > 0 ? [spool.rewrite(c, kept[k]!)] : []));
    spool.release(rewritten);
    if (emptied.length) spool.remove(emptied);
  }

  private quarantine(field: string, measurement: string, type: string, existing: string, e: InfluxWriteError): void {
    const known = this.opts.quarantine.get(measurement) ?? new Set<string>();
    if (known.has(field)) return;
    known.add(field);
    this.opts.quarantine.set(measurement, known);
    this.opts.log.error(
      { point: field, measurement, equipment: this.opts.equipmentIn(measurement), type, existing, influx: e.influxMessage },
      `InfluxDB refuses point "${field}": it is now ${type} but ${measurement}.${field} is ${existing} there; its values are left out from now on (rename the point or drop the field), the other points keep flowing`,
    );
  }

  private drop(spool: Spool, chunks: SpoolChunk[], e: InfluxWriteError): void {
    const lines = chunks.reduce((n, c) => n + c.lines, 0);
    const dropped = Number(/dropped=(\d+)/.exec(e.influxMessage)?.[1] ?? lines);
    this.opts.metrics.rejectedLines(dropped);
    this.opts.log.error(
      { target: this.opts.target, status: e.status, influx: e.influxMessage, rejectedLines: dropped, batchLines: lines },
      'InfluxDB refused lines for good; the rest of the batch was written',
    );
    spool.remove(chunks);
  }
}
