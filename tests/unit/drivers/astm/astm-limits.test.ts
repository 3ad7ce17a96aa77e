// What the receiver does with a peer that does not keep to E1381: every input is bounded, a refused
// message is dropped whole, and the line resynchronises on the next STX, ENQ or EOT.
import { describe, expect, it } from 'vitest';
import {
  ACK,
  AstmReceiver,
  checksum,
  ENQ,
  EOT,
  ETX,
  framesOf,
  MAX_FRAME_BYTES,
  NAK,
  RECORD_COST,
  STX,
  type ReceiverEvent,
  type ReceiverLimits,
} from '../../../../drivers/astm/astm-link.js';
import { AstmSender } from '../../../../drivers/astm/astm-sender.js';
import { LogBudget } from '../../../../drivers/common/log-budget.js';

function receiver(limits: Partial<ReceiverLimits> = {}) {
  const stored: string[][] = [];
  const events: ReceiverEvent[] = [];
  const r = new AstmReceiver(
    (records) => {
      stored.push(records);
      return true;
    },
    (e) => events.push(e),
    limits,
  );
  return { r, stored, events };
}

/** The frames of a message, numbered from 1, as one buffer. */
const message = (records: string[]) => {
  let fn = 1;
  return Buffer.concat(
    records.flatMap((record) => {
      const frames = framesOf(`${record}\r`, fn);
      fn = (fn + frames.length) % 8;
      return frames;
    }),
  );
};
const bytes = (...b: number[]) => Uint8Array.from(b);
const SMALL = ['H|\\^&|||A', 'O|1|S-1||^^^GLU', 'R|1|^^^GLU|5.6|mmol/L', 'L|1|N'];

describe('ASTM receiver limits', () => {
  it('NAKs a frame longer than 247 characters once, skips the rest of it, and takes the next frame', () => {
    const { r, events } = receiver();
    expect(r.receive(bytes(ENQ), 0)).toEqual([ACK]);
    // A frame whose text is one character too long, with a correct checksum, ETX and CR LF.
    const body = Buffer.from(`1${'A'.repeat(241)}${String.fromCharCode(ETX)}`, 'latin1');
    const tooLong = Buffer.concat([bytes(STX), body, Buffer.from(`${checksum(body)}\r\n`, 'latin1')]);
    expect(tooLong.length).toBe(MAX_FRAME_BYTES + 1);
    expect(r.receive(tooLong, 1)).toEqual([NAK]);
    expect(events).toEqual([{ kind: 'refused', limit: 'frame', reason: 'frame longer than 247 characters' }]);
    // A frame of exactly 247 characters is taken.
    const full = framesOf(`H|\\^&|||A\r${'x'.repeat(300)}`, 1)[0]!;
    expect(full.length).toBe(MAX_FRAME_BYTES);
    expect(r.receive(full, 2)).toEqual([ACK]);
  });

  it('holds at most one frame of an endless frame (10 MiB without LF), then resynchronises on EOT and ENQ', () => {
    const { r, stored, events } = receiver();
    r.receive(bytes(ENQ, STX), 0);
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    const answers: number[] = [];
    let most = 0;
    for (let i = 0; i < 160; i++) {
      answers.push(...r.receive(chunk, 1));
      most = Math.max(most, r.buffered);
    }
    expect(most).toBeLessThan(MAX_FRAME_BYTES);
    expect(answers).toEqual([NAK]);
    expect(events.filter((e) => e.kind === 'refused')).toHaveLength(1);
    expect(r.receive(Buffer.concat([bytes(EOT, ENQ), message(SMALL), bytes(EOT)]), 2).filter((b) => b === NAK)).toEqual([]);
    expect(stored).toEqual([SMALL]);
  });

  it('keeps nothing of bytes outside a session: STX without ENQ is line noise', () => {
    const { r, events } = receiver();
    expect(r.receive(Buffer.concat([bytes(STX), Buffer.alloc(100_000, 0x41), message(SMALL)]), 0)).toEqual([]);
    expect(r.buffered).toBe(0);
    expect(events).toEqual([]);
  });

  it('refuses a message over max_message_size: dropped whole, logged once, NAKed until EOT; the next session is taken', () => {
    const { r, stored, events } = receiver({ maxMessageSize: 1000 + RECORD_COST });
    r.receive(bytes(ENQ), 0);
    const big = ['H|\\^&|||A', `C|1|I|${'x'.repeat(2000)}`, 'L|1|N'];
    const frames = message(big);
    const answers = r.receive(frames, 1);
    // H (10 characters and a record's cost) and four frames of the comment (960) are taken; the fifth would pass the limit.
    const sent = big.flatMap((record) => framesOf(`${record}\r`, 1)).length;
    expect(sent).toBeGreaterThan(6);
    expect(answers).toEqual([ACK, ACK, ACK, ACK, ACK, ...Array<number>(sent - 5).fill(NAK)]);
    expect(events.filter((e) => e.kind === 'refused')).toEqual([
      {
        kind: 'refused',
        limit: 'message',
        reason: `message longer than ${1000 + RECORD_COST} characters (${RECORD_COST} a record besides its text)`,
      },
    ]);
    expect(r.buffered).toBe(0);
    // Still refusing: an ENQ is answered NAK (busy) until the analyzer ends the session.
    expect(r.receive(bytes(ENQ), 2)).toEqual([NAK]);
    expect(r.receive(Buffer.concat([bytes(EOT, ENQ), message(SMALL), bytes(EOT)]), 3).includes(NAK)).toBe(false);
    expect(stored).toEqual([SMALL]);
  });

  it('counts every record against max_message_size: a flood of empty and tiny records is refused, never held without bound', () => {
    const { r, stored, events } = receiver({ maxMessageSize: 64 * 1024 });
    r.receive(bytes(ENQ), 0);
    // An empty record (STX 1 ETX cs CR LF, 7 bytes) is not a record: NAKed, nothing kept.
    const empty = framesOf('', 1)[0]!;
    expect(r.receive(empty, 1)).toEqual([NAK]);
    expect(r.buffered).toBe(0);
    // One-letter records: 7 bytes on the wire each, 130 against the limit; refused after about 500.
    const answers: number[] = [];
    let fn = 1;
    for (let i = 0; i < 3000; i++) {
      const a = r.receive(framesOf('C\r', fn)[0]!, 2 + i);
      answers.push(...a);
      if (a[0] === ACK) fn = (fn + 1) % 8;
    }
    expect(answers.filter((a) => a === ACK).length).toBe(Math.floor((64 * 1024) / (2 + RECORD_COST)));
    expect(events.filter((e) => e.kind === 'refused').map((e) => (e as { limit: string }).limit)).toEqual(['message']);
    expect(r.buffered).toBe(0);
    expect(stored).toEqual([]);
  });

  it("says why a message could not be stored: the store's error reaches the driver, and the frame is NAKed", () => {
    const events: ReceiverEvent[] = [];
    const r = new AstmReceiver(
      () => {
        throw new Error('SQLITE_FULL: database or disk is full');
      },
      (e) => events.push(e),
    );
    r.receive(bytes(ENQ), 0);
    const answers = r.receive(message(SMALL), 1);
    expect(answers.at(-1)).toBe(NAK);
    expect(events.find((e) => e.kind === 'store-failed')).toMatchObject({ error: { message: 'SQLITE_FULL: database or disk is full' } });
  });

  it('refuses a session over max_session: the unfinished message is dropped, the messages before it kept', () => {
    const { r, stored, events } = receiver({ maxSessionMs: 60_000, receiveTimeoutMs: 30_000 });
    r.receive(bytes(ENQ), 0);
    r.receive(message(SMALL), 1000);
    // A second message in the same session, sent a frame every 20 s: within receive_timeout each time.
    let t = 1000;
    for (const f of framesOf('H|\\^&|||B\r', 5)) expect(r.receive(f, (t += 20_000))).toEqual([ACK]);
    // An ENQ in the middle does not restart the session's clock.
    expect(r.receive(bytes(ENQ), (t += 20_000))).toEqual([ACK]);
    expect(r.receive(framesOf('H|\\^&|||C\r', 1)[0]!, t + 5_000)).toEqual([ACK]);
    r.tick(60_000);
    expect(events.filter((e) => e.kind === 'refused')).toEqual([
      { kind: 'refused', limit: 'session', reason: 'session longer than 1 min' },
    ]);
    expect(r.buffered).toBe(0);
    expect(r.receive(framesOf('L|1|N\r', 2)[0]!, 61_000)).toEqual([NAK]);
    expect(stored).toEqual([SMALL]);
    // The refusal runs out by itself after receive_timeout, even if the peer keeps sending.
    r.receive(framesOf('L|1|N\r', 2)[0]!, 80_000);
    r.tick(90_000);
    expect(r.busy).toBe(false);
    expect(r.receive(Buffer.concat([bytes(ENQ), message(SMALL), bytes(EOT)]), 91_000).includes(NAK)).toBe(false);
    expect(stored).toEqual([SMALL, SMALL]);
  });

  it('uses the configured receive timeout, and drops a frame trickled one byte a second', () => {
    const { r, stored, events } = receiver({ receiveTimeoutMs: 5000 });
    r.receive(bytes(ENQ), 0);
    r.receive(framesOf('H|\\^&|||A\r', 1)[0]!, 100);
    const frame = framesOf('L|1|N\r', 2)[0]!;
    let t = 100;
    const answers: number[] = [];
    for (const b of frame) answers.push(...r.receive(bytes(b), (t += 1000)));
    // Past 5 s without an answer: the message and the frame begun are dropped; the rest is noise.
    expect(answers).toEqual([]);
    expect(events).toEqual([{ kind: 'aborted', reason: 'no frame for 5 s' }]);
    expect(r.busy).toBe(false);
    expect(r.buffered).toBe(0);
    expect(stored).toEqual([]);
  });

  it('drops a message whose sender is out of step (a frame numbered on from elsewhere), so no message has a hole', () => {
    const { r, stored, events } = receiver();
    r.receive(bytes(ENQ), 0);
    expect(r.receive(framesOf('H|\\^&|||A\r', 1)[0]!, 1)).toEqual([ACK]);
    // Frame 2 never arrives; 3 does: NAK, the message is dropped, the session NAKed until EOT.
    expect(r.receive(framesOf('O|1|S-1\r', 3)[0]!, 2)).toEqual([NAK]);
    expect(r.receive(framesOf('L|1|N\r', 2)[0]!, 3)).toEqual([NAK]);
    expect(events.map((e) => e.kind)).toEqual(['aborted', 'nak', 'nak']);
    expect(events[0]).toEqual({ kind: 'aborted', reason: 'frame number 3, expected 2, in the middle of the message' });
    expect(r.receive(Buffer.concat([bytes(EOT, ENQ), message(SMALL), bytes(EOT)]), 4).includes(NAK)).toBe(false);
    expect(stored).toEqual([SMALL]);
  });

  it('tells when a frame was last accepted, so a connection that brings none can be closed', () => {
    const { r } = receiver();
    r.receive(bytes(ENQ), 10);
    expect(r.lastAccepted).toBe(0);
    r.receive(framesOf('H|\\^&|||A\r', 1)[0]!, 20);
    expect(r.lastAccepted).toBe(20);
    r.receive(framesOf('H|\\^&|||A\r', 3)[0]!, 30); // out of sequence: NAK
    expect(r.lastAccepted).toBe(20);
  });

  it('a sender whose every frame has a bad checksum gives up after 6 attempts, and nothing is stored', async () => {
    const { r, stored, events } = receiver();
    const sender: AstmSender = new AstmSender({
      write: (b) => setImmediate(() => sender.receive(Uint8Array.from(r.receive(b, Date.now())))),
      corrupt: (frame) => Buffer.concat([frame.subarray(0, -4), Buffer.from('ZZ\r\n')]),
    });
    expect(await sender.send(SMALL)).toEqual({ ok: false, reason: 'frame 1 refused 6 times' });
    expect(events.filter((e) => e.kind === 'nak')).toHaveLength(6);
    expect(stored).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(r.busy).toBe(false);
  });
});

describe('log budget', () => {
  it('lets a few lines a minute through and tells how many were skipped', () => {
    const budget = new LogBudget(2, 60_000);
    const taken = Array.from({ length: 1000 }, (_, i) => budget.take(i));
    expect(taken.filter((t) => t !== undefined)).toEqual([0, 0]);
    expect(budget.skipped).toBe(998);
    expect(budget.take(60_000)).toBe(998);
    expect(budget.skipped).toBe(0);
  });
});
