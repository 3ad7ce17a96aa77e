import { describe, expect, it } from 'vitest';
import { adminConditions, adminSpecsOf, localDate, type AdminEquipment } from '../../../rules/admin.js';

const DAY = 86_400_000;
const lift: AdminEquipment = {
  id: 'L-1',
  name: 'Lift 1',
  inspection: { next: '2026-12-31', warn_before: 30 * DAY },
  maintenance: { last: '2026-11-20', interval: 15 * DAY, warn_before: 3 * DAY },
  certificate: { valid_until: '2027-06-30', warn_before: 30 * DAY },
};

/** The rule ids whose condition is true. */
function due(e: AdminEquipment, now: number, tz: string, inUse = false) {
  return adminConditions(e, now, tz, () => inUse)
    .filter((c) => c.value)
    .map((c) => c.key);
}

describe('administrative dates', () => {
  it('gives three rules per kind, external and administrative, with what is due and when', () => {
    const specs = adminSpecsOf(lift);
    expect(specs.map((s) => `${s.id} ${s.level}`)).toEqual([
      'inspection.due-soon blue',
      'inspection.overdue yellow',
      'inspection.overdue-in-use orange',
      'maintenance.due-soon blue',
      'maintenance.overdue yellow',
      'maintenance.overdue-in-use orange',
      'certificate.expires-soon blue',
      'certificate.expired yellow',
      'certificate.expired-in-use orange',
    ]);
    expect(specs.every((s) => s.condition.kind === 'external' && s.origin === 'administrative' && s.equipment === 'L-1')).toBe(true);
    // Maintenance: last 2026-11-20 + 15 days = 2026-12-05.
    expect(specs[3]!.message).toBe('Maintenance due on 2026-12-05');
    expect(specs[5]!.message).toBe('Maintenance overdue since 2026-12-05 and the equipment is in use');
    expect(specs[7]!.message).toBe('Certificate of use expired on 2027-06-30');
  });

  it('gives every condition of every kind, at most one true per kind', () => {
    const now = Date.parse('2026-12-04T12:00:00Z');
    const all = adminConditions(lift, now, 'UTC', () => false);
    expect(all).toHaveLength(9);
    // 2026-12-04: inspection due within 30 days (2026-12-31 - 30 = 2026-12-01), maintenance due within 3 days, certificate not yet.
    expect(all.filter((c) => c.value).map((c) => c.key)).toEqual(['L-1/inspection.due-soon', 'L-1/maintenance.due-soon']);
  });

  it('is due at the end of the day, in the site time zone', () => {
    const e: AdminEquipment = { id: 'B-1', inspection: { next: '2026-12-05', warn_before: 0 } };
    // 2026-12-05 23:59:59 in Shanghai (UTC+8) is 15:59:59 UTC: still due today, not overdue.
    expect(due(e, Date.parse('2026-12-05T15:59:59Z'), 'Asia/Shanghai')).toEqual(['B-1/inspection.due-soon']);
    // One second later it is 2026-12-06 there: overdue.
    expect(due(e, Date.parse('2026-12-05T16:00:00Z'), 'Asia/Shanghai')).toEqual(['B-1/inspection.overdue']);
    expect(due(e, Date.parse('2026-12-05T16:00:00Z'), 'Asia/Shanghai', true)).toEqual(['B-1/inspection.overdue-in-use']);
    // The same instant is still 2026-12-05 (11:00) in New York: due, not overdue.
    expect(localDate(Date.parse('2026-12-05T16:00:00Z'), 'America/New_York')).toBe('2026-12-05');
    expect(due(e, Date.parse('2026-12-05T16:00:00Z'), 'America/New_York')).toEqual(['B-1/inspection.due-soon']);
    // New York's midnight (UTC-5 in December) is 05:00 UTC the next day.
    expect(due(e, Date.parse('2026-12-06T04:59:59Z'), 'America/New_York')).toEqual(['B-1/inspection.due-soon']);
    expect(due(e, Date.parse('2026-12-06T05:00:00Z'), 'America/New_York')).toEqual(['B-1/inspection.overdue']);
  });

  it('counts calendar days across a daylight-saving change', () => {
    // New York springs forward on 2027-03-14 (that day has 23 hours). Due 2027-03-20, warned 7 days before: from 2027-03-13.
    const e: AdminEquipment = { id: 'C-1', certificate: { valid_until: '2027-03-20', warn_before: 7 * DAY } };
    // 2027-03-12 23:30 EST (UTC-5) = 2027-03-13 04:30 UTC: not yet.
    expect(due(e, Date.parse('2027-03-13T04:30:00Z'), 'America/New_York')).toEqual([]);
    // 2027-03-13 00:30 EST = 05:30 UTC: expires soon.
    expect(due(e, Date.parse('2027-03-13T05:30:00Z'), 'America/New_York')).toEqual(['C-1/certificate.expires-soon']);
    // 2027-03-20 23:30 EDT (UTC-4) = 2027-03-21 03:30 UTC: the last valid day still.
    expect(due(e, Date.parse('2027-03-21T03:30:00Z'), 'America/New_York')).toEqual(['C-1/certificate.expires-soon']);
    // 2027-03-21 00:30 EDT = 04:30 UTC: expired (had the offset stayed EST, it would still be the 20th).
    expect(due(e, Date.parse('2027-03-21T04:30:00Z'), 'America/New_York')).toEqual(['C-1/certificate.expired']);
  });

  it('asks whether the equipment is in use only when something is overdue', () => {
    let asked = 0;
    adminConditions(lift, Date.parse('2026-10-01T00:00:00Z'), 'UTC', () => {
      asked++;
      return true;
    });
    expect(asked).toBe(0);
  });
});
