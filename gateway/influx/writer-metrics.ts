// The InfluxDB writer's figures: plain counters for stats(), the same counts for Prometheus, and
// gauges read from the spool and the target's health whenever /metrics is scraped.
import { Counter, Gauge } from 'prom-client';
import type { Metrics } from '../metrics.js';
import type { Spool } from '../spool.js';

export interface WriterCounts {
  received: number;
  written: number;
  writeErrors: number;
  rejectedLines: number;
  skippedValues: number;
  badMessages: number;
}

/** What the gauges read when scraped. */
export interface GaugeSource {
  spool(): Spool | undefined;
  healthy(): boolean;
}

export class WriterMetrics {
  readonly counts: WriterCounts = { received: 0, written: 0, writeErrors: 0, rejectedLines: 0, skippedValues: 0, badMessages: 0 };
  private readonly written: Counter;
  private readonly errors: Counter<'kind'>;
  private readonly rejected: Counter;
  private readonly skipped: Counter;
  private readonly dropped: Counter;
  private readonly bad: Counter;

  // Registered in this order, which is the order /metrics lists them in.
  constructor(registry: Metrics, source: GaugeSource) {
    const registers = [registry];
    this.written = new Counter({ name: 'gateway_influx_lines_written_total', help: 'Lines InfluxDB accepted', registers });
    this.errors = new Counter({
      name: 'gateway_influx_write_errors_total',
      help: 'Write requests that failed, by kind (retry, data, too_large, blocked)',
      labelNames: ['kind'],
      registers,
    });
    this.rejected = new Counter({ name: 'gateway_influx_lines_rejected_total', help: 'Lines InfluxDB refused for good', registers });
    this.skipped = new Counter({
      name: 'gateway_influx_values_skipped_total',
      help: 'Values left out of lines (a field type InfluxDB refuses, not finite numbers)',
      registers,
    });
    this.dropped = new Counter({
      name: 'gateway_influx_spool_dropped_lines_total',
      help: 'Lines dropped because the spool reached max_spool_size',
      registers,
    });
    this.bad = new Counter({
      name: 'gateway_influx_bad_messages_total',
      help: 'Telemetry messages refused: too big, not UTF-8 JSON, not in the telemetry format, or from unknown equipment',
      registers,
    });
    registerGauges(registry, source);
  }

  receivedLines(n: number): void {
    this.counts.received += n;
  }

  writtenLines(n: number): void {
    this.counts.written += n;
    this.written.inc(n);
  }

  writeError(kind: string): void {
    this.counts.writeErrors++;
    this.errors.inc({ kind });
  }

  rejectedLines(n: number): void {
    this.counts.rejectedLines += n;
    this.rejected.inc(n);
  }

  skippedValues(n: number): void {
    this.counts.skippedValues += n;
    this.skipped.inc(n);
  }

  /** Only for Prometheus: the spool counts its dropped lines itself. */
  droppedLines(n: number): void {
    this.dropped.inc(n);
  }

  /** Counts a refused message; the count so far. */
  badMessage(): number {
    this.bad.inc();
    return ++this.counts.badMessages;
  }
}

function registerGauges(registry: Metrics, source: GaugeSource): void {
  const registers = [registry];
  new Gauge({
    name: 'gateway_influx_spool_lines',
    help: 'Lines waiting in the spool',
    registers,
    collect() {
      this.set(source.spool()?.lineCount ?? 0);
    },
  });
  new Gauge({
    name: 'gateway_influx_spool_bytes',
    help: 'Bytes of line protocol in the spool',
    registers,
    collect() {
      this.set(source.spool()?.stats().bytes ?? 0);
    },
  });
  new Gauge({
    name: 'gateway_influx_spool_oldest_age_seconds',
    help: 'Age of the oldest line in the spool',
    registers,
    collect() {
      const oldest = source.spool()?.stats().oldestAt;
      this.set(oldest === undefined ? 0 : (Date.now() - oldest) / 1000);
    },
  });
  new Gauge({
    name: 'gateway_influx_healthy',
    help: '1 when InfluxDB accepted the last write request',
    registers,
    collect() {
      this.set(source.healthy() ? 1 : 0);
    },
  });
}
