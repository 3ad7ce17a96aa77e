// Modbus frames, built and checked byte by byte (Modbus Application Protocol v1.1b3, Modbus over
// serial line v1.02, Modbus messaging on TCP/IP v1.0b). Pure functions: no sockets, no timers, so
// every check can be fuzzed. The link (link.ts) and the simulator (simulator.ts) both use them.
//
// Why not modbus-serial's own parsing: it checks an answer's total length, CRC, unit id and function
// code, but not its byte count (an answer to a read of 16 coils with byte count 0 gave `[]`, which
// decoded as `true`); its TCP port waits for as many bytes as the MBAP length announces (65535: the
// link wedged until the server closed it); and it keeps every finished transaction forever.
import { type Area, isBitArea, MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ } from './address.js';

export const FC = { co: 1, di: 2, hr: 3, ir: 4 } as const satisfies Record<Area, number>;
export const AREA_OF_FC: Record<number, Area> = { 1: 'co', 2: 'di', 3: 'hr', 4: 'ir' };

/** Largest PDU (function code and data) of any Modbus frame. */
export const MAX_PDU = 253;
/** Largest MBAP length field: unit id and PDU. */
export const MAX_MBAP_LENGTH = MAX_PDU + 1;
/** Largest RTU frame: address, PDU, CRC. */
export const MAX_RTU_FRAME = MAX_PDU + 3;

export const EXCEPTIONS: Record<number, string> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  8: 'memory parity error',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};

const CRC_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

/** CRC-16/MODBUS of bytes [from, to). */
export function crc16(buf: Uint8Array, from = 0, to = buf.length): number {
  let crc = 0xffff;
  for (let i = from; i < to; i++) crc = (crc >>> 8) ^ CRC_TABLE[(crc ^ buf[i]!) & 0xff]!;
  return crc;
}

/** What a read asks for: the answer is checked against it. */
export interface ReadRequest {
  unit: number;
  area: Area;
  start: number;
  count: number;
}

/** The data bytes a read of `count` registers or bits must answer with. */
export const expectedByteCount = (area: Area, count: number) => (isBitArea(area) ? Math.ceil(count / 8) : count * 2);

/** The PDU of a read request: function code, start, count. */
export function readPdu(req: ReadRequest): Buffer {
  const pdu = Buffer.alloc(5);
  pdu[0] = FC[req.area];
  pdu.writeUInt16BE(req.start, 1);
  pdu.writeUInt16BE(req.count, 3);
  return pdu;
}

/** An MBAP-framed request or answer: transaction id, protocol 0, length, unit id, PDU. */
export function tcpFrame(tid: number, unit: number, pdu: Uint8Array): Buffer {
  const f = Buffer.alloc(7 + pdu.length);
  f.writeUInt16BE(tid & 0xffff, 0);
  f.writeUInt16BE(0, 2);
  f.writeUInt16BE(pdu.length + 1, 4);
  f[6] = unit;
  f.set(pdu, 7);
  return f;
}

/** An RTU frame: address, PDU, CRC (low byte first). */
export function rtuFrame(unit: number, pdu: Uint8Array): Buffer {
  const f = Buffer.alloc(pdu.length + 3);
  f[0] = unit;
  f.set(pdu, 1);
  f.writeUInt16LE(crc16(f, 0, f.length - 2), f.length - 2);
  return f;
}

export type AnswerCheck =
  | { ok: true; values: number[] }
  | { ok: false; kind: 'exception'; code: number; reason: string }
  | { ok: false; kind: 'protocol'; reason: string };

const protocolError = (reason: string): AnswerCheck => ({ ok: false, kind: 'protocol', reason });

/**
 * The values of a read answer's PDU, or why there are none. Every field is checked against the
 * request: function code, exception shape, byte count, and the PDU's length. Bits come back as 0/1,
 * registers as 0-65535; nothing is derived from bytes that were not in the answer.
 */
export function checkReadAnswer(req: ReadRequest, unit: number, pdu: Uint8Array): AnswerCheck {
  if (unit !== req.unit) return protocolError(`unit id ${unit}, expected ${req.unit}`);
  // A read of 17-24 bits from 768-1023 has a request that passes as its own answer.
  if (pdu.length === 5 && readPdu(req).equals(pdu)) return protocolError('the request came back as its answer (an echo)');
  if (pdu.length === 0) return protocolError('empty answer');
  const fc = FC[req.area];
  const got = pdu[0]!;
  if (got === (fc | 0x80)) {
    if (pdu.length !== 2) return protocolError(`exception answer of ${pdu.length} bytes, expected 2`);
    const code = pdu[1]!;
    return { ok: false, kind: 'exception', code, reason: `exception ${code}: ${EXCEPTIONS[code] ?? 'unknown'}` };
  }
  if (got !== fc) return protocolError(`function code ${got}, expected ${fc}`);
  if (pdu.length < 2) return protocolError('answer without a byte count');
  const byteCount = pdu[1]!;
  const expected = expectedByteCount(req.area, req.count);
  if (byteCount !== expected) return protocolError(`byte count ${byteCount}, expected ${expected}`);
  if (pdu.length !== 2 + byteCount) return protocolError(`${pdu.length - 2} data bytes, byte count says ${byteCount}`);
  const values = new Array<number>(req.count);
  if (isBitArea(req.area)) {
    for (let i = 0; i < req.count; i++) values[i] = (pdu[2 + (i >> 3)]! >> (i & 7)) & 1;
  } else {
    for (let i = 0; i < req.count; i++) values[i] = (pdu[2 + 2 * i]! << 8) | pdu[3 + 2 * i]!;
  }
  return { ok: true, values };
}

export interface TcpAnswer {
  tid: number;
  unit: number;
  pdu: Buffer;
}

/**
 * Splits a Modbus TCP byte stream into frames. A header that cannot be a Modbus frame (protocol id
 * other than 0, a length under 2 or over 254) is a framing error: the stream cannot be trusted to
 * resynchronise, so the link closes the connection. At most one frame's bytes are ever held.
 */
export class TcpDeframer {
  private buf: Buffer = Buffer.alloc(0);

  /** The frames completed by `data`; throws FramingError when the stream is not Modbus TCP. */
  push(data: Buffer): TcpAnswer[] {
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    const out: TcpAnswer[] = [];
    while (this.buf.length >= 6) {
      const protocol = this.buf.readUInt16BE(2);
      const length = this.buf.readUInt16BE(4);
      if (protocol !== 0) throw this.fail(`protocol id ${protocol}, expected 0`);
      if (length < 2 || length > MAX_MBAP_LENGTH) throw this.fail(`MBAP length ${length}, expected 2-${MAX_MBAP_LENGTH}`);
      if (this.buf.length < 6 + length) break;
      out.push({ tid: this.buf.readUInt16BE(0), unit: this.buf[6]!, pdu: Buffer.from(this.buf.subarray(7, 6 + length)) });
      this.buf = this.buf.subarray(6 + length);
    }
    // A copy of the rest (less than one frame), so the socket's chunk is not kept alive by it.
    this.buf = this.buf.length > 0 ? Buffer.from(this.buf) : Buffer.alloc(0);
    return out;
  }

  /** Bytes held for an incomplete frame (never more than one frame's worth). */
  get pending(): number {
    return this.buf.length;
  }

  reset(): void {
    this.buf = Buffer.alloc(0);
  }

  private fail(reason: string): FramingError {
    this.reset();
    return new FramingError(reason);
  }
}

/** The byte stream is not a sequence of Modbus frames: the connection must be reset. */
export class FramingError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'FramingError';
  }
}

export type RtuAnswer = { length: number; unit: number; pdu: Buffer } | { length: number; error: string };

const crcAt = (buf: Uint8Array, n: number) => buf[n - 2]! | (buf[n - 1]! << 8);

/**
 * The RTU answer to `req` at the start of `buf`, once it can be told; undefined while more bytes may
 * complete it. An RTU frame has no length field of its own: the answer is taken at the length its
 * request calls for, or at the length its own byte count says, whichever has a valid CRC, so that an
 * intact frame with a wrong byte count is refused for its byte count, not for a CRC.
 */
export function rtuAnswerIn(buf: Uint8Array, req: ReadRequest): RtuAnswer | undefined {
  if (buf.length < 2) return undefined;
  const exception = (buf[1]! & 0x80) !== 0;
  if (!exception && buf.length < 3) return undefined;
  const own = exception ? 5 : 5 + buf[2]!;
  const asked = exception ? 5 : 5 + expectedByteCount(req.area, req.count);
  const intact = (n: number) => n <= MAX_RTU_FRAME && buf.length >= n && crcAt(buf, n) === crc16(buf, 0, n - 2);
  for (const n of own <= asked ? [own, asked] : [asked, own]) {
    if (intact(n)) return { length: n, unit: buf[0]!, pdu: Buffer.from(buf.subarray(1, n - 2)) };
  }
  if (own > MAX_RTU_FRAME) return { length: buf.length, error: `answer of ${own} bytes, at most ${MAX_RTU_FRAME}` };
  if (buf.length < Math.max(own, asked)) return undefined;
  return { length: buf.length, error: crcError(buf, own) };
}

/** An RTU frame that arrived whole (the line went quiet, or its time ran out): its answer, or why not. */
export function rtuAnswerOf(frame: Uint8Array): RtuAnswer {
  if (frame.length < 4) return { length: frame.length, error: `frame of ${frame.length} bytes` };
  if (crcAt(frame, frame.length) !== crc16(frame, 0, frame.length - 2))
    return { length: frame.length, error: crcError(frame, frame.length) };
  return { length: frame.length, unit: frame[0]!, pdu: Buffer.from(frame.subarray(1, frame.length - 2)) };
}

const crcError = (buf: Uint8Array, n: number) => `CRC ${hex(crcAt(buf, n))}, expected ${hex(crc16(buf, 0, n - 2))}`;

const hex = (n: number) => `0x${n.toString(16).padStart(4, '0')}`;

// --- The server side: what the simulator needs to answer requests.

export interface ParsedRequest {
  fc: number;
  /** A read: area, start and count; a write or anything else: the raw PDU. */
  read?: { area: Area; start: number; count: number };
  write?: { area: 'hr' | 'co'; start: number; values: number[] };
  /** The exception to answer with instead (1: function not served, 3: illegal count or shape). */
  exception?: number;
}

/** What a request PDU asks for, checked as a careful server would. */
export function parseRequestPdu(pdu: Uint8Array): ParsedRequest {
  const fc = pdu[0] ?? 0;
  const u16 = (at: number) => (pdu[at]! << 8) | pdu[at + 1]!;
  const area = AREA_OF_FC[fc];
  if (area) {
    if (pdu.length !== 5) return { fc, exception: 3 };
    const count = u16(3);
    const max = isBitArea(area) ? MAX_BITS_PER_READ : MAX_REGISTERS_PER_READ;
    if (count < 1 || count > max) return { fc, exception: 3 };
    if (u16(1) + count > 65536) return { fc, exception: 2 };
    return { fc, read: { area, start: u16(1), count } };
  }
  if (fc === 6 && pdu.length === 5) return { fc, write: { area: 'hr', start: u16(1), values: [u16(3)] } };
  if (fc === 5 && pdu.length === 5) return { fc, write: { area: 'co', start: u16(1), values: [pdu[3] === 0xff ? 1 : 0] } };
  if (fc === 16 && pdu.length >= 6) {
    const count = u16(3);
    if (count < 1 || count > 123 || pdu[5] !== count * 2 || pdu.length !== 6 + count * 2) return { fc, exception: 3 };
    return { fc, write: { area: 'hr', start: u16(1), values: Array.from({ length: count }, (_, i) => u16(6 + 2 * i)) } };
  }
  return { fc, exception: 1 };
}

/** The PDU answering a read with `values` (bits as 0/1, registers as 0-65535). */
export function readAnswerPdu(fc: number, area: Area, values: readonly number[]): Buffer {
  const byteCount = expectedByteCount(area, values.length);
  const pdu = Buffer.alloc(2 + byteCount);
  pdu[0] = fc;
  pdu[1] = byteCount;
  values.forEach((v, i) => {
    if (isBitArea(area)) pdu[2 + (i >> 3)]! |= (v ? 1 : 0) << (i & 7);
    else pdu.writeUInt16BE(v & 0xffff, 2 + 2 * i);
  });
  return pdu;
}

export const exceptionPdu = (fc: number, code: number) => Buffer.from([fc | 0x80, code]);
