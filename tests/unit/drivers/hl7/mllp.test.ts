// MLLP framing: frames split across packets, several in one packet, line noise before VT skipped and
// counted, FS without its CR, a frame abandoned for a new VT or a timeout, an over-long frame refused
// with its head kept; and, for random streams cut anywhere, only whole frames that were sent come out
// and the receiver never holds more than one frame's bound.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CR, frame, FS, HEAD_BYTES, MllpReceiver, VT, type MllpEvent } from '../../../../drivers/hl7/mllp.js';

const LIMITS = { maxMessageSize: 1000, receiveTimeoutMs: 5000 };
const frames = (events: MllpEvent[]) => events.flatMap((e) => (e.kind === 'frame' ? [e.bytes.toString()] : []));

describe('MLLP receiver', () => {
  it('a frame split at every byte gives the message once', () => {
    const r = new MllpReceiver(LIMITS);
    const bytes = frame(Buffer.from('MSH|^~\\&|A\rOBX|1'));
    const out = [...bytes].flatMap((b) => r.receive(Buffer.from([b]), 0));
    expect(frames(out)).toEqual(['MSH|^~\\&|A\rOBX|1']);
    expect(r.garbage).toBe(0);
  });

  it('two frames in one packet, each in order; FS CR split from each other', () => {
    const r = new MllpReceiver(LIMITS);
    const both = Buffer.concat([frame(Buffer.from('one')), frame(Buffer.from('two'))]);
    expect(frames(r.receive(both, 0))).toEqual(['one', 'two']);
    const cut = frame(Buffer.from('three'));
    expect(frames(r.receive(cut.subarray(0, cut.length - 1), 0))).toEqual(['three']);
    // The CR that ends it arrives alone: it is no line noise.
    expect(r.receive(cut.subarray(cut.length - 1), 0)).toEqual([]);
    expect(r.garbage).toBe(0);
  });

  it('bytes before VT and between frames are skipped and counted; FS without CR ends a frame too', () => {
    const r = new MllpReceiver(LIMITS);
    const data = Buffer.concat([
      Buffer.from('noise'),
      Buffer.from([VT]),
      Buffer.from('a'),
      Buffer.from([FS]),
      Buffer.from('xy'),
      frame(Buffer.from('b')),
    ]);
    expect(frames(r.receive(data, 0))).toEqual(['a', 'b']);
    expect(r.garbage).toBe(7);
  });

  it('a new VT before FS abandons the frame begun; one that does not end in time is dropped', () => {
    const r = new MllpReceiver(LIMITS);
    const out = r.receive(Buffer.concat([Buffer.from([VT]), Buffer.from('half'), frame(Buffer.from('whole'))]), 0);
    expect(out.map((e) => e.kind)).toEqual(['aborted', 'frame']);
    expect(frames(out)).toEqual(['whole']);
    r.receive(Buffer.from([VT, 0x41]), 1000);
    expect(r.tick(5999)).toEqual([]);
    expect(r.tick(6000)).toEqual([expect.objectContaining({ kind: 'aborted', reason: 'the frame did not end within 5 s' })]);
    expect(r.receiving).toBe(false);
    expect(frames(r.receive(Buffer.from([0x42, FS, CR]), 6001))).toEqual([]);
  });

  it('a 512 KiB frame sent a byte a packet is held as its bytes, not half a million buffers (they took 60 MB of heap)', () => {
    const n = 1 << 19;
    const r = new MllpReceiver({ ...LIMITS, maxMessageSize: n });
    r.receive(Buffer.from([VT]), 0);
    const one = Buffer.from('A');
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < n; i++) r.receive(one, 0);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(25e6);
    expect(r.buffered).toBeLessThanOrEqual(n);
    const [e] = r.receive(Buffer.from([FS, CR]), 0);
    expect(e).toMatchObject({ kind: 'frame' });
    expect((e as Extract<MllpEvent, { kind: 'frame' }>).bytes).toEqual(Buffer.alloc(n, 'A'));
  }, 30_000);

  it('an over-long frame keeps only its head, is skipped to its end and reported; the next frame is taken', () => {
    const r = new MllpReceiver({ ...LIMITS, maxMessageSize: 10_000 });
    const big = Buffer.alloc(50_000, 0x41);
    big.write('MSH|^~\\&|A|||||||C-9|P|2.5.1', 0);
    let peak = 0;
    const out: MllpEvent[] = [];
    const data = Buffer.concat([frame(big), frame(Buffer.from('next'))]);
    for (let i = 0; i < data.length; i += 1000) {
      out.push(...r.receive(data.subarray(i, i + 1000), 0));
      peak = Math.max(peak, r.buffered);
    }
    expect(out.map((e) => e.kind)).toEqual(['oversize', 'frame']);
    const refused = out[0] as Extract<MllpEvent, { kind: 'oversize' }>;
    expect(refused.size).toBe(50_000);
    expect(refused.head.length).toBe(HEAD_BYTES);
    expect(refused.head.toString('latin1', 0, 10)).toBe('MSH|^~\\&|A');
    expect(peak).toBeLessThanOrEqual(10_000);
    expect(frames(out)).toEqual(['next']);
  });

  it('random messages cut into random pieces, with noise between frames: exactly the messages come out, in order, memory bounded', () => {
    const message = fc
      .uint8Array({ minLength: 0, maxLength: 300 })
      .map((a) => Buffer.from(a.map((b) => (b === VT || b === FS ? 0x20 : b))));
    const noise = fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a.map((b) => (b === VT ? 0x20 : b))));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(noise, message), { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1 }),
        (parts, cuts) => {
          const r = new MllpReceiver(LIMITS);
          // A noise byte right after FS that is a CR is part of that frame's end, not noise.
          const stream = Buffer.concat(parts.flatMap(([n, m]) => [n, frame(m)]));
          const out: MllpEvent[] = [];
          let k = 0;
          for (let i = 0; i < stream.length;) {
            const step = cuts[k++ % cuts.length]!;
            out.push(...r.receive(stream.subarray(i, i + step), 0));
            expect(r.buffered).toBeLessThanOrEqual(LIMITS.maxMessageSize);
            i += step;
          }
          expect(out.map((e) => (e.kind === 'frame' ? e.bytes.toString('hex') : e.kind))).toEqual(parts.map(([, m]) => m.toString('hex')));
        },
      ),
      { numRuns: 300 },
    );
  });
});
