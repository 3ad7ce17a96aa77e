// Quality control on a real gateway: control results (handed to its result sink, as a lab driver
// does) judged by the Westgard rules; a 2-2s rejection raises the yellow alarm on MQTT and at the
// platform inbox, marks the analyte's later results pending (uploaded at once, or held until a
// control passes), and a passing control clears it; the QC state and the held results survive a restart.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSite } from '../../config/load.js';
import type { LabResult } from '../../drivers/common/result.js';
import { createPlatformInbox, type PlatformInbox } from '../../gateway/platform/inbox.js';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { ROOT } from '../helpers/cli.js';
import { subscribe, type Subscriber } from '../helpers/mqtt.js';
import { freePort } from '../helpers/processes.js';

const silent = pino({ level: 'silent' });
const SECRET = 'lab-qc-secret-0123456789';
const HOUR = 3_600_000;
const T0 = Date.parse('2026-12-03T08:00:00Z');

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let n = 0;
/** A GLU result of LA-2 at `at` (ms): a control when its sample id says QC<level>. */
function glu(sampleId: string, value: number, at: number, analyte = 'GLU'): LabResult {
  n++;
  return {
    resultId: `LA-2:${n}:${analyte}`,
    instrument: 'LA-2',
    sampleId,
    analyte,
    value,
    unit: 'mmol/L',
    flags: [],
    status: 'final',
    resultAt: new Date(at).toISOString(),
  };
}

/** Level 1: mean 5.5, sd 0.2; level 2: mean 11, sd 0.4 (11.84 is +2.1 sd). */
function siteYaml(dataDir: string, mqttPort: number, inboxPort: number, onReject: 'pass' | 'hold'): string {
  return [
    'version: 1',
    `gateway: { id: gw-qc, site: qc-site, data_dir: ${dataDir} }`,
    `mqtt: { port: ${mqttPort} }`,
    'platform:',
    `  url: http://127.0.0.1:${inboxPort}/`,
    `  secret: ${SECRET}`,
    '  retry: { initial_delay: 100ms, max_delay: 500ms }',
    `connections: [{ id: astm-1, type: astm-tcp, port: ${mqttPort + 1} }]`,
    'equipment:',
    '  - id: LA-2',
    '    category: lab_analyzer',
    '    connection: astm-1',
    '    qc:',
    `      on_reject: ${onReject}`,
    '      targets:',
    '        GLU: { "1": { mean: 5.5, sd: 0.2 }, "2": { mean: 11, sd: 0.4 } }',
    '',
  ].join('\n');
}

describe('lab quality control', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  async function setup(onReject: 'pass' | 'hold') {
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-lab-qc-'));
    const inboxPort = await freePort();
    const inbox: PlatformInbox = createPlatformInbox({ port: inboxPort, secret: SECRET, print: () => {} });
    await inbox.start();
    cleanup.push(() => inbox.stop());
    const site = parseSite(siteYaml(dataDir, await freePort(), inboxPort, onReject), { env: {} });
    const start = async (): Promise<{ gw: Gateway; results: Subscriber; alarms: Subscriber }> => {
      const gw = createGateway(site, silent);
      cleanup.push(() => gw.stop());
      await gw.start();
      const results = await subscribe(gw.mqttUrl(), 'gw/qc-site/LA-2/results');
      cleanup.push(() => results.close());
      const alarms = await subscribe(gw.mqttUrl(), 'gw/qc-site/LA-2/alarms');
      cleanup.push(() => alarms.close());
      return { gw, results, alarms };
    };
    return { inbox, start };
  }

  const qcOf = (inbox: PlatformInbox, sampleId: string) =>
    inbox.results.filter((r) => r.sampleId === sampleId && r.analyte === 'GLU').map((r) => r.qc);
  const alarmEvents = (s: Subscriber) => s.messages.map((m) => JSON.parse(m.payload) as { type: string; rule: string; message: string });

  it('pass mode: a 2-2s rejection raises the yellow alarm, later results are uploaded at once marked pending; a passing control clears it; the state survives a restart', async () => {
    const { inbox, start } = await setup('pass');
    let { gw, results, alarms } = await start();
    // Run 1: level 2 at +2.1 sd is a warning; run 2, 8 hours later, +2.1 again: 2-2s across runs.
    gw.results.sink([glu('QC1-001', 5.5, T0), glu('QC2-001', 11.84, T0 + 60_000)]);
    gw.results.sink([glu('QC1-002', 5.6, T0 + 8 * HOUR), glu('QC2-002', 11.84, T0 + 8 * HOUR + 60_000)]);
    gw.results.sink([glu('S-1', 6.2, T0 + 9 * HOUR)]);

    await until('the QC alarm on MQTT', () => alarmEvents(alarms).some((e) => e.type === 'raised'));
    const raised = alarmEvents(alarms).find((e) => e.type === 'raised')!;
    expect(raised).toMatchObject({
      rule: 'qc.GLU.2.rejected',
      message: 'QC rejected: GLU level 2, rule 2-2s',
      level: 'yellow',
      origin: 'lab',
    });
    await until('the incident at the platform', () => inbox.incidents.some((i) => i.rule.id === 'qc.GLU.2.rejected'));
    expect(inbox.incidents.find((i) => i.rule.id === 'qc.GLU.2.rejected')).toMatchObject({
      type: 'raised',
      level: 'yellow',
      rule: { message: 'QC rejected: GLU level 2, rule 2-2s' },
    });

    await until('the results at the platform', () => inbox.results.length >= 5);
    expect(qcOf(inbox, 'QC2-001')).toEqual([{ status: 'warning', level: '2', rules: ['1-2s'], z: 2.1 }]);
    expect(qcOf(inbox, 'QC2-002')).toEqual([{ status: 'rejected', level: '2', rules: ['1-2s', '2-2s'], z: 2.1 }]);
    expect(qcOf(inbox, 'QC1-002')).toEqual([{ status: 'accepted', level: '1', rules: [], z: 0.5 }]);
    // The sample after the rejection: uploaded at once, marked.
    const pending = qcOf(inbox, 'S-1')[0]!;
    expect(pending).toMatchObject({ status: 'pending', rule: '2-2s' });
    expect(Date.parse(pending.since!)).toBeGreaterThan(0);
    await until('the results on MQTT', () => results.messages.length >= 5);
    expect((JSON.parse(results.messages[4]!.payload) as LabResult).qc).toMatchObject({ status: 'pending', rule: '2-2s' });
    const validate = new Ajv().compile(JSON.parse(readFileSync(join(ROOT, 'docs', 'platform-contract.schema.json'), 'utf8')) as object);
    for (const r of inbox.results) expect(validate(r), JSON.stringify(validate.errors)).toBe(true);

    // A restart: the analyte is still pending, the chart still has its points.
    await gw.stop();
    ({ gw, results, alarms } = await start());
    gw.results.sink([glu('S-2', 5.9, T0 + 10 * HOUR)]);
    await until('S-2 at the platform', () => qcOf(inbox, 'S-2').length > 0);
    expect(qcOf(inbox, 'S-2')[0]).toMatchObject({ status: 'pending', rule: '2-2s' });
    const level2 = gw.lab.qc.series('LA-2').find((s) => s.level === '2')!;
    expect(level2).toMatchObject({ analyte: 'GLU', unit: 'mmol/L', target: { mean: 11, sd: 0.4 }, state: 'rejected', rule: '1-2s, 2-2s' });
    expect(level2.points.map((p) => [p.sampleId, p.status])).toEqual([
      ['QC2-001', 'warning'],
      ['QC2-002', 'rejected'],
    ]);
    expect(gw.alarms.active().map((a) => a.rule)).toEqual(['qc.GLU.2.rejected']);

    // A passing level-2 control: the alarm clears, later results have passed.
    gw.results.sink([glu('QC2-003', 11.1, T0 + 11 * HOUR)]);
    gw.results.sink([glu('S-3', 5.4, T0 + 11 * HOUR + 60_000)]);
    await until('the alarm cleared on MQTT', () => alarmEvents(alarms).some((e) => e.type === 'cleared'));
    await until('the clear at the platform', () => inbox.incidents.some((i) => i.rule.id === 'qc.GLU.2.rejected' && i.type === 'cleared'));
    await until('S-3 at the platform', () => qcOf(inbox, 'S-3').length > 0);
    expect(qcOf(inbox, 'S-3')).toEqual([{ status: 'passed' }]);
    // The results since the restart, newest last.
    expect(gw.results.recent('LA-2').map((r) => r.sampleId)).toEqual(['S-2', 'QC2-003', 'S-3']);
    // Each result once.
    expect(inbox.stats().duplicates).toBe(0);
  }, 60_000);

  it('hold mode: pending results are stored and published at once but reach the platform only after a passing control, once, also across a restart', async () => {
    const { inbox, start } = await setup('hold');
    let { gw, results } = await start();
    gw.results.sink([glu('QC1-001', 5.5, T0), glu('QC2-001', 11.84, T0 + 60_000)]);
    gw.results.sink([glu('QC1-002', 5.5, T0 + 8 * HOUR), glu('QC2-002', 11.84, T0 + 8 * HOUR + 60_000)]);
    gw.results.sink([glu('S-1', 6.2, T0 + 9 * HOUR)]);
    // A result of an analyte without QC, captured after S-1: the forwarder sends in order, so once it
    // is at the platform S-1 would be there too if it had been queued.
    gw.results.sink([glu('S-1', 40, T0 + 9 * HOUR, 'ALT')]);
    await until('the ALT result at the platform', () => inbox.results.some((r) => r.analyte === 'ALT'));
    expect(qcOf(inbox, 'S-1')).toEqual([]);
    // Published on MQTT at once all the same.
    await until('S-1 on MQTT', () =>
      results.messages.some((m) => (JSON.parse(m.payload) as LabResult).analyte === 'GLU' && m.payload.includes('"S-1"')),
    );

    await gw.stop();
    ({ gw, results } = await start());
    gw.results.sink([glu('S-2', 5.9, T0 + 10 * HOUR)]);
    // Still held after the restart: another ALT result captured after S-2 reaches the platform, they do not.
    gw.results.sink([glu('S-2', 41, T0 + 10 * HOUR, 'ALT')]);
    await until('the second ALT result at the platform', () => inbox.results.filter((r) => r.analyte === 'ALT').length === 2);
    expect([...qcOf(inbox, 'S-1'), ...qcOf(inbox, 'S-2')]).toEqual([]);
    gw.results.sink([glu('QC2-003', 11.1, T0 + 11 * HOUR)]);
    await until('the held results at the platform', () => qcOf(inbox, 'S-1').length > 0 && qcOf(inbox, 'S-2').length > 0);
    for (const sample of ['S-1', 'S-2']) {
      const [qc] = qcOf(inbox, sample);
      expect(qc).toMatchObject({ status: 'pending', rule: '2-2s' });
      expect(Date.parse(qc!.releasedAt!)).toBeGreaterThan(0);
    }
    gw.results.sink([glu('S-3', 5.4, T0 + 12 * HOUR)]);
    await until('S-3 at the platform', () => qcOf(inbox, 'S-3').length > 0);
    expect(qcOf(inbox, 'S-3')).toEqual([{ status: 'passed' }]);
    // Released once: nothing sent twice, nothing still held.
    await new Promise((r) => setTimeout(r, 300));
    expect(inbox.results.filter((r) => r.analyte === 'GLU' && r.sampleId.startsWith('S-')).map((r) => r.sampleId)).toEqual([
      'S-1',
      'S-2',
      'S-3',
    ]);
    expect(inbox.stats().duplicates).toBe(0);
    expect(gw.store()!.db.prepare('SELECT count(*) AS n FROM result WHERE held IS NOT NULL').get()).toEqual({ n: 0 });
  }, 60_000);
});
