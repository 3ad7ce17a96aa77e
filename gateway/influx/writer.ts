// The InfluxDB writer: telemetry messages in (from an MQTT subscription), line protocol out. Every
// line goes through the durable spool first and leaves it only when InfluxDB has accepted it, so an
// outage of InfluxDB or a killed gateway loses nothing the spool had committed.
//
// While InfluxDB answers, one request at a time carries the newest lines (batches of batch_size
// lines, or whatever flush_interval has gathered). After an outage two run side by side: one drains
// the backlog oldest first, the other keeps the live data flowing, until the backlog is gone.
import { join } from 'node:path';
import { Counter, Gauge } from 'prom-client';
import { backoffDelay } from '../../drivers/common/backoff.js';
import type { InfluxSection } from '../../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { DEFAULT_MAX_PACKET_SIZE } from '../mqtt/packet-limit.js';
import type { TelemetryMessage } from '../mqtt/topics.js';
import { rateLimited } from '../../drivers/common/log-budget.js';
import { parseTelemetry } from '../mqtt/payload.js';
import { createInfluxClient, type InfluxClient, InfluxWriteError } from './client.js';
import { encodeTelemetry, seriesKey, withoutField, type EquipmentTags } from './line-protocol.js';
import { Spool, type SpoolChunk } from '../spool.js';

/** Lines are committed to the spool at least this often, and in chunks of at most COMMIT_LINES. */
const COMMIT_MS = 100;
const COMMIT_LINES = 1000;

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
  /** Commits what is staged to the spool now. */
  commit(): void;
  /** Called after each accepted request: which lane, and the spool chunk ids it carried. */
  onWritten(listener: (lane: Lane, chunkIds: number[], lines: number) => void): void;
  stats(): InfluxWriterStats;
  readonly target: string;
}

export type Lane = 'live' | 'drain';

/**
 * The request body of some chunks, as bytes. Written straight into one buffer outside V8's heap:
 * a joined string of a batch (about 450 kB at 5,000 lines) would be a large heap object, which only
 * a full collection frees, and a drain sends dozens a second (the heap grew by 50 MiB doing that).
 */
export function bodyOf(chunks: readonly SpoolChunk[]): Buffer {
  const body = Buffer.allocUnsafe(chunks.reduce((n, c) => n + Buffer.byteLength(c.text), chunks.length - 1));
  let at = 0;
  for (const c of chunks) {
    if (at > 0) body[at++] = 0x0a;
    at += body.write(c.text, at, 'utf8');
  }
  return body;
}

/** InfluxDB keeps nanoseconds in a signed 64-bit integer: the last millisecond it can hold (year 2262). */
const MAX_TS_MS = 9_223_372_036_854;

/**
 * What is wrong with a telemetry message's per-point times, if anything (parseTelemetry checked the
 * rest and passes `times` through unread): an object of milliseconds within InfluxDB's range, each
 * for a point of the message, so there are never more of them than values.
 */
function timesProblem(message: TelemetryMessage): string | undefined {
  const times: unknown = message.times;
  if (times === undefined) return undefined;
  if (typeof times !== 'object' || times === null || Array.isArray(times)) return 'times: expected an object of point times';
  for (const [point, t] of Object.entries(times)) {
    if (!Object.hasOwn(message.values, point)) return `times: ${JSON.stringify(point.slice(0, 70))} is not a point of the message`;
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0 || t > MAX_TS_MS)
      return `times.${point}: expected milliseconds since 1970 (up to the year 2262)`;
  }
  return undefined;
}

export function createInfluxWriter(opts: InfluxWriterOptions): InfluxWriter {
  const { config, log } = opts;
  const client = opts.client ?? createInfluxClient(config);
  const levels = opts.topicPrefix.split('/').length;
  const maxPayload = opts.maxPayloadBytes ?? DEFAULT_MAX_PACKET_SIZE;
  const badLog = rateLimited();
  const tagsByEquipment = new Map<string, { tags: EquipmentTags; series: string }>();
  for (const e of opts.equipment) {
    const tags: EquipmentTags = { measurement: e.category, site: opts.site, equipment: e.id, code: e.code };
    tagsByEquipment.set(e.id, { tags, series: seriesKey(tags) });
  }
  const quarantine = new Map<string, Set<string>>();
  const writtenListeners: Array<(lane: Lane, chunkIds: number[], lines: number) => void> = [];
  const counters = { received: 0, written: 0, writeErrors: 0, rejectedLines: 0, skippedValues: 0, badMessages: 0 };
  const m = {
    written: new Counter({ name: 'gateway_influx_lines_written_total', help: 'Lines InfluxDB accepted', registers: [opts.metrics] }),
    errors: new Counter({
      name: 'gateway_influx_write_errors_total',
      help: 'Write requests that failed, by kind (retry, data, too_large, blocked)',
      labelNames: ['kind'],
      registers: [opts.metrics],
    }),
    rejected: new Counter({
      name: 'gateway_influx_lines_rejected_total',
      help: 'Lines InfluxDB refused for good',
      registers: [opts.metrics],
    }),
    skipped: new Counter({
      name: 'gateway_influx_values_skipped_total',
      help: 'Values left out of lines (a field type InfluxDB refuses, not finite numbers)',
      registers: [opts.metrics],
    }),
    dropped: new Counter({
      name: 'gateway_influx_spool_dropped_lines_total',
      help: 'Lines dropped because the spool reached max_spool_size',
      registers: [opts.metrics],
    }),
    bad: new Counter({
      name: 'gateway_influx_bad_messages_total',
      help: 'Telemetry messages refused: too big, not UTF-8 JSON, not in the telemetry format, or from unknown equipment',
      registers: [opts.metrics],
    }),
  };

  const refuse = (topic: string, reason: string) => {
    counters.badMessages++;
    m.bad.inc();
    badLog((notLogged) =>
      log.warn(
        { topic: topic.slice(0, 200), reason, badMessages: counters.badMessages, ...(notLogged ? { notLogged } : {}) },
        'Telemetry message refused; left out (counted, logged at most once a minute)',
      ),
    );
  };

  let spool: Spool | undefined;
  /** The spool's figures when it was closed, so stats() still tells after stop(). */
  let last: ReturnType<Spool['stats']> | undefined;
  let staged: string[] = [];
  let commitTimer: NodeJS.Timeout | undefined;
  let flushTimer: NodeJS.Timeout | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  let healthy = true;
  let failures = 0;
  let blockedReported: string | undefined;
  /** The backlog after an outage: chunks up to this id are drained oldest first. */
  let boundary: number | undefined;
  const busy: Record<Lane, Promise<void> | undefined> = { live: undefined, drain: undefined };
  let maxLines = config.batch_size;
  let inFlightLines = 0;
  let inFlightBytes = 0;

  new Gauge({
    name: 'gateway_influx_spool_lines',
    help: 'Lines waiting in the spool',
    registers: [opts.metrics],
    collect() {
      this.set(spool?.lineCount ?? 0);
    },
  });
  new Gauge({
    name: 'gateway_influx_spool_bytes',
    help: 'Bytes of line protocol in the spool',
    registers: [opts.metrics],
    collect() {
      this.set(spool?.stats().bytes ?? 0);
    },
  });
  new Gauge({
    name: 'gateway_influx_spool_oldest_age_seconds',
    help: 'Age of the oldest line in the spool',
    registers: [opts.metrics],
    collect() {
      const oldest = spool?.stats().oldestAt;
      this.set(oldest === undefined ? 0 : (Date.now() - oldest) / 1000);
    },
  });
  new Gauge({
    name: 'gateway_influx_healthy',
    help: '1 when InfluxDB accepted the last write request',
    registers: [opts.metrics],
    collect() {
      this.set(healthy ? 1 : 0);
    },
  });

  const commit = () => {
    clearTimeout(commitTimer);
    commitTimer = undefined;
    if (staged.length === 0 || !spool) return;
    const lines = staged;
    staged = [];
    for (let k = 0; k < lines.length; k += COMMIT_LINES) spool.append(lines.slice(k, k + COMMIT_LINES));
    if (spool.lineCount - inFlightLines >= maxLines) pump();
  };

  const unsent = () => (spool ? spool.lineCount - inFlightLines : 0);

  /** Starts what can be sent: the backlog always, live lines when a batch is full or `force` (the flush tick). */
  const pump = (force = false) => {
    if (stopped || !spool || !healthy) return;
    if (boundary !== undefined && !busy.drain) {
      const chunks = spool.takeFrom(0, maxLines, boundary);
      if (chunks.length === 0) {
        boundary = undefined;
        log.info('Spool backlog drained');
      } else send('drain', chunks);
    }
    if (!busy.live && unsent() > 0 && (force || (boundary === undefined && unsent() >= maxLines))) {
      const chunks = spool.takeFrom(boundary ?? 0, maxLines);
      if (chunks.length > 0) send('live', chunks);
    }
  };

  const send = (lane: Lane, chunks: SpoolChunk[]) => {
    const lines = chunks.reduce((n, c) => n + c.lines, 0);
    inFlightLines += lines;
    busy[lane] = (async () => {
      try {
        const body = bodyOf(chunks);
        inFlightBytes += body.length;
        try {
          await client.write(body);
        } finally {
          inFlightBytes -= body.length;
        }
        inFlightLines -= lines;
        if (!spool) return;
        spool.remove(chunks);
        counters.written += lines;
        m.written.inc(lines);
        for (const l of writtenListeners)
          l(
            lane,
            chunks.map((c) => c.id),
            lines,
          );
        onSuccess();
      } catch (err) {
        inFlightLines -= lines;
        if (!spool) return;
        const e = err instanceof InfluxWriteError ? err : new InfluxWriteError('retry', (err as Error).message);
        counters.writeErrors++;
        m.errors.inc({ kind: e.kind });
        if (e.kind === 'data') handleRefused(chunks, e);
        else {
          spool.release(chunks);
          onFailure(e, lines);
        }
      } finally {
        busy[lane] = undefined;
      }
      queueMicrotask(pump);
    })();
  };

  const onSuccess = () => {
    if (!healthy || failures > 0) {
      const backlog = spool!.lineCount;
      log.info({ target: client.target, backlogLines: backlog }, 'InfluxDB accepts writes again');
      blockedReported = undefined;
      // What the spool holds now is the backlog; what arrives from here on is live.
      if (backlog > 0) boundary = spool!.lastId();
    }
    healthy = true;
    failures = 0;
  };

  const onFailure = (e: InfluxWriteError, lines: number) => {
    if (e.kind === 'too_large' && maxLines > 1) {
      maxLines = Math.max(1, Math.floor(Math.min(maxLines, lines) / 2));
      log.warn({ target: client.target, batchLines: maxLines }, 'InfluxDB refused a request as too large; sending smaller batches');
      return;
    }
    healthy = false;
    boundary = undefined;
    const delay = Math.max(e.retryAfterMs ?? 0, backoffDelay(failures, config.reconnect));
    failures++;
    const fields = { target: client.target, status: e.status, influx: e.influxMessage, retryIn: delay, spooledLines: spool!.lineCount };
    if (e.kind === 'blocked') {
      // Retrying cannot fix a bad token or a missing database; the data waits in the spool meanwhile.
      if (blockedReported !== e.influxMessage)
        log.error(fields, 'InfluxDB refuses every write: fix the credentials, database or bucket; telemetry waits in the spool meanwhile');
      blockedReported = e.influxMessage;
    } else if (failures === 1) log.warn(fields, 'InfluxDB write failed; telemetry waits in the spool and is retried with backoff');
    else log.debug(fields, 'InfluxDB write failed again');
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      probe();
    }, delay);
  };

  /** During an outage one request at a time, oldest first, tells when InfluxDB is back. */
  const probe = () => {
    if (stopped || !spool || busy.live || busy.drain) return;
    const chunks = spool.takeFrom(0, maxLines);
    if (chunks.length === 0) {
      healthy = true;
      return;
    }
    failures = Math.max(failures, 1);
    send('drain', chunks);
  };

  /** Lines InfluxDB refused for good: a field type conflict takes that field out; anything else is dropped and counted. */
  const handleRefused = (chunks: SpoolChunk[], e: InfluxWriteError) => {
    const conflict =
      /field type conflict: input field "((?:[^"\\]|\\.)+)" on measurement "((?:[^"\\]|\\.)+)" is type (\w+), already exists as type (\w+)/.exec(
        e.influxMessage,
      );
    if (conflict) {
      const [, field, measurement, type, existing] = conflict as unknown as [string, string, string, string, string];
      const known = quarantine.get(measurement) ?? new Set<string>();
      if (!known.has(field)) {
        known.add(field);
        quarantine.set(measurement, known);
        const equipment = [...tagsByEquipment.values()].filter((t) => t.tags.measurement === measurement).map((t) => t.tags.equipment);
        log.error(
          { point: field, measurement, equipment, type, existing, influx: e.influxMessage },
          `InfluxDB refuses point "${field}": it is now ${type} but ${measurement}.${field} is ${existing} there; its values are left out from now on (rename the point or drop the field), the other points keep flowing`,
        );
      }
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
      if (removed === 0) {
        // The conflict is not in these lines: nothing to take out, so they cannot succeed.
        dropRefused(chunks, e);
        return;
      }
      counters.skippedValues += removed;
      m.skipped.inc(removed);
      const emptied = chunks.filter((_, k) => kept[k]!.length === 0);
      const rewritten = chunks.flatMap((c, k) => (kept[k]!.length > 0 ? [spool!.rewrite(c, kept[k]!)] : []));
      spool!.release(rewritten);
      if (emptied.length) spool!.remove(emptied);
      return;
    }
    dropRefused(chunks, e);
  };

  const dropRefused = (chunks: SpoolChunk[], e: InfluxWriteError) => {
    const lines = chunks.reduce((n, c) => n + c.lines, 0);
    const dropped = Number(/dropped=(\d+)/.exec(e.influxMessage)?.[1] ?? lines);
    counters.rejectedLines += dropped;
    m.rejected.inc(dropped);
    log.error(
      { target: client.target, status: e.status, influx: e.influxMessage, rejectedLines: dropped, batchLines: lines },
      'InfluxDB refused lines for good; the rest of the batch was written',
    );
    spool!.remove(chunks);
  };

  const stage = (lines: readonly string[]) => {
    if (lines.length === 0) return;
    counters.received += lines.length;
    for (const line of lines) staged.push(line);
    if (staged.length >= COMMIT_LINES) commit();
    else if (!commitTimer && !stopped) commitTimer = setTimeout(commit, Math.min(COMMIT_MS, config.flush_interval));
  };

  return {
    target: client.target,

    async start() {
      spool = new Spool({
        file: join(opts.dataDir, opts.spoolFile ?? 'influx-spool.db'),
        maxBytes: config.max_spool_size,
        log,
        onDrop: (n) => m.dropped.inc(n),
        messages: {
          full: 'Spool is full: dropping the oldest telemetry until InfluxDB takes data again',
          room: 'Spool has room again; telemetry lines were dropped meanwhile',
        },
      });
      const held = spool.stats();
      if (held.lines > 0) {
        log.info(
          { lines: held.lines, bytes: held.bytes, oldest: new Date(held.oldestAt!).toISOString() },
          'Spool holds telemetry from before; draining it',
        );
        boundary = spool.lastId();
      }
      log.info(
        { target: client.target, batchSize: config.batch_size, flushInterval: config.flush_interval, maxSpoolSize: config.max_spool_size },
        'InfluxDB writer started',
      );
      const tick = () => {
        flushTimer = setTimeout(tick, config.flush_interval);
        pump(true);
      };
      flushTimer = setTimeout(tick, config.flush_interval);
      pump();
    },

    async stop() {
      stopped = true;
      clearTimeout(flushTimer);
      clearTimeout(retryTimer);
      commit();
      // What is in flight has a little time to be answered; anything unanswered stays spooled.
      const inFlight = [busy.live, busy.drain].filter(Boolean);
      if (inFlight.length) await Promise.race([Promise.allSettled(inFlight), new Promise((r) => setTimeout(r, 1000))]);
      const s = spool;
      spool = undefined;
      const held = s?.stats();
      if (held) last = held;
      if (held && held.lines > 0) log.info({ lines: held.lines }, 'Spool keeps telemetry for the next start');
      s?.close();
    },

    accept(topic, payload) {
      try {
        const parts = topic.split('/');
        const equipment =
          parts.length === levels + 3 && topic.startsWith(`${opts.topicPrefix}/${opts.site}/`) && parts[levels + 2] === 'telemetry'
            ? parts[levels + 1]
            : undefined;
        const known = equipment === undefined ? undefined : tagsByEquipment.get(equipment);
        if (!known)
          return refuse(
            topic,
            equipment === undefined
              ? 'not a telemetry topic of this site'
              : `no equipment ${JSON.stringify(equipment.slice(0, 70))} on this site`,
          );
        const message = parseTelemetry(payload, maxPayload);
        if (!message.ok) return refuse(topic, message.reason);
        const badTimes = timesProblem(message.value);
        if (badTimes) return refuse(topic, badTimes);
        const encoded = encodeTelemetry(message.value, known.tags, quarantine, known.series);
        if (encoded.skipped) {
          counters.skippedValues += encoded.skipped;
          m.skipped.inc(encoded.skipped);
        }
        stage(encoded.lines);
      } catch (err) {
        // Nothing above should throw; if it does, the message is bad and the broker delivering it is unharmed.
        refuse(topic, `could not be taken: ${(err as Error).message}`);
      }
    },

    acceptLines: (lines) => stage(lines),

    commit,

    onWritten(listener) {
      writtenListeners.push(listener);
    },

    stats() {
      const s = spool?.stats() ?? last;
      return {
        ...counters,
        spoolLines: s?.lines ?? 0,
        spoolBytes: s?.bytes ?? 0,
        spoolOldestAgeMs: s?.oldestAt === undefined ? 0 : Date.now() - s.oldestAt,
        droppedLines: s?.droppedLines ?? 0,
        staged: staged.length,
        memoryBytes: staged.reduce((n, line) => n + line.length, 0) + inFlightBytes,
        healthy,
      };
    },
  };
}
