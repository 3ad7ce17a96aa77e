// Lab results and their quality control through the HTTP API of a real gateway, over its socket:
// results handed to its result sink (as a lab driver does) are listed newest first with their QC
// status, a 2-2s rejection shows in the control series the dashboard charts, and the sample after
// it is pending; a token is needed, and an instrument the site does not have is named as such.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSite } from '../../config/load.js';
import type { LabResult } from '../../drivers/common/result.js';
import type { QcSeriesView } from '../../gateway/http/plugins/lab.js';
import { hashToken } from '../../gateway/http/tokens.js';
import { createGateway } from '../../gateway/runtime.js';
import { freePort } from '../helpers/processes.js';

const TOKEN = 'viewer-token-0123456789abcdef';
const HOUR = 3_600_000;
const T0 = Date.parse('2026-12-03T08:00:00Z');

let n = 0;
/** A GLU result of LA-2 at `at` (ms): a control when its sample id says QC<level>. */
function glu(sampleId: string, value: number, at: number): LabResult {
  n++;
  return {
    resultId: `LA-2:${n}:GLU`,
    instrument: 'LA-2',
    sampleId,
    analyte: 'GLU',
    value,
    unit: 'mmol/L',
    flags: [],
    status: 'final',
    resultAt: new Date(at).toISOString(),
    raw: `R|1|^^^GLU|${value}|mmol/L`,
  };
}

describe('lab results on the HTTP API', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  it('lists the results with their QC status and the control series with a 2-2s rejection, to a viewer only', async () => {
    const httpPort = await freePort();
    const mqttPort = await freePort();
    // Level 1: mean 5.5, sd 0.2; level 2: mean 11, sd 0.4 (11.84 is +2.1 sd).
    const site = parseSite(
      [
        'version: 1',
        `gateway: { id: gw-lab, site: lab-site, data_dir: ${mkdtempSync(join(tmpdir(), 'gw-lab-http-'))} }`,
        `mqtt: { port: ${mqttPort} }`,
        'http:',
        `  port: ${httpPort}`,
        `  tokens: [{ name: viewer-user, role: viewer, hash: "${hashToken(TOKEN)}" }]`,
        `connections: [{ id: astm-1, type: astm-tcp, port: ${await freePort()} }]`,
        'equipment:',
        '  - id: LA-2',
        '    name: Chemistry analyzer',
        '    category: lab_analyzer',
        '    connection: astm-1',
        '    qc:',
        '      targets:',
        '        GLU: { "1": { mean: 5.5, sd: 0.2 }, "2": { mean: 11, sd: 0.4 } }',
        '',
      ].join('\n'),
      { env: {} },
    );
    const gw = createGateway(site, pino({ level: 'silent' }));
    cleanup.push(() => gw.stop());
    await gw.start();
    const base = `http://127.0.0.1:${httpPort}`;
    const get = async (path: string, token: string | null = TOKEN) => {
      const res = await fetch(`${base}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };

    // Before any result: nothing to list, and each control series without a run.
    expect((await get('/api/lab/results')).body).toMatchObject({ results: [] });
    const empty = (await get('/api/lab/qc')).body.series as QcSeriesView[];
    expect(empty.map((s) => [s.instrument, s.analyte, s.level, s.state, s.points.length])).toEqual([
      ['LA-2', 'GLU', '1', 'no-data', 0],
      ['LA-2', 'GLU', '2', 'no-data', 0],
    ]);

    // Run 1: level 2 at +2.1 sd is a warning; run 2, 8 hours later, +2.1 again: 2-2s across runs.
    gw.results.sink([glu('QC1-001', 5.5, T0), glu('QC2-001', 11.84, T0 + 60_000)]);
    gw.results.sink([glu('QC1-002', 5.6, T0 + 8 * HOUR), glu('QC2-002', 11.84, T0 + 8 * HOUR + 60_000)]);
    gw.results.sink([glu('S-1', 6.2, T0 + 9 * HOUR)]);

    const { status, body } = await get('/api/lab/results?instrument=LA-2&limit=3');
    expect(status).toBe(200);
    const results = body.results as LabResult[];
    expect(results.map((r) => [r.sampleId, r.qc?.status])).toEqual([
      ['S-1', 'pending'],
      ['QC2-002', 'rejected'],
      ['QC1-002', 'accepted'],
    ]);
    expect(results[0]).toEqual({
      resultId: expect.stringMatching(/^LA-2:\d+:GLU$/),
      instrument: 'LA-2',
      sampleId: 'S-1',
      analyte: 'GLU',
      value: 6.2,
      unit: 'mmol/L',
      flags: [],
      status: 'final',
      resultAt: new Date(T0 + 9 * HOUR).toISOString(),
      qc: { status: 'pending', rule: '2-2s', since: expect.any(Number) },
    });
    expect(results[1]!.qc).toEqual({ status: 'rejected', level: '2', rules: ['1-2s', '2-2s'], z: 2.1 });

    const series = (await get('/api/lab/qc?instrument=LA-2')).body.series as QcSeriesView[];
    expect(
      series.map((s) => [s.analyte, s.level, s.state, s.rule, s.target, s.points.map((p) => [p.sampleId, p.status, p.rules])]),
    ).toEqual([
      [
        'GLU',
        '1',
        'in-control',
        undefined,
        { mean: 5.5, sd: 0.2 },
        [
          ['QC1-001', 'accepted', []],
          ['QC1-002', 'accepted', []],
        ],
      ],
      [
        'GLU',
        '2',
        'rejected',
        // The rules that fired on the last run, as the QC service names them.
        '1-2s, 2-2s',
        { mean: 11, sd: 0.4 },
        [
          ['QC2-001', 'warning', ['1-2s']],
          ['QC2-002', 'rejected', ['1-2s', '2-2s']],
        ],
      ],
    ]);
    expect(series[1]!.points[1]).toMatchObject({ ts: T0 + 8 * HOUR + 60_000, value: 11.84, z: 2.1 });

    // A viewer's token is needed; an instrument the site does not have is named.
    expect(await get('/api/lab/qc', null)).toEqual({
      status: 401,
      body: { error: 'a Bearer token is needed (Authorization: Bearer <token>)', code: 'GW_HTTP_UNAUTHORIZED' },
    });
    expect(await get('/api/lab/results?instrument=LA-9')).toEqual({
      status: 404,
      body: { error: 'no equipment LA-9', code: 'GW_HTTP_NOT_FOUND' },
    });
  }, 30_000);
});
