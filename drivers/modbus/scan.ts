// The register scanner: every decoding of a block of registers side by side, so a user can find
// the type and byte order of an undocumented device.
import { type Area, isBitArea } from './address.js';
import { BYTE_ORDERS, decode, type DataType } from './codec.js';

const WIDE: Array<{ type: DataType; registers: number }> = [
  { type: 'int32', registers: 2 },
  { type: 'uint32', registers: 2 },
  { type: 'float32', registers: 2 },
  { type: 'int64', registers: 4 },
  { type: 'uint64', registers: 4 },
  { type: 'float64', registers: 4 },
];

const fmt = (v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(9)).toString() : String(v));

/** Lines describing `words` read from `area` at `start`: one block per register offset. */
export function describeRegisters(area: Area, start: number, words: number[]): string[] {
  if (isBitArea(area)) return words.map((w, i) => `${area}:${start + i}  ${w ? 'true' : 'false'}`);
  const lines: string[] = [];
  words.forEach((w, i) => {
    const at = `${area}:${start + i}`;
    const text = String.fromCharCode(w >> 8, w & 0xff).replace(/[^\x20-\x7e]/g, '.');
    lines.push(
      `${at.padEnd(9)} 0x${w.toString(16).padStart(4, '0')}  int16 ${fmt(decode([w], 'int16', 'ABCD'))}  uint16 ${w}  bits ${w.toString(2).padStart(16, '0')}  text "${text}"`,
    );
    for (const { type, registers } of WIDE) {
      if (i + registers > words.length) continue;
      const slice = words.slice(i, i + registers);
      const cells = BYTE_ORDERS.map((o) => `${o} ${fmt(decode(slice, type, o))}`.padEnd(type.endsWith('64') ? 27 : 21));
      lines.push(`          ${type.padEnd(8)}${cells.join(' ')}`.trimEnd());
    }
  });
  return lines;
}
