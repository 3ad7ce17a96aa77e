// The requests to InfluxDB. While it answers, one request at a time carries the newest lines (the
// live lane). After an outage the spool's backlog is drained oldest first in a second lane beside it,
// until the backlog is gone; during the outage one request at a time probes whether it is back.
import type { Logger } from '../log.js';
import type { Spool, SpoolChunk } from '../spool.js';
import { bodyOf } from './body.js';
import { type InfluxClient, InfluxWriteError } from './client.js';
import type { Refusals } from './refusals.js';
import type { TargetHealth } from './target-health.js';
import type { WriterMetrics } from './writer-metrics.js';

export type Lane = 'live' | 'drain';

/** What is in flight has this long to be answered at stop(); anything unanswered stays spooled. */
const STOP_WAIT_MS = 1000;

export interface LanesOptions {
  client: InfluxClient;
  log: Logger;
  metrics: WriterMetrics;
  health: TargetHealth;
  refusals: Refusals;
  /** The spool while the writer runs. */
  spool(): Spool | undefined;
  /** After each accepted request: which lane, and the spool chunk ids it carried. */
  written(lane: Lane, chunkIds: number[], lines: number): void;
}

export class Lanes {
  private readonly busy: Record<Lane, Promise<void> | undefined> = { live: undefined, drain: undefined };
  /** The backlog after an outage: chunks up to this id are drained oldest first. */
  private boundary: number | undefined;
  private inFlightLines = 0;
  private inFlightBody = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: LanesOptions) {}

  /** Sends whatever flush_interval has gathered at each tick, and what can go now. */
  start(flushIntervalMs: number): void {
    const tick = () => {
      this.flushTimer = setTimeout(tick, flushIntervalMs);
      this.pump(true);
    };
    this.flushTimer = setTimeout(tick, flushIntervalMs);
    this.pump();
  }

  /** No new request from now on. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.flushTimer);
  }

  /** Waits a little for the requests under way. */
  async settled(): Promise<void> {
    const inFlight = [this.busy.live, this.busy.drain].filter(Boolean);
    if (inFlight.length) await Promise.race([Promise.allSettled(inFlight), new Promise((r) => setTimeout(r, STOP_WAIT_MS))]);
  }

  /** What the spool holds now is a backlog, drained oldest first beside the live lines. */
  markBacklog(spool: Spool): void {
    this.boundary = spool.lastId();
  }

  /** Lines were committed: a full batch goes at once. */
  committed(): void {
    const spool = this.opts.spool();
    if (spool && spool.lineCount - this.inFlightLines >= this.opts.health.maxLines) this.pump();
  }

  /** Bytes of the request bodies under way. */
  get inFlightBytes(): number {
    return this.inFlightBody;
  }

  /** Starts what can be sent: the backlog always, live lines when a batch is full or `force` (the flush tick). */
  pump(force = false): void {
    const spool = this.opts.spool();
    const { health, log } = this.opts;
    if (this.stopped || !spool || !health.healthy) return;
    if (this.boundary !== undefined && !this.busy.drain) {
      const chunks = spool.takeFrom(0, health.maxLines, this.boundary);
      if (chunks.length === 0) {
        this.boundary = undefined;
        log.info('Spool backlog drained');
      } else this.send('drain', chunks);
    }
    const unsent = spool.lineCount - this.inFlightLines;
    if (!this.busy.live && unsent > 0 && (force || (this.boundary === undefined && unsent >= health.maxLines))) {
      const chunks = spool.takeFrom(this.boundary ?? 0, health.maxLines);
      if (chunks.length > 0) this.send('live', chunks);
    }
  }

  /** During an outage one request at a time, oldest first, tells when InfluxDB is back. */
  probe(): void {
    const spool = this.opts.spool();
    if (this.stopped || !spool || this.busy.live || this.busy.drain) return;
    const chunks = spool.takeFrom(0, this.opts.health.maxLines);
    if (chunks.length === 0) {
      this.opts.health.healthy = true;
      return;
    }
    this.opts.health.probing();
    this.send('drain', chunks);
  }

  private send(lane: Lane, chunks: SpoolChunk[]): void {
    const lines = chunks.reduce((n, c) => n + c.lines, 0);
    this.inFlightLines += lines;
    this.busy[lane] = (async () => {
      try {
        await this.write(chunks);
        this.inFlightLines -= lines;
        const spool = this.opts.spool();
        // Stopped meanwhile: the spool is closed and keeps the lines for the next start.
        if (!spool) return;
        this.accepted(spool, lane, chunks, lines);
      } catch (err) {
        this.inFlightLines -= lines;
        const spool = this.opts.spool();
        if (!spool) return;
        this.failed(spool, chunks, lines, err);
      } finally {
        this.busy[lane] = undefined;
      }
      queueMicrotask(() => this.pump());
    })();
  }

  private async write(chunks: SpoolChunk[]): Promise<void> {
    const body = bodyOf(chunks);
    this.inFlightBody += body.length;
    try {
      await this.opts.client.write(body);
    } finally {
      this.inFlightBody -= body.length;
    }
  }

  private accepted(spool: Spool, lane: Lane, chunks: SpoolChunk[], lines: number): void {
    spool.remove(chunks);
    this.opts.metrics.writtenLines(lines);
    this.opts.written(
      lane,
      chunks.map((c) => c.id),
      lines,
    );
    if (!this.opts.health.succeeded()) return;
    const backlog = spool.lineCount;
    this.opts.log.info({ target: this.opts.client.target, backlogLines: backlog }, 'InfluxDB accepts writes again');
    // What the spool holds now is the backlog; what arrives from here on is live.
    if (backlog > 0) this.markBacklog(spool);
  }

  private failed(spool: Spool, chunks: SpoolChunk[], lines: number, err: unknown): void {
    const e = err instanceof InfluxWriteError ? err : new InfluxWriteError('retry', (err as Error).message);
    this.opts.metrics.writeError(e.kind);
    if (e.kind === 'data') return this.opts.refusals.handle(spool, chunks, e);
    spool.release(chunks);
    if (this.opts.health.failed(e, lines, spool.lineCount)) this.boundary = undefined;
  }
}
