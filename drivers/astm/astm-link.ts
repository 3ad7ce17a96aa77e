// ASTM E1381 / CLSI LIS1-A, the low-level protocol of the classic analyzer link: establishment (ENQ,
// answered ACK or NAK), transfer (frames `STX FN text ETX|ETB C1 C2 CR LF`, each answered ACK or NAK,
// frame numbers 1..7, 0, 1...; a record longer than 240 characters spans ETB frames) and termination
// (EOT). Pure state machines: bytes in, bytes out, time passed in.

export const ENQ = 0x05;
export const ACK = 0x06;
export const NAK = 0x15;
export const EOT = 0x04;
export const STX = 0x02;
export const ETX = 0x03;
export const ETB = 0x17;
export const CR = 0x0d;
export const LF = 0x0a;

/** Text characters per frame, at most (E1381: a frame is at most 247 characters). */
export const MAX_FRAME_TEXT = 240;
/** Receiver: no frame for this long ends the message (E1381: 30 s). */
export const RECEIVE_TIMEOUT_MS = 30_000;
/** Sender: no answer to ENQ or a frame for this long (E1381: 15 s). */
export const ANSWER_TIMEOUT_MS = 15_000;
/** Sender: a frame NAKed this many times ends the message (E1381: 6 attempts). */
export const MAX_ATTEMPTS = 6;

/** Two uppercase hex digits: the sum of the bytes from FN through ETX or ETB, modulo 256. */
export function checksum(bytes: Uint8Array | string): string {
  let sum = 0;
  const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
  for (const x of b) sum = (sum + x) & 0xff;
  return sum.toString(16).toUpperCase().padStart(2, '0');
}

/** One record as frames: `STX FN text ETB|ETX C1 C2 CR LF`, numbered from `fn` (1-7, 0, ...). */
export function framesOf(record: string, firstFn: number): Buffer[] {
  const out: Buffer[] = [];
  let fn = firstFn;
  for (let i = 0; i < record.length || i === 0; i += MAX_FRAME_TEXT) {
    const text = record.slice(i, i + MAX_FRAME_TEXT);
    const last = i + MAX_FRAME_TEXT >= record.length;
    const body = `${fn % 8}${text}${String.fromCharCode(last ? ETX : ETB)}`;
    out.push(Buffer.concat([Buffer.from([STX]), Buffer.from(body, 'latin1'), Buffer.from(`${checksum(body)}\r\n`, 'latin1')]));
    fn = (fn + 1) % 8;
  }
  return out;
}

export type ReceiverEvent =
  | { kind: 'message'; records: string[] }
  | { kind: 'nak'; reason: string }
  | { kind: 'aborted'; reason: string };

/**
 * The receiving side. A message is the records between ENQ and EOT; it is handed over only when the
 * frame that completes it (the terminator record `L`) arrives, before that frame is acknowledged, so
 * the sender never believes a message delivered that was not stored; a message cut off (EOT without
 * a terminator record, a timeout, a closed connection) is discarded whole.
 */
export class AstmReceiver {
  private state: 'idle' | 'receiving' = 'idle';
  private expectedFn = 1;
  private lastText: string | undefined;
  private partial = '';
  private records: string[] = [];
  private frame: number[] | undefined;
  private lastActivity = 0;
  private delivered = false;

  constructor(
    /** Stores a complete message; false or a throw = not stored, the sender gets NAK and repeats. */
    private readonly onMessage: (records: string[]) => boolean,
    private readonly onEvent: (e: ReceiverEvent) => void = () => {},
  ) {}

  /** Bytes from the line; returns the bytes to answer with. */
  receive(data: Uint8Array, now: number): number[] {
    const out: number[] = [];
    for (const b of data) {
      if (this.frame) {
        this.frame.push(b);
        if (b === LF) {
          const frame = this.frame;
          this.frame = undefined;
          out.push(this.onFrame(frame, now));
        }
        continue;
      }
      if (b === ENQ) {
        // A new message; an unfinished one before it is discarded.
        if (this.state === 'receiving' && this.records.length + this.partial.length > 0) this.abort('ENQ before the message ended');
        this.start(now);
        out.push(ACK);
      } else if (b === EOT) {
        if (this.state === 'receiving' && !this.delivered && (this.records.length > 0 || this.partial)) this.abort('EOT before the terminator record');
        this.state = 'idle';
      } else if (b === STX && this.state === 'receiving') {
        this.frame = [];
      }
      // Anything else outside a frame is line noise: ignored.
    }
    if (out.length > 0) this.lastActivity = now;
    return out;
  }

  /** Time passes: a sender silent for RECEIVE_TIMEOUT_MS in the middle of a message loses it. */
  tick(now: number): void {
    if (this.state === 'receiving' && now - this.lastActivity >= RECEIVE_TIMEOUT_MS) {
      if (!this.delivered && (this.records.length > 0 || this.partial)) this.abort(`no frame for ${RECEIVE_TIMEOUT_MS / 1000} s`);
      this.state = 'idle';
    }
  }

  /** The connection closed. */
  close(): void {
    if (this.state === 'receiving' && !this.delivered && (this.records.length > 0 || this.partial)) this.abort('connection closed');
    this.state = 'idle';
  }

  get busy(): boolean {
    return this.state === 'receiving';
  }

  private start(now: number): void {
    this.state = 'receiving';
    this.expectedFn = 1;
    this.lastText = undefined;
    this.partial = '';
    this.records = [];
    this.frame = undefined;
    this.delivered = false;
    this.lastActivity = now;
  }

  private abort(reason: string): void {
    this.records = [];
    this.partial = '';
    this.frame = undefined;
    this.onEvent({ kind: 'aborted', reason });
  }

  private nak(reason: string): number {
    this.onEvent({ kind: 'nak', reason });
    return NAK;
  }

  private onFrame(frame: number[], now: number): number {
    this.lastActivity = now;
    // frame: FN text ETX|ETB C1 C2 CR LF (STX already taken)
    const end = frame.length - 5;
    const terminator = frame[end];
    if (frame.length < 6 || (terminator !== ETX && terminator !== ETB) || frame[frame.length - 2] !== CR) return this.nak('frame without ETX or ETB before its checksum');
    const body = Uint8Array.from(frame.slice(0, end + 1));
    const given = String.fromCharCode(frame[end + 1]!, frame[end + 2]!);
    if (given !== checksum(body)) return this.nak(`checksum ${given}, expected ${checksum(body)}`);
    const fn = frame[0]! - 0x30;
    const text = Buffer.from(frame.slice(1, end)).toString('latin1');
    const previous = (this.expectedFn + 7) % 8;
    if (fn === previous && this.lastText === text) return ACK; // our ACK was lost: the same frame again
    if (fn !== this.expectedFn) return this.nak(`frame number ${fn}, expected ${this.expectedFn}`);
    if (text.length > MAX_FRAME_TEXT) return this.nak(`frame of ${text.length} characters, at most ${MAX_FRAME_TEXT}`);
    this.partial += text;
    if (terminator === ETX) {
      // A record is complete (records end with CR inside the text; a trailing CR is trimmed).
      const record = this.partial.replace(/\r$/, '');
      const records = [...this.records, record];
      if (record.startsWith('L')) {
        let stored: boolean;
        try {
          stored = this.onMessage(records);
        } catch {
          stored = false;
        }
        if (!stored) {
          this.partial = this.partial.slice(0, this.partial.length - text.length);
          return this.nak('the message could not be stored');
        }
        this.delivered = true;
        this.onEvent({ kind: 'message', records });
        this.records = [];
      } else {
        this.records = records;
      }
      this.partial = '';
    }
    this.lastText = text;
    this.expectedFn = (this.expectedFn + 1) % 8;
    return ACK;
  }
}
