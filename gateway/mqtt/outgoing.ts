// The disk-backed outgoing queue for telemetry to an external broker. A message the broker has not
// acknowledged within one commit interval is written to a spool (SQLite, WAL) and stays there until its
// PUBACK arrives, across connection losses and restarts. While the broker answers, messages go out at
// once and rarely touch the disk; while it is away, everything waits on disk, bounded in bytes (the
// oldest go first, counted), and drains in order when it returns.
//
// mqtt.js keeps unacknowledged QoS 1 messages in memory and, after a reconnect, resends them one at a
// time. The queue takes its own messages back from mqtt.js when a connection closes (they are on disk
// by then) and sends them again itself, many in flight, in their original order.
import type { MqttClient } from 'mqtt';
import { Spool, type SpoolChunk } from '../spool.js';
import type { Logger } from '../log.js';

const COMMIT_MS = 100;
const COMMIT_MESSAGES = 1000;

export interface OutgoingQueueOptions {
  file: string;
  maxBytes: number;
  /** Messages sent and not yet acknowledged, at most. */
  window: number;
  log: Logger;
  onDrop?: (messages: number) => void;
  onDelivered?: () => void;
}

export interface OutgoingQueueStats {
  /** Messages on disk waiting for the broker (including those sent and not yet acknowledged). */
  queued: number;
  queuedBytes: number;
  /** When the oldest message on disk was queued (ms), or undefined. */
  oldestQueuedAt: number | undefined;
  /** Messages sent and awaiting the broker's acknowledgement. */
  inFlight: number;
  delivered: number;
  /** Messages dropped because the queue reached its size bound. */
  dropped: number;
}

interface Message {
  topic: string;
  payload: string;
  sent: boolean;
  settled: boolean;
  failed: boolean;
  /** The disk chunk holding this message once it has been committed while in flight. */
  chunk?: ChunkInFlight;
}

interface ChunkInFlight {
  chunk: SpoolChunk;
  open: number;
  failed: boolean;
}

type Callback = (err?: Error) => void;

export class OutgoingQueue {
  private readonly spool: Spool;
  private client: MqttClient | undefined;
  private staged: Message[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Staged messages wait behind one that could not be sent: order is kept. */
  private stagedWaiting = false;
  /** The spool holds chunks that nobody is sending. */
  private backlog: boolean;
  private inFlight = 0;
  private delivered = 0;
  private closed = false;
  private pumping = false;
  private final: OutgoingQueueStats | undefined;
  /** Callbacks of the messages this queue gave to mqtt.js, to take them back when a connection closes. */
  private readonly ours = new WeakSet<Callback>();

  constructor(private readonly opts: OutgoingQueueOptions) {
    this.spool = new Spool({
      file: opts.file,
      maxBytes: opts.maxBytes,
      log: opts.log,
      onDrop: opts.onDrop,
      messages: {
        full: 'MQTT outgoing queue is full: dropping the oldest telemetry until the broker takes messages again',
        room: 'MQTT outgoing queue has room again; telemetry messages were dropped meanwhile',
      },
    });
    this.backlog = this.spool.lineCount > 0;
    if (this.backlog) {
      const held = this.spool.stats();
      opts.log.info(
        { messages: held.lines, bytes: held.bytes, oldest: new Date(held.oldestAt!).toISOString() },
        'MQTT outgoing queue holds telemetry from before; it goes out once the broker answers',
      );
    }
  }

  /** The client to publish with; called again for each new client. */
  attach(client: MqttClient): void {
    this.client = client;
  }

  push(topic: string, payload: string): void {
    if (this.closed) return;
    const message: Message = { topic, payload, sent: false, settled: false, failed: false };
    this.staged.push(message);
    if (!this.stagedWaiting && !this.backlog && this.client?.connected && this.inFlight < this.opts.window) this.send(message);
    else this.stagedWaiting = true;
    if (this.staged.length >= COMMIT_MESSAGES) this.commit();
    else this.timer ??= setTimeout(() => this.commit(), COMMIT_MS);
  }

  /** The connection is up: send what waits on disk. */
  connected(): void {
    this.pump();
  }

  /** The client is being closed: no new sends; messages in flight may still be acknowledged. */
  detach(): void {
    this.client = undefined;
  }

  /**
   * The connection closed: take this queue's messages back from mqtt.js (their callbacks fail, their
   * chunks become a backlog again) so that they are resent from disk, in parallel, after the reconnect.
   */
  disconnected(): void {
    const client = this.client;
    if (!client) return;
    for (const [id, entry] of Object.entries(client.outgoing)) {
      if (this.ours.has(entry.cb as Callback)) client.removeOutgoingMessage(Number(id));
    }
  }

  /** Writes what is staged; what the broker has not acknowledged stays on disk for the next start. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.writeStaged();
    this.final = this.stats();
    this.spool.close();
  }

  stats(): OutgoingQueueStats {
    if (this.final) return this.final;
    const s = this.spool.stats();
    return {
      queued: s.lines,
      queuedBytes: s.bytes,
      oldestQueuedAt: s.oldestAt,
      inFlight: this.inFlight,
      delivered: this.delivered,
      dropped: s.droppedLines,
    };
  }

  private send(message: Message): void {
    message.sent = true;
    this.publish(message.topic, message.payload, (err) => {
      message.settled = true;
      message.failed = err !== undefined;
      if (message.chunk) this.settle(message.chunk, !message.failed);
    });
  }

  private publish(topic: string, payload: string, done: Callback): void {
    this.inFlight++;
    const cb: Callback = (err) => {
      this.inFlight--;
      done(err ?? undefined);
      // A failed message waits for the next connection: retrying at once could spin on a closing client.
      if (err) return;
      this.delivered++;
      this.opts.onDelivered?.();
      this.pump();
    };
    this.ours.add(cb);
    this.client!.publish(topic, payload, { qos: 1 }, cb);
  }

  private commit(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.writeStaged();
    this.pump();
  }

  private writeStaged(): void {
    const batch = this.staged;
    this.staged = [];
    this.stagedWaiting = false;
    if (batch.length === 0) return;
    // Sent and not yet acknowledged: on disk, claimed by mqtt.js's callbacks. Never sent, or failed: a backlog.
    const inFlight = batch.filter((m) => m.sent && !m.settled);
    const unsent = batch.filter((m) => !m.sent || m.failed);
    if (inFlight.length > 0) {
      const state: ChunkInFlight = { chunk: this.spool.appendClaimed(inFlight.map(line)), open: inFlight.length, failed: false };
      for (const m of inFlight) m.chunk = state;
    }
    if (unsent.length > 0) {
      this.spool.append(unsent.map(line));
      this.backlog = true;
    }
  }

  private settle(state: ChunkInFlight, ok: boolean): void {
    if (!ok) state.failed = true;
    if (--state.open > 0 || this.closed) return;
    if (state.failed) {
      this.spool.release([state.chunk]);
      this.backlog = true;
    } else {
      this.spool.remove([state.chunk]);
    }
  }

  /** Sends the oldest waiting chunks while the window has room. */
  private pump(): void {
    if (this.closed || !this.backlog || this.pumping) return;
    this.pumping = true;
    try {
      this.drain();
    } finally {
      this.pumping = false;
    }
  }

  private drain(): void {
    while (this.client?.connected && this.inFlight < this.opts.window) {
      const [chunk] = this.spool.takeFrom(0, 1);
      if (!chunk) {
        this.backlog = false;
        return;
      }
      const messages = chunk.text.split('\n');
      const state: ChunkInFlight = { chunk, open: messages.length, failed: false };
      for (const text of messages) {
        const tab = text.indexOf('\t');
        this.publish(text.slice(0, tab), text.slice(tab + 1), (err) => this.settle(state, err === undefined));
      }
      // Refused at once (a client closing): the chunk is back in the spool; take it again next connection.
      if (state.failed) return;
    }
  }
}

/** One message as a spool line: topics have no whitespace and JSON payloads no raw line break. */
function line(m: Message): string {
  return `${m.topic}\t${m.payload}`;
}
