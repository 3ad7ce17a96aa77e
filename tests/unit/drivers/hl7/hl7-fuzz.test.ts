// Property tests of the message path the driver runs for every frame: real messages (the simulator's,
// UTF-8 and GB18030) with bytes replaced, inserted and cut, and random bytes. Whatever arrives, reading
// it either gives results or an Hl7Error with a reason (never another error: no raw stack trace for any
// input), and the ACK written back, AA or AE, is itself a message the parser reads, naming the control id.
import fc from 'fast-check';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { buildAck, headerOf, headerOfBytes } from '../../../../drivers/hl7/ack.js';
import { Hl7Error, parseMessage } from '../../../../drivers/hl7/hl7-message.js';
import { resultsOfOru } from '../../../../drivers/hl7/oru.js';
import { oruMessage } from '../../../../drivers/hl7/simulator.js';

const o = { name: 'Fuzz', samples: 1, seed: 1, noise: 1, controls: { GLU: { '1': { mean: 5, sd: 0.1 } } } };
const SEEDS = [
  Buffer.from(oruMessage({ ...o, version: '2.5.1', charset: 'utf-8' }, 1, new Date()).text),
  iconv.encode(oruMessage({ ...o, version: '2.3.1', charset: 'gb18030' }, 2, new Date()).text, 'gb18030'),
];
/** Bytes that matter to the parser, more often than chance would pick them. */
const SPECIAL = [0x7c, 0x5e, 0x7e, 0x5c, 0x26, 0x0d, 0x0a, 0x00, 0x80, 0xff, 0x81, 0x30];

/** What the driver does with one frame: results, or the reason for an AE; and the ACK it writes. */
function take(bytes: Buffer): { code: 'AA' | 'AE'; controlId: string; ack: Buffer } {
  let header;
  try {
    const m = parseMessage(bytes, 'utf-8');
    header = headerOf(m);
    resultsOfOru(m, { instrument: 'LA', sampleIdFrom: ['SPM-2', 'OBR-3', 'OBR-2'] });
    return { code: 'AA', controlId: header.controlId, ack: buildAck(header, 'AA') };
  } catch (err) {
    if (!(err instanceof Hl7Error)) throw err;
    header ??= headerOfBytes(bytes);
    return { code: 'AE', controlId: header.controlId, ack: buildAck(header, 'AE', err) };
  }
}

const byte = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(...SPECIAL));
const edit = fc.tuple(fc.constantFrom('replace', 'insert', 'delete'), fc.nat(), byte);

describe('HL7 message path, fuzzed', () => {
  it('mutated real messages: results or an Hl7Error, and an ACK the parser reads', () => {
    fc.assert(
      fc.property(fc.constantFrom(0, 1), fc.array(edit, { minLength: 1, maxLength: 6 }), (k, edits) => {
        const bytes = [...SEEDS[k]!];
        for (const [kind, at, b] of edits) {
          const i = at % (bytes.length + 1);
          if (kind === 'replace' && i < bytes.length) bytes[i] = b;
          else if (kind === 'insert') bytes.splice(i, 0, b);
          else if (kind === 'delete') bytes.splice(i, 1);
        }
        const { code, controlId, ack } = take(Buffer.from(bytes));
        const answer = parseMessage(ack, 'latin1');
        expect(answer.type).toBe('ACK');
        const msa = answer.segments.find((s) => s.name === 'MSA')!;
        expect(msa.get(1)).toBe(code);
        expect(msa.raw(2)).toBe(controlId);
      }),
      { numRuns: 1500 },
    );
  });

  it('random bytes: an AE, never another error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.boolean(), (random, withMsh) => {
        const bytes = Buffer.concat([Buffer.from(withMsh ? 'MSH|^~\\&|' : ''), random]);
        const { code, ack } = take(bytes);
        expect(code).toBe('AE');
        expect(parseMessage(ack, 'latin1').type).toBe('ACK');
      }),
      { numRuns: 1000 },
    );
  });
});
