// Property tests of the ASTM receiver: random byte streams, and real sessions with their frames
// mutated, cut up into random chunks at random times. Whatever arrives, the receiver never throws,
// answers only ACK or NAK, holds no more than one frame and one message's worth of bytes, and hands
// over only whole messages that were sent (never a half or a mixture); after an EOT it takes the next
// session. Streams that once failed are kept in ./corpus, one JSON file each, and replayed first.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ACK,
  AstmReceiver,
  checksum,
  ENQ,
  EOT,
  ETB,
  ETX,
  framesOf,
  MAX_FRAME_BYTES,
  MAX_FRAME_TEXT,
  NAK,
  RECORD_COST,
  STX,
  CR,
  LF,
  type ReceiverEvent,
  type ReceiverLimits,
} from '../../../../drivers/astm/astm-link.js';

/** Small limits, so that random runs reach them. */
const LIMITS: ReceiverLimits = { receiveTimeoutMs: 3000, maxMessageSize: 1500, maxSessionMs: 20_000 };
const BOUND = MAX_FRAME_BYTES - 1 + LIMITS.maxMessageSize;

interface Piece {
  bytes: Uint8Array;
  /** Milliseconds before this piece arrives. */
  dt: number;
}

interface Outcome {
  stored: string[][];
  answers: number[];
  events: ReceiverEvent[];
  most: number;
}

/** Feeds the pieces; checks on the way what must hold at every step. */
function feed(pieces: Iterable<Piece>, limits: Partial<ReceiverLimits> = LIMITS): Outcome {
  const out: Outcome = { stored: [], answers: [], events: [], most: 0 };
  const r = new AstmReceiver(
    (records) => {
      // Only whole messages: at least one record, the last one the terminator.
      expect(records.length).toBeGreaterThan(0);
      expect(records.at(-1)!.startsWith('L')).toBe(true);
      out.stored.push(records);
      return true;
    },
    (e) => out.events.push(e),
    limits,
  );
  let now = 0;
  for (const p of pieces) {
    now += p.dt;
    r.tick(now);
    const answers = r.receive(p.bytes, now);
    expect(answers.every((b) => b === ACK || b === NAK)).toBe(true);
    out.answers.push(...answers);
    out.most = Math.max(out.most, r.buffered);
  }
  return out;
}

/** A session: ENQ, the frames of its messages (numbered on across them), EOT; each a unit of its own. */
function sessionUnits(messages: string[][]): Uint8Array[] {
  let fn = 1;
  const frames = messages.flat().flatMap((record) => {
    const f = framesOf(`${record}\r`, fn);
    fn = (fn + f.length) % 8;
    return f;
  });
  return [Uint8Array.of(ENQ), ...frames, Uint8Array.of(EOT)];
}

/** Cuts each unit at random points, so a frame may arrive in several chunks or with the next one. */
function chunked(units: Array<{ bytes: Uint8Array; dt: number }>, cuts: number[]): Piece[] {
  const all = Buffer.concat(units.map((u) => u.bytes));
  const dts: number[] = [];
  units.forEach((u) => dts.push(u.dt, ...new Array<number>(Math.max(0, u.bytes.length - 1)).fill(0)));
  const at = [...new Set([0, ...cuts.map((c) => c % (all.length + 1)), all.length])].sort((a, b) => a - b);
  const pieces: Piece[] = [];
  for (let i = 0; i + 1 < at.length; i++) {
    const [from, to] = [at[i]!, at[i + 1]!];
    pieces.push({ bytes: all.subarray(from, to), dt: dts.slice(from, to).reduce((a, b) => a + b, 0) });
  }
  return pieces;
}

/** `stored` is `sent` with some messages left out, in order. */
function isSubsequence(stored: string[][], sent: string[][]): boolean {
  let i = 0;
  for (const m of stored) {
    while (i < sent.length && JSON.stringify(sent[i]) !== JSON.stringify(m)) i++;
    if (i === sent.length) return false;
    i++;
  }
  return true;
}

/**
 * `m` is a run of consecutive records sent, ending with a terminator record. Its first record may be
 * the tail of a record sent, from a frame boundary on: after a stray ENQ a new message starts with
 * the next frame numbered 1, wherever it falls (E1381 numbers frames modulo 8, and a peer that does
 * not resend is not E1381). Never a record that was not sent, never a hole inside a message.
 */
function isRunOfSent(m: string[], sent: string[]): boolean {
  const first = `${m[0]}\r`;
  return sent.some((record, j) => {
    const cut = record.length + 1 - first.length;
    if (cut < 0 || cut % MAX_FRAME_TEXT !== 0 || `${record}\r`.slice(cut) !== first) return false;
    return m.slice(1).every((r, k) => sent[j + 1 + k] === r);
  });
}

const printableChar = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c));
// Short records, and long ones that span frames (and make some messages too large).
const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: printableChar, maxLength: 80 }) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.string({ unit: printableChar, minLength: 1, maxLength: 7 }), fc.integer({ min: 30, max: 200 }))
      .map(([s, n]) => s.repeat(n).slice(0, 1500)),
  },
);
// Records other than the terminator: a record starting with L ends the message wherever it is.
const record = fc.tuple(fc.constantFrom('H', 'P', 'O', 'R', 'C', 'M', 'Q'), text).map(([t, s]) => `${t}${s}`);
const messageArb = fc.array(record, { maxLength: 6 }).map((records) => [...records, 'L|1|N']);
const sessionArb = fc.array(messageArb, { minLength: 1, maxLength: 2 });

/** What can go wrong on a line, one unit (ENQ, frame or EOT) at a time. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  // A zero byte leaves the checksum (a sum) as it was: E1381 cannot see it, so it is not tried.
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('drop' as const) }),
  fc.record({ kind: fc.constant('repeat' as const) }),
  fc.record({ kind: fc.constant('noise' as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({ kind: fc.constant('wait' as const), ms: fc.constantFrom(LIMITS.receiveTimeoutMs, LIMITS.maxSessionMs + 1) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(units: Uint8Array[], mutations: Array<[number, Mutation]>, dts: number[]): Array<{ bytes: Uint8Array; dt: number }> {
  const out = units.map((bytes, i) => ({
    bytes: Buffer.from(bytes),
    dt: dts[i % dts.length] ?? 0,
    extra: [] as Array<{ bytes: Uint8Array; dt: number }>,
  }));
  for (const [index, m] of mutations) {
    const u = out[index % out.length]!;
    const at = 'at' in m ? m.at % u.bytes.length : 0;
    if (m.kind === 'replace') {
      const value = m.value === u.bytes[at] ? (m.value + 1) % 256 : m.value;
      u.bytes[at] = value;
    } else if (m.kind === 'delete') u.bytes = Buffer.concat([u.bytes.subarray(0, at), u.bytes.subarray(at + 1)]);
    else if (m.kind === 'insert') u.bytes = Buffer.concat([u.bytes.subarray(0, at), Uint8Array.of(m.value), u.bytes.subarray(at)]);
    else if (m.kind === 'drop') u.bytes = Buffer.alloc(0);
    else if (m.kind === 'repeat') u.extra.push({ bytes: Buffer.from(u.bytes), dt: 0 });
    else if (m.kind === 'noise') u.extra.push({ bytes: m.bytes, dt: 0 });
    else u.dt += m.ms;
  }
  return out.flatMap(({ bytes, dt, extra }) => [{ bytes, dt }, ...extra]);
}

const CONTROL = [ENQ, EOT, STX, ETX, ETB, CR, LF, ACK, NAK];
const lineByte = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...CONTROL) },
  { weight: 3, arbitrary: fc.constantFrom(...Buffer.from('0123456789ABCDEF|^&\\HLR')) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 255 }) },
);
const SETTLED = [['H|\\^&|||Settled', 'L|1|N']];

describe('ASTM receiver under random input', () => {
  it('never throws, answers only ACK or NAK, stays within its bounds, and takes the next session after EOT, whatever bytes came before', () => {
    fc.assert(
      fc.property(
        fc.array(lineByte, { maxLength: 3000 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.array(fc.integer({ min: 0, max: 2000 }), { minLength: 1, maxLength: 5 }),
        (bytes, cuts, dts) => {
          const units = [Uint8Array.from(bytes), ...sessionUnits(SETTLED)].map((b, i) => ({ bytes: b, dt: i === 0 ? dts[0]! : 0 }));
          const garbage = chunked(units.slice(0, 1), cuts).map((p, i) => ({ ...p, dt: dts[i % dts.length]! }));
          const o = feed([...garbage, ...units.slice(1)]);
          expect(o.most).toBeLessThanOrEqual(BOUND);
          expect(o.stored.at(-1)).toEqual(SETTLED[0]);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('hands over exactly the messages sent, in order, when nothing goes wrong, however the bytes are cut up', () => {
    fc.assert(
      fc.property(fc.array(sessionArb, { minLength: 1, maxLength: 3 }), fc.array(fc.nat(), { maxLength: 30 }), (sessions, cuts) => {
        const units = sessions.flatMap((s) => sessionUnits(s)).map((bytes) => ({ bytes, dt: 10 }));
        const sent = sessions.flat();
        const o = feed(chunked(units, cuts));
        // Messages over the size limit are refused whole; every other one arrives once.
        const size = (m: string[]) => m.reduce((n, r) => n + r.length + 1 + RECORD_COST, 0);
        const refused = sessions.filter((s) => s.some((m) => size(m) > LIMITS.maxMessageSize));
        if (refused.length === 0) expect(o.stored).toEqual(sent);
        else expect(isSubsequence(o.stored, sent)).toBe(true);
        expect(o.stored.every((m) => size(m) <= LIMITS.maxMessageSize)).toBe(true);
        expect(o.most).toBeLessThanOrEqual(BOUND);
      }),
      { numRuns: 300 },
    );
  });

  it('never half-stores: with frames damaged, lost, repeated, noise between them and pauses, only runs of records sent, with no hole, ending with L, are handed over', () => {
    fc.assert(
      fc.property(
        fc.array(sessionArb, { minLength: 1, maxLength: 3 }),
        // At most three: a hole needs four frames, EOT and ENQ lost together (a frame lost, then
        // the end of the session, then the next session's first frames up to the same number).
        fc.array(mutation, { maxLength: 3 }),
        fc.array(fc.nat(), { maxLength: 3 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.array(fc.integer({ min: 0, max: 1500 }), { minLength: 1, maxLength: 8 }),
        (sessions, mutations, where, cuts, dts) => {
          const units = sessions.flatMap((s) => sessionUnits(s));
          // One damaged byte per unit at most: two in one frame could cancel out in its checksum.
          const targets = [...new Set(where.map((w) => w % units.length))];
          const placed = mutations.slice(0, targets.length).map((m, i) => [targets[i]!, m] as [number, Mutation]);
          const o = feed(chunked(mutate(units, placed, dts), cuts));
          const sent = sessions.flat(2);
          for (const m of o.stored) expect(isRunOfSent(m, sent), JSON.stringify(m)).toBe(true);
          expect(o.most).toBeLessThanOrEqual(BOUND);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('holds one frame at most of an endless frame, however long, and NAKs it once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: MAX_FRAME_BYTES, max: 2 * 1024 * 1024 }),
        fc.integer({ min: 1024, max: 256 * 1024 }),
        fc.integer({ min: 0, max: 255 }),
        (length, chunk, fill) => {
          // Any text byte but the ones that end or break a frame.
          const text = [STX, ENQ, EOT, LF].includes(fill) ? 0x41 : fill;
          const block = Buffer.alloc(chunk, text);
          function* pieces(): Generator<Piece> {
            yield { bytes: Uint8Array.of(ENQ, STX), dt: 0 };
            for (let left = length; left > 0; left -= chunk) yield { bytes: block.subarray(0, Math.min(chunk, left)), dt: 0 };
          }
          const o = feed(pieces());
          expect(o.most).toBeLessThan(MAX_FRAME_BYTES);
          expect(o.answers).toEqual([ACK, NAK]);
          expect(o.events).toEqual([{ kind: 'refused', limit: 'frame', reason: 'frame longer than 247 characters' }]);
        },
      ),
      { numRuns: 20 },
    );
  });
});

// The corpus: { about, stream, stored, answers?, events? }; a stream item is hex ("05 02"), text
// ({ text }), a byte repeated ({ repeat: "41", times }), a valid frame ({ frame, fn, end? }) or a pause
// ({ wait: ms }). Each item arrives as one chunk; the case is also replayed one byte at a time.
type Item =
  string | { text: string } | { repeat: string; times: number } | { frame: string; fn: number; end?: 'ETX' | 'ETB' } | { wait: number };
interface Case {
  about: string;
  stream: Item[];
  stored: string[][];
  answers?: string;
  events?: Array<ReceiverEvent['kind']>;
}

const CORPUS = join(import.meta.dirname, 'corpus');
const corpus = readdirSync(CORPUS).filter((f) => f.endsWith('.json'));
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function piecesOf(c: Case): Piece[] {
  const pieces: Piece[] = [];
  let dt = 0;
  for (const item of c.stream) {
    let bytes: Uint8Array;
    if (typeof item === 'string') bytes = hex(item);
    else if ('wait' in item) {
      dt += item.wait;
      continue;
    } else if ('text' in item) bytes = Buffer.from(item.text, 'latin1');
    else if ('repeat' in item) bytes = Buffer.alloc(item.times, hex(item.repeat));
    else {
      const body = Buffer.from(`${item.fn % 8}${item.frame}${String.fromCharCode(item.end === 'ETB' ? ETB : ETX)}`, 'latin1');
      bytes = Buffer.concat([Uint8Array.of(STX), body, Buffer.from(`${checksum(body)}\r\n`, 'latin1')]);
    }
    pieces.push({ bytes, dt });
    dt = 0;
  }
  return pieces;
}

describe('ASTM receiver corpus', () => {
  it('has a corpus to replay', () => expect(corpus.length).toBeGreaterThan(0));

  it.each(corpus)('corpus: %s', (file) => {
    const c = JSON.parse(readFileSync(join(CORPUS, file), 'utf8')) as Case;
    const pieces = piecesOf(c);
    const bytewise = pieces.flatMap((p) => Array.from(p.bytes, (b, i) => ({ bytes: Uint8Array.of(b), dt: i === 0 ? p.dt : 0 })));
    for (const run of [pieces, bytewise]) {
      const o = feed(run, {});
      expect(o.stored).toEqual(c.stored);
      expect(o.most).toBeLessThanOrEqual(MAX_FRAME_BYTES - 1 + 1024 * 1024);
      if (c.answers !== undefined) expect(Buffer.from(o.answers).toString('hex')).toBe(hex(c.answers).toString('hex'));
      if (c.events) expect(o.events.map((e) => e.kind)).toEqual(c.events);
    }
  });
});
