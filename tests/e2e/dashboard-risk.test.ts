// The dashboard's risk board in a real browser (Debian's Chromium through playwright-core), under the
// dashboard's Content-Security-Policy. First on a running gateway with its simulated boiler: the risk
// service judges the boiler from its active alarm, the board shows it coloured by level, a click
// shows the reasons, and the Chinese toggle the Chinese labels. Then on the HTTP API with a risk
// service of the test's own, whose levels the test sets: the equipment listed highest risk first,
// the score's trend, the alarm KPIs of the window chosen marked against their targets, a level
// change followed, and the daily report opened as a page whose own style applies and script does not.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { chromium, type Browser } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSite } from '../../config/load.js';
import type { AlarmService } from '../../gateway/alarms/service.js';
import type { KpiReport, RiskApi, RiskAssessment } from '../../gateway/http/plugins/risk.js';
import { createHttpApi, hashToken } from '../../gateway/http/server.js';
import { createMetrics } from '../../gateway/metrics.js';
import type { Pipeline } from '../../gateway/pipeline.js';
import { createGateway } from '../../gateway/runtime.js';
import { REPORT_CSS } from '../../gateway/report/html.js';
import { ROOT } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';
import { httpSiteLines, testSite } from '../helpers/site.js';

const TOKEN = 'viewer-token-0123456789abcdef';
const HOUR = 3_600_000;

/** A risk service whose levels the test sets, with a history of each equipment's score. */
class SetRisk implements RiskApi {
  levels = new Map<string, RiskAssessment>();
  /** A report page with the real report's style block, and a script that must not run. */
  report(date: string) {
    return date === '2026-12-02'
      ? {
          html: `<!doctype html><title>Daily report ${date}</title><style>${REPORT_CSS}</style><h1>Daily report</h1><script>window.ran = 1</script>`,
        }
      : undefined;
  }
  set(equipment: string, level: RiskAssessment['level'], score: number, factors: RiskAssessment['factors']) {
    const now = Date.now();
    this.levels.set(equipment, {
      equipment,
      category: 'boiler',
      level,
      score,
      likelihood: Math.ceil(score / 4),
      consequence: 4,
      points: factors.reduce((sum, f) => sum + f.points, 0),
      factors,
      computedLevel: level,
      since: now - HOUR,
      computedAt: now,
    });
  }
  assessments() {
    return [...this.levels.values()];
  }
  assessment(id: string) {
    return this.levels.get(id);
  }
  history(id: string, from: number, to: number) {
    const a = this.levels.get(id);
    if (!a) return [];
    return [
      { ts: to - 20 * HOUR, level: 'blue' as const, score: 1 },
      { ts: to - 3 * HOUR, level: 'yellow' as const, score: 6 },
      { ts: to - HOUR, level: a.level, score: a.score },
    ].filter((p) => p.ts >= from);
  }
  kpi(windowMs: number): KpiReport {
    const now = Date.now();
    return {
      windowMs,
      from: now - windowMs,
      to: now,
      operators: 1,
      annunciated: windowMs > HOUR ? 40 : 12,
      predicted: 2,
      administrative: 1,
      perOperatorPer10Min: windowMs > HOUR ? 0.28 : 2.5,
      floodPercent: 0,
      peakPer10Min: 6,
      standing: 1,
      stale: 0,
      chattering: 1,
      fleeting: 0,
      shelvedNow: 0,
      shelveDurations: { count: 0 },
      timeToAcknowledge: { count: 3, median: 45_000, p90: 200_000 },
      top: [{ key: 'B-07/drum-level-low-low', equipment: 'B-07', count: 5 }],
      priority: { low: 66.7, medium: 25, high: 8.3, target: { low: 80, medium: 15, high: 5 } },
      dropped: 0,
    };
  }
}

describe('the risk board in a browser', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  const launch = async (): Promise<Browser> => {
    const b = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking'],
    });
    cleanup.push(() => b.close());
    return b;
  };

  it('shows the running boiler judged from its active alarm, its reasons on a click, and the Chinese labels', async () => {
    const port = await freePort();
    const gw = createGateway(
      testSite({
        port: await freePort(),
        dataDir: mkdtempSync(join(tmpdir(), 'gw-dash-risk-')),
        extra: httpSiteLines(port, { viewer: TOKEN }),
      }),
      pino({ level: 'silent' }),
    );
    cleanup.push(() => gw.stop());
    await gw.start();
    // The boiler under pressure raises the site's orange rule, and the judge counts it.
    await expect.poll(() => gw.risk!.assessment('B-07')?.factors.map((f) => f.factor), { timeout: 15_000 }).toContain('alarm_orange');

    const page = await (await launch()).newPage({ viewport: { width: 1280, height: 900 } });
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
    });
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    const row = page.locator('#risk-board .risk-row[data-equipment="B-07"]');
    await row.waitFor({ timeout: 10_000 });
    // Coloured by the level the service gives.
    const level = gw.risk!.assessment('B-07')!.level;
    expect(await row.getAttribute('class')).toBe(`risk-row level-${level}`);
    expect(await row.locator('.badge').textContent()).toBe(
      { blue: 'low (blue)', yellow: 'moderate (yellow)', orange: 'high (orange)', red: 'major (red)' }[level],
    );

    await row.click();
    const orange = page.locator('#risk-factors tr[data-factor="alarm_orange"] td');
    await expect.poll(() => orange.first().textContent(), { timeout: 5000 }).toBe('Active orange alarms (pressure-present)');
    expect(await orange.nth(1).textContent()).toBe('1');
    await expect
      .poll(async () => (await page.locator('#risk-trend polyline').getAttribute('points')) ?? '', { timeout: 10_000 })
      .toMatch(/,/);

    await page.click('#lang');
    await expect.poll(() => page.locator('#risk-panel h2').first().textContent()).toBe('设备风险');
    expect(await orange.first().textContent()).toBe('橙色报警 (pressure-present)');
    expect(await page.locator('#risk-factors th').allTextContents()).toEqual(['因素', '数值', '分值']);
    expect(await row.locator('.badge').textContent()).toBe(
      { blue: '低风险（蓝）', yellow: '一般风险（黄）', orange: '较大风险（橙）', red: '重大风险（红）' }[level],
    );
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'test-artifacts', 'dashboard-risk-gateway-zh.png') });
    expect(violations).toEqual([]);
  }, 60_000);

  it('lists the equipment highest risk first, shows the reasons and trend on a click, the KPIs against their targets, and follows a change', async () => {
    const port = await freePort();
    const site = parseSite(
      `version: 1
gateway: { id: gw-1, site: s1 }
http: { port: ${port}, tokens: [{ name: viewer-user, role: viewer, hash: "${hashToken(TOKEN)}" }] }
connections: [{ id: sim, type: sim }]
equipment:
  - { id: B-07, name: Boiler 7, category: boiler, connection: sim, model: steam-boiler, points: [{ name: drum_level }] }
  - { id: B-08, category: boiler, connection: sim, model: steam-boiler, points: [{ name: drum_level }] }
  - { id: B-09, category: boiler, connection: sim, model: steam-boiler, points: [{ name: drum_level }] }
`,
      { env: {} },
    );
    const risk = new SetRisk();
    risk.set('B-08', 'blue', 2, [{ factor: 'near_misses', value: 1, weight: 2, cap: 20, points: 2 }]);
    risk.set('B-07', 'red', 16, [
      { factor: 'alarm_red', value: 1, weight: 100, cap: 100, points: 100, detail: 'drum-level-low-low' },
      { factor: 'predicted', value: 1, weight: 15, cap: 45, points: 15 },
      { factor: 'inspection_overdue', value: 0, weight: 20, cap: 20, points: 0 },
    ]);
    risk.set('B-09', 'yellow', 6, [{ factor: 'communication', value: 40, weight: 0.5, cap: 25, points: 20 }]);
    const api = createHttpApi({
      config: site,
      http: site.http!,
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
      pipeline: { onBatch: () => {}, status: () => undefined } as unknown as Pipeline,
      alarms: { onEvents: () => {}, active: () => [] } as unknown as AlarmService,
      outbox: () => undefined,
      ready: () => ({}),
      reportsOnChange: () => false,
      dataDir: mkdtempSync(join(tmpdir(), 'gw-dash-risk-')),
      risk,
    });
    await api.start();
    cleanup.push(() => api.stop());

    const browser = await launch();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
    });
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');

    // Highest risk first, each coloured by its level.
    const rows = page.locator('#risk-board .risk-row');
    const rowsBy = async (...names: string[]) =>
      Promise.all((await rows.all()).map((row) => Promise.all(names.map((name) => row.getAttribute(name)))));
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(3);
    expect(await rowsBy('data-equipment', 'class')).toEqual([
      ['B-07', 'risk-row level-red'],
      ['B-09', 'risk-row level-yellow'],
      ['B-08', 'risk-row level-blue'],
    ]);
    const red = page.locator('.risk-row[data-equipment="B-07"]');
    // Given as text: it runs in the browser, which this file's types do not describe.
    expect(await page.evaluate(`getComputedStyle(document.querySelector('.risk-row[data-equipment="B-07"]')).borderLeftColor`)).toBe(
      'rgb(220, 38, 38)',
    );
    expect(await red.locator('.badge').textContent()).toBe('major (red)');
    expect(await red.textContent()).toContain('Boiler 7 (B-07)');

    // A click shows the reasons that contributed, most points first, and the score's trend.
    await red.click();
    const factors = page.locator('#risk-factors tbody tr');
    await expect.poll(() => factors.count()).toBe(2);
    expect(await factors.allTextContents()).toEqual([
      'Active red alarms (drum-level-low-low)1100 (×100, ≤ 100)',
      'Predicted warnings115 (×15, ≤ 45)',
    ]);
    expect(await page.locator('#risk-detail-label').textContent()).toBe(
      'Boiler 7 · major (red) · risk index 16 = likelihood 4 × consequence 4',
    );
    const trend = page.locator('#risk-trend polyline');
    await expect
      .poll(async () => ((await trend.getAttribute('points')) ?? '').split(' ').length, { timeout: 10_000 })
      .toBeGreaterThanOrEqual(6);
    expect(await trend.getAttribute('class')).toBe('spark level-red');

    // The alarm KPIs of the window chosen, a figure over its target marked.
    const perOperator = page.locator('#kpi tr[data-kpi="perOperator"]');
    await expect.poll(() => perOperator.textContent()).toBe('Annunciated per operator per 10 min2.5≤ 1 (2)');
    expect(await perOperator.getAttribute('class')).toBe('over');
    expect(await page.locator('#kpi tr[data-kpi="ackTime"] td').nth(1).textContent()).toBe('45 s / 3 min 20 s');
    expect(await page.locator('#kpi-top li').allTextContents()).toEqual(['B-07/drum-level-low-low × 5']);
    await page.selectOption('#kpi-window', '24h');
    await expect.poll(() => perOperator.textContent()).toBe('Annunciated per operator per 10 min0.28≤ 1 (2)');
    expect(await perOperator.getAttribute('class')).toBe(null);

    // A level that changes is shown at the next poll, and the order follows.
    risk.set('B-08', 'orange', 12, [{ factor: 'standing', value: 2, weight: 5, cap: 15, points: 10 }]);
    await expect.poll(() => rowsBy('data-level'), { timeout: 10_000 }).toEqual([['red'], ['orange'], ['yellow']]);

    // The Chinese labels.
    await page.click('#lang');
    await expect.poll(() => page.locator('#risk-panel h2').first().textContent()).toBe('设备风险');
    expect(await red.locator('.badge').textContent()).toBe('重大风险（红）');
    expect(await factors.first().locator('td').first().textContent()).toBe('红色报警 (drum-level-low-low)');
    expect(await perOperator.locator('td').first().textContent()).toBe('每名操作员每 10 分钟报警数');
    expect(await page.locator('#kpi-window option:checked').textContent()).toBe('24 小时');
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'test-artifacts', 'dashboard-risk-zh.png') });
    expect(violations).toEqual([]);

    // The daily report opens as a page of its own: its inline style applies, its script does not run,
    // and it carries the dashboard's other security headers.
    const report = await fetch(`http://127.0.0.1:${port}/api/reports/daily/2026-12-02`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect([
      report.headers.get('x-frame-options'),
      report.headers.get('x-content-type-options'),
      report.headers.get('cache-control'),
    ]).toEqual(['DENY', 'nosniff', 'no-store']);
    const reportPage = await browser.newPage();
    await reportPage.setExtraHTTPHeaders({ authorization: `Bearer ${TOKEN}` });
    await reportPage.goto(`http://127.0.0.1:${port}/api/reports/daily/2026-12-02`);
    expect(await reportPage.title()).toBe('Daily report 2026-12-02');
    expect(await reportPage.evaluate(`getComputedStyle(document.querySelector('h1')).fontSize`)).toBe('22px');
    expect(await reportPage.evaluate('window.ran')).toBeUndefined();

    // From the dashboard: the date picked, the report opens in a tab of its own (a blob: page under
    // the dashboard's policy, which allows the report's style block by its hash and runs no script).
    await page.fill('#report-date', '2026-12-02');
    const [tab] = await Promise.all([page.waitForEvent('popup'), page.click('#report-open')]);
    await expect.poll(() => tab.url(), { timeout: 10_000 }).toMatch(/^blob:/);
    await tab.waitForLoadState();
    expect(await tab.title()).toBe('Daily report 2026-12-02');
    expect(await tab.evaluate(`getComputedStyle(document.querySelector('h1')).fontSize`)).toBe('22px');
    expect(await tab.evaluate('window.ran')).toBeUndefined();
    // A date with no report says so on the dashboard, and leaves no empty tab open.
    await page.fill('#report-date', '2026-11-30');
    const [empty] = await Promise.all([page.waitForEvent('popup'), page.click('#report-open')]);
    // The page is in Chinese since the toggle above.
    await expect.poll(() => page.locator('#report-error').textContent()).toBe('该日期没有保存的日报。');
    await expect.poll(() => empty.isClosed()).toBe(true);
  }, 60_000);
});
