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

/** Text characters per frame, at most. */
export const MAX_FRAME_TEXT = 240;
/** A whole frame, STX through LF, at most (E1381): STX FN, 240 of text, ETX|ETB C1 C2 CR LF. */
export const MAX_FRAME_BYTES = MAX_FRAME_TEXT + 7;
/** Receiver: no frame for this long ends the session (E1381: 30 s). */
export const RECEIVE_TIMEOUT_MS = 30_000;
/** Receiver: record text of one message, at most (the default of `max_message_size`). */
export const MAX_MESSAGE_SIZE = 1024 * 1024;
/**
 * What each record costs against max_message_size besides its text: a record of a few characters
 * still costs a string and an array slot, and a flood of empty records must hit the limit too
 * (at most 8,192 records in a 1 MiB message).
 */
export const RECORD_COST = 128;
/** Receiver: ENQ to EOT, at most (the default of `max_session`). */
export const MAX_SESSION_MS = 10 * 60_000;
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
  /** The message could not be stored (the result store failed, or a bug): NAKed, the sender repeats it. */
  | { kind: 'store-failed'; error: unknown }
  | { kind: 'aborted'; reason: string }
  /** A limit was hit: a frame too long (NAKed, dropped), a message too large or a session too long (dropped whole). */
  | { kind: 'refused'; limit: 'frame' | 'message' | 'session'; reason: string };

export interface ReceiverLimits {
  /** No frame for this long after the last answer ends the session (E1381: 30 s). */
  receiveTimeoutMs: number;
  /** Record text of one message, in characters, at most. */
  maxMessageSize: number;
  /** ENQ to EOT, at most. */
  maxSessionMs: number;
}

/**
 * The receiving side. A message is the records between ENQ and EOT; it is handed over only when the
 * frame that completes it (the terminator record `L`) arrives, before that frame is acknowledged, so
 * the sender never believes a message delivered that was not stored; a message cut off (EOT without
 * a terminator record, a timeout, a closed connection) is discarded whole.
 *
 * Memory is bounded whatever the peer sends: one frame buffer of MAX_FRAME_BYTES (a longer frame is
 * NAKed and the bytes after it are skipped until the next STX, ENQ or EOT; a frame broken off by one
 * of those is dropped without an answer) and at most maxMessageSize characters of records. A message
 * over that size, a session over maxSessionMs, or a message whose sender is out of step (a frame
 * numbered other than next) is refused: dropped whole, and every frame or ENQ until EOT is NAKed.
 */
export class AstmReceiver {
  private state: 'idle' | 'receiving' | 'refusing' = 'idle';
  private expectedFn = 1;
  private lastText: string | undefined;
  private partial = '';
  private records: string[] = [];
  /** Characters of the message so far (records and partial). */
  private size = 0;
  /** FN through LF of the frame being received; frameLength -1 outside a frame. */
  private readonly frame = Buffer.alloc(MAX_FRAME_BYTES - 1);
  private frameLength = -1;
  private lastAnswer = 0;
  private sessionStart = 0;
  private accepted = 0;
  private refusal = '';
  private readonly limits: ReceiverLimits;

  constructor(
    /** Stores a complete message; false or a throw = not stored, the sender gets NAK and repeats. */
    private readonly onMessage: (records: string[]) => boolean,
    private readonly onEvent: (e: ReceiverEvent) => void = () => {},
    limits: Partial<ReceiverLimits> = {},
  ) {
    this.limits = { receiveTimeoutMs: RECEIVE_TIMEOUT_MS, maxMessageSize: MAX_MESSAGE_SIZE, maxSessionMs: MAX_SESSION_MS, ...limits };
  }

  /** Bytes from the line; returns the bytes to answer with. */
  receive(data: Uint8Array, now: number): number[] {
    this.tick(now);
    const out: number[] = [];
    for (let i = 0; i < data.length; i++) {
      const b = data[i]!;
      if (this.frameLength >= 0 && (b === STX || b === ENQ || b === EOT)) {
        // Never part of a frame (E1381 keeps them out of the text): the frame was broken off, and
        // this byte is taken as what it is, so a lost LF cannot swallow the next ENQ or message.
        this.frameLength = -1;
      }
      if (this.frameLength >= 0) {
        this.frame[this.frameLength++] = b;
        if (b === LF) {
          const length = this.frameLength;
          this.frameLength = -1;
          out.push(this.onFrame(this.frame.subarray(0, length), now));
        } else if (this.frameLength === this.frame.length) {
          // A whole frame's worth and no LF: the peer is not sending E1381 frames.
          this.frameLength = -1;
          out.push(this.refuse('frame', `frame longer than ${MAX_FRAME_BYTES} characters`, now));
        }
        continue;
      }
      if (b === ENQ) {
        out.push(this.enq(now));
      } else if (b === EOT) {
        if (this.pending) this.abort('EOT before the terminator record');
        this.state = 'idle';
      } else if (b === STX && this.state !== 'idle') {
        this.frameLength = 0;
      }
      // Anything else outside a frame is line noise (or the rest of a frame too long): skipped.
    }
    if (out.length > 0 && this.state === 'receiving') this.lastAnswer = now;
    return out;
  }

  /**
   * Time passes: a sender silent for receiveTimeoutMs loses its unfinished message (and a frame it
   * has begun); a session longer than maxSessionMs is refused.
   */
  tick(now: number): void {
    if (this.state === 'idle') return;
    if (now - this.lastAnswer >= this.limits.receiveTimeoutMs) {
      this.frameLength = -1;
      if (this.pending) this.abort(`no frame for ${seconds(this.limits.receiveTimeoutMs)}`);
      this.state = 'idle';
    } else if (this.state === 'receiving' && now - this.sessionStart >= this.limits.maxSessionMs) {
      this.refuse('session', `session longer than ${seconds(this.limits.maxSessionMs)}`, now);
    }
  }

  /** The connection closed. */
  close(): void {
    if (this.state !== 'idle' && this.pending) this.abort('connection closed');
    this.frameLength = -1;
    this.state = 'idle';
  }

  get busy(): boolean {
    return this.state !== 'idle';
  }

  /** Bytes held for the frame and the message being received: bounded by the limits. */
  get buffered(): number {
    return Math.max(this.frameLength, 0) + this.size;
  }

  /** When a frame was last accepted (ACK), in the receiver's time; 0 before the first. */
  get lastAccepted(): number {
    return this.accepted;
  }

  private get pending(): boolean {
    return this.records.length > 0 || this.partial.length > 0;
  }

  private enq(now: number): number {
    if (this.state === 'refusing') return this.nak(`ENQ while the session is refused (${this.refusal}); waiting for EOT`);
    if (this.state === 'receiving') {
      // A new message; an unfinished one before it is discarded. The session's clock keeps running.
      if (this.pending) this.abort('ENQ before the message ended');
    } else {
      this.sessionStart = now;
    }
    this.state = 'receiving';
    this.expectedFn = 1;
    this.lastText = undefined;
    this.clear();
    return ACK;
  }

  private clear(): void {
    this.records = [];
    this.partial = '';
    this.size = 0;
  }

  private abort(reason: string): void {
    this.clear();
    this.onEvent({ kind: 'aborted', reason });
  }

  /** A limit was hit: for a message or session, it is dropped whole and NAKed until EOT. */
  private refuse(limit: 'frame' | 'message' | 'session', reason: string, now: number): number {
    if (limit !== 'frame') {
      this.clear();
      this.hold(reason, now);
    }
    this.onEvent({ kind: 'refused', limit, reason });
    return NAK;
  }

  /** Every frame and ENQ is NAKed until EOT; this runs out after receiveTimeoutMs of its own, whatever the peer sends. */
  private hold(reason: string, now: number): void {
    this.state = 'refusing';
    this.refusal = reason;
    this.lastAnswer = now;
  }

  private nak(reason: string): number {
    this.onEvent({ kind: 'nak', reason });
    return NAK;
  }

  /** A frame: FN text ETX|ETB C1 C2 CR LF (STX already taken). */
  private onFrame(frame: Buffer, now: number): number {
    const length = frame.length;
    if (this.state === 'refusing') return this.nak(`frame while the session is refused (${this.refusal}); waiting for EOT`);
    const end = length - 5;
    const terminator = frame[end];
    if (length < 6 || (terminator !== ETX && terminator !== ETB) || frame[length - 2] !== CR)
      return this.nak('frame without ETX or ETB before its checksum');
    const body = frame.subarray(0, end + 1);
    const given = String.fromCharCode(frame[end + 1]!, frame[end + 2]!);
    if (given !== checksum(body)) return this.nak(`checksum ${given}, expected ${checksum(body)}`);
    const fn = frame[0]! - 0x30;
    const text = frame.toString('latin1', 1, end);
    const previous = (this.expectedFn + 7) % 8;
    if (fn === previous && this.lastText === text) return this.ack(now); // our ACK was lost: the same frame again
    if (fn !== this.expectedFn) {
      const reason = `frame number ${fn}, expected ${this.expectedFn}`;
      if (this.pending) {
        // In step, a sender only repeats the frame NAKed, with its number. Out of step in the middle
        // of a message, the two sides disagree about it: it is dropped now, so that frames numbered
        // from elsewhere (8 frames on, or a session whose EOT and ENQ were lost) cannot fill a hole.
        this.abort(`${reason}, in the middle of the message`);
        this.hold(reason, now);
      }
      return this.nak(reason);
    }
    const cost = text.length + (terminator === ETX ? RECORD_COST : 0);
    if (this.size + cost > this.limits.maxMessageSize)
      return this.refuse(
        'message',
        `message longer than ${this.limits.maxMessageSize} characters (${RECORD_COST} a record besides its text)`,
        now,
      );
    const partial = this.partial + text;
    // An E1394 record starts with its type letter: an empty one is not a record.
    if (terminator === ETX && partial.replace(/\r$/, '') === '') return this.nak('empty record');
    if (terminator === ETB) {
      this.partial = partial;
      this.size += text.length;
    } else {
      // A record is complete (records end with CR inside the text; a trailing CR is trimmed).
      const record = partial.replace(/\r$/, '');
      if (record.startsWith('L')) {
        const records = [...this.records, record];
        let stored: boolean;
        try {
          stored = this.onMessage(records);
        } catch (error) {
          this.onEvent({ kind: 'store-failed', error });
          stored = false;
        }
        if (!stored) return this.nak('the message could not be stored');
        this.onEvent({ kind: 'message', records });
        this.clear();
      } else {
        this.records.push(record);
        this.partial = '';
        this.size += cost;
      }
    }
    this.lastText = text;
    this.expectedFn = (this.expectedFn + 1) % 8;
    return this.ack(now);
  }

  private ack(now: number): number {
    this.accepted = now;
    return ACK;
  }
}

const seconds = (ms: number) => (ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`);
