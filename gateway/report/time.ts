// Calendar dates in the site's time zone. A daily report covers one calendar day as the people on
// site live it: from local midnight to the next local midnight, which is 23 or 25 hours long on the
// days daylight saving time starts or ends. Only Intl is used: Node ships the IANA zone database.
import type { SiteConfig } from '../../config/schema.js';
import { wallClock } from '../../drivers/common/time-zone.js';

/** `YYYY-MM-DD`, a calendar date. */
export const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** The site's IANA time zone: `gateway.timezone` when the site file sets it, else the system's. */
export function siteTimeZone(config: Pick<SiteConfig, 'gateway'>): string {
  // Read without relying on the key's type: the site file gains it with issue 19's schema.
  const zone = (config.gateway as { timezone?: unknown }).timezone;
  return typeof zone === 'string' && zone !== '' ? zone : Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** The wall-clock parts of an instant in a zone, written as dates and times are (`07`, `2026`). */
function partsOf(ms: number, timeZone: string): Record<'year' | 'month' | 'day' | 'hour' | 'minute' | 'second', string> {
  const p = wallClock(timeZone, ms);
  const two = (n: number) => String(n).padStart(2, '0');
  return { year: String(p.year), month: two(p.month), day: two(p.day), hour: two(p.hour), minute: two(p.minute), second: two(p.second) };
}

/** The calendar date of an instant in a zone. */
export function localDate(ms: number, timeZone: string): string {
  const p = partsOf(ms, timeZone);
  return `${p.year}-${p.month}-${p.day}`;
}

/** `HH:MM` of an instant in a zone. */
export function localTime(ms: number, timeZone: string): string {
  const p = partsOf(ms, timeZone);
  return `${p.hour}:${p.minute}`;
}

/** `YYYY-MM-DD HH:MM:SS` of an instant in a zone, for a page read by people on site. */
export function localDateTime(ms: number, timeZone: string): string {
  const p = partsOf(ms, timeZone);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** Whether `text` is a real calendar date written `YYYY-MM-DD` (not 2026-02-30). */
export function isDate(text: string): boolean {
  const m = DATE.exec(text);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.getUTCFullYear() === Number(m[1]) && d.getUTCMonth() === Number(m[2]) - 1 && d.getUTCDate() === Number(m[3]);
}

/** The date `days` calendar days after `date` (before, when negative). */
export function addDays(date: string, days: number): string {
  const m = DATE.exec(date);
  if (!m) throw new Error(`Not a date: "${date}"`);
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + days)).toISOString().slice(0, 10);
}

/** Whole calendar days from `from` to `to` (negative when `to` is earlier). */
export function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}

/**
 * The first instant (ms) whose local date in the zone is `date` or later. Searched rather than
 * computed from an offset: in a zone that skips midnight when daylight saving time starts, the day
 * begins at 01:00, and a search finds that where an offset sum would not.
 */
export function startOfDay(date: string, timeZone: string): number {
  const noonUtc = Date.parse(`${date}T12:00:00Z`);
  if (Number.isNaN(noonUtc)) throw new Error(`Not a date: "${date}"`);
  // Every zone's offset is within ±14 h, so local midnight lies within a day and a half of UTC noon.
  let lo = noonUtc - 36 * 3_600_000;
  let hi = noonUtc + 36 * 3_600_000;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (localDate(mid, timeZone) >= date) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** The day's bounds in the zone, [from, to) in ms. */
export function dayBounds(date: string, timeZone: string): { from: number; to: number } {
  return { from: startOfDay(date, timeZone), to: startOfDay(addDays(date, 1), timeZone) };
}

/**
 * The instant of `HH:MM` on `date` in the zone; a time that does not exist that day (skipped by
 * daylight saving time) is the first instant after the gap.
 */
export function instantOf(date: string, hhmm: string, timeZone: string): number {
  const { from, to } = dayBounds(date, timeZone);
  // Wall-clock time grows through the day except in the hour an autumn change repeats: a time in
  // it is one of its two instants, which is all a daily schedule needs (it runs once per date).
  let lo = from - 1;
  let hi = to;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    const p = partsOf(mid, timeZone);
    const local = `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
    if (local >= `${date} ${hhmm}`) hi = mid;
    else lo = mid;
  }
  return hi;
}
