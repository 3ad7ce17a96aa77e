// MLLP (HL7's Minimal Lower Layer Protocol): each message is `<VT> message <FS><CR>` on a TCP stream.
// A pure state machine: bytes in, frames and events out, time passed in. A frame may arrive split
// across packets and several in one; bytes outside a frame are line noise, skipped and counted.

export const VT = 0x0b;
export const FS = 0x1c;
export const CR = 0x0d;

/** A message as MLLP frames it. */
export function frame(message: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([VT]), message, Buffer.from([FS, CR])]);
}

/** Bytes kept of an over-long frame: enough for its MSH segment, so the refusal names its control id. */
export const HEAD_BYTES = 4096;

const EMPTY = Buffer.alloc(0);

export type MllpEvent =
  /** A whole frame's content. */
  | { kind: 'frame'; bytes: Buffer }
  /** A frame over maxMessageSize, ended: its first HEAD_BYTES, to answer it AR. */
  | { kind: 'oversize'; head: Buffer; size: number }
  /** A frame given up: a new VT before its end, or receiveTimeoutMs without its end; no answer, the sender resends. */
  | { kind: 'aborted'; reason: string; size: number };

export interface MllpLimits {
  /** A frame's content, at most, in bytes. */
  maxMessageSize: number;
  /** A frame begun must end within this time. */
  receiveTimeoutMs: number;
}

/**
 * The receiving side of one connection. Memory is bounded whatever the peer sends: one frame of at
 * most maxMessageSize bytes is held; a longer one keeps only its first HEAD_BYTES while the rest is
 * skipped up to its FS, and is then reported to be refused.
 */
export class MllpReceiver {
  private inFrame = false;
  /** The frame's bytes so far, in one buffer grown by doubling: a frame sent a byte a packet is one buffer, not a million. */
  private buf: Buffer = EMPTY;
  private length = 0;
  private size = 0;
  private oversize = false;
  private startedAt = 0;
  /** A CR right after FS belongs to the frame's end; senders that omit it are taken too. */
  private afterFs = false;
  /** Bytes seen outside any frame, in all. */
  garbage = 0;

  constructor(private readonly limits: MllpLimits) {}

  receive(data: Buffer, now: number): MllpEvent[] {
    const out: MllpEvent[] = [];
    this.tick(now, out);
    let i = 0;
    if (this.afterFs && data.length > 0) {
      this.afterFs = false;
      if (data[0] === CR) i = 1;
    }
    while (i < data.length) {
      if (!this.inFrame) {
        const vt = data.indexOf(VT, i);
        if (vt < 0) {
          this.garbage += data.length - i;
          break;
        }
        this.garbage += vt - i;
        this.begin(now);
        i = vt + 1;
        continue;
      }
      // In a frame: up to its FS, or a VT that starts another (this one was abandoned).
      const fs = data.indexOf(FS, i);
      const vt = data.indexOf(VT, i);
      if (vt >= 0 && (fs < 0 || vt < fs)) {
        this.add(data.subarray(i, vt));
        out.push({ kind: 'aborted', reason: 'a new frame (VT) began before this one ended (FS CR)', size: this.size });
        this.begin(now);
        i = vt + 1;
        continue;
      }
      if (fs < 0) {
        this.add(data.subarray(i));
        break;
      }
      this.add(data.subarray(i, fs));
      out.push(this.end());
      i = fs + 1;
      if (i < data.length) {
        if (data[i] === CR) i++;
      } else {
        this.afterFs = true;
      }
    }
    return out;
  }

  /** A frame begun and not ended within receiveTimeoutMs is dropped. */
  tick(now: number, out: MllpEvent[] = []): MllpEvent[] {
    if (this.inFrame && now - this.startedAt >= this.limits.receiveTimeoutMs) {
      out.push({ kind: 'aborted', reason: `the frame did not end within ${this.limits.receiveTimeoutMs / 1000} s`, size: this.size });
      this.reset();
    }
    return out;
  }

  /** Bytes held for the frame being received (its buffer's capacity): at most maxMessageSize. */
  get buffered(): number {
    return this.buf.length;
  }

  get receiving(): boolean {
    return this.inFrame;
  }

  private begin(now: number): void {
    this.reset();
    this.inFrame = true;
    this.startedAt = now;
  }

  private reset(): void {
    this.inFrame = false;
    this.buf = EMPTY;
    this.length = 0;
    this.size = 0;
    this.oversize = false;
  }

  private add(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.size += bytes.length;
    if (this.oversize) return;
    if (this.size > this.limits.maxMessageSize) {
      // Only the head is kept from here on: copied, so the big buffer and packets can be freed.
      this.oversize = true;
      const head = Buffer.alloc(Math.min(HEAD_BYTES, this.size));
      const kept = this.buf.copy(head, 0, 0, Math.min(this.length, head.length));
      bytes.copy(head, kept, 0, head.length - kept);
      this.buf = head;
      this.length = head.length;
      return;
    }
    // Copied in: a slice would keep the whole packet it came in alive.
    if (this.length + bytes.length > this.buf.length) {
      const capacity = Math.min(this.limits.maxMessageSize, Math.max(4096, 2 * this.buf.length, this.length + bytes.length));
      const grown = Buffer.allocUnsafe(capacity);
      this.buf.copy(grown, 0, 0, this.length);
      this.buf = grown;
    }
    bytes.copy(this.buf, this.length);
    this.length += bytes.length;
  }

  private end(): MllpEvent {
    const size = this.size;
    // The frame's own copy, its exact size: the buffer may have grown to twice it.
    const bytes = Buffer.from(this.buf.subarray(0, this.length));
    const event: MllpEvent = this.oversize ? { kind: 'oversize', head: bytes, size } : { kind: 'frame', bytes };
    this.reset();
    return event;
  }
}
