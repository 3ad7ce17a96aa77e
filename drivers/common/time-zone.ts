// Time zones without a library: whether a name is one, and how far its wall clock is from UTC at an
// instant, which turns a wall-clock time read from an instrument (in the site's zone) into an instant.

/** True for a time zone name the runtime knows (IANA: `Asia/Shanghai`, `UTC`). */
export function isTimeZone(name: string): boolean {
  if (name.trim() === '') return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** The wall-clock fields of an instant in a zone (month 1-12, hour 0-23). One formatter per zone: making one costs far more than using it. */
export function wallClock(timeZone: string, at: number): Record<'year' | 'month' | 'day' | 'hour' | 'minute' | 'second', number> {
  let f = formats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formats.set(timeZone, f);
  }
  const p: Record<string, number> = {};
  for (const x of f.formatToParts(new Date(at))) if (x.type !== 'literal') p[x.type] = Number(x.value);
  return p as Record<'year' | 'month' | 'day' | 'hour' | 'minute' | 'second', number>;
}

/** How far a zone's wall clock is ahead of UTC at an instant, in ms. */
export function zoneOffset(timeZone: string, at: number): number {
  const p = wallClock(timeZone, at);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - (at - (((at % 1000) + 1000) % 1000));
}

/**
 * The instant of a wall-clock time in a zone, the wall clock given as if it were UTC
 * (`Date.UTC(y, mo, d, h, mi, s)`). The offset is taken at a first guess, then at the instant that
 * gives: right across a daylight-saving change.
 */
export function instantOfWallClock(wallAsUtc: number, offsetAt: (at: number) => number): number {
  return wallAsUtc - offsetAt(wallAsUtc - offsetAt(wallAsUtc));
}
