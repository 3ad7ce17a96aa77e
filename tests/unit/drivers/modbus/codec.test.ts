import { describe, expect, it } from 'vitest';
import { BYTE_ORDERS, decode, encode, registersToBytes } from '../../../../drivers/modbus/codec.js';

describe('byte orders', () => {
  // 0x11223344 as the four orders put it on the wire (register 0 first).
  it.each([
    ['ABCD', [0x1122, 0x3344]],
    ['CDAB', [0x3344, 0x1122]],
    ['BADC', [0x2211, 0x4433]],
    ['DCBA', [0x4433, 0x2211]],
  ] as const)('%s: 0x11223344 arrives as %j', (order, regs) => {
    expect(encode(0x11223344, 'uint32', order)).toEqual(regs);
    expect(decode(regs, 'uint32', order)).toBe(0x11223344);
    expect(registersToBytes(regs, order).toString('hex')).toBe('11223344');
  });

  it('applies the same rules to 64-bit values', () => {
    expect(encode(String(0x0102030405060708n), 'uint64', 'ABCD')).toEqual([0x0102, 0x0304, 0x0506, 0x0708]);
    expect(encode(String(0x0102030405060708n), 'uint64', 'CDAB')).toEqual([0x0708, 0x0506, 0x0304, 0x0102]);
    expect(encode(String(0x0102030405060708n), 'uint64', 'DCBA')).toEqual([0x0807, 0x0605, 0x0403, 0x0201]);
  });

  it('reads a known float32 as the big-endian bytes 0x3FA00000 = 1.25', () => {
    expect(decode([0x3fa0, 0x0000], 'float32', 'ABCD')).toBe(1.25);
    expect(decode([0x0000, 0x3fa0], 'float32', 'CDAB')).toBe(1.25);
  });
});

describe('every type in every byte order round-trips exactly', () => {
  const values = {
    int16: [-32768, -1, 0, 12345, 32767],
    uint16: [0, 1, 40000, 65535],
    int32: [-2147483648, -200, 0, 123456789, 2147483647],
    uint32: [0, 1, 3000000000, 4294967295],
    float32: [0, -0, 1.25, -273.15, 3.4028234663852886e38, 1.401298464324817e-45, Math.PI],
    float64: [0, 1.25, -273.15, Math.PI, Number.MAX_VALUE, Number.MIN_VALUE],
    int64: [0, -1, 9007199254740991, -9007199254740991],
    uint64: [0, 1, 9007199254740991],
  } as const;
  for (const [type, list] of Object.entries(values)) {
    for (const order of BYTE_ORDERS) {
      it(`${type} ${order}`, () => {
        for (const v of list) {
          const got = decode(encode(v, type as keyof typeof values, order), type as keyof typeof values, order);
          // float32 keeps its 32 bits: what comes back is exactly the float32 nearest to the value.
          expect(Object.is(got, type === 'float32' ? Math.fround(v) : v), `${v} -> ${got}`).toBe(true);
        }
      });
    }
  }

  it('keeps 64-bit integers beyond 2^53 exact, as decimal strings', () => {
    expect(decode(encode('18446744073709551615', 'uint64', 'ABCD'), 'uint64', 'ABCD')).toBe('18446744073709551615');
    expect(decode(encode('-9223372036854775808', 'int64', 'DCBA'), 'int64', 'DCBA')).toBe('-9223372036854775808');
  });

  it('reads strings with their characters in order; BADC and DCBA swap the bytes of each register', () => {
    expect(decode(encode('B07-2019', 'string', 'ABCD', 4), 'string', 'ABCD')).toBe('B07-2019');
    expect(encode('AB', 'string', 'ABCD', 1)).toEqual([0x4142]);
    expect(encode('AB', 'string', 'BADC', 1)).toEqual([0x4241]);
    expect(decode(encode('ABCDEF', 'string', 'DCBA', 4), 'string', 'DCBA')).toBe('ABCDEF');
  });

  it('reads bits of a register and whole registers as bool', () => {
    expect(decode([0b100], 'bool', 'ABCD', 2)).toBe(true);
    expect(decode([0b100], 'bool', 'ABCD', 1)).toBe(false);
    expect(decode([0x8000], 'bool', 'ABCD', 15)).toBe(true);
    expect(decode([7], 'bool', 'ABCD')).toBe(true);
    expect(decode([0], 'bool', 'ABCD')).toBe(false);
  });
});
