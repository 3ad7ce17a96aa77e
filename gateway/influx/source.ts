// Where the InfluxDB writer reads telemetry: an in-process subscription on the embedded broker, or an
// MQTT client on an external broker with a persistent session and a shared subscription, so several
// writer processes split one site's stream and a writer that was away gets what it missed.
import type { MqttClient } from 'mqtt';
import type { MqttSection } from '../../config/schema.js';
import { backoffDelay } from '../../drivers/common/backoff.js';
import type { Logger } from '../log.js';
import type { EmbeddedBroker } from '../mqtt/broker.js';
import { credentials, endClient, redactUrl } from '../mqtt/link.js';
import { connectBounded } from '../../drivers/common/mqtt-packet-limit.js';
import { rateLimited } from '../../drivers/common/log-budget.js';

export interface TelemetrySource {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly description: string;
}

type OnMessage = (topic: string, payload: Buffer) => void;

export function telemetryTopic(prefix: string, site: string): string {
  return `${prefix}/${site}/+/telemetry`;
}

export function embeddedSource(broker: EmbeddedBroker, topic: string, onMessage: OnMessage): TelemetrySource {
  let end: (() => Promise<void>) | undefined;
  return {
    description: `embedded broker, ${topic}`,
    async start() {
      end = await broker.subscribe(topic, onMessage);
    },
    async stop() {
      await end?.();
      end = undefined;
    },
  };
}

export interface BrokerSourceOptions {
  url: string;
  config: MqttSection;
  clientId: string;
  topic: string;
  /** `$share/<group>/` in front of the topic: the broker hands each message to one writer of the group. */
  group: string;
  log: Logger;
  onMessage: OnMessage;
}

export function brokerSource(opts: BrokerSourceOptions): TelemetrySource {
  const { config, log } = opts;
  const shared = `$share/${opts.group}/${opts.topic}`;
  let client: MqttClient | undefined;
  let attempt = 0;
  const refusedLog = rateLimited();
  return {
    description: `${redactUrl(opts.url)}, ${shared}`,
    async start() {
      // A persistent session: while this writer is away, the broker keeps its share of QoS 1 telemetry.
      // A telemetry packet bigger than max_packet_size closes the connection before it is buffered.
      const c = connectBounded(
        opts.url,
        {
          clientId: opts.clientId,
          clean: false,
          keepalive: Math.max(1, Math.round(config.keepalive / 1000)),
          reconnectPeriod: Math.max(1, backoffDelay(attempt++, config.reconnect)),
          connectTimeout: 10_000,
          resubscribe: true,
          ...credentials(config),
        },
        config.max_packet_size,
        (err) =>
          refusedLog((notLogged) =>
            log.warn(
              { url: redactUrl(opts.url), size: err.size, max_packet_size: err.max, ...(notLogged ? { notLogged } : {}) },
              'MQTT broker sent the InfluxDB writer a packet bigger than mqtt.max_packet_size; connection closed, reconnecting',
            ),
          ),
      );
      client = c;
      let lastError: string | undefined;
      c.on('error', (err) => {
        lastError = err.message;
      });
      c.on('connect', (ack) => {
        attempt = 0;
        c.options.reconnectPeriod = Math.max(1, backoffDelay(attempt++, config.reconnect));
        const subscribed = () =>
          log.info(
            { url: redactUrl(opts.url), clientId: opts.clientId, topic: shared, sessionPresent: ack.sessionPresent },
            'InfluxDB writer subscribed to telemetry',
          );
        // The broker kept the subscription of a persistent session; otherwise subscribe (again).
        if (ack.sessionPresent) subscribed();
        else {
          c.subscribe(shared, { qos: 1 }, (err, granted) => {
            const refused = err?.message ?? (granted?.some((g) => g.qos === 128) ? 'subscription refused (SUBACK 0x80)' : undefined);
            if (refused) log.error({ topic: shared, err: refused }, 'Broker refused the telemetry subscription');
            else subscribed();
          });
        }
      });
      c.on('close', () => {
        if (attempt === 1)
          log.warn(
            { url: redactUrl(opts.url), reason: lastError ?? 'connection closed' },
            'InfluxDB writer lost the broker; reconnecting with backoff',
          );
        c.options.reconnectPeriod = Math.max(1, backoffDelay(attempt++, config.reconnect));
      });
      c.on('message', (topic, payload) => opts.onMessage(topic, payload));
    },
    async stop() {
      const c = client;
      client = undefined;
      if (!c) return;
      await endClient(c);
    },
  };
}
