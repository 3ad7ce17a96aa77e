// A store as a gateway leaves it after a day: alarm events, risk changes, near misses and hourly
// summaries in the journal, lab results captured; and a site with administrative dates. The figures
// the report tests expect are worked out by hand from what is written here.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SiteConfig } from '../../../../config/schema.js';
import type { AlarmEvent, AlarmOrigin, Level } from '../../../../rules/types.js';
import { GatewayStore, STORE_FILE } from '../../../../gateway/store.js';
import { testSite } from '../../../helpers/site.js';

export const DAY = 86_400_000;
export const SHANGHAI = 'Asia/Shanghai';
/** Local time in Shanghai (UTC+8) on the reported day, 2026-03-08, as epoch ms. */
export const sh = (hhmmss: string, date = '2026-03-08') => Date.parse(`${date}T${hhmmss}+08:00`);

export function newStore(): { store: GatewayStore; dataDir: string } {
  const dataDir = mkdtempSync(join(tmpdir(), 'gw-report-'));
  return { store: new GatewayStore(join(dataDir, STORE_FILE)), dataDir };
}

/** The test site (one boiler, B-07) in `timeZone`, with a hostile name and administrative dates. */
export function site(timeZone = SHANGHAI, extra: Record<string, unknown> = {}): SiteConfig {
  const config = testSite();
  return {
    ...config,
    gateway: { ...config.gateway, timezone: timeZone } as SiteConfig['gateway'],
    equipment: config.equipment.map((e) => ({
      ...e,
      name: '<script>alert("name")</script> boiler',
      inspection: { next: '2026-03-01', warn_before: 30 * DAY },
      maintenance: { last: '2026-02-01', interval: 15 * DAY, warn_before: 3 * DAY },
      certificate: { valid_until: '2026-03-20', warn_before: 30 * DAY },
      ...extra,
    })),
  };
}

let n = 0;
export function event(
  ts: number,
  incidentId: string,
  type: AlarmEvent['type'],
  level: Level,
  o: { rule?: string; equipment?: string; message?: string; by?: string; origin?: AlarmOrigin } = {},
): AlarmEvent {
  return {
    eventId: `ev-${++n}`,
    incidentId,
    type,
    state: type === 'raised' ? 'active_unacknowledged' : type === 'acknowledged' ? 'active_acknowledged' : 'normal',
    level,
    site: 'test-site',
    equipment: o.equipment ?? 'B-07',
    rule: o.rule ?? 'drum-level-low-low',
    message: o.message ?? 'Drum level low-low',
    ts,
    ...(o.by ? { by: o.by } : {}),
    ...(o.origin ? { origin: o.origin } : {}),
  };
}

export function journalAlarms(store: GatewayStore, events: AlarmEvent[]): void {
  store.appendJournal(events.map((e) => ({ ts: e.ts, kind: 'alarm' as const, equipment: e.equipment, body: e })));
}

export function addResult(
  store: GatewayStore,
  capturedAt: number,
  r: {
    id: string;
    instrument?: string;
    sampleId?: string;
    analyte?: string;
    value: number | string | null;
    unit?: string;
    flags?: string[];
  },
): void {
  const body = {
    resultId: r.id,
    instrument: r.instrument ?? 'LAB-1',
    sampleId: r.sampleId ?? 'S-1',
    analyte: r.analyte ?? 'Fe',
    value: r.value,
    unit: r.unit ?? 'mg/L',
    flags: r.flags ?? [],
    status: 'final',
    resultAt: new Date(capturedAt).toISOString(),
  };
  store.db
    .prepare('INSERT INTO result (result_id, instrument, body, captured_at) VALUES (?, ?, ?, ?)')
    .run(r.id, body.instrument, JSON.stringify(body), capturedAt);
}

/**
 * The day 2026-03-08 in Shanghai, and a little before and after it:
 * - i1 red drum-level-low-low: raised 08:00:00, acknowledged 08:02:30 by operator-1 (150 s), cleared 08:10:00 (600 s), closed.
 * - i2 orange steam-pressure-high: raised 09:00:00, acknowledged 09:00:30 (30 s), cleared 09:05:00 (300 s).
 * - i3 yellow flue-o2-low: raised 10:00:00, acknowledged 10:20:00 (1200 s), not cleared.
 * - i4 red drum-level-low-low raised the day before (23:50), cleared 00:05 this day: carried over, no handling times.
 * - i5 red drum-level-low-low raised 23:59:59.999 (the day's last millisecond); i6 at 00:00 the next day (not this day).
 * - p1 a predicted yellow warning raised 07:59 and cleared 08:00; a1 an administrative blue warning raised at 00:00:00.000.
 */
export function fillDay(store: GatewayStore): void {
  const prev = (t: string) => sh(t, '2026-03-07');
  journalAlarms(store, [
    event(prev('23:50:00'), 'i4', 'raised', 'red'),
    event(sh('00:00:00'), 'a1', 'raised', 'blue', {
      rule: 'inspection.overdue',
      message: 'Periodic inspection overdue since 2026-03-01',
      origin: 'administrative',
    }),
    event(sh('00:05:00'), 'i4', 'cleared', 'red'),
    event(sh('07:59:00'), 'p1', 'raised', 'yellow', {
      rule: 'drum-level-low-low.predicted',
      message: 'Drum level reaches low-low in 20 s',
      origin: 'predicted',
    }),
    event(sh('08:00:00'), 'p1', 'cleared', 'yellow', { rule: 'drum-level-low-low.predicted', origin: 'predicted' }),
    event(sh('08:00:00'), 'i1', 'raised', 'red'),
    event(sh('08:02:30'), 'i1', 'acknowledged', 'red', { by: 'operator-1' }),
    event(sh('08:10:00'), 'i1', 'cleared', 'red'),
    event(sh('08:10:00'), 'i1', 'closed', 'red'),
    event(sh('09:00:00'), 'i2', 'raised', 'orange', {
      rule: 'steam-pressure-high',
      message: 'Steam pressure <script>alert("msg")</script>',
    }),
    event(sh('09:00:30'), 'i2', 'acknowledged', 'orange', { rule: 'steam-pressure-high' }),
    event(sh('09:05:00'), 'i2', 'cleared', 'orange', { rule: 'steam-pressure-high' }),
    event(sh('10:00:00'), 'i3', 'raised', 'yellow', { rule: 'flue-o2-low', message: 'Flue O2 low' }),
    event(sh('10:20:00'), 'i3', 'acknowledged', 'yellow', { rule: 'flue-o2-low' }),
    event(sh('23:59:59.999'), 'i5', 'raised', 'red'),
    event(sh('00:00:00', '2026-03-09'), 'i6', 'raised', 'red'),
  ]);
  store.appendJournal([
    // The level B-07 started the day with: its last change, days before.
    {
      ts: sh('12:00:00', '2026-03-05'),
      kind: 'risk',
      equipment: 'B-07',
      body: { equipment: 'B-07', level: 'blue', previousLevel: 'yellow', score: 4 },
    },
    { ts: sh('07:59:00'), kind: 'risk', equipment: 'B-07', body: { equipment: 'B-07', level: 'yellow', previousLevel: 'blue', score: 6 } },
    { ts: sh('08:00:01'), kind: 'risk', equipment: 'B-07', body: { equipment: 'B-07', level: 'red', previousLevel: 'yellow', score: 16 } },
    { ts: sh('09:00:00'), kind: 'risk', equipment: 'B-07', body: { equipment: 'B-07', level: 'yellow', previousLevel: 'red', score: 8 } },
    // Near misses: two this day, one the day after.
    {
      ts: sh('11:00:00'),
      kind: 'near_miss',
      equipment: 'B-07',
      body: {
        equipment: 'B-07',
        point: 'drum_level',
        rule: 'drum-level-low',
        limit: -50,
        direction: 'below',
        closest: -47,
        enteredAt: sh('10:59:40'),
        ts: sh('11:00:00'),
        level: 'yellow',
      },
    },
    {
      ts: sh('15:30:00'),
      kind: 'near_miss',
      equipment: 'B-07',
      body: {
        equipment: 'B-07',
        point: 'steam_pressure',
        rule: 'steam-pressure-high',
        limit: 1.2,
        direction: 'above',
        closest: 1.17,
        enteredAt: sh('15:29:00'),
        ts: sh('15:30:00'),
        level: 'orange',
      },
    },
    {
      ts: sh('00:00:01', '2026-03-09'),
      kind: 'near_miss',
      equipment: 'B-07',
      body: { equipment: 'B-07', point: 'drum_level', closest: -48, limit: -50 },
    },
    // Hourly summaries: availability 100 % and 90 %, a mean of 95 %.
    { ts: sh('01:00:00'), kind: 'risk_summary', body: { equipment: [{ id: 'B-07', availability: 1 }] } },
    { ts: sh('02:00:00'), kind: 'risk_summary', body: { equipment: [{ id: 'B-07', availability: 0.9 }] } },
  ]);
  addResult(store, sh('09:30:00'), { id: 'r1', value: 1.2 });
  addResult(store, sh('09:31:00'), { id: 'r2', value: 3.4, flags: ['H'], sampleId: '<img src=x onerror=alert(1)>' });
  addResult(store, sh('09:32:00'), { id: 'r3', analyte: 'pH', value: 7.1, unit: '', flags: ['N'] });
  addResult(store, sh('00:00:00', '2026-03-09'), { id: 'r4', value: 9.9, flags: ['H'] });
}
