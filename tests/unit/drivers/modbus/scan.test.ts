import { expect, it } from 'vitest';
import { encode } from '../../../../drivers/modbus/codec.js';
import { describeRegisters } from '../../../../drivers/modbus/scan.js';

it('shows every decoding side by side, so the right type and byte order stand out', () => {
  const words = encode(1.25, 'float32', 'CDAB');
  const lines = describeRegisters('hr', 100, words);
  expect(lines[0]).toBe('hr:100    0x0000  int16 0  uint16 0  bits 0000000000000000  text ".."');
  expect(lines.find((l) => l.trim().startsWith('float32'))).toMatch(/CDAB 1\.25 /);
  expect(lines.find((l) => l.trim().startsWith('float32'))).toMatch(/ABCD 2\.28243494e-41 /);
  expect(lines.some((l) => l.trim().startsWith('float64'))).toBe(false); // two registers only
  expect(describeRegisters('di', 4, [1, 0])).toEqual(['di:4  true', 'di:5  false']);
});
