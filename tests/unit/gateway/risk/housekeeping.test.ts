// Journal housekeeping and administrative alarms on a site with risk judgement off: the alarm
// service (which every site runs) prunes the journal by report.keep, never in its start, in batches
// over its ticks; and the administrative alarms, which only the risk service sets, are not compiled.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createAlarmService, FIRST_PRUNE_MS, PRUNE_BATCH, PRUNE_EVERY_MS } from '../../../../gateway/alarms/service.js';
import type { MqttLink } from '../../../../gateway/mqtt/link.js';
import { topicsFor } from '../../../../gateway/mqtt/topics.js';
import type { Pipeline } from '../../../../gateway/pipeline.js';
import { GatewayStore, STORE_FILE } from '../../../../gateway/store.js';
import { testSite } from '../../../helpers/site.js';

const START = Date.UTC(2026, 10, 22, 10, 0, 0);
const DAY = 86_400_000;

function alarmService(store: GatewayStore, edit: (config: ReturnType<typeof testSite>) => void) {
  const config = testSite();
  edit(config);
  const pipeline = { onBatch: () => {}, status: () => ({ state: 'online' }) } as unknown as Pipeline;
  const link = { publishEvent: () => {}, setGatewayHealth: () => {} } as unknown as MqttLink;
  return createAlarmService({
    config,
    pipeline,
    link,
    topics: topicsFor('gw', 'test-site'),
    log: pino({ level: 'silent' }),
    metrics: new Registry(),
    store: () => store,
  });
}

const count = (store: GatewayStore) => (store.db.prepare('SELECT count(*) AS n FROM journal').get() as { n: number }).n;

describe('journal housekeeping with risk judgement off', () => {
  beforeEach(() => void vi.useFakeTimers({ now: START }));
  afterEach(() => void vi.useRealTimers());

  it('prunes entries older than report.keep from the alarm service, not at start, a batch per tick, then hourly', async () => {
    const store = new GatewayStore(join(mkdtempSync(join(tmpdir(), 'gw-prune-')), STORE_FILE));
    const old = START - 3 * DAY;
    store.appendJournal(Array.from({ length: 2 * PRUNE_BATCH + 10 }, (_, k) => ({ ts: old + k, kind: 'alarm' as const, body: { k } })));
    store.appendJournal([{ ts: START - DAY / 2, kind: 'alarm', body: { recent: true } }]);
    const alarms = alarmService(store, (config) => {
      config.risk.enabled = false;
      config.report.keep = 2 * DAY;
    });
    await alarms.start();
    expect(count(store)).toBe(2 * PRUNE_BATCH + 11);
    // The first prune comes after a minute; it takes three ticks of 250 ms, a batch each.
    await vi.advanceTimersByTimeAsync(FIRST_PRUNE_MS);
    expect(count(store)).toBe(PRUNE_BATCH + 11);
    await vi.advanceTimersByTimeAsync(250);
    expect(count(store)).toBe(11);
    await vi.advanceTimersByTimeAsync(250);
    expect(count(store)).toBe(1);
    // The next prune is an hour after that one ended: an entry past report.keep waits for it.
    store.appendJournal([{ ts: START - 2 * DAY - 10 * 60_000, kind: 'near_miss', body: {} }]);
    await vi.advanceTimersByTimeAsync(PRUNE_EVERY_MS - 60_000);
    expect(count(store)).toBe(2);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(count(store)).toBe(1);
    await alarms.stop();
    store.close();
  });

  it('compiles the administrative alarms only when the risk service runs, which sets them', () => {
    const store = new GatewayStore(join(mkdtempSync(join(tmpdir(), 'gw-admin-off-')), STORE_FILE));
    const dated = (enabled: boolean) => (config: ReturnType<typeof testSite>) => {
      config.risk.enabled = enabled;
      config.equipment[0]!.inspection = { next: '2026-11-21', warn_before: 30 * DAY };
    };
    const administrative = (enabled: boolean) =>
      alarmService(store, dated(enabled))
        .specs.map((s) => s.id)
        .filter((id) => id.startsWith('inspection.'));
    expect(administrative(true)).toEqual(['inspection.due-soon', 'inspection.overdue', 'inspection.overdue-in-use']);
    expect(administrative(false)).toEqual([]);
    store.close();
  });
});
