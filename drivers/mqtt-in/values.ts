// What a payload's field becomes: a value of the point's type, a source time, a quality. Anything
// that does not fit is refused with a reason; nothing is guessed into a number.
import type { Quality } from '../types.js';

export const VALUE_TYPES = ['number', 'boolean', 'string'] as const;
export type ValueType = (typeof VALUE_TYPES)[number];

export const TIMESTAMP_FORMATS = ['epoch_s', 'epoch_ms', 'iso8601'] as const;
export type TimestampFormat = (typeof TIMESTAMP_FORMATS)[number];

export type Converted<T> = { ok: true; value: T } | { ok: false; reason: string };

// A decimal number as devices write it in text ("21.5", "-3", "1e3"); not "", "0x1F", " 12abc" or "Infinity".
const NUMBER_TEXT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
// What devices say for on and off: JSON booleans, Zigbee2MQTT's and Tasmota's "ON"/"OFF", 1/0.
const TRUE_TEXT = new Set(['true', 'on', '1']);
const FALSE_TEXT = new Set(['false', 'off', '0']);

/** A short quote of a payload's value for a reason: never the whole of a large one. */
export function describe(raw: unknown): string {
  // Lists and objects are named, not written out: a peer's nesting could be deeper than the stack.
  if (Array.isArray(raw)) return 'a list';
  if (typeof raw === 'object' && raw !== null) return 'an object';
  const text = raw === undefined ? 'nothing' : typeof raw === 'string' ? JSON.stringify(raw) : String(raw);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function toNumber(raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : undefined;
  if (typeof raw === 'string' && NUMBER_TEXT.test(raw.trim())) return Number(raw.trim());
  return undefined;
}

/** `raw` as a value of `type`; a number is scaled (value × scale + offset). */
export function convertValue(raw: unknown, type: ValueType, scale = 1, offset = 0): Converted<number | boolean | string> {
  if (raw === null || raw === undefined) return { ok: false, reason: `no value (${describe(raw)})` };
  switch (type) {
    case 'number': {
      const n = toNumber(raw);
      if (n === undefined) return { ok: false, reason: `not a number: ${describe(raw)}` };
      const value = n * scale + offset;
      return Number.isFinite(value) ? { ok: true, value } : { ok: false, reason: `out of range after scaling: ${describe(raw)}` };
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      const text = typeof raw === 'number' || typeof raw === 'string' ? String(raw).trim().toLowerCase() : undefined;
      if (text !== undefined && TRUE_TEXT.has(text)) return { ok: true, value: true };
      if (text !== undefined && FALSE_TEXT.has(text)) return { ok: true, value: false };
      return { ok: false, reason: `not a boolean: ${describe(raw)}` };
    }
    case 'string':
      if (typeof raw === 'string') return { ok: true, value: raw };
      if (typeof raw === 'number' || typeof raw === 'boolean') return { ok: true, value: String(raw) };
      return { ok: false, reason: `not a string: ${describe(raw)}` };
  }
}

// ISO 8601 with a date, a time and a zone: a time without a zone would be read in the gateway's.
const ISO_8601 = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

/** Source times before this are not believed: no device publishing today has a clock set earlier, and a time in seconds read as milliseconds lands in 1970. */
export const EARLIEST_SOURCE_TIME = Date.UTC(2000, 0, 1);
/** How far ahead of the gateway's clock a source time may be: clocks drift, but a time in milliseconds read as seconds lands in the year 58000. */
export const MAX_SOURCE_TIME_AHEAD_MS = 24 * 60 * 60 * 1000;

/** A payload's time field as ms since the epoch; a time before 2000 or more than a day ahead of `now` is refused as implausible. */
export function convertTimestamp(raw: unknown, format: TimestampFormat, now = Date.now()): Converted<number> {
  let ms: number | undefined;
  if (format === 'iso8601') {
    if (typeof raw === 'string' && ISO_8601.test(raw.trim())) ms = Date.parse(raw.trim().replace(' ', 'T'));
  } else {
    const n = toNumber(raw);
    if (n !== undefined) ms = format === 'epoch_s' ? n * 1000 : n;
  }
  // Date's own range (±8.64e15 ms); anything outside is not a time.
  if (ms === undefined || !Number.isFinite(ms) || Math.abs(ms) > 8.64e15)
    return { ok: false, reason: `not a ${format} time: ${describe(raw)}` };
  // A wrong format (seconds for milliseconds, or the reverse) or a device clock never set gives such times.
  if (ms < EARLIEST_SOURCE_TIME) return { ok: false, reason: `implausible ${format} time ${describe(raw)}: before 2000-01-01` };
  if (ms > now + MAX_SOURCE_TIME_AHEAD_MS)
    return { ok: false, reason: `implausible ${format} time ${describe(raw)}: more than a day ahead of the gateway's clock` };
  return { ok: true, value: Math.round(ms) };
}

export interface QualityMap {
  good: ReadonlyArray<string | number | boolean>;
  uncertain: ReadonlyArray<string | number | boolean>;
  bad: ReadonlyArray<string | number | boolean>;
}

/** The quality a payload's status field says, by the map; a value the map does not list is bad. */
export function mapQuality(raw: unknown, map: QualityMap): { quality: Quality; reason?: string } {
  const is = (list: ReadonlyArray<string | number | boolean>) => list.some((v) => v === raw);
  if (is(map.good)) return { quality: 'good' };
  if (is(map.uncertain)) return { quality: 'uncertain', reason: `device status ${describe(raw)}` };
  if (is(map.bad)) return { quality: 'bad', reason: `device status ${describe(raw)}` };
  return { quality: 'bad', reason: `unknown device status ${describe(raw)}` };
}
