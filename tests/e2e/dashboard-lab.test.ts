// The dashboard's lab panel in a real browser (Debian's Chromium through playwright-core), under the
// dashboard's Content-Security-Policy, on the HTTP API with a lab service of the test's own: each
// instrument's latest results with their QC status (pending in amber), a Levey-Jennings chart of each
// control series with its SD lines and a rejected run in red whose title names the rule, a new result
// shown at once when a lab alarm arrives on the live stream, and the Chinese labels. The API itself
// is read over the same socket: a token is needed, and a limit out of bounds is refused with its code.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { chromium, type Browser, type Locator } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSite } from '../../config/load.js';
import type { LabResult } from '../../drivers/common/result.js';
import type { AlarmService } from '../../gateway/alarms/service.js';
import type { LabApi, QcSeriesView } from '../../gateway/http/plugins/lab.js';
import { createHttpApi, hashToken } from '../../gateway/http/server.js';
import { createMetrics } from '../../gateway/metrics.js';
import type { Pipeline } from '../../gateway/pipeline.js';
import type { AlarmEvent } from '../../rules/types.js';
import { ROOT } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';

const TOKEN = 'viewer-token-0123456789abcdef';
const MINUTE = 60_000;

/** A result of CHEM-1, `minutesAgo` before now. */
function result(sampleId: string, analyte: string, value: number, minutesAgo: number, extra: Partial<LabResult> = {}): LabResult {
  return {
    resultId: `CHEM-1:${sampleId}:${analyte}`,
    instrument: 'CHEM-1',
    sampleId,
    analyte,
    value,
    unit: 'mmol/L',
    flags: [],
    status: 'final',
    resultAt: new Date(Date.now() - minutesAgo * MINUTE).toISOString(),
    ...extra,
  };
}

/** Control runs at the z-scores given, one a minute up to now, their verdicts and rules as given. */
function runs(level: string, mean: number, sd: number, marks: Array<[number, 'accepted' | 'warning' | 'rejected', string[]]>) {
  const now = Date.now();
  return marks.map(([z, status, rules], k) => ({
    ts: now - (marks.length - k) * MINUTE,
    sampleId: `QC${level}-${k + 1}`,
    value: Number((mean + z * sd).toFixed(3)),
    z,
    status,
    rules,
  }));
}

/** Each element's attributes, in the page's order (one attribute: its values alone). */
async function attributes(list: Locator, ...names: string[]): Promise<unknown[]> {
  const all = await Promise.all((await list.all()).map((el) => Promise.all(names.map((name) => el.getAttribute(name)))));
  return names.length === 1 ? all.map(([value]) => value) : all;
}

describe('the lab panel in a browser', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  it("shows each instrument's latest results with their QC status and a Levey-Jennings chart of each control, with a rejected run", async () => {
    const port = await freePort();
    const site = parseSite(
      `version: 1
gateway: { id: gw-1, site: s1 }
http: { port: ${port}, tokens: [{ name: viewer-user, role: viewer, hash: "${hashToken(TOKEN)}" }] }
connections: [{ id: astm-1, type: astm-tcp, port: 4001 }]
equipment:
  - { id: CHEM-1, name: Chemistry analyzer, category: lab_analyzer, connection: astm-1 }
`,
      { env: {} },
    );
    // Newest last, as the lab service keeps them: the 2-2s rejection holds GLU, so the patient
    // sample after it is pending.
    const results: LabResult[] = [
      // A control level with "$&", which String.replace reads as a pattern.
      result('QC1-3', 'GLU', 5.3, 40, { control: { level: '$&' } }),
      result('S-100', 'ALT', 31, 30, { flags: ['N'] }),
      result('QC2-6', 'GLU', 11.58, 12, { control: { level: '2' }, qc: { status: 'rejected', level: '2', rules: ['2-2s'], z: 2.4 } }),
      result('S-101', 'GLU', 7.4, 5, {
        flags: ['H'],
        reference: { lo: 3.9, hi: 6.1 },
        qc: { status: 'pending', rule: '2-2s', since: Date.now() - 12 * MINUTE },
      }),
    ];
    const glu2: QcSeriesView = {
      instrument: 'CHEM-1',
      analyte: 'GLU',
      level: '2',
      unit: 'mmol/L',
      target: { mean: 10.5, sd: 0.45 },
      state: 'rejected',
      rule: '2-2s',
      points: runs('2', 10.5, 0.45, [
        [0.3, 'accepted', []],
        [-0.8, 'accepted', []],
        [1.1, 'accepted', []],
        [2.2, 'warning', ['1-2s']],
        [-0.2, 'accepted', []],
        [2.4, 'rejected', ['2-2s']],
      ]),
    };
    const glu1: QcSeriesView = {
      instrument: 'CHEM-1',
      analyte: 'GLU',
      level: '1',
      unit: 'mmol/L',
      target: { mean: 5.2, sd: 0.2 },
      state: 'in-control',
      points: runs('1', 5.2, 0.2, [
        [0.5, 'accepted', []],
        [-0.4, 'accepted', []],
      ]),
    };
    // A control's sample id with a right-to-left override, which would reorder its tooltip's value.
    glu1.points[1]!.sampleId = 'QC1-\u202e2';
    const lab: LabApi = {
      results: { recent: (_instrument, limit) => results.slice(-(limit ?? results.length)) },
      qc: { series: () => [glu2, glu1] },
    };
    // The alarm events the live stream carries: the test raises a lab alarm through it.
    let raise: (events: AlarmEvent[]) => void = () => {};
    const api = createHttpApi({
      config: site,
      http: site.http!,
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
      pipeline: { onBatch: () => {}, status: () => undefined } as unknown as Pipeline,
      alarms: { onEvents: (l: (events: AlarmEvent[]) => void) => void (raise = l), active: () => [] } as unknown as AlarmService,
      outbox: () => undefined,
      ready: () => ({}),
      reportsOnChange: () => false,
      dataDir: mkdtempSync(join(tmpdir(), 'gw-dash-lab-')),
      lab,
    });
    await api.start();
    cleanup.push(() => api.stop());

    // The API over the socket: a token is needed, and a limit past the bound is refused with its code.
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/api/lab/results`)).status).toBe(401);
    const tooMany = await fetch(`${base}/api/lab/results?limit=501`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect([tooMany.status, await tooMany.json()]).toEqual([
      400,
      { error: 'querystring/limit must be <= 500', code: 'GW_HTTP_INVALID_REQUEST' },
    ]);

    const browser: Browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking'],
    });
    cleanup.push(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
    });
    // The page's clock, paused below, so that only the live stream can make the panel read again.
    await page.clock.install();
    await page.goto(`${base}/`);
    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    // Read in the browser, given as text: it runs there, and this file's types do not describe it.
    const style = (selector: string, property: string) =>
      page.evaluate(`getComputedStyle(document.querySelector(${JSON.stringify(selector)})).${property}`);

    // The latest results of the instrument, newest first, under its name.
    const table = page.locator('#lab-results table[data-instrument="CHEM-1"]');
    await table.waitFor({ timeout: 10_000 });
    expect(await table.locator('caption').textContent()).toBe('Chemistry analyzer (CHEM-1)');
    const rows = table.locator('tbody tr');
    expect(await attributes(rows, 'data-result')).toEqual(['CHEM-1:S-101:GLU', 'CHEM-1:QC2-6:GLU', 'CHEM-1:S-100:ALT', 'CHEM-1:QC1-3:GLU']);
    const cells = async (k: number) => (await rows.nth(k).locator('td').allTextContents()).slice(1);
    expect(await cells(0)).toEqual(['S-101', 'GLU', '7.4', 'mmol/L', 'H', 'QC pending · 2-2s']);
    expect(await cells(1)).toEqual(['QC2-6 (control level 2)', 'GLU', '11.58', 'mmol/L', '', 'control rejected · 2-2s']);
    expect(await cells(2)).toEqual(['S-100', 'ALT', '31', 'mmol/L', 'N', '']);
    // Pending in amber; a flagged value marked.
    const pending = rows.nth(0).locator('.qc-badge');
    expect(await pending.getAttribute('data-qc')).toBe('pending');
    expect(await style('#lab-results tr[data-result="CHEM-1:S-101:GLU"] .qc-badge', 'backgroundColor')).toBe('rgb(217, 119, 6)');
    expect(await rows.nth(0).locator('td.v').getAttribute('class')).toBe('v flagged');

    // A chart of each control series, by analyte and level, with the mean and the 1, 2 and 3 SD lines.
    const charts = page.locator('#lab-qc figure.lj');
    expect(await attributes(charts, 'data-series', 'data-state')).toEqual([
      ['CHEM-1/GLU/1', 'in-control'],
      ['CHEM-1/GLU/2', 'rejected'],
    ]);
    const chart = page.locator('#lab-qc figure[data-series="CHEM-1/GLU/2"]');
    expect(await chart.locator('figcaption').textContent()).toBe(
      'Chemistry analyzer (CHEM-1) · GLU · level 2rejected · 2-2smean 10.5, SD 0.45 mmol/L · 6 runs',
    );
    const svg = chart.locator('svg');
    expect([await svg.getAttribute('role'), await svg.getAttribute('aria-label')]).toEqual([
      'img',
      'Levey-Jennings chart of Chemistry analyzer (CHEM-1) · GLU · level 2: 6 runs, rejected (2-2s)',
    ]);
    expect(await svg.locator('line').count()).toBe(7);
    expect(await svg.locator('text').allTextContents()).toEqual(['−3s', '−2s', '−1s', 'x̄', '+1s', '+2s', '+3s']);
    // Each run a dot, left to right; the rejected one red, above the +2 SD line, its title naming the rule.
    const dots = svg.locator('circle');
    expect(await attributes(dots, 'data-status')).toEqual(['accepted', 'accepted', 'accepted', 'warning', 'accepted', 'rejected']);
    const rejected = svg.locator('circle[data-status="rejected"]');
    expect(await style('#lab-qc figure[data-series="CHEM-1/GLU/2"] circle[data-status="rejected"]', 'fill')).toBe('rgb(220, 38, 38)');
    const yOf = async (selector: string, attribute: string) => Number(await svg.locator(selector).getAttribute(attribute));
    const y = await yOf('circle[data-status="rejected"]', 'cy');
    expect(y).toBeLessThan(await yOf('line[data-sd="+2"]', 'y1'));
    expect(y).toBeGreaterThan(await yOf('line[data-sd="+3"]', 'y1'));
    expect(await rejected.locator('title').textContent()).toMatch(/^QC2-6 · 11\.58 mmol\/L · z \+2\.40 · .+ · control rejected · 2-2s$/);
    expect(await dots.nth(1).locator('title').textContent()).toMatch(/^QC2-2 · 10\.14 mmol\/L · z -0\.80 · /);
    // Isolated, the override reorders its own text only: the value 5.12 reads 5.12.
    expect(await page.locator('#lab-qc figure[data-series="CHEM-1/GLU/1"] circle').nth(1).locator('title').textContent()).toMatch(
      /^\u2068QC1-\u202e2\u2069 · 5\.12 mmol\/L · z -0\.40 · /,
    );
    expect(await table.locator('tr[data-result="CHEM-1:QC1-3:GLU"] td').nth(1).textContent()).toBe('QC1-3 (control level $&)');
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    await page.locator('#lab-panel').screenshot({ path: join(ROOT, 'test-artifacts', 'dashboard-lab.png') });

    // A lab alarm on the live stream: the panel reads the results again at once, not at its next poll
    // (which never comes: the page's timers are paused from here on).
    await expect.poll(() => page.locator('#conn').getAttribute('data-state'), { timeout: 10_000 }).toBe('on');
    await page.clock.pauseAt(Number(await page.evaluate('Date.now()')) + 100);
    results.push(result('QC2-7', 'GLU', 10.6, 0, { control: { level: '2' }, qc: { status: 'accepted', level: '2', z: 0.2 } }));
    results[3] = { ...results[3]!, qc: { status: 'passed' } };
    raise([
      {
        eventId: 'e-1',
        incidentId: 'i-1',
        type: 'raised',
        state: 'active_unacknowledged',
        level: 'yellow',
        site: 's1',
        equipment: 'CHEM-1',
        rule: 'qc-rejected',
        message: 'QC rejected: GLU level 2, rule 2-2s',
        ts: Date.now(),
        origin: 'lab',
      },
    ]);
    await expect.poll(() => rows.first().getAttribute('data-result'), { timeout: 10_000 }).toBe('CHEM-1:QC2-7:GLU');
    expect(await table.locator('tr[data-result="CHEM-1:S-101:GLU"] .qc-badge').textContent()).toBe('QC passed');

    // The Chinese labels.
    await page.click('#lang');
    await expect.poll(() => page.locator('#lab-title').textContent()).toBe('检验结果');
    expect(await table.locator('thead th').allTextContents()).toEqual(['时间', '样本号', '项目', '数值', '单位', '标记', '质控']);
    expect(await rows.first().locator('td').nth(1).textContent()).toBe('QC2-7 (质控品 水平 2)');
    expect(await chart.locator('figcaption .qc-badge').textContent()).toBe('失控 · 2-2s');
    expect(await rejected.locator('title').textContent()).toMatch(/ · 质控失控 · 2-2s$/);
    await page.locator('#lab-panel').screenshot({ path: join(ROOT, 'test-artifacts', 'dashboard-lab-zh.png') });
    expect(violations).toEqual([]);
  }, 60_000);
});
