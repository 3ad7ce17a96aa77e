// The risk plugin alone (with auth in front), reading a small risk service of the test's own: the
// levels highest first, one equipment's history over a range that is checked, the alarm KPIs of a
// window, the daily report as a page with its own policy, and a site without risk named as such.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSite } from '../../../../config/load.js';
import {
  historyRange,
  MAX_RANGE_MS,
  riskPlugin,
  thinHistory,
  type KpiReport,
  type RiskApi,
  type RiskAssessment,
  type RiskHistoryPoint,
  type RiskOptions,
} from '../../../../gateway/http/plugins/risk.js';
import type { Level } from '../../../../rules/types.js';
import { as, pluginApp, type PluginApp } from './plugin-app.js';

const config = parseSite(
  `version: 1
gateway: { id: gw-1, site: s1 }
connections: [{ id: sim, type: sim }]
equipment:
  - { id: B-1, category: boiler, connection: sim, model: steam-boiler, points: [{ name: drum_level }] }
  - { id: L-1, category: boiler, connection: sim, model: steam-boiler, points: [{ name: drum_level }] }
  - { id: C-1, category: boiler, connection: sim, model: steam-boiler, points: [{ name: drum_level }] }
`,
  { env: {} },
);

const assessment = (equipment: string, level: Level, score: number, points = score): RiskAssessment => ({
  equipment,
  category: 'boiler',
  level,
  score,
  likelihood: 2,
  consequence: 4,
  points,
  factors: [{ factor: 'alarm_orange', value: 1, weight: 40, cap: 100, points: 40, detail: 'drum-level-low' }],
  computedLevel: level,
  since: 1_699_999_000_000,
  computedAt: 1_700_000_000_000,
});

/** A risk service holding fixed assessments, a history per equipment, and what it was asked. */
class FixedRisk implements RiskApi {
  asked: unknown[][] = [];
  constructor(
    private readonly list: RiskAssessment[],
    private readonly histories: Record<string, RiskHistoryPoint[]> = {},
  ) {}
  assessments() {
    return this.list;
  }
  assessment(id: string) {
    return this.list.find((a) => a.equipment === id);
  }
  history(id: string, from: number, to: number) {
    this.asked.push(['history', id, from, to]);
    return (this.histories[id] ?? []).filter((p) => p.ts >= from && p.ts <= to);
  }
  kpi(windowMs: number, equipment?: string): KpiReport {
    this.asked.push(['kpi', windowMs, equipment]);
    return {
      windowMs,
      from: 1_700_000_000_000 - windowMs,
      to: 1_700_000_000_000,
      operators: 1,
      annunciated: 12,
      predicted: 1,
      administrative: 0,
      perOperatorPer10Min: 2,
      floodPercent: 0,
      peakPer10Min: 5,
      standing: 1,
      stale: 0,
      chattering: 1,
      fleeting: 2,
      shelvedNow: 0,
      shelveDurations: { count: 0 },
      timeToAcknowledge: { count: 4, median: 30_000, p90: 90_000 },
      top: [{ key: 'B-1/drum-level-low', equipment: 'B-1', count: 7 }],
      priority: { low: 75, medium: 16.7, high: 8.3, target: { low: 80, medium: 15, high: 5 } },
      dropped: 0,
    };
  }
}

/** The same service that also keeps daily reports, by date. */
class ReportingRisk extends FixedRisk {
  constructor(private readonly reports: Record<string, string>) {
    super([]);
  }
  report(date: string) {
    return date in this.reports ? { html: this.reports[date]! } : undefined;
  }
}

const NOW = 1_700_000_000_000;
let t: PluginApp;
afterEach(() => t.app.close());
const start = async (risk: RiskOptions['risk']) => {
  t = await pluginApp((app) => app.register(riskPlugin, { config, risk, now: () => NOW }));
  return t;
};
const get = (url: string) => t.app.inject({ url, headers: as('viewer') });

describe('risk plugin', () => {
  it('lists every assessment highest score first (equal scores by points, then id), with the site and the time', async () => {
    await start(
      new FixedRisk([
        assessment('L-1', 'blue', 2),
        assessment('B-1', 'red', 16),
        assessment('C-1', 'yellow', 6, 7),
        assessment('A-9', 'yellow', 6, 7),
      ]),
    );
    const r = await get('/api/risk');
    expect(r.statusCode).toBe(200);
    const body = r.json() as { ts: number; site: string; equipment: RiskAssessment[] };
    expect([body.ts, body.site]).toEqual([NOW, 's1']);
    expect(body.equipment.map((a) => [a.equipment, a.level, a.score])).toEqual([
      ['B-1', 'red', 16],
      ['A-9', 'yellow', 6],
      ['C-1', 'yellow', 6],
      ['L-1', 'blue', 2],
    ]);
    // The reasons come whole.
    expect(body.equipment[0]!.factors).toEqual([
      { factor: 'alarm_orange', value: 1, weight: 40, cap: 100, points: 40, detail: 'drum-level-low' },
    ]);
    // Anyone with a token may read; nobody without.
    expect((await t.app.inject({ url: '/api/risk' })).json()).toMatchObject({ code: 'GW_HTTP_UNAUTHORIZED' });
  });

  it("gives one equipment's assessment and its history of the last 24 h, or of the range asked in ms or ISO 8601", async () => {
    const history = [
      { ts: NOW - 30 * 3_600_000, level: 'blue' as const, score: 1 },
      { ts: NOW - 3_600_000, level: 'yellow' as const, score: 6 },
      { ts: NOW - 60_000, level: 'red' as const, score: 16 },
    ];
    const risk = new FixedRisk([assessment('B-1', 'red', 16)], { 'B-1': history });
    await start(risk);
    const day = await get('/api/risk/B-1');
    expect(day.statusCode).toBe(200);
    expect(day.json()).toMatchObject({
      equipment: 'B-1',
      from: NOW - 86_400_000,
      to: NOW,
      current: { level: 'red' },
      history: history.slice(1),
    });
    const iso = await get(`/api/risk/B-1?from=${new Date(NOW - 40 * 3_600_000).toISOString()}&to=${NOW - 2 * 3_600_000}`);
    expect(iso.json()).toMatchObject({ history: history.slice(0, 1) });
    expect(risk.asked.at(-1)).toEqual(['history', 'B-1', NOW - 40 * 3_600_000, NOW - 2 * 3_600_000]);
    // An equipment of the site not assessed yet has no current level, and no history.
    expect((await get('/api/risk/L-1')).json()).toMatchObject({ current: null, history: [] });
  });

  it('refuses an unknown equipment with 404, and a range it cannot read or too long with 400 GW_HTTP_BAD_RANGE', async () => {
    const risk = new FixedRisk([assessment('B-1', 'red', 16)]);
    await start(risk);
    const unknown = await get('/api/risk/X-1');
    expect([unknown.statusCode, unknown.json()]).toEqual([404, { error: 'no equipment X-1', code: 'GW_HTTP_NOT_FOUND' }]);
    const cases: Array<[string, RegExp]> = [
      ['from=yesterday', /^from: expected epoch milliseconds or an ISO 8601 time, got "yesterday"$/],
      ['to=2026-13-45', /^to: expected/],
      // Past what a Date holds: refused, not a failure when the answer names the time.
      ['from=9999999999999999&to=0', /^from: expected/],
      [`from=${NOW}&to=${NOW - 1}`, /^from \(2023-11-14T22:13:20.000Z\) is after to/],
      [`from=${NOW - MAX_RANGE_MS - 1}`, /^the range is over 31 days; ask for it in parts$/],
    ];
    for (const [query, error] of cases) {
      const r = await get(`/api/risk/B-1?${query}`);
      expect([query, r.statusCode, r.json()]).toEqual([query, 400, { error: expect.stringMatching(error), code: 'GW_HTTP_BAD_RANGE' }]);
    }
    // Parameters it does not take are refused by the schema, with their code.
    const extra = await get('/api/risk/B-1?max_points=1');
    expect([extra.statusCode, extra.json()]).toEqual([
      400,
      { error: expect.stringMatching(/max_points/), code: 'GW_HTTP_INVALID_REQUEST' },
    ]);
    expect(risk.asked).toEqual([]);
  });

  it('thins a long history to max_points, keeping each span peak and the last point', async () => {
    const history: RiskHistoryPoint[] = Array.from({ length: 5000 }, (_, k) => ({
      ts: NOW - 5000_000 + k * 1000,
      level: 'blue',
      score: 1,
    }));
    history[1234]!.score = 15;
    history[1234]!.level = 'red';
    history[4999]!.score = 3;
    await start(new FixedRisk([], { 'B-1': history }));
    const r = (await get('/api/risk/B-1?max_points=100')).json() as { history: RiskHistoryPoint[]; thinned: boolean };
    expect(r.thinned).toBe(true);
    expect(r.history.length).toBeLessThanOrEqual(100);
    expect(r.history.length).toBeGreaterThan(90);
    expect(r.history).toContainEqual(history[1234]);
    expect(r.history.at(-1)).toEqual(history[4999]);
    expect(r.history.map((p) => p.ts)).toEqual([...r.history.map((p) => p.ts)].sort((a, b) => a - b));
    expect(thinHistory(history.slice(0, 3), 5)).toEqual(history.slice(0, 3));
    expect(historyRange({}, NOW)).toEqual({ from: NOW - 86_400_000, to: NOW });
  });

  it('gives the alarm KPIs of the window asked, for the site or one equipment, and refuses other windows', async () => {
    const risk = new FixedRisk([]);
    await start(risk);
    const site = await get('/api/kpi');
    expect(site.statusCode).toBe(200);
    expect(site.json()).toMatchObject({
      window: '1h',
      windowMs: 3_600_000,
      annunciated: 12,
      timeToAcknowledge: { median: 30_000, p90: 90_000 },
    });
    expect(site.json()).not.toHaveProperty('equipment');
    const one = await get('/api/kpi?window=10m&equipment=B-1');
    expect(one.json()).toMatchObject({
      window: '10m',
      equipment: 'B-1',
      windowMs: 600_000,
      top: [{ key: 'B-1/drum-level-low', equipment: 'B-1', count: 7 }],
    });
    expect(risk.asked).toEqual([
      ['kpi', 3_600_000, undefined],
      ['kpi', 600_000, 'B-1'],
    ]);
    expect((await get('/api/kpi?window=2h')).json()).toMatchObject({
      code: 'GW_HTTP_INVALID_REQUEST',
      error: expect.stringMatching(/window/),
    });
    expect((await get('/api/kpi?equipment=X-1')).json()).toEqual({ error: 'no equipment X-1', code: 'GW_HTTP_NOT_FOUND' });
  });

  it('serves a daily report as HTML under a policy without scripts; a date without one, or a gateway that makes none, is 404 GW_HTTP_NO_REPORT', async () => {
    await start(new ReportingRisk({ '2026-12-02': '<!doctype html><title>Daily report</title>' }));
    const r = await get('/api/reports/daily/2026-12-02');
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['content-security-policy']).toMatch(
      /^default-src 'none'; style-src 'unsafe-inline';.*frame-ancestors 'none'.*sandbox$/,
    );
    expect(r.body).toBe('<!doctype html><title>Daily report</title>');
    const missing = await get('/api/reports/daily/2026-12-01');
    expect([missing.statusCode, missing.json()]).toEqual([404, { error: 'no daily report for 2026-12-01', code: 'GW_HTTP_NO_REPORT' }]);
    expect((await get('/api/reports/daily/2026-02-30')).json()).toEqual({
      error: 'date: 2026-02-30 is not a date of the calendar',
      code: 'GW_HTTP_INVALID_REQUEST',
    });
    expect((await get('/api/reports/daily/yesterday')).json()).toMatchObject({ code: 'GW_HTTP_INVALID_REQUEST' });
    await t.app.close();
    await start(new FixedRisk([]));
    expect((await get('/api/reports/daily/2026-12-02')).json()).toEqual({
      error: 'this gateway makes no daily report',
      code: 'GW_HTTP_NO_REPORT',
    });
  });

  it('answers every route with 404 GW_HTTP_NO_RISK when the site judges no risk, and reads a service made after the API', async () => {
    let service: RiskApi | undefined = undefined;
    await start(() => service);
    for (const url of ['/api/risk', '/api/risk/B-1', '/api/kpi', '/api/reports/daily/2026-12-02']) {
      const r = await get(url);
      expect([url, r.statusCode, r.json()]).toEqual([
        url,
        404,
        { error: 'this site judges no risk (risk.enabled is false)', code: 'GW_HTTP_NO_RISK' },
      ]);
    }
    service = new FixedRisk([assessment('B-1', 'orange', 9)]);
    expect((await get('/api/risk')).json()).toMatchObject({ equipment: [{ equipment: 'B-1', level: 'orange' }] });
  });

  it('answers random queries on its routes with a 2xx or a 4xx with a code, never a 5xx', async () => {
    await start(new ReportingRisk({ '2026-12-02': '<p>report</p>' }));
    const value = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.integer().map(String),
      fc.double().map(String),
      fc.date({ noInvalidDate: false }).map((d) => (Number.isFinite(d.getTime()) ? d.toISOString() : 'Invalid Date')),
      fc.constantFrom('9999999999999999', '8640000000000001', '0', '-1', '1e400', '2026-02-30', '2026-12-02T25:00:00Z'),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/api/risk', '/api/risk/B-1', '/api/risk/X-1', '/api/kpi', '/api/reports/daily/'),
        fc.dictionary(fc.constantFrom('from', 'to', 'max_points', 'window', 'equipment', 'x'), value, { maxKeys: 3 }),
        value,
        async (path, query, tail) => {
          const url = `${path}${path.endsWith('/') ? encodeURIComponent(tail) : ''}?${new URLSearchParams(query).toString()}`;
          const r = await get(url);
          expect([url, r.statusCode < 500]).toEqual([url, true]);
          if (r.statusCode >= 400) expect(r.json()).toEqual({ error: expect.any(String), code: expect.stringMatching(/^GW_HTTP_/) });
        },
      ),
      { numRuns: 300 },
    );
  }, 60_000);
});
