// OPC UA values as readings: their quality from the status code, their size checked against
// max_value_size before anything is derived from them, then a reading value (numbers, booleans,
// text; anything else as JSON text).
import { ClientTCP_transport, DataType, Variant, VariantArrayType, type DataValue } from 'node-opcua';
import type { Quality, Reading } from '../types.js';

/** good, uncertain or bad from the severity bits of an OPC UA status code. */
export function qualityOf(statusCode: { value: number }): Quality {
  const severity = statusCode.value >>> 30;
  return severity === 0 ? 'good' : severity === 1 ? 'uncertain' : 'bad';
}

/**
 * Bytes of a value's data: UTF-8 bytes of a String, XmlElement or LocalizedText, bytes of a
 * ByteString, the sum over an array's elements, 8 for a number or a time, the binary encoding of
 * anything else (ExtensionObjects, DiagnosticInfo...). What the server made the client hold.
 */
export function variantSize(v: Variant | null | undefined): number {
  if (!v) return 0;
  return v.arrayType === VariantArrayType.Scalar || v.arrayType === undefined ? scalarSize(v.value) : arraySize(v.value);
}

/**
 * What each element of an array costs at least: a null Variant is a few bytes on the wire, but an
 * object in memory and `null,` in the text derived from it (a million of them made a 41 MB string).
 */
const ELEMENT_COST = 8;

function arraySize(value: unknown): number {
  if (ArrayBuffer.isView(value)) return Math.max(value.byteLength, ((value as unknown as ArrayLike<number>).length ?? 0) * ELEMENT_COST);
  if (!Array.isArray(value)) return scalarSize(value);
  let n = 0;
  for (const x of value as unknown[]) n += Math.max(ELEMENT_COST, scalarSize(x));
  return n;
}

function scalarSize(x: unknown): number {
  if (x === null || x === undefined) return 0;
  if (typeof x === 'string') return Buffer.byteLength(x);
  if (typeof x === 'number' || typeof x === 'boolean' || typeof x === 'bigint' || x instanceof Date) return 8;
  if (ArrayBuffer.isView(x)) return x.byteLength;
  if (Array.isArray(x)) return arraySize(x);
  if (x instanceof Variant) return variantSize(x);
  if (typeof x === 'object') {
    const o = x as { text?: unknown; locale?: unknown; name?: unknown; binaryStoreSize?: () => number };
    // LocalizedText and QualifiedName: their texts.
    if (typeof o.text === 'string' || typeof o.locale === 'string') return scalarSize(o.text) + scalarSize(o.locale);
    if (typeof o.name === 'string' && Object.keys(o).length <= 2) return scalarSize(o.name);
    if (typeof o.binaryStoreSize === 'function') return o.binaryStoreSize();
  }
  return 8;
}

/** A Variant's value as a reading value: numbers, booleans and text; 64-bit integers exact; ByteStrings as base64. */
export function valueOf(v: unknown, dataType?: DataType): Reading['value'] {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return v;
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (
    Array.isArray(v) &&
    v.length === 2 &&
    v.every((x) => typeof x === 'number') &&
    (dataType === undefined || dataType === DataType.Int64 || dataType === DataType.UInt64)
  ) {
    // node-opcua's Int64/UInt64: [high, low]
    const big = (BigInt(v[0] as number) << 32n) + BigInt((v[1] as number) >>> 0);
    return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big.toString();
  }
  if (ArrayBuffer.isView(v)) return JSON.stringify(Array.from(v as unknown as ArrayLike<number>));
  if (typeof v === 'object' && v !== null && 'text' in v) return String((v as { text: unknown }).text ?? '');
  return JSON.stringify(v);
}

export type Checked = { ok: true; value: Reading['value'] } | { ok: false; reason: string };

/** The value of a DataValue the server reported good or uncertain, if it is at most `maxBytes`. */
export function checkedValue(dv: DataValue, maxBytes: number): Checked {
  const size = variantSize(dv.value);
  if (size > maxBytes) return { ok: false, reason: `value of ${size} bytes, at most ${maxBytes}` };
  const value = valueOf(dv.value?.value, dv.value?.dataType);
  // What is published is bounded too: text derived from a value (JSON of an array, base64) can be
  // several times the value's own bytes.
  if (typeof value === 'string' && value.length > maxBytes) {
    const bytes = Buffer.byteLength(value);
    if (bytes > maxBytes) return { ok: false, reason: `value of ${bytes} bytes as text, at most ${maxBytes}` };
  }
  return { ok: true, value };
}

/**
 * What the client asks of the server in its Hello, and holds itself to. OPC UA's smallest chunk is
 * 8192 bytes, so maxMessageSize / 8192 chunks is the most an honest message needs.
 */
export interface TransportLimits {
  maxMessageSize: number;
  maxChunkCount: number;
  receiveBufferSize: number;
  sendBufferSize: number;
}

export function transportLimits(maxMessageSize: number): TransportLimits {
  return { maxMessageSize, maxChunkCount: Math.ceil(maxMessageSize / 8192), receiveBufferSize: 65_536, sendBufferSize: 65_536 };
}

/**
 * node-opcua's client takes the limits it receives with from the server's Acknowledge: a server that
 * acknowledges 0 (no limit) or 4 GiB would have it assemble a message of that size. This transport
 * keeps, of each limit, the lower of the server's and ours (ours where the server says 0).
 */
export class BoundedTransport extends ClientTCP_transport {
  constructor(private readonly own: TransportLimits) {
    super(own);
  }

  override setLimits(theirs: { receiveBufferSize: number; sendBufferSize: number; maxMessageSize: number; maxChunkCount: number }): void {
    const lower = (t: number, o: number) => (t > 0 ? Math.min(t, o) : o);
    super.setLimits({
      receiveBufferSize: lower(theirs.receiveBufferSize, this.own.receiveBufferSize),
      sendBufferSize: lower(theirs.sendBufferSize, this.own.sendBufferSize),
      maxMessageSize: lower(theirs.maxMessageSize, this.own.maxMessageSize),
      maxChunkCount: lower(theirs.maxChunkCount, this.own.maxChunkCount),
    });
  }
}
