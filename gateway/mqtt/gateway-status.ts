// The gateway's own status, retained on `gw/<site>/gateway/status`: `online`, or `degraded` with a
// reason, announced on each connection; `offline` said by the broker (the Last Will) when the
// connection is lost, and by the gateway itself when it stops (a clean disconnect sends no Last Will).
import type { IClientOptions } from 'mqtt';
import { GatewayError } from '../../config/errors.js';
import type { Publisher } from './publisher.js';
import type { StatusMessage } from './topics.js';

const LOST: StatusMessage = { state: 'offline', reason: 'connection lost' };

export class GatewayStatus {
  private degradedReason: string | undefined;
  /** Called once the next `online` status is acknowledged. */
  private announced: (() => void) | undefined;

  constructor(
    private readonly topic: string,
    private readonly publisher: Publisher,
  ) {}

  /** The Last Will the broker publishes when the connection is lost. */
  will(): NonNullable<IClientOptions['will']> {
    return { topic: this.topic, payload: Buffer.from(JSON.stringify(LOST)), qos: 1, retain: true };
  }

  /** Publishes the current status (on each connection). */
  announce(): void {
    this.publisher.json(this.topic, this.current(), true, () => {
      this.announced?.();
      this.announced = undefined;
    });
  }

  /** Resolves once an announcement is acknowledged; rejects after `ms` naming the broker. */
  acknowledged(ms: number, broker: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const message = `MQTT broker ${broker} did not accept a connection within ${ms} ms`;
      const timer = setTimeout(() => reject(new GatewayError('GW_ERR_COMPONENT_START', message)), ms);
      this.announced = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Degraded with a reason, or online again (undefined); told the broker at once when connected. */
  set(reason: string | undefined): void {
    if (reason === this.degradedReason) return;
    this.degradedReason = reason;
    if (this.publisher.connected) this.publisher.json(this.topic, this.current(), true);
  }

  /** Says `offline` (stopped) and waits for the acknowledgement, at most `ms`. */
  stopped(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.publisher.json(this.topic, { state: 'offline', reason: 'stopped', ts: Date.now() } satisfies StatusMessage, true, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private current(): StatusMessage {
    const reason = this.degradedReason;
    return reason === undefined ? { state: 'online', ts: Date.now() } : { state: 'degraded', reason, ts: Date.now() };
  }
}
