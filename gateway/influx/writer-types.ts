// What the InfluxDB writer is given and what it offers, for the gateway, the benchmarks and tests.
import type { InfluxSection } from '../../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { InfluxClient } from './client.js';
import type { Lane } from './lanes.js';

export interface InfluxWriterOptions {
  config: InfluxSection;
  site: string;
  topicPrefix: string;
  equipment: ReadonlyArray<{ id: string; category: string; code?: string | undefined }>;
  dataDir: string;
  log: Logger;
  metrics: Metrics;
  /** Spool file name in dataDir; each writer process needs its own. */
  spoolFile?: string;
  /** A different client (for tests of failure handling); the configured one otherwise. */
  client?: InfluxClient;
  /** Bigger telemetry payloads are refused unread (mqtt.max_packet_size). */
  maxPayloadBytes?: number;
}

export interface InfluxWriterStats {
  /** Lines made from telemetry messages. */
  received: number;
  /** Lines InfluxDB accepted. */
  written: number;
  /** Write requests that failed (each is retried or reported). */
  writeErrors: number;
  /** Lines InfluxDB refused for good. */
  rejectedLines: number;
  /** Values left out of lines: refused field types, values that are not finite. */
  skippedValues: number;
  /** Messages refused: too big, not UTF-8 JSON, not in the telemetry format, or from unknown equipment. */
  badMessages: number;
  spoolLines: number;
  spoolBytes: number;
  spoolOldestAgeMs: number;
  /** Lines dropped because the spool was full. */
  droppedLines: number;
  /** Lines received but not yet committed to the spool. */
  staged: number;
  /** Bytes in memory: the staged lines (characters) and the bodies of the write requests under way. */
  memoryBytes: number;
  /** InfluxDB has answered the last request. */
  healthy: boolean;
}

export interface InfluxWriter {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A telemetry message as it arrived on `<prefix>/<site>/<equipment>/telemetry`; never throws (a bad one is counted). */
  accept(topic: string, payload: Buffer | string): void;
  /** Lines made elsewhere in the gateway (alarm events): they take the same way as telemetry. */
  acceptLines(lines: readonly string[]): void;
  /** A reload added or removed equipment (docs/reload.md): their telemetry is taken, or refused, from now on. */
  equipmentChanged(equipment: ReadonlyArray<{ id: string; category: string; code?: string | undefined }>): void;
  /** Commits what is staged to the spool now. */
  commit(): void;
  /** Called after each accepted request: which lane, and the spool chunk ids it carried. */
  onWritten(listener: (lane: Lane, chunkIds: number[], lines: number) => void): void;
  stats(): InfluxWriterStats;
  /** Its part of /ready: InfluxDB answered the last request; how many lines wait in the spool. */
  health(): { ok: boolean; detail: unknown };
  readonly target: string;
}
