// Result times as instrument software writes them: ISO 8601, or a pattern of the file's own
// (`YYYY/MM/DD HH:mm:ss`, `DD.MM.YYYY HH:mm`, `YYYY年MM月DD日 HH:mm`), read in a time zone. Only Intl
// is used: Node ships the IANA zone database.
import { instantOfWallClock, zoneOffset } from '../common/time-zone.js';

/** Tokens of a time pattern, longest first so `YYYY` is not read as two `YY`. */
const TOKENS = ['YYYY', 'YY', 'MM', 'M', 'DD', 'D', 'HH', 'H', 'mm', 'ss', 'SSS'] as const;
type Token = (typeof TOKENS)[number];
const TOKEN_RE: Record<Token, string> = {
  YYYY: '(\\d{4})',
  YY: '(\\d{2})',
  MM: '(\\d{2})',
  M: '(\\d{1,2})',
  DD: '(\\d{2})',
  D: '(\\d{1,2})',
  HH: '(\\d{2})',
  H: '(\\d{1,2})',
  mm: '(\\d{2})',
  ss: '(\\d{2})',
  SSS: '(\\d{1,9})',
};

/** ISO 8601 as files write it: `2026-12-03T10:20:00`, `2026-12-03 10:20:00.5`, with or without a zone. */
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Reads a time text into ms since the epoch; undefined when the text is not such a time. */
export type TimeReader = (text: string) => number | undefined;

/**
 * Checks a time format: `iso`, `epoch_s`, `epoch_ms`, or a pattern with YYYY, MM, DD, HH, mm and
 * optionally ss and SSS. Returns the problem, undefined when it is good.
 */
export function timeFormatProblem(format: string): string | undefined {
  if (format === 'iso' || format === 'epoch_s' || format === 'epoch_ms') return undefined;
  const tokens = tokensOf(format).filter((t): t is Token => (TOKENS as readonly string[]).includes(t));
  const has = (...ts: Token[]) => ts.some((t) => tokens.includes(t));
  const missing = [
    has('YYYY', 'YY') ? '' : 'YYYY',
    has('MM', 'M') ? '' : 'MM',
    has('DD', 'D') ? '' : 'DD',
    has('HH', 'H') ? '' : 'HH',
    has('mm') ? '' : 'mm',
  ].filter(Boolean);
  if (missing.length > 0) return `expected iso, epoch_s, epoch_ms or a pattern with ${missing.join(', ')} (such as YYYY/MM/DD HH:mm:ss)`;
  if (new Set(tokens).size !== tokens.length) return 'a token appears twice in the pattern';
  return undefined;
}

function tokensOf(format: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < format.length;) {
    const t = TOKENS.find((k) => format.startsWith(k, i));
    out.push(t ?? format[i]!);
    i += t ? t.length : 1;
  }
  return out;
}

/**
 * A reader of times written in `format`. A time without its own offset is wall-clock time in
 * `timeZone` (the machine's zone when undefined); an ISO time with `Z` or an offset keeps it.
 */
export function timeReader(format: string, timeZone: string | undefined): TimeReader {
  const wall = wallClock(timeZone);
  if (format === 'epoch_s' || format === 'epoch_ms') {
    const scale = format === 'epoch_s' ? 1000 : 1;
    return (text) => {
      // Decimal digits only (Number() also reads 0x1F and Infinity), and within a Date's range: a
      // time past it (1e20) has no ISO text, and would fail every pass instead of rejecting the file.
      const t = text.trim();
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return undefined;
      const ms = Math.round(Number(t) * scale);
      return Math.abs(ms) <= MAX_DATE_MS ? ms : undefined;
    };
  }
  if (format === 'iso') {
    return (text) => {
      const m = ISO.exec(text.trim());
      if (!m) return undefined;
      const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '0', zone] = m;
      const ms = Math.round(Number(`0.${frac}`) * 1000);
      if (zone === undefined) return wall(+y!, +mo!, +d!, +h, +mi, +s, ms);
      const utc = valid(+y!, +mo!, +d!, +h, +mi, +s) ? Date.UTC(+y!, +mo! - 1, +d!, +h, +mi, +s, ms) : undefined;
      if (utc === undefined) return undefined;
      if (zone === 'Z') return utc;
      const z = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone)!;
      // Offsets on Earth run from -12:00 to +14:00: +99:99 is not a zone, not 4 days off.
      if (Number(z[2]) > 14 || Number(z[3] ?? 0) > 59) return undefined;
      const offset = (Number(z[2]) * 60 + Number(z[3] ?? 0)) * 60_000;
      return z[1] === '+' ? utc - offset : utc + offset;
    };
  }
  const order: Token[] = [];
  const source = tokensOf(format)
    .map((t) => {
      if ((TOKENS as readonly string[]).includes(t)) {
        order.push(t as Token);
        return TOKEN_RE[t as Token];
      }
      // Any run of spaces matches any other: exports pad columns differently.
      return t === ' ' ? '\\s+' : t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  const re = new RegExp(`^${source}$`);
  // The group of each token (0: not in the pattern), found once.
  const at = (...ts: Token[]) => Math.max(0, ...ts.map((t) => order.indexOf(t) + 1));
  const [y4, y2, mo, d, h, mi, sec, frac] = [
    at('YYYY'),
    at('YY'),
    at('MM', 'M'),
    at('DD', 'D'),
    at('HH', 'H'),
    at('mm'),
    at('ss'),
    at('SSS'),
  ];
  return (text) => {
    const m = re.exec(text.trim());
    if (!m) return undefined;
    const year = y4 ? +m[y4]! : 2000 + +m[y2]!;
    const ms = frac ? Math.round(Number(`0.${m[frac]}`) * 1000) : 0;
    return wall(year, +m[mo]!, +m[d]!, +m[h]!, +m[mi]!, sec ? +m[sec]! : 0, ms);
  };
}

/** The largest time a Date holds (ms from the epoch, either way). */
const MAX_DATE_MS = 8.64e15;

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function valid(y: number, mo: number, d: number, h: number, mi: number, s: number): boolean {
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return false;
  const leap = mo === 2 && y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  return d <= DAYS[mo - 1]! + (leap ? 1 : 0);
}

/** Wall-clock time in a zone to an instant; undefined for a date that does not exist (2026-02-30). */
function wallClock(timeZone: string | undefined) {
  if (timeZone === undefined)
    return (y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number) =>
      valid(y, mo, d, h, mi, s) ? new Date(y, mo - 1, d, h, mi, s, ms).getTime() : undefined;
  // The zone's offset by hour: a file's rows share a few hours, and formatting is the costly part.
  const offsets = new Map<number, number>();
  const offsetAt = (instant: number): number => {
    const hour = Math.floor(instant / 3_600_000);
    let o = offsets.get(hour);
    if (o === undefined) {
      o = zoneOffset(timeZone, hour * 3_600_000);
      if (offsets.size > 10_000) offsets.clear();
      offsets.set(hour, o);
    }
    return o;
  };
  return (y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number) => {
    if (!valid(y, mo, d, h, mi, s)) return undefined;
    return instantOfWallClock(Date.UTC(y, mo - 1, d, h, mi, s, ms), offsetAt);
  };
}
