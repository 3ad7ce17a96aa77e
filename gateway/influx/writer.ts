// The InfluxDB writer: telemetry messages in (from an MQTT subscription), line protocol out. Every
// line goes through the durable spool first and leaves it only when InfluxDB has accepted it, so an
// outage of InfluxDB or a killed gateway loses nothing the spool had committed.
//
// The parts, in the order a line meets them: TelemetryIntake (topic and payload to lines), Stager
// (lines gathered, then committed to the spool), Lanes (requests to InfluxDB: the live lane and the
// backlog's drain lane), TargetHealth (outage, backoff, smaller batches), Refusals (lines InfluxDB
// refused for good). WriterMetrics counts for stats() and /metrics.
import { rateLimited } from '../../drivers/common/log-budget.js';
import { DEFAULT_MAX_PACKET_SIZE } from '../../drivers/common/mqtt-packet-limit.js';
import type { Spool, SpoolStats } from '../spool.js';
import { createInfluxClient, type InfluxClient } from './client.js';
import { TelemetryIntake } from './intake.js';
import { Lanes, type Lane } from './lanes.js';
import { Refusals } from './refusals.js';
import { Stager } from './stager.js';
import { openSpool } from './writer-spool.js';
import { TargetHealth } from './target-health.js';
import type { InfluxWriter, InfluxWriterOptions, InfluxWriterStats } from './writer-types.js';
import { WriterMetrics } from './writer-metrics.js';

export { bodyOf } from './body.js';
export type { Lane, InfluxWriter, InfluxWriterOptions, InfluxWriterStats };

export function createInfluxWriter(opts: InfluxWriterOptions): InfluxWriter {
  return new SpooledInfluxWriter(opts);
}

type WrittenListener = (lane: Lane, chunkIds: number[], lines: number) => void;

class SpooledInfluxWriter implements InfluxWriter {
  readonly target: string;
  private spool: Spool | undefined;
  /** The spool's figures when it was closed, so stats() still tells after stop(). */
  private last: SpoolStats | undefined;
  private readonly listeners: WrittenListener[] = [];
  private readonly badLog = rateLimited();
  private readonly metrics: WriterMetrics;
  private readonly intake: TelemetryIntake;
  private readonly targetHealth: TargetHealth;
  private readonly lanes: Lanes;
  private readonly stager: Stager;

  constructor(private readonly opts: InfluxWriterOptions) {
    const { config, log } = opts;
    const client = opts.client ?? createInfluxClient(config);
    this.target = client.target;
    const quarantine = new Map<string, Set<string>>();
    this.metrics = new WriterMetrics(opts.metrics, { spool: () => this.spool, healthy: () => this.targetHealth.healthy });
    const { site, topicPrefix, equipment } = opts;
    this.intake = new TelemetryIntake({
      site,
      topicPrefix,
      equipment,
      maxPayloadBytes: opts.maxPayloadBytes ?? DEFAULT_MAX_PACKET_SIZE,
      quarantine,
    });
    this.targetHealth = new TargetHealth({
      target: client.target,
      batchSize: config.batch_size,
      reconnect: config.reconnect,
      log,
      retry: () => this.lanes.probe(),
    });
    this.lanes = this.lanesTo(client, quarantine);
    this.stager = new Stager({
      flushIntervalMs: config.flush_interval,
      open: () => this.spool !== undefined,
      commit: (chunk) => this.spool!.append(chunk),
      committed: () => this.lanes.committed(),
    });
  }

  async start(): Promise<void> {
    const { config, log } = this.opts;
    const spool = openSpool(this.opts, (n) => this.metrics.droppedLines(n));
    this.spool = spool;
    const held = spool.stats();
    if (held.lines > 0) {
      log.info(
        { lines: held.lines, bytes: held.bytes, oldest: new Date(held.oldestAt!).toISOString() },
        'Spool holds telemetry from before; draining it',
      );
      this.lanes.markBacklog(spool);
    }
    log.info(
      { target: this.target, batchSize: config.batch_size, flushInterval: config.flush_interval, maxSpoolSize: config.max_spool_size },
      'InfluxDB writer started',
    );
    this.lanes.start(config.flush_interval);
  }

  async stop(): Promise<void> {
    this.stager.stop();
    this.lanes.stop();
    this.targetHealth.stop();
    this.stager.commit();
    // What is in flight has a little time to be answered; anything unanswered stays spooled.
    await this.lanes.settled();
    const s = this.spool;
    this.spool = undefined;
    const held = s?.stats();
    if (held) this.last = held;
    if (held && held.lines > 0) this.opts.log.info({ lines: held.lines }, 'Spool keeps telemetry for the next start');
    s?.close();
  }

  accept(topic: string, payload: Buffer | string): void {
    try {
      const taken = this.intake.take(topic, payload);
      if (!taken.ok) return this.refuse(topic, taken.reason);
      if (taken.skipped) this.metrics.skippedValues(taken.skipped);
      this.acceptLines(taken.lines);
    } catch (err) {
      // Nothing above should throw; if it does, the message is bad and the broker delivering it is unharmed.
      this.refuse(topic, `could not be taken: ${(err as Error).message}`);
    }
  }

  /** A reload added or removed equipment (docs/reload.md): their telemetry is taken, or refused, from now on. */
  equipmentChanged(equipment: InfluxWriterOptions['equipment']): void {
    this.intake.setEquipment(equipment);
  }

  acceptLines(lines: readonly string[]): void {
    if (lines.length === 0) return;
    this.metrics.receivedLines(lines.length);
    this.stager.stage(lines);
  }

  commit(): void {
    this.stager.commit();
  }

  onWritten(listener: WrittenListener): void {
    this.listeners.push(listener);
  }

  stats(): InfluxWriterStats {
    const s = this.spool?.stats() ?? this.last;
    return {
      ...this.metrics.counts,
      spoolLines: s?.lines ?? 0,
      spoolBytes: s?.bytes ?? 0,
      spoolOldestAgeMs: s?.oldestAt === undefined ? 0 : Date.now() - s.oldestAt,
      droppedLines: s?.droppedLines ?? 0,
      staged: this.stager.lines,
      memoryBytes: this.stager.chars + this.lanes.inFlightBytes,
      healthy: this.targetHealth.healthy,
    };
  }

  health(): { ok: boolean; detail: unknown } {
    const { healthy, spoolLines } = this.stats();
    return { ok: healthy, detail: { spoolLines } };
  }

  /** The requests to InfluxDB, with what they do about lines it refuses. */
  private lanesTo(client: InfluxClient, quarantine: Map<string, Set<string>>): Lanes {
    const { log } = this.opts;
    const equipmentIn = (measurement: string) => this.intake.equipmentIn(measurement);
    const refusals = new Refusals({ target: client.target, log, metrics: this.metrics, quarantine, equipmentIn });
    return new Lanes({
      client,
      log,
      metrics: this.metrics,
      health: this.targetHealth,
      refusals,
      spool: () => this.spool,
      written: (lane, ids, lines) => {
        for (const l of this.listeners) l(lane, ids, lines);
      },
    });
  }

  private refuse(topic: string, reason: string): void {
    const badMessages = this.metrics.badMessage();
    this.badLog((notLogged) =>
      this.opts.log.warn(
        { topic: topic.slice(0, 200), reason, badMessages, ...(notLogged ? { notLogged } : {}) },
        'Telemetry message refused; left out (counted, logged at most once a minute)',
      ),
    );
  }
}
