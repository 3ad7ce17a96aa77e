// A bound on MQTT packet size, enforced before a packet is buffered. mqtt-packet (the parser under
// both aedes and mqtt.js) reads the length in a packet's fixed header and then buffers until that
// many bytes have come: up to 256 MiB per connection, from any peer that says so. The framing here
// reads the same headers between the socket and the parser and closes the connection as soon as a
// header announces more than the limit: the parser never sees that packet, and at most one read's
// worth of it is ever held.
//
// The other way (towards the peer) a broker must not wait for one client: aedes waits for the
// client stream's 'drain' whenever a write returns false, and while it waits it holds every message
// published meanwhile, for every subscriber. With a write bound the stream never asks aedes to
// wait; it queues what the peer has not read yet and closes the connection once that queue passes
// the bound (SlowConsumerError).
import { Duplex } from 'node:stream';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

/** The default of `mqtt.max_packet_size` (the site schema says why). */
export const DEFAULT_MAX_PACKET_SIZE = 1024 * 1024;

export class PacketTooLargeError extends Error {
  constructor(
    /** Bytes the packet's header announced (fixed header included); undefined when the length itself was malformed. */
    readonly size: number | undefined,
    readonly max: number,
  ) {
    super(size === undefined ? 'malformed MQTT packet length' : `MQTT packet of ${size} bytes, at most ${max}`);
    this.name = 'PacketTooLargeError';
  }

  /** mqtt.js passes on stream errors that have a code (as its 'error' event); others it drops. */
  readonly code = 'GW_MQTT_PACKET_TOO_LARGE';
}

/** The peer left more than `max` bytes unread: its connection is closed. */
export class SlowConsumerError extends Error {
  constructor(
    /** Bytes queued for the peer (beyond what the kernel holds) when it was closed. */
    readonly queued: number,
    readonly max: number,
  ) {
    super(`MQTT peer left ${queued} bytes unread, at most ${max}`);
    this.name = 'SlowConsumerError';
  }

  readonly code = 'GW_MQTT_SLOW_CONSUMER';
}

/** For a broker's side of a connection: what may wait for the peer to read it. */
export interface WriteBound {
  /** Bytes written but not yet taken by the kernel; one more and the connection is closed. */
  maxQueued: number;
  onSlow: (err: SlowConsumerError) => void;
}

/** Follows MQTT framing across chunks: how many bytes of each chunk belong to packets within the limit. */
class Framing {
  private state: 'type' | 'length' | 'body' | 'refused' = 'type';
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private remaining = 0;

  constructor(private readonly max: number) {}

  /** The bytes of `chunk` that may pass, and the refusal when a header in it announces too much. */
  take(chunk: Buffer): { pass: number; refused?: PacketTooLargeError } {
    let i = 0;
    let packetStart = 0;
    while (i < chunk.length) {
      if (this.state === 'refused') return { pass: 0 };
      if (this.state === 'body') {
        const n = Math.min(this.remaining, chunk.length - i);
        this.remaining -= n;
        i += n;
        if (this.remaining === 0) this.state = 'type';
      } else if (this.state === 'type') {
        packetStart = i++;
        this.state = 'length';
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
      } else {
        const byte = chunk[i++]!;
        this.length += (byte & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        this.lengthBytes++;
        if (byte & 0x80) {
          // The remaining length has at most 4 bytes (MQTT 3.1.1 2.2.3, 5.0 1.5.5).
          if (this.lengthBytes === 4) return this.refuse(packetStart, undefined);
          continue;
        }
        const size = 1 + this.lengthBytes + this.length;
        if (size > this.max) return this.refuse(packetStart, size);
        if (this.length === 0) this.state = 'type';
        else {
          this.remaining = this.length;
          this.state = 'body';
        }
      }
    }
    return { pass: chunk.length };
  }

  /** Nothing from the refused packet's first byte on passes (a header split across chunks may have passed in part). */
  private refuse(packetStart: number, size: number | undefined) {
    this.state = 'refused';
    return { pass: packetStart, refused: new PacketTooLargeError(size, this.max) };
  }
}

/**
 * The stream its reader (aedes, mqtt.js) gets instead of `inner`: the same bytes both ways, except
 * that the bytes of a packet whose header announces more than `max` never reach the reader; the
 * connection is closed there, with a PacketTooLargeError.
 *
 * Writes pass on `inner`'s backpressure, unless `writeBound` is given: then a write never returns
 * false (nor delays its callback), and once more than `writeBound.maxQueued` bytes wait in `inner`
 * the connection is closed with a SlowConsumerError.
 */
export function boundedStream(inner: Duplex, max: number, onRefused: (err: PacketTooLargeError) => void, writeBound?: WriteBound): Duplex {
  const framing = new Framing(max);
  type Done = (err?: Error | null) => void;
  let slow: SlowConsumerError | undefined;
  const write = writeBound
    ? (chunk: Buffer, encoding: BufferEncoding, done: Done) => {
        // Chunks the writer had corked still come here after the first error: dropped, told once.
        if (slow) return done(slow);
        inner.write(chunk, encoding);
        if (inner.writableLength <= writeBound.maxQueued) return done();
        slow = new SlowConsumerError(inner.writableLength, writeBound.maxQueued);
        writeBound.onSlow(slow);
        done(slow); // destroys both streams: what was queued is dropped
      }
    : (chunk: Buffer, encoding: BufferEncoding, done: Done) => void inner.write(chunk, encoding, done);
  const outer = new Duplex({
    // Bytes only wait here while the writer has the stream corked (mqtt-packet does, for one tick):
    // write() must not return false for them, or aedes would wait for 'drain'.
    ...(writeBound ? { writableHighWaterMark: Number.MAX_SAFE_INTEGER } : {}),
    read: () => void inner.resume(),
    write,
    final: (done: (err?: Error | null) => void) => void inner.end(done),
    destroy: (err: Error | null, done: (err: Error | null) => void) => {
      inner.destroy();
      done(err);
    },
  });
  inner.on('data', (chunk: Buffer) => {
    const { pass, refused } = framing.take(chunk);
    if (pass > 0 && !outer.push(pass === chunk.length ? chunk : chunk.subarray(0, pass))) inner.pause();
    if (refused) {
      onRefused(refused);
      outer.destroy(refused);
    }
  });
  inner.on('end', () => outer.push(null));
  inner.on('error', (err) => outer.destroy(err));
  inner.on('close', () => outer.destroy());
  return outer;
}

/** Bytes of a PUBLISH packet with this topic and payload (MQTT 3.1.1, no properties). */
export function publishPacketSize(topic: string, payloadBytes: number, qos: 0 | 1 | 2): number {
  const remaining = 2 + Buffer.byteLength(topic) + (qos > 0 ? 2 : 0) + payloadBytes;
  return 1 + (remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4) + remaining;
}

/**
 * mqtt.connect with every stream it opens (the first and each reconnection) bounded by
 * boundedStream: a broker cannot make the client buffer more than `maxPacketSize`.
 */
export function connectBounded(
  url: string,
  options: IClientOptions,
  maxPacketSize: number,
  onRefused: (err: PacketTooLargeError) => void,
): MqttClient {
  const client = mqtt.connect(url, { ...options, manualConnect: true });
  // mqtt.js builds each connection's stream with this (private, but the one seam between URL and
  // parser); it stays the same function across reconnections.
  const seam = client as unknown as { streamBuilder: (c: MqttClient) => Duplex };
  const build = seam.streamBuilder;
  seam.streamBuilder = (c) => boundedStream(build(c), maxPacketSize, onRefused);
  client.connect();
  return client;
}
