// The risk service over a real store and alarm service, on fake time: a level change is committed
// with its state, journal entry and gw.risk.v1 in one transaction, then published; a change the
// store could not take is held and committed later under the same number; a restarted service
// continues the numbering; the hourly summary goes through the outbox and the journal.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Reading } from '../../../../drivers/types.js';
import { createAlarmService } from '../../../../gateway/alarms/service.js';
import type { MqttLink } from '../../../../gateway/mqtt/link.js';
import { topicsFor } from '../../../../gateway/mqtt/topics.js';
import type { Pipeline } from '../../../../gateway/pipeline.js';
import { Outbox } from '../../../../gateway/platform/outbox.js';
import { createRiskService } from '../../../../gateway/risk/service.js';
import { GatewayStore, STORE_FILE } from '../../../../gateway/store.js';
import type { RiskAssessment } from '../../../../rules/risk.js';
import { testSite } from '../../../helpers/site.js';

const RULES = ['rules:', '  - { id: high, equipment: B-07, when: steam_pressure > 1.3, level: red, message: "high" }'];
const START = Date.UTC(2026, 10, 22, 10, 58, 0);

async function running(store: GatewayStore, edit: (config: ReturnType<typeof testSite>) => void = () => {}) {
  const config = testSite({ extra: RULES });
  edit(config);
  const listeners: Array<(b: readonly Reading[]) => void> = [];
  const pipeline = {
    onBatch: (l: (b: readonly Reading[]) => void) => void listeners.push(l),
    status: () => ({ state: 'online' }),
  } as unknown as Pipeline;
  const published: Array<{ topic: string; payload: unknown; retain: boolean }> = [];
  const link = {
    publishEvent: (topic: string, payload: unknown, retain: boolean) => void published.push({ topic, payload, retain }),
    setGatewayHealth: () => {},
  } as unknown as MqttLink;
  const outbox = new Outbox(store);
  const common = { config, pipeline, link, topics: topicsFor('gw', 'test-site'), log: pino({ level: 'silent' }), store: () => store };
  const alarms = createAlarmService({ ...common, metrics: new Registry() });
  const lines: string[] = [];
  const metrics = new Registry();
  const risk = createRiskService({
    ...common,
    alarms,
    metrics,
    outbox: () => outbox,
    influx: (l) => void lines.push(...l),
  });
  await alarms.start();
  await risk.start();
  const feed = (value: number) => {
    const batch: Reading[] = [{ equipment: 'B-07', point: 'steam_pressure', value, quality: 'good', ts: Date.now() }];
    for (const l of listeners) l(batch);
  };
  const riskMessages = () =>
    published.filter((p) => p.topic === 'gw/test-site/B-07/risk').map((p) => ({ ...(p.payload as RiskAssessment), retain: p.retain }));
  const stop = async () => {
    await risk.stop();
    await alarms.stop();
    outbox.close();
  };
  return { risk, alarms, outbox, feed, riskMessages, lines, metrics, stop };
}

/** The pending risk changes of B-07, by their change number; each id checked to be this gateway's and this store's. */
const riskIds = (outbox: Outbox, store: GatewayStore) =>
  outbox
    .list('pending')
    .filter((r) => r.eventId.startsWith('risk-gw-test-'))
    .map((r) => {
      expect(r.eventId).toMatch(new RegExp(`^risk-gw-test-${store.epoch()}-B-07-\\d+$`));
      return `#${r.eventId.split('-').at(-1)}`;
    });

describe('risk service', () => {
  beforeEach(() => void vi.useFakeTimers({ now: START }));
  afterEach(() => void vi.useRealTimers());

  it('commits each level change with its state and journal entry, then publishes it; holds one the store cannot take; numbers on after a restart', async () => {
    const store = new GatewayStore(join(mkdtempSync(join(tmpdir(), 'gw-risk-svc-')), STORE_FILE));
    const first = await running(store);
    expect(first.riskMessages()).toMatchObject([{ level: 'blue', retain: true }]);
    first.feed(1.4);
    await vi.advanceTimersByTimeAsync(1000);
    expect(riskIds(first.outbox, store)).toEqual(['#1']);
    expect(store.loadRisk().get('B-07')).toMatchObject({ level: 'red', changes: 1 });
    expect(store.readJournal('risk', 0, Date.now() + 1)).toMatchObject([
      { equipment: 'B-07', body: { change: 1, level: 'red', previousLevel: 'blue' } },
    ]);
    expect(first.riskMessages().at(-1)).toMatchObject({ level: 'red', factors: [{ factor: 'alarm_red', value: 1 }] });
    expect(first.lines.at(-1)).toMatch(
      /^risk,site=test-site,equipment=B-07 level="red",level_code=3,score=20,likelihood=5,consequence=4,points=100,alarm_red=100 \d+000000$/,
    );

    // Cleared and acknowledged: down only after the hold (5 min); meanwhile the store cannot write: the change waits, unpublished.
    first.feed(1.2);
    first.alarms.acknowledge('B-07/high', 'op', 'seen');
    store.db.pragma('query_only = ON');
    await vi.advanceTimersByTimeAsync(5 * 60_000 + 2000);
    expect(riskIds(first.outbox, store)).toEqual(['#1']);
    expect(first.riskMessages().at(-1)).toMatchObject({ level: 'red' });
    store.db.pragma('query_only = OFF');
    await vi.advanceTimersByTimeAsync(1000);
    expect(riskIds(first.outbox, store)).toEqual(['#1', '#2']);
    expect(first.riskMessages().at(-1)).toMatchObject({ level: 'blue' });
    expect(store.loadRisk().get('B-07')).toMatchObject({ level: 'blue', changes: 2 });
    await first.stop();

    // A restarted service continues from the persisted count: the next change is the third, never a second "1".
    const second = await running(store);
    second.feed(1.4);
    await vi.advanceTimersByTimeAsync(1000);
    expect(riskIds(second.outbox, store)).toEqual(['#1', '#2', '#3']);
    expect(second.risk.api.history('B-07', 0, Date.now() + 1).map((p) => p.level)).toEqual(expect.arrayContaining(['red', 'blue']));
    await second.stop();
    store.close();
  });

  it('after a restart, the near misses and the alarm KPIs of the last 24 h still count (from the journal)', async () => {
    const store = new GatewayStore(join(mkdtempSync(join(tmpdir(), 'gw-risk-recall-')), STORE_FILE));
    const nearMissRules = (config: ReturnType<typeof testSite>) => {
      // The limit 1.3 with its normal at 1.0: the margin is 10 % of 0.3, from 1.27 up.
      config.rules[0]!.near_miss = { normal: 1.0, margin: '10%' };
    };
    const first = await running(store, nearMissRules);
    for (const v of [1.0, 1.28, 1.29, 1.0]) {
      first.feed(v);
      await vi.advanceTimersByTimeAsync(1000);
    }
    first.feed(1.4);
    await vi.advanceTimersByTimeAsync(1000);
    expect(first.risk.api.assessment('B-07')!.factors.map((f) => [f.factor, f.value])).toEqual([
      ['alarm_red', 1],
      ['near_misses', 1],
    ]);
    expect(first.risk.api.kpi(3_600_000).annunciated).toBe(1);
    await first.stop();

    const second = await running(store, nearMissRules);
    await vi.advanceTimersByTimeAsync(1000);
    expect(second.risk.api.assessment('B-07')!.factors.map((f) => [f.factor, f.value])).toEqual([
      ['alarm_red', 1],
      ['near_misses', 1],
    ]);
    expect(second.risk.api.kpi(3_600_000).annunciated).toBe(1);
    await second.stop();
    store.close();
  });

  it('sets the administrative alarms from the dates at start (overdue and in use: orange), and the risk counts them', async () => {
    const store = new GatewayStore(join(mkdtempSync(join(tmpdir(), 'gw-risk-admin-')), STORE_FILE));
    const s = await running(store, (config) => {
      config.gateway.timezone = 'Asia/Shanghai';
      // Due at the end of 2026-11-21 in Shanghai: START (10:58 UTC, 18:58 there on the 22nd) is a day past it.
      config.equipment[0]!.inspection = { next: '2026-11-21', warn_before: 30 * 86_400_000 };
    });
    expect(s.alarms.active().map((a) => [a.rule, a.level, a.origin])).toEqual([['inspection.overdue-in-use', 'orange', 'administrative']]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(s.risk.api.assessment('B-07')!.factors).toMatchObject([{ factor: 'inspection_overdue', value: 1 }]);
    await s.stop();
    store.close();
  });

  it('sends the hourly summary through the outbox and the journal, once per hour', async () => {
    const store = new GatewayStore(join(mkdtempSync(join(tmpdir(), 'gw-risk-sum-')), STORE_FILE));
    const s = await running(store);
    s.feed(1.4);
    await vi.advanceTimersByTimeAsync(3 * 60_000);
    const summaries = s.outbox
      .list('pending')
      .filter((r) => r.eventId.startsWith('risk-summary-'))
      .map((r) => JSON.parse(r.incident) as Record<string, unknown>);
    expect(summaries).toMatchObject([
      {
        schema: 'gw.risk-summary.v1',
        eventId: 'risk-summary-gw-test-2026-11-22T10:00:00.000Z',
        from: '2026-11-22T10:00:00.000Z',
        to: '2026-11-22T11:00:00.000Z',
        levels: { blue: 0, yellow: 0, orange: 0, red: 1 },
        equipment: [{ id: 'B-07', category: 'boiler', level: 'red', maxLevel: 'red', availability: 1 }],
        kpi: { annunciated: 1 },
      },
    ]);
    expect(store.readJournal('risk_summary', 0, Date.now())).toHaveLength(1);
    await s.stop();
    store.close();
  });

  it('lists in the summary only the equipment worth a look, and counts every equipment by level', async () => {
    const store = new GatewayStore(join(mkdtempSync(join(tmpdir(), 'gw-risk-sum-few-')), STORE_FILE));
    const s = await running(store, (config) => {
      // 200 more boilers that stay blue, online, without near misses: counted, not listed.
      for (let k = 0; k < 200; k++) config.equipment.push({ ...config.equipment[0]!, id: `Q-${k}` });
    });
    s.feed(1.4);
    await vi.advanceTimersByTimeAsync(3 * 60_000);
    const [summary] = s.outbox
      .list('pending')
      .filter((r) => r.eventId.startsWith('risk-summary-'))
      .map((r) => JSON.parse(r.incident) as { levels: unknown; equipment: Array<{ id: string }> });
    expect(summary!.levels).toEqual({ blue: 200, yellow: 0, orange: 0, red: 1 });
    expect(summary!.equipment.map((e) => e.id)).toEqual(['B-07']);
    // The journal keeps every equipment's figures: the daily report averages each one's availability over the hours.
    const [journaled] = store.readJournal('risk_summary', 0, Date.now());
    expect((journaled!.body as { equipment: unknown[]; levels: unknown }).equipment).toHaveLength(201);
    expect((journaled!.body as { levels: unknown }).levels).toEqual(summary!.levels);
    await s.stop();
    store.close();
  });

  it('holds at most a day of summaries while the store cannot write, the oldest dropped and counted', async () => {
    const store = new GatewayStore(join(mkdtempSync(join(tmpdir(), 'gw-risk-sum-bound-')), STORE_FILE));
    const s = await running(store, (config) => {
      config.risk.summary_every = 60_000;
    });
    store.db.pragma('query_only = ON');
    // 26 periods end while the store is read-only: 2 summaries more than are held.
    await vi.advanceTimersByTimeAsync(26 * 60_000);
    store.db.pragma('query_only = OFF');
    await vi.advanceTimersByTimeAsync(1000);
    const summaries = s.outbox.list('pending').filter((r) => r.eventId.startsWith('risk-summary-'));
    expect(summaries).toHaveLength(24);
    // The newest are kept: the last period that ended is there, the first two are not.
    expect(summaries.at(-1)!.eventId).toBe('risk-summary-gw-test-2026-11-22T11:23:00.000Z');
    expect(summaries[0]!.eventId).toBe('risk-summary-gw-test-2026-11-22T11:00:00.000Z');
    expect(await s.metrics.getSingleMetricAsString('gateway_risk_dropped_total')).toMatch(/gateway_risk_dropped_total\{kind="summary"\} 2/);
    await s.stop();
    store.close();
  });
});
