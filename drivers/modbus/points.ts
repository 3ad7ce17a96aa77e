// How a point's registers turn into its value: the driver's polls and the results reader share it.
import type { Reading } from '../types.js';
import { type Area, isBitArea, parseAddress } from './address.js';
import { type ByteOrder, type DataType, decode, REGISTER_COUNT } from './codec.js';
import type { ModbusEquipment } from './schema.js';

export interface CompiledPoint {
  name: string;
  area: Area;
  offset: number;
  bit: number | undefined;
  type: DataType;
  order: ByteOrder;
  count: number;
  scale: number | undefined;
  add: number | undefined;
}

/** A point's site-file entry turned into what a poll needs; the schema has checked it. */
export function compilePoint(p: ModbusEquipment['points'][number], defaultOrder: ByteOrder): CompiledPoint {
  const a = parseAddress(p.address)!;
  const type = p.type ?? 'bool';
  return {
    name: p.name,
    area: a.area,
    offset: a.offset,
    bit: a.bit,
    type,
    order: p.byte_order ?? defaultOrder,
    count: isBitArea(a.area) ? 1 : type === 'string' ? p.length! : REGISTER_COUNT[type],
    scale: p.scale,
    add: p.offset,
  };
}

/** The engineering value of a point from the words of the request that read it. */
export function pointValue(p: CompiledPoint, words: ArrayLike<number>, requestStart: number): { value: Reading['value']; bad?: string } {
  const from = p.offset - requestStart;
  const slice = Array.prototype.slice.call(words, from, from + p.count) as number[];
  // The link hands over exactly the registers asked for; a point outside them is a planning bug,
  // and still never a value.
  if (from < 0 || slice.length !== p.count)
    return { value: null, bad: `answer holds ${Math.max(0, slice.length)} of the point's ${p.count} registers` };
  const raw = decode(slice, p.type, p.order, p.bit);
  if (typeof raw !== 'number') return { value: raw };
  if (!Number.isFinite(raw)) return { value: null, bad: `not a number (${raw})` };
  if (p.scale === undefined && p.add === undefined) return { value: raw };
  return { value: Number((raw * (p.scale ?? 1) + (p.add ?? 0)).toPrecision(12)) };
}
