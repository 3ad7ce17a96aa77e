// The MQTT framing that refuses an oversized packet from its header, before its body is buffered.
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import {
  boundedStream,
  type PacketTooLargeError,
  publishPacketSize,
  type SlowConsumerError,
} from '../../../drivers/common/mqtt-packet-limit.js';

const publish = (payloadBytes: number, topic = 'gw/s/B-1/telemetry') =>
  mqttPacket.generate({
    cmd: 'publish',
    topic,
    payload: Buffer.alloc(payloadBytes, 0x61),
    qos: 1,
    messageId: 7,
    retain: false,
    dup: false,
  });
const ping = () => mqttPacket.generate({ cmd: 'pingreq' });

/** Feeds the bytes in the given chunk sizes; what the guard did, and the bytes its reader got. */
async function feed(bytes: Buffer, max: number, chunkSizes: number[] = [bytes.length]) {
  const inner = new PassThrough();
  const refused: PacketTooLargeError[] = [];
  const outer = boundedStream(inner, max, (e) => refused.push(e));
  const read: Buffer[] = [];
  outer.on('data', (c: Buffer) => read.push(c));
  outer.on('error', () => {});
  let at = 0;
  for (let k = 0; at < bytes.length && !inner.destroyed; k++) {
    const n = chunkSizes[k % chunkSizes.length]!;
    inner.write(bytes.subarray(at, at + n));
    at += n;
    await new Promise((r) => setImmediate(r));
  }
  return { refused, destroyed: inner.destroyed && outer.destroyed, read: Buffer.concat(read), fed: Math.min(at, bytes.length) };
}

describe('MQTT packet size limit', () => {
  it('lets packets up to the limit through, however the bytes are split', async () => {
    const bytes = Buffer.concat([publish(100), ping(), publish(1000), publish(0)]);
    const max = publish(1000).length;
    for (const split of [[1], [2], [3], [7], [1000], [bytes.length]]) {
      const r = await feed(bytes, max, split);
      expect(r.refused).toEqual([]);
      expect(r.destroyed).toBe(false);
      expect(r.read.equals(bytes)).toBe(true);
    }
  });

  it('closes the stream at the header of a packet one byte over, before its body arrives; its reader never sees it', async () => {
    const ok = publish(100);
    const over = publish(1000);
    const r = await feed(Buffer.concat([ok, over]), over.length - 1, [ok.length + 5]);
    expect(r.refused.map((e) => [e.size, e.max])).toEqual([[over.length, over.length - 1]]);
    expect(r.destroyed).toBe(true);
    // The first chunk held the whole first packet and the next header; nothing of the body after it.
    expect(r.fed).toBe(ok.length + 5);
    expect(r.read.equals(ok)).toBe(true);
  });

  it('keeps a whole oversized packet that came in one chunk from the reader, and the packets before it pass', async () => {
    const ok = publish(10);
    const r = await feed(Buffer.concat([ok, publish(5000), publish(10)]), 1000);
    expect(r.refused).toHaveLength(1);
    expect(r.read.equals(ok)).toBe(true);
  });

  it('refuses a header that announces 256 MiB from its 5 bytes', async () => {
    const header = Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]);
    const r = await feed(header, 1024 * 1024, [1]);
    expect(r.refused[0]!.message).toBe(`MQTT packet of ${1 + 4 + 268_435_455} bytes, at most 1048576`);
    expect(r.destroyed).toBe(true);
  });

  it('refuses a remaining length longer than 4 bytes', async () => {
    const r = await feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), 1024);
    expect(r.refused[0]!.size).toBeUndefined();
    expect(r.destroyed).toBe(true);
    expect(r.read.length).toBe(0);
  });

  it('computes the size of a PUBLISH packet as mqtt-packet writes it', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 50 }),
        fc.integer({ min: 0, max: 3_000_000 }),
        fc.constantFrom(0 as const, 1 as const),
        (topic, n, qos) => {
          const generated = mqttPacket.generate({
            cmd: 'publish',
            topic,
            payload: Buffer.alloc(n),
            qos,
            messageId: qos ? 1 : undefined,
            retain: false,
            dup: false,
          } as mqttPacket.IPublishPacket);
          expect(publishPacketSize(topic, n, qos)).toBe(generated.length);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('frames random streams of valid packets exactly: refuses just the first one over the limit', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 20, max: 20_100 }),
        fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 4 }),
        async (sizes, max, split) => {
          const packets = sizes.map((n) => publish(n));
          const firstOver = packets.findIndex((p) => p.length > max);
          const r = await feed(Buffer.concat(packets), max, split);
          if (firstOver < 0) expect(r.refused).toEqual([]);
          else expect(r.refused.map((e) => e.size)).toEqual([packets[firstOver]!.length]);
          // The reader gets the packets before the refused one; of that one at most the bytes of its
          // fixed header that came in earlier chunks (never a whole packet it could act on).
          const allowed = Buffer.concat(firstOver < 0 ? packets : packets.slice(0, firstOver));
          expect(r.read.subarray(0, allowed.length).equals(allowed)).toBe(true);
          expect(r.read.length - allowed.length).toBeLessThanOrEqual(firstOver < 0 ? 0 : 4);
        },
      ),
      { numRuns: 100 },
    );
  });
  describe('write bound (the broker side)', () => {
    /** An inner stream nobody reads: what is written to it stays queued. */
    const unread = () => new PassThrough({ highWaterMark: 1024 });

    it('never asks the writer (aedes, through mqtt-packet, which corks) to wait, and closes the connection once more than maxQueued bytes wait for the peer', async () => {
      const inner = unread();
      const slow: SlowConsumerError[] = [];
      const outer = boundedStream(inner, 1 << 20, () => {}, { maxQueued: 64 * 1024, onSlow: (e) => slow.push(e) });
      outer.on('error', () => {});
      // Bigger than a Writable's default highWaterMark (16 KiB), as a telemetry PUBLISH may be.
      const packet = {
        cmd: 'publish',
        topic: 'gw/s/B-1/telemetry',
        payload: Buffer.alloc(20 * 1024),
        qos: 0,
        retain: false,
        dup: false,
      } as const;
      const returned: boolean[] = [];
      for (let k = 0; k < 3; k++) returned.push(mqttPacket.writeToStream(packet, outer));
      await new Promise((r) => setImmediate(r));
      expect(returned).toEqual([true, true, true]);
      expect(outer.writableNeedDrain).toBe(false);
      expect(slow).toEqual([]);
      expect(outer.destroyed).toBe(false);

      for (let k = 0; k < 3; k++) mqttPacket.writeToStream(packet, outer);
      await new Promise((r) => setImmediate(r));
      expect(slow).toHaveLength(1);
      expect(slow[0]!.max).toBe(64 * 1024);
      expect(slow[0]!.queued).toBeGreaterThan(64 * 1024);
      expect(slow[0]!.code).toBe('GW_MQTT_SLOW_CONSUMER');
      expect(outer.destroyed && inner.destroyed).toBe(true);
    });

    it("without it, the inner stream's backpressure reaches the writer (the gateway's own clients)", () => {
      const outer = boundedStream(unread(), 1 << 20, () => {});
      expect(outer.write(Buffer.alloc(64 * 1024))).toBe(false);
    });
  });
});
