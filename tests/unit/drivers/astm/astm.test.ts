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
  NAK,
  RECEIVE_TIMEOUT_MS,
  STX,
  type ReceiverEvent,
} from '../../../../drivers/astm/astm-link.js';
import { resultsOf, AstmRecordError } from '../../../../drivers/astm/astm-records.js';
import { AstmSender } from '../../../../drivers/astm/astm-sender.js';

const MESSAGE = [
  'H|\\^&|||ChemAnalyzer^2.1|||||||P|1|20261122100000',
  'P|1||PAT-001',
  'O|1|S-1001||^^^GLU\\^^^CHOL|R||20261122095500',
  'R|1|^^^GLU|5.6|mmol/L|3.9-6.1|N||F||op7||20261122100130',
  'R|2|^^^CHOL|6.8|mmol/L|<5.2|H||F||op7||20261122100145',
  'O|2|S-1002||^^^GLU|R',
  'R|1|^^^GLU|12.3|mmol/L|3.9^6.1|H\\A||F||op7||20261122100210',
  `C|1|I|${'A long instrument comment that spans several frames. '.repeat(6)}|G`,
  'L|1|N',
];

/** A receiver that records what it stored and what happened. */
function receiver(store: (records: string[]) => boolean = () => true) {
  const stored: string[][] = [];
  const events: ReceiverEvent[] = [];
  const r = new AstmReceiver(
    (records) => {
      const ok = store(records);
      if (ok) stored.push(records);
      return ok;
    },
    (e) => events.push(e),
  );
  return { r, stored, events };
}
const frame = (fn: number, text: string, end = ETX, sum?: string) => {
  const body = `${fn}${text}${String.fromCharCode(end)}`;
  return Buffer.concat([Buffer.from([STX]), Buffer.from(body, 'latin1'), Buffer.from(`${sum ?? checksum(body)}\r\n`)]);
};

describe('ASTM E1381 low level', () => {
  it('computes the checksum over FN through ETX, as two uppercase hex digits', () => {
    // 1 + "H|\^&" + ETX: 0x31+0x48+0x7C+0x5C+0x5E+0x26+0x03 = 0x1D8 -> D8
    expect(checksum(`1H|\\^&${String.fromCharCode(ETX)}`)).toBe('D8');
  });

  it('splits a long record into ETB frames of at most 240 characters, numbered 1..7, 0', () => {
    const frames = framesOf('x'.repeat(1000), 7);
    expect(frames.map((f) => f[1]! - 0x30)).toEqual([7, 0, 1, 2, 3]);
    expect(frames.map((f) => f[f.length - 5])).toEqual([ETB, ETB, ETB, ETB, ETX]);
    expect(frames.every((f) => f.length - 7 <= 240)).toBe(true);
  });

  it('delivers a message sent by the sender, multi-frame records included, exactly once', async () => {
    const { r, stored } = receiver();
    const sender: AstmSender = new AstmSender({
      write: (b) => setImmediate(() => sender.receive(Uint8Array.from(r.receive(b, Date.now())))),
    });
    const result = await sender.send(MESSAGE);
    expect(result).toMatchObject({ ok: true, naks: 0 });
    expect(result.ok && result.frames).toBeGreaterThan(MESSAGE.length);
    expect(stored).toEqual([MESSAGE]);
  });

  it('NAKs a frame with a wrong checksum, and takes the resent one', async () => {
    const { r, stored, events } = receiver();
    const sender: AstmSender = new AstmSender({
      write: (b) => setImmediate(() => sender.receive(Uint8Array.from(r.receive(b, Date.now())))),
      // Frame 3 goes out once with a flipped character.
      corrupt: (f, i, attempt) =>
        i === 2 && attempt === 0 ? Buffer.from(f.toString('latin1').replace('S-1001', 'S-1OO1'), 'latin1') : undefined,
    });
    expect(await sender.send(MESSAGE)).toMatchObject({ ok: true, naks: 1 });
    expect(events.filter((e) => e.kind === 'nak')).toEqual([
      { kind: 'nak', reason: expect.stringMatching(/^checksum [0-9A-F]{2}, expected [0-9A-F]{2}$/) },
    ]);
    expect(stored).toEqual([MESSAGE]);
    expect(stored[0]![2]).toContain('S-1001');
  });

  it('NAKs a frame without ETX or ETB, and one out of sequence', () => {
    const { r, events } = receiver();
    expect(r.receive(Uint8Array.from([ENQ]), 0)).toEqual([ACK]);
    const broken = Buffer.from(`\x021H|\\^&|||A\r\n`, 'latin1');
    expect(r.receive(broken, 1)).toEqual([NAK]);
    expect(r.receive(frame(2, 'H|\\^&|||A\r'), 2)).toEqual([NAK]);
    expect(r.receive(frame(1, 'H|\\^&|||A\r'), 3)).toEqual([ACK]);
    // The same frame again (our ACK was lost): acknowledged, not taken twice.
    expect(r.receive(frame(1, 'H|\\^&|||A\r'), 4)).toEqual([ACK]);
    expect(r.receive(frame(2, 'L|1|N\r'), 5)).toEqual([ACK]);
    expect(events.map((e) => e.kind)).toEqual(['nak', 'nak', 'message']);
    expect(events[0]).toEqual({ kind: 'nak', reason: 'frame without ETX or ETB before its checksum' });
    expect(events[1]).toEqual({ kind: 'nak', reason: 'frame number 2, expected 1' });
    expect(events[2]).toEqual({ kind: 'message', records: ['H|\\^&|||A', 'L|1|N'] });
  });

  it('never half-stores: a message cut by a timeout, an EOT or a closed line before its terminator is dropped whole', () => {
    for (const cut of ['timeout', 'eot', 'close'] as const) {
      const { r, stored, events } = receiver();
      r.receive(Uint8Array.from([ENQ]), 0);
      r.receive(frame(1, 'H|\\^&|||A\r'), 10);
      r.receive(frame(2, 'O|1|S-1||^^^GLU\r'), 20);
      if (cut === 'timeout') r.tick(20 + RECEIVE_TIMEOUT_MS);
      if (cut === 'eot') r.receive(Uint8Array.from([EOT]), 30);
      if (cut === 'close') r.close();
      expect(stored).toEqual([]);
      expect(events.at(-1)).toMatchObject({ kind: 'aborted' });
      // The next message starts clean.
      r.receive(Uint8Array.from([ENQ]), 40_000);
      r.receive(frame(1, 'H|\\^&|||B\r'), 40_001);
      r.receive(frame(2, 'L|1|N\r'), 40_002);
      expect(stored).toEqual([['H|\\^&|||B', 'L|1|N']]);
    }
  });

  it('NAKs the last frame when the message cannot be stored, so the sender repeats it', () => {
    let fail = true;
    const { r, stored } = receiver(() => !(fail && !(fail = false)));
    r.receive(Uint8Array.from([ENQ]), 0);
    r.receive(frame(1, 'H|\\^&|||A\r'), 1);
    expect(r.receive(frame(2, 'L|1|N\r'), 2)).toEqual([NAK]);
    expect(r.receive(frame(2, 'L|1|N\r'), 3)).toEqual([ACK]);
    expect(stored).toEqual([['H|\\^&|||A', 'L|1|N']]);
  });

  it('contention: the analyzer answers an ENQ with ENQ by waiting and trying again, and gets through', async () => {
    const { r, stored } = receiver();
    let first = true;
    const sender: AstmSender = new AstmSender({
      contentionWaitMs: 20,
      write: (b) =>
        setImmediate(() => {
          // The host happened to start a message at the same time: it answers the first ENQ with ENQ.
          if (first && b[0] === ENQ) {
            first = false;
            return sender.receive(Uint8Array.from([ENQ]));
          }
          sender.receive(Uint8Array.from(r.receive(b, Date.now())));
        }),
    });
    expect(await sender.send(['H|\\^&|||A', 'L|1|N'])).toMatchObject({ ok: true });
    expect(stored).toHaveLength(1);
  });
});

describe('ASTM E1394 records', () => {
  it('turns H/P/O/R/L records into results with sample ids, units, ranges, flags, status, operator and time', () => {
    const results = resultsOf(MESSAGE, 'LA-2');
    expect(results.map((x) => [x.sampleId, x.analyte, x.value, x.unit, x.flags, x.reference])).toEqual([
      ['S-1001', 'GLU', 5.6, 'mmol/L', ['N'], { lo: 3.9, hi: 6.1 }],
      ['S-1001', 'CHOL', 6.8, 'mmol/L', ['H'], { hi: 5.2 }],
      ['S-1002', 'GLU', 12.3, 'mmol/L', ['H', 'A'], { lo: 3.9, hi: 6.1 }],
    ]);
    expect(results[0]).toMatchObject({
      instrument: 'LA-2',
      status: 'final',
      operator: 'op7',
      resultAt: new Date(2026, 10, 22, 10, 1, 30).toISOString(),
    });
    // Read twice, the same ids; different results, different ids.
    expect(resultsOf(MESSAGE, 'LA-2').map((x) => x.resultId)).toEqual(results.map((x) => x.resultId));
    expect(new Set(results.map((x) => x.resultId)).size).toBe(3);
  });

  it('refuses a message whose records make no sense, saying which record', () => {
    expect(() => resultsOf(['P|1', 'L|1'], 'X')).toThrow(/does not start with a header/);
    expect(() => resultsOf(['H|\\^&', 'R|1|^^^GLU|5|mmol/L', 'L|1'], 'X')).toThrow(/record 2 \(R\): a result before any order record/);
    expect(() => resultsOf(['H|\\^&', 'O|1|S\u0001X||', 'L|1'], 'X')).toThrow(AstmRecordError);
    expect(() => resultsOf(['H|\\^&', 'Z|1', 'L|1'], 'X')).toThrow(/unknown record type "Z"/);
  });
});
