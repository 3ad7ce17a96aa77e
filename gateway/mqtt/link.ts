// The gateway's own MQTT client (mqtt.js), against the embedded broker or an external one. It never
// blocks the drivers: publishes are fire-and-forget with a bounded number awaiting acknowledgement.
// To an external broker, telemetry goes through a disk-backed outgoing queue and a persistent session,
// so readings made while the broker is unreachable, even across a restart, arrive once it returns.
import type { IClientOptions, MqttClient } from 'mqtt';
import { Counter, Gauge } from 'prom-client';
import { backoffDelay } from '../../drivers/common/backoff.js';
import type { MqttSection } from '../../config/schema.js';
import { GatewayError } from '../../config/errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { readPem } from '../pem.js';
import { redactUrl } from '../redact.js';
import { OutgoingQueue } from './outgoing.js';
import { connectBounded, publishPacketSize } from './packet-limit.js';
import { rateLimited } from '../../drivers/common/log-budget.js';
import type { StatusMessage, TelemetryMessage, Topics } from './topics.js';

export interface MqttLinkStats {
  connected: boolean;
  /** Telemetry messages published and acknowledged by the broker. */
  delivered: number;
  /** Telemetry messages awaiting the broker's acknowledgement. */
  pending: number;
  /** Embedded broker: characters of those messages, held in memory meanwhile (with an external broker they wait on disk). */
  pendingChars?: number;
  /** Telemetry messages dropped: max_pending reached (embedded broker), or the outgoing queue full (external). */
  dropped: number;
  /** Messages not published because they were bigger than mqtt.max_packet_size (a broker would close the connection). */
  oversized?: number;
  /** External broker: telemetry messages on disk until the broker acknowledges them. */
  queued: number;
  queuedBytes: number;
  oldestQueuedAt: number | undefined;
}

export interface MqttLink {
  start(): Promise<void>;
  stop(): Promise<void>;
  publishTelemetry(equipment: string, message: TelemetryMessage): void;
  /** Retained; never dropped. */
  publishStatus(topic: string, status: StatusMessage): void;
  /**
   * The gateway's own status (retained on `gw/<site>/gateway/status`, also after a reconnect):
   * `degraded` with a reason while a part of it does not work (the store cannot write), else online.
   */
  setGatewayHealth(degradedReason: string | undefined): void;
  /** Alarm events, the active alarm list, lab results: QoS 1, never dropped by a bound. */
  publishEvent(topic: string, payload: unknown, retain: boolean): void;
  stats(): MqttLinkStats;
}

export interface MqttLinkOptions {
  /** Read when start() runs: the embedded broker knows its port only once it listens. */
  url: () => string;
  config: MqttSection;
  clientId: string;
  topics: Topics;
  log: Logger;
  /** Wait for the first connection in start() (the embedded broker); an external broker is awaited by nobody. */
  waitForConnection: boolean;
  /** External broker: the outgoing queue's file; telemetry then waits on disk and the session persists. */
  queueFile?: string;
  metrics?: Metrics;
}

const STOP_FLUSH_MS = 500;
const CONNECT_WAIT_MS = 5000;

export function createMqttLink(opts: MqttLinkOptions): MqttLink {
  const { config, topics, log } = opts;
  let client: MqttClient | undefined;
  let stopping = false;
  let attempt = 0;
  let wasConnected = false;
  let dropEpisode = 0;
  let degradedReason: string | undefined;
  const gatewayStatus = (): StatusMessage =>
    degradedReason === undefined ? { state: 'online', ts: Date.now() } : { state: 'degraded', reason: degradedReason, ts: Date.now() };
  const stats = { delivered: 0, pending: 0, dropped: 0 };
  let oversized = 0;
  const oversizedLog = rateLimited();
  const refusedLog = rateLimited();
  let queue: OutgoingQueue | undefined;
  const m = opts.metrics
    ? {
        delivered: new Counter({
          name: 'gateway_mqtt_messages_delivered_total',
          help: 'Telemetry messages the broker acknowledged',
          registers: [opts.metrics],
        }),
        dropped: new Counter({
          name: 'gateway_mqtt_messages_dropped_total',
          help: 'Telemetry messages dropped (max_pending with the embedded broker, max_queue_size with an external one)',
          registers: [opts.metrics],
        }),
        oversized: new Counter({
          name: 'gateway_mqtt_messages_oversized_total',
          help: 'Messages not published because they were bigger than mqtt.max_packet_size',
          registers: [opts.metrics],
        }),
      }
    : undefined;
  if (opts.metrics) {
    new Gauge({
      name: 'gateway_mqtt_connected',
      help: '1 while the MQTT client is connected',
      registers: [opts.metrics],
      collect() {
        this.set(client?.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'gateway_mqtt_pending_messages',
      help: "Telemetry messages awaiting the broker's acknowledgement",
      registers: [opts.metrics],
      collect() {
        this.set(queue?.stats().inFlight ?? stats.pending);
      },
    });
    if (opts.queueFile) {
      new Gauge({
        name: 'gateway_mqtt_queue_messages',
        help: 'Telemetry messages in the outgoing queue on disk',
        registers: [opts.metrics],
        collect() {
          this.set(queue?.stats().queued ?? 0);
        },
      });
      new Gauge({
        name: 'gateway_mqtt_queue_bytes',
        help: 'Bytes of telemetry in the outgoing queue on disk',
        registers: [opts.metrics],
        collect() {
          this.set(queue?.stats().queuedBytes ?? 0);
        },
      });
      new Gauge({
        name: 'gateway_mqtt_queue_oldest_age_seconds',
        help: 'Age of the oldest message in the outgoing queue (0 when empty)',
        registers: [opts.metrics],
        collect() {
          const at = queue?.stats().oldestQueuedAt;
          this.set(at === undefined ? 0 : (Date.now() - at) / 1000);
        },
      });
    }
  }
  const offline: StatusMessage = { state: 'offline', reason: 'connection lost' };

  /** A message a broker would refuse for its size is not sent: counted and logged instead. */
  const fits = (topic: string, text: string): boolean => {
    const size = publishPacketSize(topic, Buffer.byteLength(text), 1);
    if (size <= config.max_packet_size) return true;
    oversized++;
    m?.oversized.inc();
    oversizedLog((notLogged) =>
      log.error(
        { topic, size, max_packet_size: config.max_packet_size, oversized, ...(notLogged ? { notLogged } : {}) },
        'MQTT message bigger than mqtt.max_packet_size; not published (counted)',
      ),
    );
    return false;
  };

  const publishText = (topic: string, text: string, retain: boolean, done?: (err?: Error) => void) => {
    if (!fits(topic, text)) return done?.(new Error('bigger than mqtt.max_packet_size'));
    client?.publish(topic, text, { qos: 1, retain }, (err) => done?.(err ?? undefined));
  };
  const publishJson = (topic: string, payload: unknown, retain: boolean, done?: (err?: Error) => void) =>
    publishText(topic, JSON.stringify(payload), retain, done);
  /** Characters of telemetry published and not yet acknowledged (held by the MQTT client meanwhile). */
  let pendingChars = 0;

  // mqtt.js reconnects by itself, and only its own reconnect replays the QoS 1 messages it holds; it
  // reads reconnectPeriod when a connection closes, so each close sets the wait for the next one.
  const nextDelay = (c: MqttClient) => {
    c.options.reconnectPeriod = Math.max(1, backoffDelay(attempt++, config.reconnect));
  };

  return {
    async start() {
      if (opts.queueFile) {
        queue = new OutgoingQueue({
          file: opts.queueFile,
          maxBytes: config.max_queue_size,
          window: config.max_pending,
          log,
          onDrop: (n) => m?.dropped.inc(n),
          onDelivered: () => m?.delivered.inc(),
        });
      }
      const options: IClientOptions = {
        clientId: opts.clientId,
        keepalive: Math.max(1, Math.round(config.keepalive / 1000)),
        // A persistent session with an external broker: what it holds for the gateway survives an outage.
        clean: !opts.queueFile,
        reconnectPeriod: Math.max(1, backoffDelay(attempt++, config.reconnect)),
        connectTimeout: 10_000,
        ...credentials(config),
        will: { topic: topics.gatewayStatus(), payload: Buffer.from(JSON.stringify(offline)), qos: 1, retain: true },
      };
      const url = opts.url();
      const c = connectBounded(url, options, config.max_packet_size, (err) =>
        refusedLog((notLogged) =>
          log.warn(
            { url: redactUrl(url), size: err.size, max_packet_size: err.max, ...(notLogged ? { notLogged } : {}) },
            'MQTT broker sent a packet bigger than mqtt.max_packet_size; connection closed, reconnecting',
          ),
        ),
      );
      client = c;
      /** Called once the first `online` status is acknowledged (start() waits for it with the embedded broker). */
      let announced: (() => void) | undefined;
      queue?.attach(c);
      c.on('connect', () => {
        attempt = 0;
        nextDelay(c);
        if (wasConnected) log.info({ url: redactUrl(url) }, 'MQTT connection restored');
        else log.info({ url: redactUrl(url), clientId: opts.clientId }, 'MQTT connected');
        wasConnected = true;
        publishJson(topics.gatewayStatus(), gatewayStatus(), true, () => {
          announced?.();
          announced = undefined;
        });
        queue?.connected();
      });
      // One warning per outage, and another only when the reason changes (refused, bad password, TLS...).
      let lastError: string | undefined;
      let reported: string | undefined;
      c.on('error', (err) => {
        lastError = err.message;
        log.debug({ err: err.message, url: redactUrl(url) }, 'MQTT client error');
      });
      c.on('close', () => {
        if (stopping) return;
        queue?.disconnected();
        const reason = lastError ?? 'connection closed';
        lastError = undefined;
        if (attempt === 1 || reason !== reported) {
          log.warn(
            { url: redactUrl(url), reason },
            wasConnected && attempt === 1
              ? 'MQTT connection lost; reconnecting with backoff'
              : 'MQTT broker not reachable; retrying with backoff',
          );
          reported = reason;
        }
        nextDelay(c);
      });

      if (!opts.waitForConnection) return;
      // Started once the broker holds the retained `online` status: a client subscribing from then
      // on gets it as a retained message, never only live.
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new GatewayError(
                'GW_ERR_COMPONENT_START',
                `MQTT broker ${redactUrl(url)} did not accept a connection within ${CONNECT_WAIT_MS} ms`,
              ),
            ),
          CONNECT_WAIT_MS,
        );
        announced = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    },

    async stop() {
      const c = client;
      if (!c) return;
      queue?.detach();
      if (c.connected) {
        // A clean disconnect sends no Last Will: say offline ourselves, and wait for it to be acknowledged.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, STOP_FLUSH_MS);
          publishJson(topics.gatewayStatus(), { state: 'offline', reason: 'stopped', ts: Date.now() } satisfies StatusMessage, true, () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      stopping = true;
      await endClient(c);
      client = undefined;
      queue?.close();
    },

    publishTelemetry(equipment, message) {
      if (!client) return;
      if (queue) {
        const topic = topics.telemetry(equipment);
        const text = JSON.stringify(message);
        if (fits(topic, text)) queue.push(topic, text);
        return;
      }
      if (stats.pending >= config.max_pending) {
        stats.dropped++;
        m?.dropped.inc();
        if (dropEpisode++ === 0)
          log.warn(
            { pending: stats.pending, max_pending: config.max_pending },
            'MQTT broker is not acknowledging: dropping new telemetry until it catches up',
          );
        return;
      }
      if (dropEpisode > 0 && stats.pending < config.max_pending / 2) {
        log.warn({ dropped: dropEpisode }, 'MQTT broker caught up; telemetry messages were dropped meanwhile');
        dropEpisode = 0;
      }
      const text = JSON.stringify(message);
      stats.pending++;
      pendingChars += text.length;
      publishText(topics.telemetry(equipment), text, false, (err) => {
        stats.pending--;
        pendingChars -= text.length;
        if (err) return;
        stats.delivered++;
        m?.delivered.inc();
      });
    },

    publishStatus(topic, status) {
      publishJson(topic, status, true);
    },

    setGatewayHealth(reason) {
      if (reason === degradedReason) return;
      degradedReason = reason;
      if (client?.connected) publishJson(topics.gatewayStatus(), gatewayStatus(), true);
    },

    publishEvent(topic, payload, retain) {
      publishJson(topic, payload, retain);
    },

    stats: () => {
      const connected = client?.connected ?? false;
      if (!queue) return { connected, ...stats, pendingChars, oversized, queued: 0, queuedBytes: 0, oldestQueuedAt: undefined };
      const q = queue.stats();
      return {
        connected,
        delivered: q.delivered,
        pending: q.inFlight,
        dropped: q.dropped,
        oversized,
        queued: q.queued,
        queuedBytes: q.queuedBytes,
        oldestQueuedAt: q.oldestQueuedAt,
      };
    },
  };
}

/**
 * Ends an mqtt.js client: waits for what it has in flight to be acknowledged, for at most `ms`,
 * then closes it anyway (a broker that is gone would make a clean end wait forever).
 */
export function endClient(c: MqttClient, ms = STOP_FLUSH_MS): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => c.end(true, () => resolve()), ms);
    c.end(false, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

// A broker URL fit for a log line: the one redaction of the whole gateway (user, password, token parameters).
export { redactUrl };

/** User, password and TLS files of the site's MQTT section, for every client the gateway opens. */
export function credentials(
  config: MqttSection,
): Pick<IClientOptions, 'username' | 'password' | 'ca' | 'cert' | 'key' | 'rejectUnauthorized'> {
  return {
    username: config.username,
    password: config.password,
    ca: readPem(config.ca, 'MQTT CA'),
    cert: readPem(config.cert, 'MQTT client certificate'),
    key: readPem(config.key, 'MQTT client key'),
    rejectUnauthorized: config.reject_unauthorized,
  };
}
