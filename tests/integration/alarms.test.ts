// The rule engine inside a running gateway: alarm events on MQTT, states kept across a restart,
// alarm events written to InfluxDB's `alarm` measurement.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { retained, subscribe, type Subscriber } from '../helpers/mqtt.js';
import { freePort } from '../helpers/processes.js';
import { testSite } from '../helpers/site.js';
import type { AlarmEvent } from '../../rules/types.js';

const silent = pino({ level: 'silent' });
// The simulated boiler runs at about 1.25 MPa: this rule is true from the first poll.
const RULES = [
  'rules:',
  '  - { id: pressure-present, equipment: B-07, when: steam_pressure > 0.5, level: blue, message: "Boiler under pressure: {value} {unit}" }',
];

describe('alarms in a running gateway', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });
  const track = <T extends Gateway | Subscriber>(x: T): T => {
    cleanup.push(() => ('stop' in x ? x.stop() : x.close()));
    return x;
  };

  it('keeps an active alarm across a restart: the same incident, no second raised event, acknowledged after', async () => {
    // An external broker, so that a subscriber is there before the restarted gateway's first poll
    // (the embedded broker only starts with the gateway, after which a raised event could be missed).
    const mosquitto = inject('mosquitto');
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-alarms-'));
    cleanup.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const name = `alarms-restart-${Date.now()}`;
    const site = () => testSite({ broker: mosquitto.url, site: name, gatewayId: name, dataDir, extra: RULES });
    const sub1 = track(await subscribe(mosquitto.url, `gw/${name}/#`));
    const first = track(createGateway(site(), silent));
    await first.start();
    const raised = JSON.parse(
      (await sub1.waitFor((m) => m.topic === `gw/${name}/B-07/alarms`, 5000, 'raised event')).payload,
    ) as AlarmEvent;
    expect(raised).toMatchObject({ type: 'raised', rule: 'pressure-present', state: 'active_unacknowledged' });
    const incident = raised.incidentId;
    await sub1.waitFor((m) => m.topic === `gw/${name}/alarms/active` && m.payload.includes(incident), 5000, 'active list with the alarm');
    const list = JSON.parse((await retained(mosquitto.url, `gw/${name}/alarms/active`, 2000))!) as {
      alarms: Array<{ key: string; incidentId: string; state: string }>;
    };
    expect(list.alarms).toMatchObject([{ key: 'B-07/pressure-present', state: 'active_unacknowledged', incidentId: incident }]);
    await first.stop();
    expect(sub1.messages.filter((m) => m.topic === `gw/${name}/B-07/alarms`)).toHaveLength(1);

    // Both the broker and the alarm service are watched from before the restarted gateway's first poll.
    const sub = track(await subscribe(mosquitto.url, `gw/${name}/#`));
    const second = track(createGateway(site(), silent));
    const secondEvents: AlarmEvent[] = [];
    second.alarms.onEvents((events) => secondEvents.push(...events));
    await second.start();
    await sub.waitFor((m) => m.topic.endsWith('/telemetry'), 5000, 'telemetry');
    // Several polls at 200 ms, each of which finds the rule's condition true.
    await new Promise((r) => setTimeout(r, 1000));
    expect(sub.messages.filter((m) => m.topic.endsWith('/telemetry')).length).toBeGreaterThanOrEqual(3);
    expect(secondEvents).toEqual([]);
    expect(sub.messages.filter((m) => m.topic === `gw/${name}/B-07/alarms`)).toEqual([]);
    expect(second.alarms.active()).toMatchObject([{ incidentId: incident, state: 'active_unacknowledged' }]);

    const [ack] = second.alarms.acknowledge('B-07/pressure-present', 'wang', 'seen on site');
    expect(ack).toMatchObject({
      type: 'acknowledged',
      incidentId: incident,
      state: 'active_acknowledged',
      by: 'wang',
      comment: 'seen on site',
    });
    const onMqtt = await sub.waitFor((m) => m.topic === `gw/${name}/B-07/alarms`, 5000, 'acknowledged event');
    expect(JSON.parse(onMqtt.payload)).toMatchObject({ type: 'acknowledged', eventId: ack!.eventId });
    expect(secondEvents.map((e) => e.type)).toEqual(['acknowledged']);
  });

  it('writes alarm events to the InfluxDB alarm measurement', async () => {
    const influxdb = inject('influxdb');
    const db = `alarms_${Date.now()}`;
    await fetch(`${influxdb.url}/query?q=${encodeURIComponent(`CREATE DATABASE "${db}"`)}`, { method: 'POST' });
    const gw = track(
      createGateway(
        testSite({
          port: await freePort(),
          extra: [...RULES, 'influx:', '  api: v1', `  url: ${influxdb.url}`, `  database: ${db}`, '  flush_interval: 200ms'],
        }),
        silent,
      ),
    );
    await gw.start();
    const query = async () => {
      const res = await fetch(`${influxdb.url}/query?db=${db}&q=${encodeURIComponent('SELECT * FROM alarm')}`);
      const json = (await res.json()) as { results: Array<{ series?: Array<{ columns: string[]; values: unknown[][] }> }> };
      const s = json.results[0]?.series?.[0];
      return s ? s.values.map((v) => Object.fromEntries(s.columns.map((c, k) => [c, v[k]]))) : [];
    };
    await expect.poll(query, { timeout: 10_000, interval: 300 }).toHaveLength(1);
    const [row] = await query();
    expect(row).toMatchObject({
      site: 'test-site',
      equipment: 'B-07',
      rule: 'pressure-present',
      level: 'blue',
      state: 'active_unacknowledged',
      type: 'raised',
    });
    expect(row!.value as number).toBeGreaterThan(0.5);
  });
});
