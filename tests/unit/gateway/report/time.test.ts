// Calendar days in the site's time zone: where a daily report's day begins and ends.
import { describe, expect, it } from 'vitest';
import { addDays, dayBounds, instantOf, isDate, localDate, localTime, startOfDay } from '../../../../gateway/report/time.js';

const at = (iso: string) => Date.parse(iso);

describe('a calendar day in a time zone', () => {
  it('Asia/Shanghai (UTC+8, no daylight saving): the day begins at 16:00 UTC the day before', () => {
    const { from, to } = dayBounds('2026-03-08', 'Asia/Shanghai');
    expect(new Date(from).toISOString()).toBe('2026-03-07T16:00:00.000Z');
    expect(new Date(to).toISOString()).toBe('2026-03-08T16:00:00.000Z');
    // Around midnight there: one millisecond apart, two dates.
    expect(localDate(at('2026-03-07T15:59:59.999Z'), 'Asia/Shanghai')).toBe('2026-03-07');
    expect(localDate(at('2026-03-07T16:00:00.000Z'), 'Asia/Shanghai')).toBe('2026-03-08');
  });

  it('America/New_York: 23 hours on the day daylight saving time starts, 25 on the day it ends', () => {
    // 2026-03-08: 02:00 EST becomes 03:00 EDT.
    const spring = dayBounds('2026-03-08', 'America/New_York');
    expect(new Date(spring.from).toISOString()).toBe('2026-03-08T05:00:00.000Z');
    expect(new Date(spring.to).toISOString()).toBe('2026-03-09T04:00:00.000Z');
    expect((spring.to - spring.from) / 3_600_000).toBe(23);
    // 2026-11-01: 02:00 EDT becomes 01:00 EST.
    const autumn = dayBounds('2026-11-01', 'America/New_York');
    expect(new Date(autumn.from).toISOString()).toBe('2026-11-01T04:00:00.000Z');
    expect((autumn.to - autumn.from) / 3_600_000).toBe(25);
  });

  it('the same instant is a different date in Shanghai and New York', () => {
    const t = at('2026-03-08T02:00:00Z');
    expect(localDate(t, 'Asia/Shanghai')).toBe('2026-03-08');
    expect(localDate(t, 'America/New_York')).toBe('2026-03-07');
    expect(localTime(t, 'Asia/Shanghai')).toBe('10:00');
  });

  it('a day begins at its first instant in every zone, also where daylight saving time skips midnight', () => {
    // America/Santiago and America/Havana have moved their clocks at midnight; the others are plain.
    const zones = ['America/Santiago', 'America/Havana', 'Asia/Shanghai', 'Europe/London', 'Pacific/Kiritimati', 'Pacific/Pago_Pago'];
    for (const zone of zones) {
      for (let date = '2026-01-01'; date < '2027-01-01'; date = addDays(date, 1)) {
        const start = startOfDay(date, zone);
        expect(localDate(start, zone), `${zone} ${date}`).toBe(date);
        expect(localDate(start - 1, zone), `${zone} ${date}`).toBe(addDays(date, -1));
      }
    }
  });

  it('a time of day that daylight saving time skips is the first instant after the gap', () => {
    // 02:30 does not exist in New York on 2026-03-08: 03:00 EDT (07:00 UTC) follows 01:59:59 EST.
    expect(new Date(instantOf('2026-03-08', '02:30', 'America/New_York')).toISOString()).toBe('2026-03-08T07:00:00.000Z');
    expect(new Date(instantOf('2026-03-08', '06:00', 'Asia/Shanghai')).toISOString()).toBe('2026-03-07T22:00:00.000Z');
  });

  it('reads only real calendar dates', () => {
    expect(isDate('2026-02-28')).toBe(true);
    expect(isDate('2024-02-29')).toBe(true);
    for (const bad of ['2026-02-29', '2026-13-01', '2026-1-1', '20260301', '', 'yesterday']) expect(isDate(bad), bad).toBe(false);
  });
});
