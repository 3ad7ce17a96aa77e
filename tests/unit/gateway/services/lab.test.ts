import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { SiteConfig } from '../../../../config/schema.js';
import type { LabResult } from '../../../../drivers/common/result.js';
import { createMetrics } from '../../../../gateway/metrics.js';
import { topicsFor } from '../../../../gateway/mqtt/topics.js';
import { labService } from '../../../../gateway/services/lab.js';
import { GatewayStore, STORE_FILE } from '../../../../gateway/store.js';

const config = {
  gateway: { id: 'gw-1', site: 's' },
  connections: [
    { id: 'drop', type: 'file-drop' },
    { id: 'astm-1', type: 'astm-tcp' },
  ],
  equipment: [
    { id: 'UTM-1', connection: 'drop', category: 'lab_analyzer', points: [] },
    {
      id: 'LA-1',
      connection: 'astm-1',
      category: 'lab_analyzer',
      points: [{ name: 'GLU' }],
      qc: {
        control_samples: '^QC(?:[-_]?(?<level>\\d))?',
        targets: { GLU: { '1': { mean: 5.5, sd: 0.2 } } },
        rules: ['1-2s', '1-3s', '2-2s', 'R-4s', '4-1s', '10x'],
        run_window: 1_800_000,
        on_reject: 'pass',
      },
    },
  ],
} as unknown as SiteConfig;

function setup() {
  const store = new GatewayStore(join(mkdtempSync(join(tmpdir(), 'gw-lab-svc-')), STORE_FILE));
  const alarms: Array<[string, boolean, string | undefined]> = [];
  const lines: Array<{ msg: string }> = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { msg: string }) });
  const metrics = createMetrics();
  const readings: unknown[] = [];
  const published: unknown[] = [];
  const lab = labService(
    {
      config,
      link: { publishEvent: (_t: string, p: unknown) => void published.push(p) } as never,
      topics: topicsFor('gw', 's'),
      log,
      metrics,
      store: () => store,
      setAlarm: (key, value, detail) => void alarms.push([key, value, detail]),
    },
    (batch) => void readings.push(...batch),
  );
  return { lab, store, alarms, lines, metrics, readings, published };
}

const glu = (sampleId: string, value: number): LabResult => ({
  resultId: `LA-1:${sampleId}`,
  instrument: 'LA-1',
  sampleId,
  analyte: 'GLU',
  value,
  flags: [],
  status: 'final',
  resultAt: '2026-12-03T08:00:00.000Z',
});

describe('lab service', () => {
  it('journals lab events; a refused file raises file.rejected with the file and why, the next file taken clears it', () => {
    const { lab, store, alarms } = setup();
    lab.labEvent({ kind: 'file-rejected', instrument: 'UTM-1', file: 'run-7.csv', reason: 'line 3: no value column', ts: 10 });
    lab.labEvent({ kind: 'file-taken', instrument: 'UTM-1', file: 'run-8.csv', results: 12, ts: 20 });
    // An instrument with no file.rejected alarm (not on a file-drop connection): journaled only.
    lab.labEvent({ kind: 'message-refused', instrument: 'LA-1', reason: 'MSH-9 is not ORU^R01', ts: 30 });
    expect(alarms).toEqual([
      ['UTM-1/file.rejected', true, 'run-7.csv: line 3: no value column'],
      ['UTM-1/file.rejected', false, undefined],
    ]);
    expect(store.readJournal('lab', 0, 100).map((e) => [e.ts, e.equipment, (e.body as { kind: string }).kind])).toEqual([
      [10, 'UTM-1', 'file-rejected'],
      [20, 'UTM-1', 'file-taken'],
      [30, 'LA-1', 'message-refused'],
    ]);
  });

  it('never throws from labEvent: a store that cannot write is logged', () => {
    const { lab, store, lines } = setup();
    store.close();
    expect(() => lab.labEvent({ kind: 'file-taken', instrument: 'UTM-1', file: 'a.csv', results: 1, ts: 1 })).not.toThrow();
    expect(lines.map((l) => l.msg)).toContain('Cannot journal a lab event: the daily summary will not count it');
  });

  it('stores a batch unmarked, counted and logged, when judging it fails; a control (judged or not) is not a reading of its point', async () => {
    const { lab, store, lines, metrics, readings } = setup();
    await lab.start();
    const broken = glu('QC1-1', 5.5);
    // A fault inside QC (here: reading the result's control mark throws); JSON does not see the getter.
    Object.defineProperty(broken, 'control', {
      enumerable: false,
      get() {
        throw new Error('broken mark');
      },
    });
    expect(lab.results.sink([broken]).map((r) => r.resultId)).toEqual(['LA-1:QC1-1']);
    expect(store.db.prepare('SELECT count(*) AS n FROM result').get()).toEqual({ n: 1 });
    expect(lines.map((l) => l.msg)).toContain('Quality control failed on a batch of results: they are stored without QC marks');
    expect((await metrics.getSingleMetric('gateway_lab_qc_failures_total')!.get()).values).toEqual([
      { labels: { instrument: 'LA-1' }, value: 1 },
    ]);
    // A control judged is not a reading of GLU; a sample is.
    const taken = lab.results.sink([glu('QC1-2', 5.5), glu('S-1', 6.1)]);
    expect(taken.map((r) => r.qc?.status)).toEqual(['accepted', 'passed']);
    expect(readings).toMatchObject([{ equipment: 'LA-1', point: 'GLU', value: 6.1 }]);
    // Nor is a control QC cannot judge (level 7 has no target): it is still a control.
    expect(lab.results.sink([glu('QC7-1', 9.9)]).map((r) => r.qc)).toEqual([undefined]);
    expect(readings).toHaveLength(1);
    expect(lab.results.recent().map((r) => r.sampleId)).toEqual(['QC1-1', 'QC1-2', 'S-1', 'QC7-1']);
    expect(lab.results.recent('LA-1', 1).map((r) => r.sampleId)).toEqual(['QC7-1']);
    expect(lab.results.recent('UTM-1')).toEqual([]);
    await lab.stop();
  });
});
