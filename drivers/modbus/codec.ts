// Turns Modbus registers into engineering values and back, for every type and byte order.
// Byte orders name where the bytes A (most significant) to D of a 32-bit value arrive:
// ABCD big-endian, CDAB word-swapped, BADC byte-swapped, DCBA little-endian; 64-bit values and
// strings follow the same two rules (swap the word order; swap the bytes within each word).

export const TYPES = ['bool', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'string'] as const;
export type DataType = (typeof TYPES)[number];
export const BYTE_ORDERS = ['ABCD', 'BADC', 'CDAB', 'DCBA'] as const;
export type ByteOrder = (typeof BYTE_ORDERS)[number];

export const REGISTER_COUNT: Record<Exclude<DataType, 'string'>, number> = {
  bool: 1,
  int16: 1,
  uint16: 1,
  int32: 2,
  uint32: 2,
  float32: 2,
  int64: 4,
  uint64: 4,
  float64: 4,
};

const wordsSwapped = (o: ByteOrder) => o === 'CDAB' || o === 'DCBA';
const bytesSwapped = (o: ByteOrder) => o === 'BADC' || o === 'DCBA';

/** The value's bytes, most significant first, from registers as the device sent them. */
export function registersToBytes(registers: ArrayLike<number>, order: ByteOrder, isString = false): Buffer {
  const n = registers.length;
  const buf = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) {
    // Strings keep their character order; only the bytes within a register may be swapped.
    const reg = registers[wordsSwapped(order) && !isString ? n - 1 - i : i]! & 0xffff;
    const hi = reg >> 8;
    const lo = reg & 0xff;
    buf[i * 2] = bytesSwapped(order) ? lo : hi;
    buf[i * 2 + 1] = bytesSwapped(order) ? hi : lo;
  }
  return buf;
}

/** Registers as a device would send the value whose bytes (most significant first) are given. */
export function bytesToRegisters(bytes: Buffer, order: ByteOrder, isString = false): number[] {
  const n = bytes.length / 2;
  const regs = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const hi = bytes[i * 2]!;
    const lo = bytes[i * 2 + 1]!;
    regs[wordsSwapped(order) && !isString ? n - 1 - i : i] = bytesSwapped(order) ? (lo << 8) | hi : (hi << 8) | lo;
  }
  return regs;
}

export type RawValue = number | boolean | string;

/**
 * Decodes one point. 64-bit integers beyond 2^53 come back as exact decimal strings rather than
 * rounded numbers.
 */
export function decode(registers: ArrayLike<number>, type: DataType, order: ByteOrder, bit?: number): RawValue {
  if (type === 'bool') return bit === undefined ? registers[0] !== 0 : ((registers[0]! >> bit) & 1) === 1;
  const b = registersToBytes(registers, order, type === 'string');
  switch (type) {
    case 'int16':
      return b.readInt16BE(0);
    case 'uint16':
      return b.readUInt16BE(0);
    case 'int32':
      return b.readInt32BE(0);
    case 'uint32':
      return b.readUInt32BE(0);
    case 'float32':
      return b.readFloatBE(0);
    case 'float64':
      return b.readDoubleBE(0);
    case 'int64':
      return safe(b.readBigInt64BE(0));
    case 'uint64':
      return safe(b.readBigUInt64BE(0));
    case 'string':
      return b.toString('latin1').replace(/[\0 ]+$/, '');
  }
}

function safe(v: bigint): number | string {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

/** Registers holding `value` as `type` in `order` (the simulator and tests write with it). */
export function encode(value: RawValue, type: Exclude<DataType, 'bool'>, order: ByteOrder, length = 1): number[] {
  const size = type === 'string' ? length * 2 : REGISTER_COUNT[type] * 2;
  const b = Buffer.alloc(size);
  switch (type) {
    case 'int16':
      b.writeInt16BE(Number(value));
      break;
    case 'uint16':
      b.writeUInt16BE(Number(value));
      break;
    case 'int32':
      b.writeInt32BE(Number(value));
      break;
    case 'uint32':
      b.writeUInt32BE(Number(value));
      break;
    case 'float32':
      b.writeFloatBE(Number(value));
      break;
    case 'float64':
      b.writeDoubleBE(Number(value));
      break;
    case 'int64':
      b.writeBigInt64BE(BigInt(value));
      break;
    case 'uint64':
      b.writeBigUInt64BE(BigInt(value));
      break;
    case 'string':
      b.write(String(value).slice(0, size), 'latin1');
      break;
  }
  return bytesToRegisters(b, order, type === 'string');
}
