// The alarm service journals every alarm event in the commit that saves the alarm states (the KPIs and
// the daily report read it after a restart), and sets the administrative alarms from outside the
// readings, committed the same way.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { Reading } from '../../../../drivers/types.js';
import { createAlarmService } from '../../../../gateway/alarms/service.js';
import type { MqttLink } from '../../../../gateway/mqtt/link.js';
import { topicsFor } from '../../../../gateway/mqtt/topics.js';
import type { Pipeline } from '../../../../gateway/pipeline.js';
import { GatewayStore, STORE_FILE } from '../../../../gateway/store.js';
import type { AlarmEvent } from '../../../../rules/types.js';
import { testSite } from '../../../helpers/site.js';

const RULES = ['rules:', '  - { id: high, equipment: B-07, when: steam_pressure > 1.3, level: yellow, message: "high" }'];

async function running(edit: (config: ReturnType<typeof testSite>) => void = () => {}) {
  const config = testSite({ extra: RULES });
  edit(config);
  const store = new GatewayStore(join(mkdtempSync(join(tmpdir(), 'gw-journal-svc-')), STORE_FILE));
  let feed: (batch: readonly Reading[]) => void = () => {};
  const pipeline = { onBatch: (l: typeof feed) => void (feed = l) } as unknown as Pipeline;
  const link = { publishEvent: () => {}, setGatewayHealth: () => {} } as unknown as MqttLink;
  const service = createAlarmService({
    config,
    pipeline,
    link,
    topics: topicsFor('gw', 'test-site'),
    log: pino({ level: 'silent' }),
    metrics: new Registry(),
    store: () => store,
  });
  await service.start();
  return { service, store, feed: (b: readonly Reading[]) => feed(b) };
}

const pressure = (value: number, ts: number): Reading[] => [{ equipment: 'B-07', point: 'steam_pressure', value, quality: 'good', ts }];

describe('alarm journal', () => {
  it('journals each alarm event with its alarm state, in order; none while the store cannot write, all once it can', async () => {
    const { service, store, feed } = await running();
    const t = Date.now();
    feed(pressure(1.4, t));
    const journal = () => store.readJournal('alarm', 0, Number.MAX_SAFE_INTEGER).map((e) => [(e.body as AlarmEvent).type, e.equipment]);
    expect(journal()).toEqual([['raised', 'B-07']]);
    store.db.pragma('query_only = ON');
    feed(pressure(1.2, t + 1000));
    expect(journal()).toEqual([['raised', 'B-07']]);
    // The alarm state was not saved either: the journal never says more than the store holds.
    expect(store.loadAlarms().get('B-07/high')).toMatchObject({ active: true });
    store.db.pragma('query_only = OFF');
    await expect.poll(() => service.storeStats().writable, { timeout: 5000 }).toBe(true);
    expect(journal()).toEqual([
      ['raised', 'B-07'],
      ['cleared', 'B-07'],
    ]);
    expect(store.readJournal('alarm', t + 1000, t + 1001)).toHaveLength(1); // journaled at the event's time
    await service.stop();
    store.close();
  });

  it('raises an administrative alarm by setExternal, journaled and saved like any other, and refuses an unknown key', async () => {
    const { service, store } = await running((config) => {
      config.equipment[0]!.inspection = { next: '2020-01-01', warn_before: 30 * 86_400_000 };
    });
    expect(service.specs.map((s) => s.id)).toEqual(
      expect.arrayContaining(['high', 'inspection.due-soon', 'inspection.overdue', 'inspection.overdue-in-use']),
    );
    const events = service.setExternal('B-07/inspection.overdue', true);
    expect(events.map((e) => [e.type, e.rule, e.origin])).toEqual([['raised', 'inspection.overdue', 'administrative']]);
    expect(service.active().map((a) => a.rule)).toEqual(['inspection.overdue']);
    expect(store.loadAlarms().get('B-07/inspection.overdue')).toMatchObject({ active: true });
    expect(store.readJournal('alarm', 0, Number.MAX_SAFE_INTEGER).map((e) => (e.body as AlarmEvent).rule)).toEqual(['inspection.overdue']);
    expect(() => service.setExternal('B-07/nothing', true)).toThrow(/B-07\/nothing/);
    expect(() => service.setExternal('B-07/high', true)).toThrow(/not an external alarm/);
    await service.stop();
    store.close();
  });
});
