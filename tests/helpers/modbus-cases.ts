// Known values for every type and byte order, as register writes and as the points that read them.
import { BYTE_ORDERS, encode, type DataType } from '../../drivers/modbus/codec.js';
import { expect } from 'vitest';
import type { Area } from '../../drivers/modbus/address.js';
import type { Reading } from '../../drivers/types.js';

/** Every case's point read good and exactly equal (Object.is: -0 and float32 bits count). */
export function expectCases(batch: Reading[], cases: DecodingCase[]): void {
  const got = Object.fromEntries(batch.map((r) => [r.point, r]));
  for (const c of cases) {
    expect(got[c.point]?.quality, `${c.point}: ${got[c.point]?.reason ?? ''}`).toBe('good');
    expect(Object.is(got[c.point]!.value, c.expect), `${c.point}: ${String(got[c.point]!.value)} != ${String(c.expect)}`).toBe(true);
  }
}

/** A value of every numeric type, each using its whole range (sign bits, high bytes, 64 bits). */
export const NUMBER_SAMPLES: ReadonlyArray<[Exclude<DataType, 'bool' | 'string'>, number | string]> = [
  ['int16', -12345],
  ['uint16', 54321],
  ['int32', -123456789],
  ['uint32', 3000000001],
  ['float32', -273.15],
  ['float64', Math.PI],
  ['int64', -9007199254740991],
  ['uint64', '18446744073709551615'],
];

/** What the driver reads back for a sample: float32 holds the nearest single-precision value. */
export const expectedOf = (type: DataType, value: number | string): DecodingCase['expect'] =>
  type === 'float32' ? Math.fround(value as number) : value;

export interface DecodingCase {
  point: string;
  expect: number | string | boolean;
}

export function decodingCases(): {
  writes: Array<{ area: Area; offset: number; words: number[] }>;
  points: string[];
  cases: DecodingCase[];
} {
  const writes: Array<{ area: Area; offset: number; words: number[] }> = [];
  const points: string[] = [];
  const cases: DecodingCase[] = [];
  const add = (name: string, area: Area, offset: number, words: number[], point: string, expect: DecodingCase['expect']) => {
    writes.push({ area, offset, words });
    points.push(`{ name: ${name}, ${point} }`);
    cases.push({ point: name, expect });
  };
  let at = 0;
  for (const [type, value] of NUMBER_SAMPLES) {
    for (const order of BYTE_ORDERS) {
      const words = encode(value, type, order);
      add(
        `${type}_${order.toLowerCase()}`,
        'hr',
        at,
        words,
        `address: "hr:${at}", type: ${type}, byte_order: ${order}`,
        expectedOf(type, value),
      );
      at += words.length + 1; // a gap, so blocks carry unused registers too
    }
  }
  add('serial', 'ir', 500, encode('SN-0042-A', 'string', 'ABCD', 5), 'address: "ir:500", type: string, length: 5', 'SN-0042-A');
  add('status_bit0', 'hr', 300, [0b1010_0000_0000_0101], 'address: "hr:300.0", type: bool', true);
  points.push('{ name: status_bit1, address: "hr:300.1", type: bool }', '{ name: status_bit15, address: "hr:300.15", type: bool }');
  cases.push({ point: 'status_bit1', expect: false }, { point: 'status_bit15', expect: true });
  add('coil7', 'co', 7, [1], 'address: "co:7"', true);
  add('input9', 'di', 9, [1], 'address: "di:9"', true);
  add('scaled', 'hr', 310, encode(1234, 'uint16', 'ABCD'), 'address: "hr:310", type: uint16, scale: 0.01, offset: -2', 10.34);
  return { writes, points, cases };
}
