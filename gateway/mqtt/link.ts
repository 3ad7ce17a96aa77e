// The gateway's own MQTT client (mqtt.js), against the embedded broker or an external one. It never
// blocks the drivers: publishes are fire-and-forget with a bounded number awaiting acknowledgement.
// To an external broker, telemetry goes through a disk-backed outgoing queue and a persistent session,
// so readings made while the broker is unreachable, even across a restart, arrive once it returns.
//
// The parts: Connection (connect, reconnect with backoff, report), Publisher (QoS 1, size-checked),
// GatewayStatus (online/degraded, the Last Will, offline at stop), and for telemetry either the
// OutgoingQueue on disk (external broker) or the PendingWindow in memory (embedded). LinkMetrics counts.
import { redactUrl } from '../redact.js';
import { Connection, STOP_FLUSH_MS } from './connection.js';
import { GatewayStatus } from './gateway-status.js';
import { LinkMetrics } from './link-metrics.js';
import { OutgoingQueue } from './outgoing.js';
import { PendingWindow } from './pending-window.js';
import { Publisher, type Done } from './publisher.js';
import type { MqttLink, MqttLinkOptions, MqttLinkService, MqttLinkStats } from './link-types.js';
import type { StatusMessage, TelemetryMessage } from './topics.js';

// A broker URL fit for a log line: the one redaction of the whole gateway (user, password, token parameters).
export { redactUrl };
export { credentials, endClient } from './connection.js';
export type { MqttLink, MqttLinkOptions, MqttLinkService, MqttLinkStats };

const CONNECT_WAIT_MS = 5000;

export function createMqttLink(opts: MqttLinkOptions): MqttLinkService {
  return new Link(opts);
}

class Link implements MqttLinkService {
  private readonly metrics: LinkMetrics;
  private readonly publisher: Publisher;
  private readonly status: GatewayStatus;
  private readonly window: PendingWindow;
  private readonly connection: Connection;
  private queue: OutgoingQueue | undefined;

  constructor(private readonly opts: MqttLinkOptions) {
    const { config, log } = opts;
    const source = { connected: () => this.publisher.connected, pending: () => this.window.pending, queue: () => this.queue };
    this.metrics = new LinkMetrics(opts.metrics, source, Boolean(opts.queueFile));
    this.publisher = new Publisher({ maxPacketSize: config.max_packet_size, log, oversized: () => this.metrics.oversized() });
    this.status = new GatewayStatus(opts.topics.gatewayStatus(), this.publisher);
    this.window = new PendingWindow({
      maxPending: config.max_pending,
      publisher: this.publisher,
      log,
      delivered: () => this.metrics.delivered(),
      dropped: () => this.metrics.dropped(),
    });
    this.connection = new Connection({
      config,
      clientId: opts.clientId,
      persistent: Boolean(opts.queueFile),
      will: this.status.will(),
      log,
      connected: () => {
        this.status.announce();
        this.queue?.connected();
      },
      lost: () => this.queue?.disconnected(),
    });
  }

  async start(): Promise<void> {
    if (this.opts.queueFile) this.queue = this.openQueue(this.opts.queueFile);
    const url = this.opts.url();
    const c = this.connection.open(url);
    this.publisher.client = c;
    this.queue?.attach(c);
    if (!this.opts.waitForConnection) return;
    // Started once the broker holds the retained `online` status: a client subscribing from then
    // on gets it as a retained message, never only live.
    await this.status.acknowledged(CONNECT_WAIT_MS, redactUrl(url));
  }

  async stop(): Promise<void> {
    const c = this.publisher.client;
    if (!c) return;
    this.queue?.detach();
    if (c.connected) await this.status.stopped(STOP_FLUSH_MS);
    await this.connection.end(c);
    this.publisher.client = undefined;
    this.queue?.close();
  }

  publishTelemetry(equipment: string, message: TelemetryMessage): void {
    if (!this.publisher.client) return;
    const topic = this.opts.topics.telemetry(equipment);
    if (!this.queue) return this.window.publish(topic, message);
    const text = JSON.stringify(message);
    if (this.publisher.fits(topic, text)) this.queue.push(topic, text);
  }

  publishStatus(topic: string, status: StatusMessage): void {
    this.publisher.json(topic, status, true);
  }

  setGatewayHealth(reason: string | undefined): void {
    this.status.set(reason);
  }

  /** `done`: once the broker acknowledged it, or with the reason it was not sent. */
  publishEvent(topic: string, payload: unknown, retain: boolean, done?: Done): void {
    this.publisher.json(topic, payload, retain, done);
  }

  clearRetained(topic: string): void {
    this.publisher.text(topic, '', true);
  }

  stats(): MqttLinkStats {
    const { connected, oversized } = this.publisher;
    if (!this.queue) {
      const { delivered, pending, dropped, pendingChars } = this.window;
      return { connected, delivered, pending, dropped, pendingChars, oversized, queued: 0, queuedBytes: 0, oldestQueuedAt: undefined };
    }
    const q = this.queue.stats();
    const { delivered, inFlight: pending, dropped, queued, queuedBytes, oldestQueuedAt } = q;
    return { connected, delivered, pending, dropped, oversized, queued, queuedBytes, oldestQueuedAt };
  }

  health(): { ok: boolean; detail: MqttLinkStats } {
    const stats = this.stats();
    return { ok: stats.connected, detail: stats };
  }

  private openQueue(file: string): OutgoingQueue {
    const { config, log } = this.opts;
    return new OutgoingQueue({
      file,
      maxBytes: config.max_queue_size,
      window: config.max_pending,
      log,
      onDrop: (n) => this.metrics.dropped(n),
      onDelivered: () => this.metrics.delivered(),
    });
  }
}
