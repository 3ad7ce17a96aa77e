// The Modbus frame layer under random and mutated answers: never a throw, never a value that was not
// in the frame, and every refusal says why. Frames that once got through are kept in corpus/.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AREAS, isBitArea } from '../../../../drivers/modbus/address.js';
import { BYTE_ORDERS, decode, encode, REGISTER_COUNT, TYPES } from '../../../../drivers/modbus/codec.js';
import { compilePoint, pointValue } from '../../../../drivers/modbus/points.js';
import {
  checkReadAnswer,
  crc16,
  expectedByteCount,
  FC,
  FramingError,
  MAX_RTU_FRAME,
  readAnswerPdu,
  type ReadRequest,
  rtuAnswerIn,
  rtuFrame,
  tcpFrame,
  TcpDeframer,
} from '../../../../drivers/modbus/protocol.js';

const request = fc
  .record({ unit: fc.integer({ min: 0, max: 255 }), area: fc.constantFrom(...AREAS), start: fc.integer({ min: 0, max: 60000 }) })
  .chain((r) => fc.integer({ min: 1, max: isBitArea(r.area) ? 2000 : 125 }).map((count): ReadRequest => ({ ...r, count })));

/** A request and the values its device holds. */
const exchange = request.chain((req) =>
  fc
    .array(fc.integer({ min: 0, max: isBitArea(req.area) ? 1 : 0xffff }), { minLength: req.count, maxLength: req.count })
    .map((values) => ({ req, values })),
);

/** Ways a peer spoils an answer PDU. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('byteCount' as const), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('function' as const), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('random' as const), bytes: fc.uint8Array({ minLength: 0, maxLength: 260 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(pdu: Buffer, m: Mutation): Buffer {
  const out = Buffer.from(pdu);
  switch (m.kind) {
    case 'flip':
      out[m.at % out.length] = out[m.at % out.length]! ^ (1 << m.bit);
      return out;
    case 'truncate':
      return out.subarray(0, m.at % out.length);
    case 'extend':
      return Buffer.concat([out, m.bytes]);
    case 'byteCount':
      out[1] = m.value;
      return out;
    case 'function':
      out[0] = m.value;
      return out;
    case 'random':
      return Buffer.from(m.bytes);
  }
}

/** The values that the frame itself holds, read independently of protocol.ts. */
function valuesIn(pdu: Uint8Array, req: ReadRequest): number[] {
  return Array.from({ length: req.count }, (_, i) =>
    isBitArea(req.area) ? (pdu[2 + (i >> 3)]! >> (i & 7)) & 1 : (pdu[2 + 2 * i]! << 8) | pdu[3 + 2 * i]!,
  );
}

describe('checkReadAnswer', () => {
  it('takes a correct answer exactly', () => {
    fc.assert(
      fc.property(exchange, ({ req, values }) => {
        expect(checkReadAnswer(req, req.unit, readAnswerPdu(FC[req.area], req.area, values))).toEqual({ ok: true, values });
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on a spoiled answer, and a value it gives is one the frame holds, of the size asked', () => {
    fc.assert(
      fc.property(exchange, mutation, fc.integer({ min: 0, max: 255 }), ({ req, values }, m, unit) => {
        const pdu = mutate(readAnswerPdu(FC[req.area], req.area, values), m);
        const check = checkReadAnswer(req, unit, pdu);
        if (check.ok) {
          expect(unit).toBe(req.unit);
          expect(pdu[0]).toBe(FC[req.area]);
          expect(pdu[1]).toBe(expectedByteCount(req.area, req.count));
          expect(pdu.length).toBe(2 + expectedByteCount(req.area, req.count));
          expect(check.values).toEqual(valuesIn(pdu, req));
        } else {
          expect(check.reason).toMatch(
            /^(unit id \d+, expected \d+|empty answer|exception answer of \d+ bytes, expected 2|exception \d+: .+|function code \d+, expected \d|answer without a byte count|byte count \d+, expected \d+|\d+ data bytes, byte count says \d+)$/,
          );
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('every type and byte order, through a frame', () => {
  it('a point reads back the value the device holds, or is bad; never another value, never a throw', () => {
    const point = fc.record({
      type: fc.constantFrom(...TYPES.filter((t) => t !== 'bool' && t !== 'string')),
      order: fc.constantFrom(...BYTE_ORDERS),
      at: fc.integer({ min: 0, max: 40 }),
    });
    fc.assert(
      fc.property(point, fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.option(mutation, { freq: 2 }), ({ type, order, at }, raw, m) => {
        const words = REGISTER_COUNT[type];
        const held = Array.from({ length: words }, (_, i) => (raw[2 * i]! << 8) | raw[2 * i + 1]!);
        const registers = Array.from({ length: 50 }, (_, i) => (i >= at && i < at + words ? held[i - at]! : 0xabcd));
        const req: ReadRequest = { unit: 1, area: 'hr', start: 100, count: 50 };
        const pdu = readAnswerPdu(3, 'hr', registers);
        const check = checkReadAnswer(req, 1, m ? mutate(pdu, m) : pdu);
        if (!check.ok) return;
        const p = compilePoint({ name: 'p', address: `hr:${100 + at}`, type, byte_order: order }, 'ABCD');
        const got = pointValue(p, check.values, req.start);
        const truth = decode(check.values.slice(at, at + words), type, order);
        if (got.bad) expect(got.bad).toMatch(/^not a number/);
        else expect(Object.is(got.value, truth)).toBe(true);
        if (!m) expect(Object.is(got.value, decode(held, type, order)) || got.bad !== undefined).toBe(true);
      }),
      { numRuns: 1500 },
    );
  });

  it('a bool of a register or a coil is the bit in the frame', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 15 }), (word, bit) => {
        const p = compilePoint({ name: 'b', address: `hr:7.${bit}`, type: 'bool' }, 'ABCD');
        const check = checkReadAnswer({ unit: 1, area: 'hr', start: 7, count: 1 }, 1, readAnswerPdu(3, 'hr', [word]));
        expect(check.ok && pointValue(p, check.values, 7).value).toBe(((word >> bit) & 1) === 1);
      }),
    );
  });

  it('encode and decode agree for every type and order (the simulator writes with encode)', () => {
    for (const type of TYPES.filter((t) => t !== 'bool' && t !== 'string'))
      for (const order of BYTE_ORDERS)
        expect(
          decode(encode(type.startsWith('float') ? 1.5 : 7, type as Exclude<typeof type, 'bool' | 'string'>, order), type, order),
        ).toBe(type.startsWith('float') ? 1.5 : 7);
  });
});

describe('Modbus TCP framing', () => {
  const frames = fc.array(
    fc.record({
      tid: fc.integer({ min: 0, max: 0xffff }),
      unit: fc.integer({ min: 0, max: 255 }),
      pdu: fc.uint8Array({ minLength: 1, maxLength: 253 }),
    }),
    { minLength: 1, maxLength: 8 },
  );

  it('splits a stream cut anywhere into exactly the frames sent', () => {
    fc.assert(
      fc.property(frames, fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 20 }), (sent, cuts) => {
        const stream = Buffer.concat(sent.map((f) => tcpFrame(f.tid, f.unit, f.pdu)));
        const d = new TcpDeframer();
        const got = [];
        let at = 0;
        for (let i = 0; at < stream.length; i++) {
          const n = cuts[i % cuts.length]!;
          got.push(...d.push(stream.subarray(at, at + n)));
          at += n;
          expect(d.pending).toBeLessThanOrEqual(260);
        }
        expect(got.map((f) => ({ tid: f.tid, unit: f.unit, pdu: new Uint8Array(f.pdu) }))).toEqual(
          sent.map((f) => ({ ...f, pdu: new Uint8Array(f.pdu) })),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('random bytes give frames or a FramingError, never another throw, and hold at most one frame', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 0, maxLength: 600 }), { maxLength: 10 }), (chunks) => {
        const d = new TcpDeframer();
        for (const c of chunks) {
          try {
            for (const f of d.push(Buffer.from(c))) expect(f.pdu.length).toBeLessThanOrEqual(253);
          } catch (err) {
            expect(err).toBeInstanceOf(FramingError);
          }
          expect(d.pending).toBeLessThan(260);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('Modbus RTU framing', () => {
  it('finds a correct answer however it is cut, and refuses a spoiled one', () => {
    fc.assert(
      fc.property(exchange, fc.option(mutation), fc.integer({ min: 1, max: 40 }), ({ req, values }, m, step) => {
        fc.pre(expectedByteCount(req.area, req.count) <= 250);
        const pdu = readAnswerPdu(FC[req.area], req.area, values);
        const frame = m ? Buffer.concat([Buffer.from([req.unit]), mutate(pdu, m), Buffer.from([0x12, 0x34])]) : rtuFrame(req.unit, pdu);
        if (m) frame.writeUInt16LE(crc16(frame, 0, frame.length - 2), frame.length - 2);
        let answer;
        for (let n = step; n <= frame.length + step; n += step) {
          answer = rtuAnswerIn(frame.subarray(0, Math.min(n, frame.length)), req);
          if (answer) break;
        }
        if (!answer) {
          expect(m).not.toBeNull(); // a spoiled frame may be waiting for bytes that never come (a timeout)
          return;
        }
        if ('error' in answer) {
          expect(m).not.toBeNull();
          return;
        }
        expect(answer.length).toBeLessThanOrEqual(MAX_RTU_FRAME);
        const check = checkReadAnswer(req, answer.unit, answer.pdu);
        if (!m) expect(check).toEqual({ ok: true, values });
        else if (check.ok) expect(check.values).toEqual(valuesIn(answer.pdu, req));
      }),
      { numRuns: 1000 },
    );
  });

  it('random bytes never throw and never make a frame over 256 bytes', () => {
    fc.assert(
      fc.property(request, fc.uint8Array({ minLength: 0, maxLength: 300 }), (req, bytes) => {
        const a = rtuAnswerIn(bytes, req);
        if (a && !('error' in a)) expect(crc16(bytes, 0, a.length - 2)).toBe(bytes[a.length - 2]! | (bytes[a.length - 1]! << 8));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('corpus: answers that once became values', () => {
  const dir = join(import.meta.dirname, 'corpus');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const c = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
      description: string;
      transport: 'tcp' | 'rtu';
      request: ReadRequest;
      answer: string;
      reason: string;
    };
    it(`${file}: ${c.description}`, () => {
      const bytes = Buffer.from(c.answer.replace(/\s+/g, ''), 'hex');
      let reason: string | undefined;
      if (c.transport === 'tcp') {
        try {
          const [f] = new TcpDeframer().push(bytes);
          const check = f ? checkReadAnswer(c.request, f.unit, f.pdu) : undefined;
          reason = check && !check.ok ? check.reason : check ? 'accepted' : 'incomplete';
        } catch (err) {
          reason = `framing error: ${(err as FramingError).reason}`;
        }
      } else {
        const a = rtuAnswerIn(bytes, c.request);
        const check = a && !('error' in a) ? checkReadAnswer(c.request, a.unit, a.pdu) : undefined;
        reason = a && 'error' in a ? a.error : check && !check.ok ? check.reason : check ? 'accepted' : 'incomplete';
      }
      expect(reason).toBe(c.reason);
    });
  }
});
