// Every publish of the gateway's MQTT client goes through here, QoS 1: a message bigger than
// mqtt.max_packet_size is not sent (a broker would close the connection for it), but counted and logged.
import type { MqttClient } from 'mqtt';
import { rateLimited } from '../../drivers/common/log-budget.js';
import type { Logger } from '../log.js';
import { publishPacketSize } from '../../drivers/common/mqtt-packet-limit.js';

export type Done = (err?: Error) => void;

export interface PublisherOptions {
  maxPacketSize: number;
  log: Logger;
  /** Called for each message left out for its size. */
  oversized(): void;
}

export class Publisher {
  /** The client while the link runs; without one a publish goes nowhere. */
  client: MqttClient | undefined;
  /** Messages left out for their size. */
  oversized = 0;
  private readonly oversizedLog = rateLimited();

  constructor(private readonly opts: PublisherOptions) {}

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** Whether a message fits mqtt.max_packet_size; one that does not is counted and logged. */
  fits(topic: string, text: string): boolean {
    const size = publishPacketSize(topic, Buffer.byteLength(text), 1);
    const max = this.opts.maxPacketSize;
    if (size <= max) return true;
    const oversized = ++this.oversized;
    this.opts.oversized();
    this.oversizedLog((notLogged) =>
      this.opts.log.error(
        { topic, size, max_packet_size: max, oversized, ...(notLogged ? { notLogged } : {}) },
        'MQTT message bigger than mqtt.max_packet_size; not published (counted)',
      ),
    );
    return false;
  }

  /** `done` is called once the broker acknowledged it, or with the reason it was not sent. */
  text(topic: string, text: string, retain: boolean, done?: Done): void {
    if (!this.fits(topic, text)) return done?.(new Error('bigger than mqtt.max_packet_size'));
    if (!this.client) return done?.(new Error('the MQTT link is not running'));
    this.client.publish(topic, text, { qos: 1, retain }, (err) => done?.(err ?? undefined));
  }

  json(topic: string, payload: unknown, retain: boolean, done?: Done): void {
    this.text(topic, JSON.stringify(payload), retain, done);
  }
}
