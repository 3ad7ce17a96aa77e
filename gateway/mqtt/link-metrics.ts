// The MQTT link's figures for /metrics: counters it adds to as it goes, gauges read when scraped.
// Without a registry (tests, tools) every count is a no-op.
import { Counter, Gauge } from 'prom-client';
import type { Metrics } from '../metrics.js';
import type { OutgoingQueue } from './outgoing.js';

/** What the gauges read when scraped. */
export interface LinkGaugeSource {
  connected(): boolean;
  /** Telemetry awaiting the broker's acknowledgement, without an outgoing queue. */
  pending(): number;
  queue(): OutgoingQueue | undefined;
}

export class LinkMetrics {
  private readonly counters: { delivered: Counter; dropped: Counter; oversized: Counter } | undefined;

  // Registered in this order, which is the order /metrics lists them in.
  constructor(registry: Metrics | undefined, source: LinkGaugeSource, withQueue: boolean) {
    if (!registry) return;
    const registers = [registry];
    this.counters = {
      delivered: new Counter({
        name: 'gateway_mqtt_messages_delivered_total',
        help: 'Telemetry messages the broker acknowledged',
        registers,
      }),
      dropped: new Counter({
        name: 'gateway_mqtt_messages_dropped_total',
        help: 'Telemetry messages dropped (max_pending with the embedded broker, max_queue_size with an external one)',
        registers,
      }),
      oversized: new Counter({
        name: 'gateway_mqtt_messages_oversized_total',
        help: 'Messages not published because they were bigger than mqtt.max_packet_size',
        registers,
      }),
    };
    registerGauges(registers, source);
    if (withQueue) registerQueueGauges(registers, source);
  }

  delivered(): void {
    this.counters?.delivered.inc();
  }

  dropped(n = 1): void {
    this.counters?.dropped.inc(n);
  }

  oversized(): void {
    this.counters?.oversized.inc();
  }
}

function registerGauges(registers: Metrics[], source: LinkGaugeSource): void {
  new Gauge({
    name: 'gateway_mqtt_connected',
    help: '1 while the MQTT client is connected',
    registers,
    collect() {
      this.set(source.connected() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'gateway_mqtt_pending_messages',
    help: "Telemetry messages awaiting the broker's acknowledgement",
    registers,
    collect() {
      this.set(source.queue()?.stats().inFlight ?? source.pending());
    },
  });
}

function registerQueueGauges(registers: Metrics[], source: LinkGaugeSource): void {
  new Gauge({
    name: 'gateway_mqtt_queue_messages',
    help: 'Telemetry messages in the outgoing queue on disk',
    registers,
    collect() {
      this.set(source.queue()?.stats().queued ?? 0);
    },
  });
  new Gauge({
    name: 'gateway_mqtt_queue_bytes',
    help: 'Bytes of telemetry in the outgoing queue on disk',
    registers,
    collect() {
      this.set(source.queue()?.stats().queuedBytes ?? 0);
    },
  });
  new Gauge({
    name: 'gateway_mqtt_queue_oldest_age_seconds',
    help: 'Age of the oldest message in the outgoing queue (0 when empty)',
    registers,
    collect() {
      const at = source.queue()?.stats().oldestQueuedAt;
      this.set(at === undefined ? 0 : (Date.now() - at) / 1000);
    },
  });
}
