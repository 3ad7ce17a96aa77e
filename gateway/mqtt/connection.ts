// The MQTT client's connection: opened with the site's credentials and a bound on what the broker may
// send, reconnected by mqtt.js with the configured backoff, and reported in the log once per outage.
import type { IClientOptions, MqttClient } from 'mqtt';
import type { MqttSection } from '../../config/schema.js';
import { backoffDelay } from '../../drivers/common/backoff.js';
import { rateLimited } from '../../drivers/common/log-budget.js';
import type { Logger } from '../log.js';
import { readPem } from '../pem.js';
import { redactUrl } from '../redact.js';
import { connectBounded } from '../../drivers/common/mqtt-packet-limit.js';

export const STOP_FLUSH_MS = 500;

export interface ConnectionOptions {
  config: MqttSection;
  clientId: string;
  /** A persistent session (external broker with an outgoing queue): what it holds survives an outage. */
  persistent: boolean;
  will: NonNullable<IClientOptions['will']>;
  log: Logger;
  /** Each time a connection is up, the first and every one after a loss. */
  connected(): void;
  /** Each time it is lost (not when stopped). */
  lost(): void;
}

/** The last client error, and the reason last warned about. */
interface Outage {
  lastError: string | undefined;
  reported: string | undefined;
}

export class Connection {
  private attempt = 0;
  private wasConnected = false;
  private stopping = false;
  private readonly refusedLog = rateLimited();

  constructor(private readonly opts: ConnectionOptions) {}

  /** Connects (mqtt.js goes on reconnecting by itself); throws when a TLS file cannot be read. */
  open(url: string): MqttClient {
    const { config, clientId } = this.opts;
    const options: IClientOptions = {
      clientId,
      keepalive: Math.max(1, Math.round(config.keepalive / 1000)),
      clean: !this.opts.persistent,
      reconnectPeriod: Math.max(1, backoffDelay(this.attempt++, config.reconnect)),
      connectTimeout: 10_000,
      ...credentials(config),
      will: this.opts.will,
    };
    const c = connectBounded(url, options, config.max_packet_size, (err) =>
      this.refusedLog((notLogged) =>
        this.opts.log.warn(
          { url: redactUrl(url), size: err.size, max_packet_size: err.max, ...(notLogged ? { notLogged } : {}) },
          'MQTT broker sent a packet bigger than mqtt.max_packet_size; connection closed, reconnecting',
        ),
      ),
    );
    this.watch(c, url);
    return c;
  }

  /** Ends the client: no more reconnecting, nor reports of the close. */
  async end(c: MqttClient): Promise<void> {
    this.stopping = true;
    await endClient(c);
  }

  private watch(c: MqttClient, url: string): void {
    // One warning per outage, and another only when the reason changes (refused, bad password, TLS...).
    const outage: Outage = { lastError: undefined, reported: undefined };
    c.on('connect', () => this.up(c, url));
    c.on('error', (err) => {
      outage.lastError = err.message;
      this.opts.log.debug({ err: err.message, url: redactUrl(url) }, 'MQTT client error');
    });
    c.on('close', () => this.down(c, url, outage));
  }

  private up(c: MqttClient, url: string): void {
    const { log } = this.opts;
    this.attempt = 0;
    this.nextDelay(c);
    if (this.wasConnected) log.info({ url: redactUrl(url) }, 'MQTT connection restored');
    else log.info({ url: redactUrl(url), clientId: this.opts.clientId }, 'MQTT connected');
    this.wasConnected = true;
    this.opts.connected();
  }

  private down(c: MqttClient, url: string, outage: Outage): void {
    if (this.stopping) return;
    this.opts.lost();
    const reason = outage.lastError ?? 'connection closed';
    outage.lastError = undefined;
    if (this.attempt === 1 || reason !== outage.reported) {
      const lostNow = this.wasConnected && this.attempt === 1;
      this.opts.log.warn(
        { url: redactUrl(url), reason },
        lostNow ? 'MQTT connection lost; reconnecting with backoff' : 'MQTT broker not reachable; retrying with backoff',
      );
      outage.reported = reason;
    }
    this.nextDelay(c);
  }

  // mqtt.js reconnects by itself, and only its own reconnect replays the QoS 1 messages it holds; it
  // reads reconnectPeriod when a connection closes, so each close sets the wait for the next one.
  private nextDelay(c: MqttClient): void {
    c.options.reconnectPeriod = Math.max(1, backoffDelay(this.attempt++, this.opts.config.reconnect));
  }
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
