import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { SiteConfig } from '../../../../config/schema.js';
import type { LabResult } from '../../../../drivers/common/result.js';
import { createQc, holdName, POINTS_PER_SERIES, TOLD_MAX, type Qc } from '../../../../gateway/lab/qc.js';
import { createMetrics } from '../../../../gateway/metrics.js';
import { GatewayStore, STORE_FILE } from '../../../../gateway/store.js';

const T0 = Date.parse('2026-12-03T08:00:00Z');
const HOUR = 3_600_000;

/** The `qc:` of LA-1 as the site file's schema outputs it. */
const qcConfig = (onReject: 'pass' | 'hold') => ({
  control_samples: '^QC(?:[-_]?(?<level>\\d))?',
  targets: {
    GLU: { '1': { mean: 5.5, sd: 0.2 }, '2': { mean: 11, sd: 0.4 } },
    ALT: { high: { mean: 100, sd: 5 } },
  },
  rules: ['1-2s', '1-3s', '2-2s', 'R-4s', '4-1s', '10x'],
  run_window: 1_800_000,
  on_reject: onReject,
});

function setup(onReject: 'pass' | 'hold' = 'pass') {
  const config = { equipment: [{ id: 'LA-1', qc: qcConfig(onReject) }, { id: 'LA-2' }] } as unknown as SiteConfig;
  const lines: Array<{ msg: string }> = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { msg: string }) });
  const metrics = createMetrics();
  const qc = createQc({ config, log, metrics });
  const store = new GatewayStore(join(mkdtempSync(join(tmpdir(), 'gw-qc-')), STORE_FILE));
  qc.start(store);
  return { qc, store, lines };
}

let n = 0;
const result = (sampleId: string, value: LabResult['value'], at: number, extra: Partial<LabResult> = {}): LabResult => ({
  resultId: `r-${++n}`,
  instrument: 'LA-1',
  sampleId,
  analyte: 'GLU',
  value,
  flags: [],
  status: 'final',
  resultAt: new Date(at).toISOString(),
  ...extra,
});

/** Judges and commits one batch as the result service does; returns the marked results. */
function sink(qc: Qc, store: GatewayStore, results: LabResult[], released: string[] = [], seen = () => false, now = T0) {
  const batch = qc.apply(results, seen, now)!;
  store.transaction(() => batch.save(store, (h) => (released.push(h), 0)));
  return { results: batch.results, alarms: batch.done(), hold: batch.hold };
}

describe('quality control', () => {
  it('finds the level in the sample id, in the instrument mark (ignoring case), or as the only level; marks controls with their verdict', () => {
    const { qc, store } = setup();
    const { results } = sink(qc, store, [
      result('QC2-0815', 11.84, T0),
      result('X', 110.5, T0, { analyte: 'ALT', control: {} }),
      result('CTRL', 5.1, T0, { control: { level: '1' } }),
      result('S-1', 6, T0),
    ]);
    expect(results.map((r) => r.qc)).toEqual([
      { status: 'warning', level: '2', rules: ['1-2s'], z: 2.1 },
      { status: 'warning', level: 'high', rules: ['1-2s'], z: 2.1 },
      { status: 'accepted', level: '1', rules: [], z: -2 },
      { status: 'passed' },
    ]);
    const alt = sink(qc, store, [result('Y', 100, T0 + HOUR, { analyte: 'ALT', control: { level: 'HIGH' } })]).results;
    expect(alt[0]!.qc).toMatchObject({ status: 'accepted', level: 'high' });
  });

  it('leaves other instruments, analytes without targets and results before the first control unmarked', () => {
    const { qc, store } = setup();
    expect(qc.apply([result('QC1', 5, T0, { instrument: 'LA-2' })], () => false, T0)).toBeUndefined();
    const { results } = sink(qc, store, [result('S-1', 6, T0), result('S-1', 1, T0, { analyte: 'CRE' })]);
    expect(results.map((r) => r.qc)).toEqual([undefined, undefined]);
  });

  it('counts and logs once the controls it cannot judge: no targets, unknown level, no level among several, no number', () => {
    const { qc, store, lines } = setup();
    const batch = [
      result('QC1', 1, T0, { analyte: 'CRE' }),
      result('QC1', 1, T0, { analyte: 'CRE' }),
      result('QC7', 5, T0),
      result('QC', 5, T0),
      result('QC1', '<0.1', T0),
    ];
    const { results, alarms } = sink(qc, store, batch);
    expect(results.map((r) => r.qc)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(alarms).toEqual([]);
    expect(lines.map((l) => l.msg)).toEqual([
      'Control sample of an analyte without QC targets: counted, not judged (add its targets under qc.targets)',
      'Control sample of level "7", which has no QC target: counted, not judged',
      'Control sample without a level, of an analyte with several: counted, not judged (give the level in qc.control_samples)',
      'Control sample without a numeric value (or one too large for a z-score): counted, not judged',
    ]);
  });

  it('does not judge a control captured before (sent again), nor the same one twice in a batch', () => {
    const { qc, store } = setup();
    const control = result('QC2', 11.84, T0);
    const first = sink(qc, store, [control, control]).results;
    expect(first.map((r) => r.qc?.status)).toEqual(['warning', undefined]);
    // The same +2.1 again would be a 2-2s rejection if it were judged again.
    const again = sink(qc, store, [control], [], () => true).results;
    expect(again[0]!.qc).toBeUndefined();
    expect(qc.api.series('LA-1').find((s) => s.analyte === 'GLU' && s.level === '2')!.points).toHaveLength(1);
  });

  it('keeps the analyte pending until every rejected level has passed again; alarms per level', () => {
    const { qc, store } = setup();
    let r = sink(qc, store, [result('QC1', 6.2, T0), result('QC2', 9.7, T0 + 60_000), result('S-1', 6, T0 + 120_000)]);
    expect(r.results.map((x) => x.qc)).toEqual([
      { status: 'rejected', level: '1', rules: ['1-2s', '1-3s'], z: 3.5 },
      // Level 1's rejected control still counts within its run: +3.5 and -3.25 are an R-4s too.
      { status: 'rejected', level: '2', rules: ['1-2s', '1-3s', 'R-4s'], z: -3.25 },
      { status: 'pending', rule: '1-3s', since: T0 },
    ]);
    expect(r.alarms).toEqual([
      { key: 'LA-1/qc.GLU.1.rejected', value: true, detail: '1-3s' },
      { key: 'LA-1/qc.GLU.2.rejected', value: true, detail: '1-3s, R-4s' },
    ]);
    r = sink(qc, store, [result('QC1', 5.5, T0 + HOUR), result('S-2', 6, T0 + HOUR)]);
    expect(r.results.map((x) => x.qc?.status)).toEqual(['accepted', 'pending']);
    expect(r.alarms).toEqual([{ key: 'LA-1/qc.GLU.1.rejected', value: false }]);
    r = sink(qc, store, [result('QC2', 11, T0 + 2 * HOUR), result('S-3', 6, T0 + 2 * HOUR)]);
    expect(r.results.map((x) => x.qc?.status)).toEqual(['accepted', 'passed']);
    expect(qc.api.series('LA-1').map((s) => `${s.analyte} ${s.level} ${s.state} ${s.points.length}`)).toEqual([
      'GLU 1 in-control 2',
      'GLU 2 in-control 2',
      'ALT high no-data 0',
    ]);
  });

  it('hold mode: pending results are held under their analyte, released when it passes; the state and the points come back from the store', () => {
    const { qc, store } = setup('hold');
    const released: string[] = [];
    const r = sink(qc, store, [result('QC1', 6.2, T0), result('S-1', 6, T0)], released);
    expect(r.hold(r.results[1]!)).toBe(holdName('LA-1', 'GLU'));
    expect(r.hold(r.results[0]!)).toBeUndefined();
    expect(qc.stillHeld(holdName('LA-1', 'GLU'))).toBe(true);
    expect(released).toEqual([]);

    // Another gateway on the same store (a restart): still pending, still held, the chart's point is back.
    const again = createQc({
      config: { equipment: [{ id: 'LA-1', qc: qcConfig('hold') }] } as never,
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
    });
    const alarms = again.start(store);
    expect(alarms.filter((a) => a.value)).toEqual([{ key: 'LA-1/qc.GLU.1.rejected', value: true, detail: '1-3s' }]);
    expect(again.stillHeld(holdName('LA-1', 'GLU'))).toBe(true);
    expect(again.api.series('LA-1')[0]!.points.map((p) => [p.sampleId, p.status])).toEqual([['QC1', 'rejected']]);
    const next = sink(again, store, [result('S-2', 6, T0 + HOUR), result('QC1', 5.5, T0 + HOUR), result('S-3', 6, T0 + HOUR)], released);
    expect(next.results.map((x) => [x.qc?.status, next.hold(x)])).toEqual([
      ['pending', holdName('LA-1', 'GLU')],
      ['accepted', undefined],
      ['passed', undefined],
    ]);
    expect(released).toEqual([holdName('LA-1', 'GLU')]);
    expect(again.stillHeld(holdName('LA-1', 'GLU'))).toBe(false);
    expect(again.stillHeld('not json')).toBe(false);
  });

  it('remembers at most TOLD_MAX controls it could not judge: an instrument sending endless analyte names is counted, not remembered', () => {
    const { qc, store, lines } = setup();
    const many = Array.from({ length: TOLD_MAX + 500 }, (_, i) => result('QC1', 1, T0, { analyte: `X${i}` }));
    sink(qc, store, many);
    expect(lines.filter((l) => l.msg.startsWith('Control sample of an analyte without QC targets'))).toHaveLength(TOLD_MAX);
  });

  it('hold mode: a rejection standing on a level or analyte whose targets were removed from the site file no longer holds results', () => {
    const { qc, store } = setup('hold');
    sink(qc, store, [result('QC2', 9.7, T0), result('QC', 80, T0, { analyte: 'ALT' })]);
    expect(qc.stillHeld(holdName('LA-1', 'GLU'))).toBe(true);
    expect(qc.stillHeld(holdName('LA-1', 'ALT'))).toBe(true);
    // The site file now has GLU level 1 only, and no ALT targets: level 2 and ALT are never judged again.
    const config = qcConfig('hold') as unknown as { targets: Record<string, unknown> };
    config.targets = { GLU: { '1': { mean: 5.5, sd: 0.2 } } };
    const again = createQc({
      config: { equipment: [{ id: 'LA-1', qc: config }] } as never,
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
    });
    expect(again.start(store)).toEqual([{ key: 'LA-1/qc.GLU.1.rejected', value: false }]);
    expect(again.stillHeld(holdName('LA-1', 'GLU'))).toBe(false);
    expect(again.stillHeld(holdName('LA-1', 'ALT'))).toBe(false);
    const later = sink(again, store, [result('QC1', 5.5, T0 + HOUR), result('S-1', 6, T0 + HOUR)]);
    expect(later.results.map((x) => x.qc?.status)).toEqual(['accepted', 'passed']);
    // Forgotten in the store too: the level put back later starts with no verdict.
    const third = createQc({
      config: { equipment: [{ id: 'LA-1', qc: qcConfig('hold') }] } as never,
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
    });
    expect(third.start(store).filter((a) => a.value)).toEqual([{ key: 'LA-1/qc.ALT.high.rejected', value: true, detail: '1-3s' }]);
    expect(third.stillHeld(holdName('LA-1', 'GLU'))).toBe(false);
  });

  it("a control older than its level's last one (arriving late) is judged and shown but does not change the standing verdict; a clock ahead cannot block later ones", () => {
    const { qc, store } = setup('hold');
    const released: string[] = [];
    const at = (h: number, results: LabResult[]) => sink(qc, store, results, released, () => false, T0 + h * HOUR);
    expect(at(3, [result('QC1', 6.2, T0 + 2 * HOUR)]).alarms).toEqual([{ key: 'LA-1/qc.GLU.1.rejected', value: true, detail: '1-3s' }]);
    // Level 1's control of 08:00, in a file copied in late: it passed, but the 10:00 one did not.
    const late = at(3, [result('QC1', 5.5, T0), result('S-1', 6, T0 + 3 * HOUR)]);
    expect(late.results.map((x) => x.qc?.status)).toEqual(['accepted', 'pending']);
    expect(late.alarms).toEqual([]);
    expect(released).toEqual([]);
    expect(qc.stillHeld(holdName('LA-1', 'GLU'))).toBe(true);
    expect(qc.api.series('LA-1')[0]!.state).toBe('rejected');
    // A control from a clock years ahead counts as of now: the next one in time still decides.
    expect(at(4, [result('QC1', 5.5, T0 + 10 * 365 * 24 * HOUR)]).alarms).toEqual([{ key: 'LA-1/qc.GLU.1.rejected', value: false }]);
    expect(released).toEqual([holdName('LA-1', 'GLU')]);
    expect(at(5, [result('QC1', 6.2, T0 + 5 * HOUR)]).alarms).toEqual([{ key: 'LA-1/qc.GLU.1.rejected', value: true, detail: '1-3s' }]);
  });

  it('does not read a stored state whose level verdict has no time (it could never be taken over): starts that analyte again, logged', () => {
    const { store } = setup('hold');
    const broken = { seq: 1, history: {}, levels: { '1': { status: 'rejected', rules: ['1-3s'] } }, pending: { rule: '1-3s', since: T0 } };
    store.saveQc([{ instrument: 'LA-1', analyte: 'GLU', state: broken }]);
    const lines: Array<{ msg: string }> = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { msg: string }) });
    const again = createQc({ config: { equipment: [{ id: 'LA-1', qc: qcConfig('hold') }] } as never, log, metrics: createMetrics() });
    again.start(store);
    expect(lines.map((l) => l.msg)).toContain(
      'The stored QC state of this analyte does not read: its Westgard rules start again from no history',
    );
    expect(again.stillHeld(holdName('LA-1', 'GLU'))).toBe(false);
  });

  it("does not judge again the level's last control sent under another result id (a cumulative export): no 2-2s with itself", () => {
    const { qc, store } = setup();
    const first = sink(qc, store, [result('QC2-1', 11.84, T0)]).results;
    expect(first[0]!.qc).toEqual({ status: 'warning', level: '2', rules: ['1-2s'], z: 2.1 });
    // The same control (sample id, time, value) in another file, so under another id, twice in one batch.
    const again = sink(qc, store, [result('QC2-1', 11.84, T0), result('QC2-1', 11.84, T0)]);
    expect(again.results.map((r) => r.qc)).toEqual([first[0]!.qc, first[0]!.qc]);
    expect(again.alarms).toEqual([]);
    expect(qc.api.series('LA-1').find((s) => s.level === '2')!.points).toHaveLength(1);
    // A new control with the same value is judged: +2.1 twice is a 2-2s.
    expect(sink(qc, store, [result('QC2-2', 11.84, T0 + HOUR)], [], () => false, T0 + HOUR).results[0]!.qc).toMatchObject({
      status: 'rejected',
      rules: ['1-2s', '2-2s'],
    });
  });

  it('does not judge a control whose z-score overflows (1e308): the result stays deliverable and the state readable', () => {
    const { qc, store } = setup('hold');
    const { results } = sink(qc, store, [result('QC1', 1e308, T0), result('QC1', -1e308, T0)]);
    expect(results.map((r) => r.qc)).toEqual([undefined, undefined]);
    expect(qc.api.series('LA-1')[0]!.state).toBe('no-data');
    expect(store.loadQc()).toEqual([]);
  });

  it('restores each series its own newest points after a restart, however busy another series was', () => {
    const { qc, store } = setup();
    sink(qc, store, [result('QC2-a', 11, T0), result('QC2-b', 11.1, T0 + 60_000)]);
    const busy = Array.from({ length: POINTS_PER_SERIES * 4 }, (_, i) => result(`QC1-${i}`, i % 2 ? 5.6 : 5.4, T0 + HOUR + i * 60_000));
    sink(qc, store, busy, [], () => false, T0 + 10 * HOUR);
    const again = createQc({
      config: { equipment: [{ id: 'LA-1', qc: qcConfig('pass') }] } as never,
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
    });
    again.start(store);
    const series = again.api.series('LA-1');
    expect(series.find((s) => s.level === '2')!.points.map((p) => p.sampleId)).toEqual(['QC2-a', 'QC2-b']);
    const one = series.find((s) => s.level === '1')!.points.map((p) => p.sampleId);
    expect(one).toHaveLength(POINTS_PER_SERIES);
    expect(one.at(-1)).toBe(`QC1-${POINTS_PER_SERIES * 4 - 1}`);
    expect(one).toEqual(
      qc.api
        .series('LA-1')
        .find((s) => s.level === '1')!
        .points.map((p) => p.sampleId),
    );
  });
});
