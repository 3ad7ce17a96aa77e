// The alarm service over a store that cannot write: its memory queue is bounded, what it drops is
// counted and reported, and what it kept is committed in order once the store writes again.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MqttLink } from '../../../../gateway/mqtt/link.js';
import { incidentOf } from '../../../../gateway/platform/contract.js';
import { Outbox } from '../../../../gateway/platform/outbox.js';
import { GatewayStore, STORE_FILE } from '../../../../gateway/store.js';
import type { AlarmEvent } from '../../../../rules/types.js';
import { fedAlarmService } from '../../../helpers/alarm-service.js';
import { testSite } from '../../../helpers/site.js';

const RULES = [
  'alarms: { chattering: { activations: 1000 } }',
  'rules:',
  '  - { id: high, equipment: B-07, when: steam_pressure > 1.3, level: yellow, message: "high" }',
];

describe('alarm service over a store that cannot write', () => {
  it('keeps at most its bound of events, counts and reports the drops, and commits the rest in order once it can', async () => {
    const config = testSite({ extra: RULES });
    const store = new GatewayStore(join(mkdtempSync(join(tmpdir(), 'gw-svc-')), STORE_FILE));
    const outbox = new Outbox(store);
    const published: AlarmEvent[] = [];
    const health: Array<string | undefined> = [];
    const link = {
      publishEvent: (topic: string, payload: unknown) => void (topic.endsWith('/alarms') && published.push(payload as AlarmEvent)),
      setGatewayHealth: (reason: string | undefined) => void health.push(reason),
    } as unknown as MqttLink;
    const { service, feed, lines } = fedAlarmService(
      config,
      {
        link,
        platform: () => ({
          add: (events) => void outbox.add(events.flatMap((e) => incidentOf(e, undefined, 'gw-test') ?? [])),
          notify: () => {},
        }),
        maxUncommittedEvents: 5,
      },
      store,
    );
    await service.start();
    let t = Date.now();
    const toggle = (n: number) => {
      for (let k = 0; k < n; k++)
        feed([{ equipment: 'B-07', point: 'steam_pressure', value: k % 2 === 0 ? 1.4 : 1.2, quality: 'good', ts: (t += 100) }]);
    };
    toggle(2);
    expect(outbox.stats().pending).toBe(2);

    // Every write fails from now on (the integration test fills a real filesystem).
    store.db.pragma('query_only = ON');
    toggle(12);
    // Every event still published; the store took none of them.
    expect(published.length).toBe(14);
    expect(service.storeStats()).toMatchObject({ writable: false, uncommittedEvents: 5, droppedEvents: 7 });
    expect(health.at(-1)).toMatch(/^store not writable: attempt to write a readonly database/);
    expect(lines.filter((l) => String(l.msg).startsWith('The store cannot write'))).toHaveLength(1); // once a minute at most

    store.db.pragma('query_only = OFF');
    // The first retry comes 1 s after the failure, from a tick (every 250 ms).
    await expect.poll(() => service.storeStats().writable, { timeout: 5000 }).toBe(true);
    expect(service.storeStats()).toMatchObject({ writable: true, uncommittedEvents: 0, droppedEvents: 7 });
    expect(health.at(-1)).toBeUndefined();
    // The first two, then the newest five in the order they were made.
    expect(outbox.list('pending').map((r) => r.eventId)).toEqual([...published.slice(0, 2), ...published.slice(9)].map((e) => e.eventId));
    await service.stop();
    outbox.close();
    store.close();
  });
});
