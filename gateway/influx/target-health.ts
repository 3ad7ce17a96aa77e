// Whether InfluxDB takes writes, and what the writer does when it does not: smaller batches for a
// request refused as too large, otherwise an outage, retried with backoff and reported once.
import { backoffDelay } from '../../drivers/common/backoff.js';
import type { ReconnectOptions } from '../../drivers/common/primitives.js';
import type { Logger } from '../log.js';
import type { InfluxWriteError } from './client.js';

export interface TargetHealthOptions {
  target: string;
  batchSize: number;
  reconnect: ReconnectOptions;
  log: Logger;
  /** Called when the backoff delay after a failure has passed. */
  retry(): void;
}

export class TargetHealth {
  /** InfluxDB has answered the last request. */
  healthy = true;
  /** Lines per request: batch_size, halved after each "too large". */
  maxLines: number;
  private failures = 0;
  private blockedReported: string | undefined;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: TargetHealthOptions) {
    this.maxLines = opts.batchSize;
  }

  /** A request was accepted; true when that ends a time of failures. */
  succeeded(): boolean {
    const recovered = !this.healthy || this.failures > 0;
    if (recovered) this.blockedReported = undefined;
    this.healthy = true;
    this.failures = 0;
    return recovered;
  }

  /**
   * A request failed and its lines went back to the spool: true when that is an outage (a retry is
   * scheduled), false when only the batches get smaller.
   */
  failed(e: InfluxWriteError, lines: number, spooledLines: number): boolean {
    const { target, log } = this.opts;
    if (e.kind === 'too_large' && this.maxLines > 1) {
      this.maxLines = Math.max(1, Math.floor(Math.min(this.maxLines, lines) / 2));
      log.warn({ target, batchLines: this.maxLines }, 'InfluxDB refused a request as too large; sending smaller batches');
      return false;
    }
    this.healthy = false;
    const delay = Math.max(e.retryAfterMs ?? 0, backoffDelay(this.failures, this.opts.reconnect));
    this.failures++;
    this.report(e, { target, status: e.status, influx: e.influxMessage, retryIn: delay, spooledLines });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.opts.retry();
    }, delay);
    return true;
  }

  /** A probe request goes out during an outage: its success counts as a recovery. */
  probing(): void {
    this.failures = Math.max(this.failures, 1);
  }

  stop(): void {
    clearTimeout(this.retryTimer);
  }

  private report(e: InfluxWriteError, fields: Record<string, unknown>): void {
    const { log } = this.opts;
    if (e.kind === 'blocked') {
      // Retrying cannot fix a bad token or a missing database; the data waits in the spool meanwhile.
      if (this.blockedReported !== e.influxMessage)
        log.error(fields, 'InfluxDB refuses every write: fix the credentials, database or bucket; telemetry waits in the spool meanwhile');
      this.blockedReported = e.influxMessage;
    } else if (this.failures === 1) log.warn(fields, 'InfluxDB write failed; telemetry waits in the spool and is retried with backoff');
    else log.debug(fields, 'InfluxDB write failed again');
  }
}
