// The writer's spool file: one per writer process in the data folder, bounded by max_spool_size.
import { join } from 'node:path';
import { Spool } from '../spool.js';
import type { InfluxWriterOptions } from './writer-types.js';

export function openSpool(opts: InfluxWriterOptions, onDrop: (lines: number) => void): Spool {
  return new Spool({
    file: join(opts.dataDir, opts.spoolFile ?? 'influx-spool.db'),
    maxBytes: opts.config.max_spool_size,
    log: opts.log,
    onDrop,
    messages: {
      full: 'Spool is full: dropping the oldest telemetry until InfluxDB takes data again',
      room: 'Spool has room again; telemetry lines were dropped meanwhile',
    },
  });
}
