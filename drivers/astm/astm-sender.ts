// The sending side of ASTM E1381, as an analyzer runs it: the ASTM analyzer simulator uses it. ENQ
// and wait for ACK (NAK: the receiver is busy, wait 10 s; ENQ back: line contention, the instrument
// has priority and tries again after 1 s); each frame until ACK, at most 6 attempts; then EOT.
import { ACK, ANSWER_TIMEOUT_MS, ENQ, EOT, MAX_ATTEMPTS, NAK, framesOf } from './astm-link.js';

export interface SenderOptions {
  write(bytes: Buffer): void;
  /** Corrupts a frame before it goes out, asked before each attempt (0 is the first): for tests and the demo. */
  corrupt?: (frame: Buffer, index: number, attempt: number) => Buffer | undefined;
  answerTimeoutMs?: number;
  busyWaitMs?: number;
  contentionWaitMs?: number;
}

export type SendResult = { ok: true; frames: number; naks: number } | { ok: false; reason: string };

export class AstmSender {
  private waiting: ((b: number | 'timeout') => void) | undefined;
  private queued: number[] = [];

  constructor(private readonly opts: SenderOptions) {}

  /** Control characters from the line (ACK, NAK, ENQ, EOT). */
  receive(data: Uint8Array): void {
    for (const b of data) {
      if (b !== ACK && b !== NAK && b !== ENQ && b !== EOT) continue;
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(b);
      } else {
        this.queued.push(b);
      }
    }
  }

  /** Sends one message (records without their CR) and ends it with EOT. */
  async send(records: readonly string[]): Promise<SendResult> {
    const timeout = this.opts.answerTimeoutMs ?? ANSWER_TIMEOUT_MS;
    // Establishment.
    for (let attempt = 0; ; attempt++) {
      this.queued = [];
      this.opts.write(Buffer.from([ENQ]));
      const answer = await this.next(timeout);
      if (answer === ACK) break;
      if (answer === 'timeout') return this.fail('no answer to ENQ');
      if (attempt >= MAX_ATTEMPTS) return this.fail('the receiver stayed busy');
      // NAK: busy, wait 10 s; ENQ: contention, the instrument keeps priority and waits 1 s.
      await sleep(answer === ENQ ? (this.opts.contentionWaitMs ?? 1000) : (this.opts.busyWaitMs ?? 10_000));
    }
    // Transfer.
    let fn = 1;
    let index = 0;
    let naks = 0;
    for (const record of records) {
      const frames = framesOf(`${record}\r`, fn);
      fn = (fn + frames.length) % 8;
      for (const frame of frames) {
        let attempts = 0;
        for (;;) {
          const corrupted = this.opts.corrupt?.(frame, index, attempts);
          this.opts.write(corrupted ?? frame);
          attempts++;
          const answer = await this.next(timeout);
          if (answer === ACK) break;
          if (answer === 'timeout') return this.fail(`no answer to frame ${index + 1}`);
          naks++;
          if (attempts >= MAX_ATTEMPTS) return this.fail(`frame ${index + 1} refused ${MAX_ATTEMPTS} times`);
        }
        index++;
      }
    }
    // Termination.
    this.opts.write(Buffer.from([EOT]));
    return { ok: true, frames: index, naks };
  }

  private fail(reason: string): SendResult {
    this.opts.write(Buffer.from([EOT]));
    return { ok: false, reason };
  }

  private next(timeoutMs: number): Promise<number | 'timeout'> {
    const queued = this.queued.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        resolve('timeout');
      }, timeoutMs);
      this.waiting = (b) => {
        clearTimeout(timer);
        resolve(b);
      };
    });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
