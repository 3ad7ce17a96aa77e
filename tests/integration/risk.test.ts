// Risk judgement in a real gateway: the demo boiler (simulated, with the boiler-steam template's rules)
// runs a short normal phase, then its feed pump trips. Its risk rises through the predicted warning to
// red; each level change reaches the reference platform inbox once as gw.risk.v1, valid against the
// published JSON Schema, numbered without a gap; the retained MQTT risk topic holds the assessment
// with its reasons; InfluxDB receives the `risk` measurement; the journal holds the changes.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { parseSite } from '../../config/load.js';
import { createPlatformInbox } from '../../gateway/platform/inbox.js';
import { createGateway } from '../../gateway/runtime.js';
import type { RiskAssessment } from '../../rules/risk.js';
import { LEVELS } from '../../rules/types.js';
import { retained } from '../helpers/mqtt.js';
import { freePort } from '../helpers/processes.js';
import { BOILER_POINTS } from '../helpers/site.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SECRET = 'risk-test-secret-0123456789';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function influxQuery(url: string, db: string, q: string): Promise<Array<{ columns: string[]; values: unknown[][] }>> {
  const res = await fetch(`${url}/query?db=${encodeURIComponent(db)}&q=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { results?: Array<{ series?: Array<{ columns: string[]; values: unknown[][] }> }> };
  return body.results?.[0]?.series ?? [];
}

describe('risk judgement in a running gateway', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  it('the boiler trip: risk up to red through the predicted warning, each change at the platform once, on MQTT, in InfluxDB and the journal', async () => {
    const influxdb = inject('influxdb');
    const db = `risk_${Date.now()}`;
    const created = await fetch(`${influxdb.url}/query?q=${encodeURIComponent(`CREATE DATABASE "${db}"`)}`, { method: 'POST' });
    expect(created.status).toBe(200);
    await until('the database to be listed', async () =>
      JSON.stringify(await (await fetch(`${influxdb.url}/query?q=SHOW%20DATABASES`)).json()).includes(`"${db}"`),
    );
    const site = `risk-${Date.now()}`;
    const inboxPort = await freePort();
    const inbox = createPlatformInbox({ port: inboxPort, secret: SECRET, print: () => {} });
    await inbox.start();
    cleanup.push(() => inbox.stop());
    const config = parseSite(
      [
        'version: 1',
        `gateway: { id: gw-risk, site: ${site}, data_dir: ${mkdtempSync(join(tmpdir(), 'gw-risk-'))} }`,
        `mqtt: { broker: embedded, port: ${await freePort()} }`,
        `influx: { api: v1, url: ${influxdb.url}, database: ${db}, flush_interval: 200ms }`,
        'platform:',
        `  url: http://127.0.0.1:${inboxPort}/`,
        `  secret: ${SECRET}`,
        '  retry: { initial_delay: 200ms, max_delay: 1s }',
        'connections: [{ id: sim, type: sim, seed: 7 }]',
        'equipment:',
        '  - id: B-07',
        '    code: "10003101012019000117"',
        '    name: No.7 steam boiler',
        '    template: boiler-steam',
        '    connection: sim',
        '    model: steam-boiler',
        '    poll_interval: 200ms',
        '    scenario: { normal: 2s, hazard: 30s, recovery: 30s }',
        `    points: [${BOILER_POINTS.map((p) => `{ name: ${p} }`).join(', ')}]`,
        '',
      ].join('\n'),
      { env: {} },
    );
    const gw = createGateway(config, pino({ level: 'silent' }));
    cleanup.push(() => gw.stop());
    await gw.start();
    const t0 = Date.now();

    await until('a gw.risk.v1 to red at the platform', () => inbox.risks.some((r) => r.level === 'red'), 40_000);
    console.log(`risk red at the platform ${Date.now() - t0} ms after start`);
    const risks = inbox.risks.filter((r) => r.equipment.id === 'B-07');
    // Numbered 1..n without a gap, each change starting where the one before ended, from blue.
    // The ids carry the gateway's id and its store's epoch (8 hex digits, the same for all).
    const epoch = /^risk-gw-risk-([0-9a-f]{8})-B-07-1$/.exec(risks[0]!.eventId)?.[1];
    expect(epoch, risks[0]!.eventId).toBeDefined();
    expect(risks.map((r) => r.eventId)).toEqual(risks.map((_, k) => `risk-gw-risk-${epoch}-B-07-${k + 1}`));
    expect(risks[0]!.previousLevel).toBe('blue');
    for (let k = 1; k < risks.length; k++) expect(risks[k]!.previousLevel).toBe(risks[k - 1]!.level);
    // Up through a predicted warning before the red alarm: a change with the predicted factor before the one to red.
    const toRed = risks.findIndex((r) => r.level === 'red');
    expect(risks.slice(0, toRed).some((r) => r.factors.some((f) => f.factor === 'predicted' && f.points > 0))).toBe(true);
    expect(risks[toRed]!.factors).toEqual(expect.arrayContaining([expect.objectContaining({ factor: 'alarm_red' })]));
    expect(risks[toRed]).toMatchObject({
      equipment: { id: 'B-07', code: '10003101012019000117', category: 'boiler', name: 'No.7 steam boiler' },
      consequence: 4,
      gatewayId: 'gw-risk',
      site,
    });
    const validate = new Ajv({ allErrors: true }).compile(
      JSON.parse(readFileSync(join(ROOT, 'docs', 'platform-contract.schema.json'), 'utf8')) as object,
    );
    for (const r of risks) expect(validate(r), JSON.stringify(validate.errors)).toBe(true);
    // Risk changes take seqs with the incidents: together they leave no gap.
    const seqs = [...inbox.incidents, ...risks].map((x) => x.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(seqs.map((_, k) => seqs[0]! + k));

    // The retained topic holds the assessment now, with its reasons.
    await until('the retained risk topic at red', async () => {
      const text = await retained(gw.mqttUrl(), `gw/${site}/B-07/risk`);
      return text !== undefined && (JSON.parse(text) as RiskAssessment).level === 'red';
    });
    const now = JSON.parse((await retained(gw.mqttUrl(), `gw/${site}/B-07/risk`))!) as RiskAssessment;
    expect(now).toMatchObject({ equipment: 'B-07', category: 'boiler', consequence: 4 });
    expect(now.factors.find((f) => f.factor === 'alarm_red')).toMatchObject({ value: 1, points: expect.any(Number) });
    expect(gw.risk!.assessment('B-07')!.level).toBe('red');

    // The journal: the same changes, in order; the API's history reads them.
    const history = gw.risk!.history('B-07', t0 - 1000, Date.now() + 1000);
    const levels = history.map((p) => p.level);
    expect(levels).toContain('red');
    expect(levels.every((l) => LEVELS.includes(l))).toBe(true);
    expect(
      gw
        .store()!
        .readJournal('risk', t0 - 1000, Date.now() + 1000, { equipment: 'B-07' })
        .map((e) => (e.body as { change: number }).change),
    ).toEqual(risks.map((_, k) => k + 1));
    expect(gw.store()!.epoch()).toBe(epoch);

    // InfluxDB: the measurement risk, with the level as a field, with the red alarm's points as a field.
    await until('a red risk row in InfluxDB', async () => {
      const series = await influxQuery(influxdb.url, db, `SELECT * FROM risk WHERE site = '${site}' AND level = 'red'`);
      return series.length > 0;
    });
    const [series] = await influxQuery(influxdb.url, db, `SELECT * FROM risk WHERE site = '${site}' AND level = 'red'`);
    const row = Object.fromEntries(series!.columns.map((c, k) => [c, series!.values[0]![k]]));
    expect(row).toMatchObject({ equipment: 'B-07', level: 'red', consequence: 4 });
    expect(row.alarm_red).toBeGreaterThan(0);
    expect(row.score).toBeGreaterThanOrEqual(15);
  }, 60_000);
});
