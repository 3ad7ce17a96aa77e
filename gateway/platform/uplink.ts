// The optional MQTT uplink: the same incident bodies to a central broker (QoS 1, persistent session),
// for platforms that take MQTT. Events come from the outbox and are marked done there on PUBACK, so a
// restart resends whatever the broker had not acknowledged. Each message carries the signature the
// HTTP POST carries, as MQTT v5 user properties (docs/platform-contract.md): a broker account is not
// enough to forge an incident. mqtts:// uses platform.ca, cert and key like https:// does.
import type { IClientOptions, MqttClient } from 'mqtt';
import { backoffDelay } from '../../drivers/common/backoff.js';
import type { PlatformSection } from '../../config/platform-schema.js';
import type { Logger } from '../log.js';
import { endClient, redactUrl } from '../mqtt/link.js';
import { connectBounded, DEFAULT_MAX_PACKET_SIZE } from '../../drivers/common/mqtt-packet-limit.js';
import { readPem } from '../pem.js';
import { rateLimited } from '../../drivers/common/log-budget.js';
import { headersFor, incidentBody } from './contract.js';
import type { Outbox } from './outbox.js';

const WINDOW = 100;
/** How long the central broker keeps the uplink's session (and its unacknowledged messages) after a disconnection: a week. */
const SESSION_EXPIRY_S = 7 * 24 * 3600;

export interface Uplink {
  start(): void;
  stop(): Promise<void>;
  notify(): void;
  stats(): { connected: boolean; published: number; inFlight: number };
}

export function createUplink(opts: {
  config: PlatformSection & { mqtt_url: string };
  gatewayId: string;
  site: string;
  outbox: Outbox;
  log: Logger;
  /** The central broker only acknowledges; a bigger packet from it closes the connection (mqtt.max_packet_size). */
  maxPacketSize?: number;
}): Uplink {
  const { config, outbox, log } = opts;
  const topic = config.mqtt_topic.replaceAll('{gateway}', opts.gatewayId).replaceAll('{site}', opts.site);
  const inFlight = new Set<number>();
  let client: MqttClient | undefined;
  let attempt = 0;
  let published = 0;
  let wasConnected = false;
  const refusedLog = rateLimited();
  // Read once, before connecting: a missing file is a start error, not a reconnect loop.
  const tls = tlsOptions(config);

  const pump = () => {
    const c = client;
    if (!c?.connected) return;
    for (const row of outbox.uplinkPending(WINDOW - inFlight.size, inFlight)) {
      inFlight.add(row.seq);
      const body = incidentBody(row.incident, row.seq);
      c.publish(topic, body, { qos: 1, properties: propertiesFor(config.secret, opts.gatewayId, body, row.eventId) }, (err) => {
        inFlight.delete(row.seq);
        // Acknowledged while stopping still counts: the outbox closes after the uplink.
        if (err) return;
        outbox.uplinked(row.seq);
        published++;
        pump();
      });
    }
  };

  return {
    start() {
      const c = connectBounded(
        config.mqtt_url,
        {
          clientId: `${opts.gatewayId}-uplink`,
          clean: false,
          // User properties are MQTT 5; a persistent session there needs an expiry (0 ends it with the connection).
          protocolVersion: 5,
          properties: { sessionExpiryInterval: SESSION_EXPIRY_S },
          reconnectPeriod: Math.max(1, backoffDelay(attempt++, config.reconnect)),
          connectTimeout: 10_000,
          ...tls,
        },
        opts.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE,
        (err) =>
          refusedLog((notLogged) =>
            log.warn(
              { url: redactUrl(config.mqtt_url), size: err.size, max_packet_size: err.max, ...(notLogged ? { notLogged } : {}) },
              'Uplink broker sent a packet bigger than mqtt.max_packet_size; connection closed, reconnecting',
            ),
          ),
      );
      client = c;
      c.on('connect', () => {
        attempt = 0;
        log.info(
          { url: redactUrl(config.mqtt_url), topic },
          wasConnected ? 'Uplink broker connection restored' : 'Uplink broker connected',
        );
        wasConnected = true;
        pump();
      });
      c.on('close', () => {
        // Messages in flight stay with mqtt.js, which resends them after the reconnect.
        c.options.reconnectPeriod = Math.max(1, backoffDelay(attempt++, config.reconnect));
      });
      c.on('error', (err) => {
        if (attempt <= 1)
          log.warn({ url: redactUrl(config.mqtt_url), err: err.message }, 'Uplink broker not reachable; retrying with backoff');
      });
    },
    async stop() {
      const c = client;
      client = undefined;
      if (!c) return;
      await endClient(c);
    },
    notify: pump,
    stats: () => ({ connected: client?.connected ?? false, published, inFlight: inFlight.size }),
  };
}

/**
 * The HTTP headers of docs/platform-contract.md as MQTT v5 properties: Content-Type as the content
 * type, the rest (Idempotency-Key, X-Gateway-Id, X-Gateway-Timestamp, X-Gateway-Signature) as user
 * properties of the same names. The signature covers timestamp + "." + payload, as over HTTP.
 */
export function propertiesFor(
  secret: string,
  gatewayId: string,
  body: string,
  idempotencyKey: string,
  now = Date.now(),
): NonNullable<IClientOptions['properties']> & { contentType: string; userProperties: Record<string, string> } {
  const { 'Content-Type': contentType, ...userProperties } = headersFor(secret, gatewayId, body, idempotencyKey, now);
  return { contentType: contentType!, userProperties };
}

/** platform.ca, cert and key for an mqtts:// or wss:// uplink (ignored by mqtt:// and ws://). */
function tlsOptions(config: PlatformSection): Pick<IClientOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized'> {
  // The server's certificate is always verified: against platform.ca, or the system CAs.
  return {
    ca: readPem(config.ca, 'platform CA'),
    cert: readPem(config.cert, 'platform client certificate'),
    key: readPem(config.key, 'platform client key'),
    rejectUnauthorized: true,
  };
}
