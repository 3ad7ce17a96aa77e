// The daily report built from a real store file and rendered: its figures against a day worked out by
// hand (tests/unit/gateway/report/fixture.ts), its day in the site's time zone, its escaping and its
// bound on a busy day.
import { readFileSync, statSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { buildDailyReport, LISTED, renderDailyReport } from '../../../../gateway/report/daily.js';
import { writeDailyReport } from '../../../../gateway/report/files.js';
import { openStoreReadOnly, storeSource } from '../../../../gateway/report/source.js';
import type { GatewayStore } from '../../../../gateway/store.js';
import { DAY, event, fillDay, journalAlarms, newStore, sh, site } from './fixture.js';

const open: GatewayStore[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});

function filled() {
  const s = newStore();
  open.push(s.store);
  fillDay(s.store);
  return s;
}

const NOW = sh('06:00:00', '2026-03-09');

describe('the daily report of a day worked out by hand', () => {
  it('has the common members of gw.report.daily.v1 and the day in Shanghai time', () => {
    const { store } = filled();
    const r = buildDailyReport(storeSource(store), site(), '2026-03-08', NOW);
    expect(r).toMatchObject({
      schema: 'gw.report.daily.v1',
      eventId: 'report-test-site-2026-03-08',
      gatewayId: 'gw-test',
      site: 'test-site',
      date: '2026-03-08',
      timezone: 'Asia/Shanghai',
      generatedAt: '2026-03-08T22:00:00.000Z',
      from: '2026-03-07T16:00:00.000Z',
      to: '2026-03-08T16:00:00.000Z',
      notes: [],
    });
    expect(r).not.toHaveProperty('seq');
  });

  it('counts alarms and their handling times', () => {
    const { store } = filled();
    const a = buildDailyReport(storeSource(store), site(), '2026-03-08', NOW).alarms;
    // Raised this day: i1 (red), i2 (orange), i3 (yellow), i5 (red, the last millisecond); not i4 (the day
    // before) nor i6 (the next day); p1 and a1 are counted apart.
    expect(a.raised).toBe(4);
    expect(a.byLevel).toEqual({ blue: 0, yellow: 1, orange: 1, red: 2 });
    // i1 to i5 (i4 carried over); 3 acknowledged (i1, i2, i3); 3 cleared (i4, i1, i2).
    expect(a.total).toBe(5);
    expect(a.acknowledged).toBe(3);
    expect(a.cleared).toBe(3);
    // Every hazard event of the day: i4 cleared, i1 x4, i2 x3, i3 x2, i5 = 11; p1 x2 and a1 = 3 more.
    expect(a.events).toBe(14);
    // To acknowledge: 150 s, 30 s, 1200 s; sorted 30, 150, 1200: median (rank 2 of 3) 150 s, 90th (rank 3) 1200 s.
    expect(a.timeToAck).toEqual({ count: 3, medianMs: 150_000, p90Ms: 1_200_000, maxMs: 1_200_000 });
    // To clear: 600 s (i1), 300 s (i2); sorted 300, 600: median (rank 1 of 2) 300 s, 90th (rank 2) 600 s.
    expect(a.timeToClear).toEqual({ count: 2, medianMs: 300_000, p90Ms: 600_000, maxMs: 600_000 });
    expect(a.byEquipment).toEqual([{ equipment: 'B-07', raised: 4, byLevel: { blue: 0, yellow: 1, orange: 1, red: 2 } }]);
    // drum-level-low-low twice (i1, i5), then the others once each.
    expect(a.top.map((t) => [t.rule, t.count])).toEqual([
      ['drum-level-low-low', 2],
      ['steam-pressure-high', 1],
      ['flue-o2-low', 1],
    ]);
    // The highest level first, then in time order: i4 (red, carried over, its first event 00:05), i1, i5, i2, i3.
    expect(a.incidents.map((i) => i.incidentId)).toEqual(['i4', 'i1', 'i5', 'i2', 'i3']);
    expect(a.incidents[0]).toMatchObject({ carriedOver: true, clearedAt: new Date(sh('00:05:00')).toISOString() });
    expect(a.incidents[0]).not.toHaveProperty('timeToClearMs');
    expect(a.incidents[1]).toMatchObject({
      level: 'red',
      raisedAt: new Date(sh('08:00:00')).toISOString(),
      acknowledgedBy: 'operator-1',
      timeToAckMs: 150_000,
      timeToClearMs: 600_000,
      closedAt: new Date(sh('08:10:00')).toISOString(),
      carriedOver: false,
    });
  });

  it('lists predicted and administrative warnings apart, and the administrative dates as of the day', () => {
    const { store } = filled();
    const r = buildDailyReport(storeSource(store), site(), '2026-03-08', NOW);
    expect(r.predicted).toMatchObject({ raised: 1, total: 1, byLevel: { yellow: 1 } });
    expect(r.predicted.incidents[0]).toMatchObject({ incidentId: 'p1', origin: 'predicted', timeToClearMs: 60_000 });
    expect(r.administrative).toMatchObject({ raised: 1, total: 1, byLevel: { blue: 1 } });
    // Inspection due 2026-03-01: 7 days overdue. Maintenance 2026-02-01 + 15 days = 2026-02-16: 20 days
    // overdue. Certificate until 2026-03-20: 12 days, within its 30 days' warning.
    expect(r.administrative.dates).toEqual([
      { equipment: 'B-07', kind: 'maintenance', due: '2026-02-16', days: -20, status: 'overdue' },
      { equipment: 'B-07', kind: 'inspection', due: '2026-03-01', days: -7, status: 'overdue' },
      { equipment: 'B-07', kind: 'certificate', due: '2026-03-20', days: 12, status: 'due' },
    ]);
  });

  it('has the risk levels and their changes, near misses, availability and lab results', () => {
    const { store } = filled();
    const r = buildDailyReport(storeSource(store), site(), '2026-03-08', NOW);
    // Blue since 03-05; yellow 07:59, red 08:00:01, yellow 09:00.
    expect(r.risk.equipment).toEqual([{ id: 'B-07', startLevel: 'blue', endLevel: 'yellow', maxLevel: 'red', changes: 3 }]);
    expect(r.risk.changes.map((c) => `${c.from}>${c.to}`)).toEqual(['blue>yellow', 'yellow>red', 'red>yellow']);
    expect(r.nearMisses.total).toBe(2);
    expect(r.nearMisses.byEquipment).toEqual([{ equipment: 'B-07', count: 2 }]);
    expect(r.nearMisses.list[0]).toMatchObject({ point: 'drum_level', limit: -50, closest: -47, direction: 'below' });
    // (100 + 90) / 2 hourly summaries.
    expect(r.availability).toEqual([{ equipment: 'B-07', percent: 95, hours: 2 }]);
    // r1, r2, r3 this day (r4 the next); r2 flagged H (N is normal).
    expect(r.lab.total).toBe(3);
    expect(r.lab.flaggedTotal).toBe(1);
    expect(r.lab.instruments).toEqual([
      {
        instrument: 'LAB-1',
        results: 3,
        analytes: [
          { analyte: 'Fe', unit: 'mg/L', count: 2, flagged: 1, min: 1.2, max: 3.4 },
          { analyte: 'pH', unit: '', count: 1, flagged: 0, min: 7.1, max: 7.1 },
        ],
      },
    ]);
  });

  it('reads the same from the store file opened read-only, which it leaves as it was', () => {
    const { store } = filled();
    const before = statSync(store.file).mtimeMs;
    const ro = openStoreReadOnly(store.file);
    try {
      expect(buildDailyReport(ro, site(), '2026-03-08', NOW)).toEqual(buildDailyReport(storeSource(store), site(), '2026-03-08', NOW));
    } finally {
      ro.close();
    }
    expect(statSync(store.file).mtimeMs).toBe(before);
  });
});

describe('a level held for long', () => {
  it('starts the day with the level of the last change before it, however old, from the store and from the file read-only', () => {
    const { store } = newStore();
    open.push(store);
    const s = site();
    const id = s.equipment[0]!.id;
    // Yellow since 40 days (an overdue inspection, say), with an older change before it.
    store.appendJournal([
      {
        ts: sh('09:00:00') - 90 * DAY,
        kind: 'risk',
        equipment: id,
        body: { equipment: id, change: 1, level: 'orange', previousLevel: 'blue', score: 12 },
      },
      {
        ts: sh('10:00:00') - 40 * DAY,
        kind: 'risk',
        equipment: id,
        body: { equipment: id, change: 2, level: 'yellow', previousLevel: 'orange', score: 8 },
      },
    ]);
    const mine = buildDailyReport(storeSource(store), s, '2026-03-08', NOW).risk.equipment.find((e) => e.id === id);
    expect(mine).toMatchObject({ startLevel: 'yellow', endLevel: 'yellow', maxLevel: 'yellow' });
    const ro = openStoreReadOnly(store.file);
    try {
      expect(buildDailyReport(ro, s, '2026-03-08', NOW).risk.equipment.find((e) => e.id === id)).toEqual(mine);
    } finally {
      ro.close();
    }
  });
});

describe('the day in the site time zone', () => {
  it('the same store gives New York its own day: 23 hours on the day daylight saving time starts', () => {
    const { store } = newStore();
    open.push(store);
    // 2026-03-08 in New York runs from 05:00 UTC to 04:00 UTC the next day.
    journalAlarms(store, [
      event(Date.parse('2026-03-08T04:59:59.999Z'), 'before', 'raised', 'red'),
      event(Date.parse('2026-03-08T05:00:00.000Z'), 'first', 'raised', 'red'),
      event(Date.parse('2026-03-09T03:59:59.999Z'), 'last', 'raised', 'red'),
      event(Date.parse('2026-03-09T04:00:00.000Z'), 'after', 'raised', 'red'),
    ]);
    const ny = buildDailyReport(storeSource(store), site('America/New_York'), '2026-03-08', NOW);
    expect([ny.from, ny.to]).toEqual(['2026-03-08T05:00:00.000Z', '2026-03-09T04:00:00.000Z']);
    expect(ny.alarms.incidents.map((i) => i.incidentId)).toEqual(['first', 'last']);
    // In Shanghai the first two fall on the 8th (12:59:59.999 and 13:00), the last two on the 9th (11:59:59.999 and 12:00).
    const shanghai = buildDailyReport(storeSource(store), site(), '2026-03-08', NOW);
    expect(shanghai.alarms.incidents.map((i) => i.incidentId)).toEqual(['before', 'first']);
  });
});

describe('the page', () => {
  it('shows what peers and site files wrote as text, never as markup', () => {
    const { store } = filled();
    const html = renderDailyReport(buildDailyReport(storeSource(store), site(), '2026-03-08', NOW));
    // No script at all: an equipment name, an alarm message and a sample id each tried to add one.
    expect(html).not.toMatch(/<script|<img/i);
    expect(html).toContain('&#60;script&#62;alert(&#34;name&#34;)&#60;/script&#62; boiler');
    expect(html).toContain('Steam pressure &#60;script&#62;alert(&#34;msg&#34;)&#60;/script&#62;');
    expect(html).toContain('&#60;img src=x onerror=alert(1)&#62;');
    // Times in the site's time zone; the titles in English and Chinese; print styles.
    expect(html).toContain('<title>Daily safety report 安全日报 — test-site — 2026-03-08</title>');
    expect(html).toContain('2026-03-08 08:02:30');
    expect(html).toMatch(/Near misses <span class="zh">未遂事件<\/span>/);
    expect(html).toContain('@media print');
  });

  it('a day of 100,000 alarm events: every one counted, 200 incidents listed and the rest named', () => {
    const { store, dataDir } = newStore();
    open.push(store);
    const events = [];
    const t0 = sh('00:00:00');
    // 50,000 incidents of 2 events each, raised every 1.7 s across the day, acknowledged 10 s later.
    for (let i = 0; i < 50_000; i++) {
      const t = t0 + i * 1700;
      const message = `Level ${i} ${'x'.repeat(100)}`;
      events.push(event(t, `n${i}`, 'raised', i % 10 === 0 ? 'red' : 'yellow', { rule: `r${i % 25}`, message }));
      events.push(event(t + 10_000, `n${i}`, 'acknowledged', i % 10 === 0 ? 'red' : 'yellow', { rule: `r${i % 25}` }));
    }
    journalAlarms(store, events);
    const started = performance.now();
    const r = buildDailyReport(storeSource(store), site(), '2026-03-08', NOW);
    const html = renderDailyReport(r);
    const ms = performance.now() - started;
    expect(r.alarms.events).toBe(100_000);
    expect(r.alarms.raised).toBe(50_000);
    expect(r.alarms.byLevel).toEqual({ blue: 0, yellow: 45_000, orange: 0, red: 5_000 });
    expect(r.alarms.timeToAck).toMatchObject({ count: 50_000, medianMs: 10_000 });
    expect(r.alarms.incidents).toHaveLength(LISTED);
    expect(r.alarms.top).toHaveLength(10);
    expect(html).toContain(`and ${50_000 - LISTED} more alarms`);
    const files = writeDailyReport(dataDir, r);
    const sizes = { html: statSync(files.html).size, json: statSync(files.json).size };
    // Bounded: well under a megabyte each (the events alone are over 15 MB).
    expect(sizes.html).toBeLessThan(1_000_000);
    expect(sizes.json).toBeLessThan(1_000_000);
    expect(JSON.parse(readFileSync(files.json, 'utf8'))).toEqual(r);
    console.log(`100,000 alarm events: built and rendered in ${Math.round(ms)} ms; page ${sizes.html} B, JSON ${sizes.json} B`);
  }, 60_000);
});
