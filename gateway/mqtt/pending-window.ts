// Telemetry to the embedded broker: published at once, held by the MQTT client until acknowledged,
// and at most max_pending of them at a time. A broker that stops acknowledging makes new telemetry
// drop (counted, one warning per episode), never the drivers wait or the memory grow.
import type { Logger } from '../log.js';
import type { Publisher } from './publisher.js';

export interface PendingWindowOptions {
  maxPending: number;
  publisher: Publisher;
  log: Logger;
  delivered(): void;
  dropped(): void;
}

export class PendingWindow {
  /** Telemetry messages published and acknowledged by the broker. */
  delivered = 0;
  /** Published and not yet acknowledged. */
  pending = 0;
  /** Characters of those, held by the MQTT client meanwhile. */
  pendingChars = 0;
  /** Dropped because max_pending were awaiting acknowledgement. */
  dropped = 0;
  /** Messages dropped in the current episode; 0 when none is going on. */
  private episode = 0;

  constructor(private readonly opts: PendingWindowOptions) {}

  /** Publishes a message as JSON, or drops it (made into text only when it goes). */
  publish(topic: string, message: unknown): void {
    const { maxPending, log } = this.opts;
    if (this.pending >= maxPending) return this.drop();
    if (this.episode > 0 && this.pending < maxPending / 2) {
      log.warn({ dropped: this.episode }, 'MQTT broker caught up; telemetry messages were dropped meanwhile');
      this.episode = 0;
    }
    const text = JSON.stringify(message);
    this.pending++;
    this.pendingChars += text.length;
    this.opts.publisher.text(topic, text, false, (err) => {
      this.pending--;
      this.pendingChars -= text.length;
      if (err) return;
      this.delivered++;
      this.opts.delivered();
    });
  }

  private drop(): void {
    this.dropped++;
    this.opts.dropped();
    if (this.episode++ === 0)
      this.opts.log.warn(
        { pending: this.pending, max_pending: this.opts.maxPending },
        'MQTT broker is not acknowledging: dropping new telemetry until it catches up',
      );
  }
}
