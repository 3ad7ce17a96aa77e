// A record's fields to lab results, as the connection's mapping says. Whatever the format, a reader
// hands over the values at the mapping's places (columns or paths) in the order of `places`; a value
// that does not make a result (no sample id, a number that is not one, a time that does not read)
// is a problem with the file, which is then rejected whole.
import type { LabResult } from '../common/result.js';
import { clip, FileProblem } from './decode.js';
import type { FileDropMapping } from './schema.js';
import { timeReader } from './time.js';

export type FieldPlace = string | number;
export type ResultDraft = Omit<LabResult, 'resultId'>;

/** Status codes as instruments write them (ASTM/HL7 letters), else the text as written. */
const STATUS: Record<string, string> = { F: 'final', P: 'preliminary', C: 'correction', X: 'cannot be done', I: 'pending' };
/** Cells that do not mark a control sample. */
const NOT_CONTROL = new Set(['', '0', 'n', 'no', 'false', 'f', '-', '否', '无']);

/** Characters of a field (sample id, analyte, unit, operator...), at most. */
export const MAX_FIELD = 256;
/** Characters of a text value (value_type auto or text), at most. */
export const MAX_TEXT_VALUE = 4096;

const SINGLE = [
  'sample_id',
  'analyte',
  'value',
  'unit',
  'time',
  'status',
  'flags',
  'operator',
  'method',
  'control',
  'control_level',
  'reference_lo',
  'reference_hi',
] as const;
type Single = (typeof SINGLE)[number];

export interface CompiledMapping {
  /** Where each value is, in the order a reader hands the values over. */
  places: FieldPlace[];
  /** Names of the places, for reasons (`column 结果`, `path Value/@unit`). */
  describe(index: number): string;
  /** The results of one record (one, or one per filled analyte column in a wide layout). */
  results(values: readonly unknown[], where: string, raw: string | undefined): ResultDraft[];
}

export function compileMapping(
  m: FileDropMapping,
  opts: {
    instrument: string;
    decimal: '.' | ',';
    fileTime: number;
    timeZone: string | undefined;
    describePlace: (p: FieldPlace) => string;
  },
): CompiledMapping {
  const places: FieldPlace[] = [];
  const index = new Map<FieldPlace, number>();
  const at = (p: FieldPlace | undefined): number | undefined => {
    if (p === undefined) return undefined;
    let i = index.get(p);
    if (i === undefined) {
      i = places.length;
      places.push(p);
      index.set(p, i);
    }
    return i;
  };
  const single = Object.fromEntries(SINGLE.map((k) => [k, at(m[k])])) as Record<Single, number | undefined>;
  const wide = m.analytes?.map((a) => ({ analyte: a.analyte, unit: a.unit, value: at(a.value)! }));
  const readTime = timeReader(m.time_format, m.time_zone ?? opts.timeZone);
  const fileTime = new Date(opts.fileTime).toISOString();
  let lastMs = Number.NaN;
  let lastIso = '';
  const name = (i: number) => opts.describePlace(places[i]!);

  const text = (values: readonly unknown[], i: number | undefined, what: string, where: string): string | undefined => {
    if (i === undefined) return undefined;
    const v = values[i];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'object')
      throw new FileProblem(where, `${what} (${name(i)}) is ${Array.isArray(v) ? 'an array' : 'an object'}, not a value`);
    const t = String(v).trim();
    // A result is held until its batch is stored, and goes to MQTT and the platform: a sample id of
    // 8 MiB (a row may be that long) made a batch as large as the file.
    const max = what === 'value' ? MAX_TEXT_VALUE : MAX_FIELD;
    if (t.length > max) throw new FileProblem(where, `${what} (${name(i)}) longer than ${max} characters: "${clip(t)}"`);
    return t;
  };
  const required = (values: readonly unknown[], i: number, what: string, where: string): string => {
    const t = text(values, i, what, where);
    if (t === undefined || t === '') throw new FileProblem(where, `no ${what} (${name(i)} is empty or missing)`);
    return t;
  };
  const number = (t: string): number | undefined => {
    // With decimal commas a dot is no decimal point ("1.234,5" is 1234.5 in those locales): "1.234"
    // is not read as 1.234.
    if (opts.decimal === ',' && t.includes('.')) return undefined;
    const s = opts.decimal === ',' ? t.replace(',', '.') : t;
    // Number('') is 0 and Number('0x1F') is 31: only plain decimal numbers are numbers here; and
    // 1e400 is Infinity, no reading.
    if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return undefined;
    const n = Number(s);
    return Number.isFinite(n) ? n : undefined;
  };
  const valueOf = (values: readonly unknown[], i: number, where: string): number | string => {
    const v = values[i];
    // A JSON number is one already (1e400 in JSON is Infinity: not a reading).
    if (typeof v === 'number' && m.value_type !== 'text' && Number.isFinite(v)) return v;
    const t = required(values, i, 'value', where);
    if (m.value_type === 'text') return t;
    const n = number(t);
    if (n !== undefined) return n;
    if (m.value_type === 'auto') return t;
    throw new FileProblem(where, `value "${clip(t)}" (${name(i)}) is not a number (value_type: number; auto keeps text values)`);
  };
  const limit = (values: readonly unknown[], i: number | undefined, what: string, where: string): number | undefined => {
    const t = text(values, i, what, where);
    if (t === undefined || t === '') return undefined;
    const n = typeof values[i!] === 'number' && Number.isFinite(values[i!]) ? (values[i!] as number) : number(t);
    if (n === undefined) throw new FileProblem(where, `${what} "${clip(t)}" (${name(i!)}) is not a number`);
    return n;
  };

  return {
    places,
    describe: name,
    results(values, where, raw) {
      const sampleId = required(values, single.sample_id!, 'sample id', where);
      let resultAt = fileTime;
      if (single.time !== undefined) {
        const timeText = text(values, single.time, 'time', where);
        if (timeText === undefined || timeText === '') throw new FileProblem(where, `no time (${name(single.time)} is empty or missing)`);
        const v = values[single.time];
        const ms = typeof v === 'number' && m.time_format.startsWith('epoch') ? readTime(String(v)) : readTime(timeText);
        if (ms === undefined)
          throw new FileProblem(
            where,
            `time "${clip(timeText)}" (${name(single.time)}) does not read as ${m.time_format === 'iso' ? 'ISO 8601' : m.time_format}`,
          );
        // Rows of a file mostly share their times: the text of the last one is kept.
        if (ms !== lastMs) {
          lastMs = ms;
          lastIso = new Date(ms).toISOString();
        }
        resultAt = lastIso;
      }
      const statusText = text(values, single.status, 'status', where);
      const status = statusText ? (STATUS[statusText.toUpperCase()] ?? statusText.toLowerCase()) : 'final';
      const flagText = text(values, single.flags, 'flags', where);
      const flags = flagText ? flagText.split(/[\s,;|~^]+/).filter(Boolean) : [];
      const operator = text(values, single.operator, 'operator', where);
      const method = text(values, single.method, 'method', where);
      const level = text(values, single.control_level, 'control level', where);
      const mark = text(values, single.control, 'control mark', where);
      const isControl = (mark !== undefined && !NOT_CONTROL.has(mark.toLowerCase())) || (level !== undefined && level !== '');
      const lo = limit(values, single.reference_lo, 'reference low', where);
      const hi = limit(values, single.reference_hi, 'reference high', where);
      // Built key by key, not by spreading optional parts: this runs for every row of a million-row file.
      const draft = (analyte: string, value: number | string, unit: string | undefined): ResultDraft => {
        const r: ResultDraft = { instrument: opts.instrument, sampleId, analyte, value, flags, status, resultAt };
        if (unit) r.unit = unit;
        if (operator) r.operator = operator;
        if (method) r.method = method;
        if (lo !== undefined || hi !== undefined) {
          r.reference = {};
          if (lo !== undefined) r.reference.lo = lo;
          if (hi !== undefined) r.reference.hi = hi;
        }
        if (isControl) r.control = level ? { level } : {};
        if (raw !== undefined) r.raw = raw;
        return r;
      };
      if (!wide)
        return [
          draft(
            required(values, single.analyte!, 'analyte', where),
            valueOf(values, single.value!, where),
            text(values, single.unit, 'unit', where),
          ),
        ];
      const out: ResultDraft[] = [];
      for (const a of wide) {
        // An empty cell in a wide layout is an analyte not measured for this sample.
        const t = text(values, a.value, 'value', where);
        if ((t === undefined || t === '') && typeof values[a.value] !== 'number') continue;
        out.push(draft(a.analyte, valueOf(values, a.value, where), a.unit));
      }
      return out;
    },
  };
}
