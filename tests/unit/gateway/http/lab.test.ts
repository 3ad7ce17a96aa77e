// The lab plugin alone (with auth in front), reading a lab service of the test's own: the latest
// results newest first and bounded, with their QC status and without the raw record; the control
// series in a stable order with their last runs; the queries it refuses, each with its code.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSite } from '../../../../config/load.js';
import type { LabResult } from '../../../../drivers/common/result.js';
import { labPlugin, MAX_RESULTS, type LabApi, type QcApi, type QcSeriesView } from '../../../../gateway/http/plugins/lab.js';
import { as, pluginApp, type PluginApp } from './plugin-app.js';

const config = parseSite(
  `version: 1
gateway: { id: gw-1, site: s1 }
connections: [{ id: astm-1, type: astm-tcp, port: 4001 }]
equipment:
  - { id: CHEM-1, category: lab_analyzer, connection: astm-1 }
  - { id: UTM-2, category: lab_analyzer, connection: astm-1 }
`,
  { env: {} },
);

const NOW = 1_700_000_000_000;

const result = (k: number, instrument = 'CHEM-1', extra: Partial<LabResult> = {}): LabResult => ({
  resultId: `${instrument}:${k}:GLU`,
  instrument,
  sampleId: `S-${k}`,
  analyte: 'GLU',
  value: 5 + k / 10,
  unit: 'mmol/L',
  flags: [],
  status: 'final',
  resultAt: new Date(NOW + k * 1000).toISOString(),
  raw: `OBX|1|NM|GLU||${5 + k / 10}|mmol/L`,
  ...extra,
});

/** A lab service holding fixed results (newest last, as the real one) and what it was asked. */
class FixedLab implements LabApi {
  asked: Array<[string | undefined, number | undefined]> = [];
  qc?: QcApi;
  constructor(private readonly list: LabResult[]) {}
  results = {
    recent: (instrument?: string, limit?: number) => {
      this.asked.push([instrument, limit]);
      const mine = this.list.filter((r) => instrument === undefined || r.instrument === instrument);
      return limit === undefined ? mine : mine.slice(-limit);
    },
  };
}

const series = (instrument: string, analyte: string, level: string, runs: number, extra: Partial<QcSeriesView> = {}): QcSeriesView => ({
  instrument,
  analyte,
  level,
  unit: 'mmol/L',
  target: { mean: 5.5, sd: 0.2 },
  state: 'in-control',
  points: Array.from({ length: runs }, (_, k) => ({
    ts: NOW + k * 60_000,
    sampleId: `QC${level}-${k}`,
    value: 5.5 + (k % 3) * 0.1,
    z: (k % 3) * 0.5,
    status: 'accepted' as const,
    rules: [],
  })),
  ...extra,
});

let t: PluginApp;
afterEach(() => t.app.close());
const start = async (lab: LabApi) => {
  t = await pluginApp((app) => app.register(labPlugin, { config, lab, now: () => NOW }));
  return t;
};
const get = (url: string) => t.app.inject({ url, headers: as('viewer') });

describe('lab plugin', () => {
  it('gives the latest results newest first, at most limit, with their QC status and without the raw record', async () => {
    const lab = new FixedLab([
      ...Array.from({ length: 5 }, (_, k) => result(k)),
      result(5, 'CHEM-1', { qc: { status: 'pending', rule: '2-2s', since: NOW } }),
      result(6, 'UTM-2', { control: { level: '2' }, qc: { status: 'rejected', level: '2', rules: ['1-3s'], z: -3.4 } }),
    ]);
    await start(lab);
    const r = await get('/api/lab/results');
    expect(r.statusCode).toBe(200);
    const body = r.json() as { ts: number; results: LabResult[] };
    expect(body.ts).toBe(NOW);
    expect(body.results.map((x) => x.sampleId)).toEqual(['S-6', 'S-5', 'S-4', 'S-3', 'S-2', 'S-1', 'S-0']);
    expect(body.results[0]).toEqual({
      resultId: 'UTM-2:6:GLU',
      instrument: 'UTM-2',
      sampleId: 'S-6',
      analyte: 'GLU',
      value: 5.6,
      unit: 'mmol/L',
      flags: [],
      status: 'final',
      resultAt: new Date(NOW + 6000).toISOString(),
      control: { level: '2' },
      qc: { status: 'rejected', level: '2', rules: ['1-3s'], z: -3.4 },
    });
    expect(body.results[1]!.qc).toEqual({ status: 'pending', rule: '2-2s', since: NOW });
    expect(lab.asked).toEqual([[undefined, 100]]);

    // One instrument, the newest `limit`.
    const one = (await get('/api/lab/results?instrument=CHEM-1&limit=2')).json() as { results: LabResult[] };
    expect(one.results.map((x) => x.resultId)).toEqual(['CHEM-1:5:GLU', 'CHEM-1:4:GLU']);
    expect(lab.asked.at(-1)).toEqual(['CHEM-1', 2]);
    // Even a service that gives more than asked is cut to the limit.
    lab.results.recent = () => Array.from({ length: 9 }, (_, k) => result(k));
    expect(((await get('/api/lab/results?limit=3')).json() as { results: LabResult[] }).results.map((x) => x.sampleId)).toEqual([
      'S-8',
      'S-7',
      'S-6',
    ]);
  });

  it("gives each instrument's newest results with per_instrument, so a busy instrument does not push a quiet one out", async () => {
    // UTM-2 reported twice, then CHEM-1 ten times.
    const lab = new FixedLab([result(0, 'UTM-2'), result(1, 'UTM-2'), ...Array.from({ length: 10 }, (_, k) => result(k + 2))]);
    await start(lab);
    const ids = async (query: string) =>
      ((await get(`/api/lab/results?${query}`)).json() as { results: LabResult[] }).results.map((x) => x.resultId);
    expect(await ids('limit=4')).toEqual(['CHEM-1:11:GLU', 'CHEM-1:10:GLU', 'CHEM-1:9:GLU', 'CHEM-1:8:GLU']);
    expect(await ids('per_instrument=3')).toEqual(['CHEM-1:11:GLU', 'CHEM-1:10:GLU', 'CHEM-1:9:GLU', 'UTM-2:1:GLU', 'UTM-2:0:GLU']);
    // Still at most `limit` in all.
    expect(await ids('per_instrument=3&limit=4')).toEqual(['CHEM-1:11:GLU', 'CHEM-1:10:GLU', 'CHEM-1:9:GLU', 'UTM-2:1:GLU']);
    expect(await ids('per_instrument=1&instrument=UTM-2')).toEqual(['UTM-2:1:GLU']);
    // Every result the service keeps is looked at.
    expect(lab.asked).toEqual([
      [undefined, 4],
      [undefined, MAX_RESULTS],
      [undefined, MAX_RESULTS],
      ['UTM-2', MAX_RESULTS],
    ]);
  });

  it('needs a token, and refuses a limit out of bounds, an empty or unknown instrument, each with its code', async () => {
    const lab = new FixedLab([result(1)]);
    await start(lab);
    for (const url of ['/api/lab/results', '/api/lab/qc']) {
      const anonymous = await t.app.inject({ url });
      expect([url, anonymous.statusCode, anonymous.json()]).toEqual([
        url,
        401,
        { error: 'a Bearer token is needed (Authorization: Bearer <token>)', code: 'GW_HTTP_UNAUTHORIZED' },
      ]);
    }
    const cases: Array<[string, RegExp]> = [
      ['/api/lab/results?limit=0', /limit must be >= 1/],
      [`/api/lab/results?limit=${MAX_RESULTS + 1}`, new RegExp(`limit must be <= ${MAX_RESULTS}`)],
      ['/api/lab/results?limit=ten', /limit must be integer/],
      ['/api/lab/results?limit=1.5', /limit must be integer/],
      ['/api/lab/results?instrument=', /instrument must NOT have fewer than 1 characters/],
      [`/api/lab/results?instrument=${'x'.repeat(201)}`, /instrument must NOT have more than 200 characters/],
      ['/api/lab/results?per_instrument=0', /per_instrument must be >= 1/],
      ['/api/lab/qc?runs=0', /runs must be >= 1/],
      ['/api/lab/qc?runs=1001', /runs must be <= 1000/],
    ];
    for (const [url, error] of cases) {
      const r = await get(url);
      expect([url, r.statusCode, r.json()]).toEqual([url, 400, { error: expect.stringMatching(error), code: 'GW_HTTP_INVALID_REQUEST' }]);
    }
    for (const url of ['/api/lab/results?instrument=X-1', '/api/lab/qc?instrument=X-1']) {
      const r = await get(url);
      expect([url, r.statusCode, r.json()]).toEqual([url, 404, { error: 'no equipment X-1', code: 'GW_HTTP_NOT_FOUND' }]);
    }
    // Nothing refused reached the service.
    expect(lab.asked).toEqual([]);
  });

  it('gives each control series by instrument, analyte and level with its last runs, and none without QC', async () => {
    const lab = new FixedLab([]);
    await start(lab);
    // A site that evaluates no control samples has no series.
    expect((await get('/api/lab/qc')).json()).toEqual({ ts: NOW, series: [] });

    const asked: Array<string | undefined> = [];
    const rejected = series('CHEM-1', 'GLU', '2', 3, { state: 'rejected', rule: '1-3s' });
    rejected.points[2] = { ts: NOW + 120_000, sampleId: 'QC2-2', value: 6.3, z: 4, status: 'rejected', rules: ['1-3s'] };
    const all = [
      series('UTM-2', 'Rm', '1', 2),
      series('CHEM-1', 'GLU', '3', 0, { state: 'no-data' }),
      rejected,
      series('CHEM-1', 'ALT', '1', 150),
    ];
    // Read at each request: a QC service handed over after the API was made is seen.
    lab.qc = {
      series: (instrument) => (asked.push(instrument), all.filter((s) => instrument === undefined || s.instrument === instrument)),
    };
    const r = await get('/api/lab/qc');
    expect(r.statusCode).toBe(200);
    const body = r.json() as { series: Array<QcSeriesView & { truncated?: boolean }> };
    expect(body.series.map((s) => [s.instrument, s.analyte, s.level, s.state, s.points.length, s.truncated])).toEqual([
      ['CHEM-1', 'ALT', '1', 'in-control', 100, true],
      ['CHEM-1', 'GLU', '2', 'rejected', 3, undefined],
      ['CHEM-1', 'GLU', '3', 'no-data', 0, undefined],
      ['UTM-2', 'Rm', '1', 'in-control', 2, undefined],
    ]);
    // The last runs, oldest first.
    expect(body.series[0]!.points[0]!.sampleId).toBe('QC1-50');
    expect(body.series[0]!.points.at(-1)!.sampleId).toBe('QC1-149');
    expect(body.series[1]).toEqual({ ...rejected, points: rejected.points });

    const one = (await get('/api/lab/qc?instrument=CHEM-1&runs=2')).json() as { series: QcSeriesView[] };
    expect(one.series.map((s) => [s.analyte, s.level, s.points.map((p) => p.sampleId)])).toEqual([
      ['ALT', '1', ['QC1-148', 'QC1-149']],
      ['GLU', '2', ['QC2-1', 'QC2-2']],
      ['GLU', '3', []],
    ]);
    expect(asked).toEqual([undefined, 'CHEM-1']);
  });

  it('answers hostile queries (repeated keys, __proto__ as an instrument, unicode) with a 4xx and its code, never a 5xx', async () => {
    const lab = new FixedLab(Array.from({ length: 5 }, (_, k) => result(k, 'CHEM-1')));
    lab.qc = { series: () => [series('CHEM-1', 'GLU', '1', 3)] };
    await start(lab);
    for (const url of [
      '/api/lab/results?limit=1&limit=2',
      '/api/lab/results?instrument=CHEM-1&instrument=UTM-2',
      '/api/lab/results?instrument=__proto__',
      '/api/lab/results?instrument=constructor',
      '/api/lab/qc?instrument=__proto__',
      '/api/lab/qc?runs=1&runs=2',
      `/api/lab/results?instrument=${encodeURIComponent('\u202eCHEM-1\u0000')}`,
      '/api/lab/results?limit=%F0%9F%98%80',
    ]) {
      const r = await get(url);
      expect([url, r.statusCode >= 400 && r.statusCode < 500, r.json()]).toEqual([
        url,
        true,
        { error: expect.any(String), code: expect.stringMatching(/^GW_HTTP_/) },
      ]);
    }
  });

  it('answers random queries on its routes with a 2xx or a 4xx with a code, never a 5xx', async () => {
    const lab = new FixedLab(Array.from({ length: 20 }, (_, k) => result(k, k % 2 ? 'CHEM-1' : 'UTM-2')));
    lab.qc = { series: () => [series('CHEM-1', 'GLU', '1', 30)] };
    await start(lab);
    const value = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.integer().map(String),
      fc.double().map(String),
      fc.constantFrom('CHEM-1', 'UTM-2', '', '0', '-1', '1e400', '500', '501', 'Infinity', 'NaN'),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/api/lab/results', '/api/lab/qc'),
        fc.dictionary(fc.constantFrom('instrument', 'limit', 'per_instrument', 'runs', 'x'), value, { maxKeys: 3 }),
        async (path, query) => {
          const url = `${path}?${new URLSearchParams(query).toString()}`;
          const r = await get(url);
          expect([url, r.statusCode < 500]).toEqual([url, true]);
          if (r.statusCode >= 400) expect(r.json()).toEqual({ error: expect.any(String), code: expect.stringMatching(/^GW_HTTP_/) });
        },
      ),
      { numRuns: 200 },
    );
  }, 60_000);
});
