// The Sparkplug B edge node against a primary-host simulation decoding with Eclipse Tahu's decoder:
// on Mosquitto (its connection cut and restored: NDEATH by the Will, store and forward) and on the
// embedded broker (the gateway's own broker, its ACL, alarms as metrics, DDEATH and DBIRTH again).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import mqtt from 'mqtt';
import { parseSite } from '../../config/load.js';
import type { Reading } from '../../drivers/types.js';
import type { SparkplugService } from '../../gateway/services/sparkplug.js';
import { hashPassword } from '../../gateway/mqtt/users.js';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { freePort } from '../helpers/processes.js';
import { BOILER_POINTS, testSiteYaml } from '../helpers/site.js';
import { startProxy, startSparkplugHost, type HostMessage, type SparkplugHost } from '../helpers/sparkplug-host.js';

const silent = pino({ level: 'silent' });

/** The test site (boiler B-07 polled every 100 ms by default) as gw-spb, with its sparkplug lines and quick reconnects. */
function siteYaml(o: {
  broker: string;
  port?: number;
  site: string;
  mqtt?: string[];
  sparkplug: string[];
  rules?: string[];
  poll?: string;
  dataDir?: string;
}): string {
  return testSiteYaml({
    broker: o.broker,
    port: o.port,
    site: o.site,
    gatewayId: 'gw-spb',
    dataDir: o.dataDir,
    pollInterval: o.poll ?? '100ms',
    reconnect: '{ initial_delay: 100ms, max_delay: 300ms }',
    mqttExtra: o.mqtt,
    extra: ['sparkplug:', ...o.sparkplug.map((l) => `  ${l}`), ...(o.rules ?? [])],
  });
}

/** Each DDATA metric as `<name>@<timestamp>=<value>`, its name from the device's births. */
function dataOf(host: SparkplugHost, device: string): Array<{ key: string; historical: boolean; ts: number }> {
  const names = new Map<number, string>();
  const out: Array<{ key: string; historical: boolean; ts: number }> = [];
  for (const m of host.messages) {
    if (m.device !== device) continue;
    if (m.type === 'DBIRTH') for (const x of m.metrics) names.set(x.alias!, x.name!);
    if (m.type === 'DDATA')
      for (const x of m.metrics)
        out.push({
          key: `${names.get(x.alias!)}@${x.timestamp}=${String(x.value)}`,
          historical: x.isHistorical === true,
          ts: x.timestamp!,
        });
  }
  return out;
}

const count = (host: SparkplugHost, type: string) => host.messages.filter((m) => m.type === type).length;
const after = (host: SparkplugHost, i: number, match: (m: HostMessage) => boolean) => (m: HostMessage) =>
  host.messages.indexOf(m) >= i && match(m);

describe('Sparkplug B edge node', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });

  it('on Mosquitto: births, rebirth on NCMD, NDEATH when its connection is cut, and every reading of the outage once, historical, in order', async () => {
    const mosquitto = inject('mosquitto');
    const brokerPort = Number(new URL(mosquitto.url).port);
    const proxy = await startProxy(brokerPort);
    cleanup.push(() => proxy.close());
    const group = `g-${Date.now()}`;
    const config = parseSite(
      siteYaml({
        broker: mosquitto.url,
        site: 'spb-ext',
        sparkplug: [`broker: mqtt://127.0.0.1:${proxy.port}`, `group_id: ${group}`, 'rebirth_interval: 100ms'],
      }),
      { env: {} },
    );
    const host = await startSparkplugHost(mosquitto.url, { group, node: 'gw-spb' });
    cleanup.push(() => host.close());
    const gw: Gateway = createGateway(config, silent);
    cleanup.push(() => gw.stop());
    const readings: Reading[] = [];
    let firstBatch = true;
    gw.pipeline.onBatch((batch) => {
      // The first batch of a device is carried by its DBIRTH, not by DDATA.
      if (!firstBatch) readings.push(...batch.filter((r) => r.equipment === 'B-07').map((r) => ({ ...r })));
      firstBatch = false;
    });
    await gw.start();

    const nbirth = await host.waitFor((m) => m.type === 'NBIRTH', 10_000, 'NBIRTH');
    const bdSeq = nbirth.metrics.find((m) => m.name === 'bdSeq')!.value as number;
    expect(nbirth.metrics.find((m) => m.name === 'Node Control/Rebirth')).toMatchObject({ type: 'Boolean', value: false });
    expect(nbirth.metrics.find((m) => m.name === 'Node Info/Site')).toMatchObject({ type: 'String', value: 'spb-ext' });
    // Aliases are unique across the node and its devices.
    const aliases = [...nbirth.metrics, ...(await host.waitFor((m) => m.type === 'DBIRTH', 10_000, 'DBIRTH')).metrics].map((m) => m.alias);
    expect(new Set(aliases).size).toBe(aliases.length);
    const dbirth = await host.waitFor((m) => m.type === 'DBIRTH' && m.device === 'B-07', 10_000, 'DBIRTH');
    expect(dbirth.metrics.map((m) => m.name).sort()).toEqual([...BOILER_POINTS].sort());
    for (const m of dbirth.metrics) expect(m.properties?.Quality).toEqual({ type: 'Int32', value: 192 });
    expect(dbirth.metrics.find((m) => m.name === 'steam_pressure')).toMatchObject({ type: 'Double' });
    expect(dbirth.metrics.find((m) => m.name === 'flame')!.type).toMatch(/Boolean|Double/);
    await host.waitFor((m) => m.type === 'DDATA', 5000, 'DDATA');

    // Rebirth: NBIRTH with seq 0 again, the same bdSeq, and the device's DBIRTH.
    const before = host.messages.length;
    await host.rebirth();
    const reborn = await host.waitFor(
      after(host, before, (m) => m.type === 'NBIRTH'),
      5000,
      'NBIRTH after NCMD',
    );
    expect(reborn.seq).toBe(0);
    expect(reborn.metrics.find((m) => m.name === 'bdSeq')!.value).toBe(bdSeq);
    await host.waitFor(
      after(host, before, (m) => m.type === 'DBIRTH'),
      5000,
      'DBIRTH after NCMD',
    );

    // Three requests within rebirth_interval (100 ms): the first right away (the last birth is older), the
    // other two served by one rebirth at the interval's end, and no more.
    await new Promise((r) => setTimeout(r, 150)); // past rebirth_interval since that birth
    const burst = host.messages.length;
    await Promise.all([host.rebirth(), host.rebirth(), host.rebirth()]);
    const nbirths = () => host.messages.slice(burst).filter((m) => m.type === 'NBIRTH').length;
    await host.waitFor(
      after(host, burst, (m) => m.type === 'NBIRTH' && nbirths() === 2),
      5000,
      'the second NBIRTH of the burst',
    );
    await new Promise((r) => setTimeout(r, 300)); // three rebirth intervals: a third would have come
    expect(nbirths()).toBe(2);

    // The node's connection dies: the broker publishes its Will, the NDEATH with the NBIRTH's bdSeq.
    await proxy.cut();
    const cutAt = Date.now();
    const ndeath = await host.waitFor((m) => m.type === 'NDEATH', 5000, 'NDEATH (the Will)');
    expect(ndeath.metrics.find((m) => m.name === 'bdSeq')!.value).toBe(bdSeq);
    // What went out just before (QoS 0) may not have arrived: counted, never silent.
    const unconfirmed = async () => (await gw.metrics.getSingleMetric('gateway_sparkplug_unconfirmed_total')!.get()).values[0]?.value ?? 0;
    await new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + 5000;
      const check = async () =>
        (await unconfirmed()) > 0
          ? resolve()
          : Date.now() > deadline
            ? reject(new Error('nothing counted'))
            : setTimeout(() => void check(), 20);
      void check();
    });
    // Readings go on while the broker is out of reach.
    await new Promise<void>((resolve) => {
      const check = () => (readings.filter((r) => r.ts > cutAt).length >= 5 * BOILER_POINTS.length ? resolve() : setTimeout(check, 50));
      check();
    });
    const births = count(host, 'NBIRTH');
    await proxy.restore();
    const again = await host.waitFor(
      (m) => m.type === 'NBIRTH' && host.messages.indexOf(m) > host.messages.indexOf(ndeath),
      10_000,
      'NBIRTH after the outage',
    );
    expect(count(host, 'NBIRTH')).toBe(births + 1);
    expect(again.metrics.find((m) => m.name === 'bdSeq')!.value).not.toBe(bdSeq);

    // Every reading taken so far arrives once, as DDATA; those of the outage historical, in time order.
    // Data is QoS 0 (Sparkplug requires it): what was handed to the socket in the moments before the
    // node saw its connection die may be lost (docs/sparkplug.md), so those arrive at most once.
    const taken = readings.filter((r) => r.quality === 'good').map((r) => ({ key: `${r.point}@${r.ts}=${String(r.value)}`, ts: r.ts }));
    const inWindow = (ts: number) => ts > cutAt - 50 && ts < cutAt + 100;
    const wanted = new Set(taken.filter((t) => !inWindow(t.ts)).map((t) => t.key));
    await new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + 10_000;
      const check = () => {
        const got = new Set(dataOf(host, 'B-07').map((d) => d.key));
        if ([...wanted].every((k) => got.has(k))) return resolve();
        if (Date.now() > deadline)
          return reject(new Error(`missing ${[...wanted].filter((k) => !got.has(k)).length} of ${wanted.size} readings`));
        setTimeout(check, 50);
      };
      check();
    });
    const data = dataOf(host, 'B-07');
    const keys = data.map((d) => d.key);
    expect(new Set(keys).size).toBe(keys.length);
    const outage = taken.filter((t) => t.ts > cutAt + 100 && t.ts < cutAt + 400);
    expect(outage.length).toBeGreaterThan(0);
    const historical = data.filter((d) => d.historical);
    for (const t of outage) expect(historical.map((h) => h.key)).toContain(t.key);
    expect(historical.map((h) => h.ts)).toEqual([...historical.map((h) => h.ts)].sort((a, b) => a - b));

    await gw.stop();
    await host.waitFor((m) => m.type === 'NDEATH' && host.messages.indexOf(m) > host.messages.indexOf(again), 5000, 'NDEATH at stop');
    expect(host.violations).toEqual([]);
  });

  it("on the embedded broker: the gateway's own broker, alarms as metrics, DDEATH and DBIRTH as the equipment goes and comes, nobody else publishes as the node", async () => {
    const port = await freePort();
    const site = 'spb-emb';
    const password = 'host-password-1';
    const config = parseSite(
      siteYaml({
        broker: 'embedded',
        port,
        site,
        mqtt: [
          'users:',
          `  - { name: scada, role: custom, hash: "${hashPassword(password)}", subscribe: ["spBv1.0/#"], publish: ["spBv1.0/${site}/NCMD/gw-spb", "spBv1.0/${site}/DDATA/#"] }`,
        ],
        sparkplug: ['rebirth_interval: 100ms'],
        rules: [
          'rules:',
          '  - { id: pressure-present, equipment: B-07, when: steam_pressure > 0.5, level: orange, message: "Boiler under pressure" }',
        ],
      }),
      { env: {} },
    );
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    const gw: Gateway = createGateway(config, log);
    cleanup.push(() => gw.stop());
    await gw.start();
    const url = `mqtt://127.0.0.1:${port}`;
    const host = await startSparkplugHost(url, { group: site, node: 'gw-spb' }, { username: 'scada', password });
    cleanup.push(() => host.close());
    // A command that is no Sparkplug payload is refused with a warning; the node goes on.
    await host.client.publishAsync(`spBv1.0/${site}/NCMD/gw-spb`, Buffer.from([0x12, 0xff, 0xff, 0xff, 0x0f]), { qos: 1 });
    // The host came after the births: it asks for them.
    await host.rebirth();
    await host.waitFor((m) => m.type === 'NBIRTH', 5000, 'NBIRTH');
    // The bad command came before the rebirth's, on the same connection: it was read, and refused.
    expect(lines.some((l) => l.includes('Sparkplug NCMD is not a Sparkplug B payload; ignored'))).toBe(true);
    await host.waitFor((m) => m.type === 'DDATA', 5000, 'DDATA');

    // The alarm is a metric of the device, born with its state, level and message.
    await host.waitFor(
      (m) =>
        m.type === 'DBIRTH' && m.metrics.some((x) => x.name === 'Alarms/pressure-present/State' && String(x.value).startsWith('active')),
      10_000,
      'DBIRTH with the alarm',
    );
    const birth = host.birth('B-07');
    expect(birth.get('Alarms/pressure-present/Level')).toMatchObject({ type: 'String', value: 'orange' });
    expect(birth.get('Alarms/pressure-present/Message')).toMatchObject({ type: 'String', value: 'Boiler under pressure' });

    // The equipment goes offline (every point bad, as a dead connection makes them): DDEATH; the next good poll: DBIRTH.
    const i = host.messages.length;
    gw.pipeline.push(
      BOILER_POINTS.map((point) => ({ equipment: 'B-07', point, value: null, quality: 'bad' as const, reason: 'timeout', ts: Date.now() })),
    );
    const ddeath = await host.waitFor(
      after(host, i, (m) => m.type === 'DDEATH' && m.device === 'B-07'),
      5000,
      'DDEATH',
    );
    await host.waitFor(
      after(host, host.messages.indexOf(ddeath), (m) => m.type === 'DBIRTH' && m.device === 'B-07'),
      5000,
      'DBIRTH after DDEATH',
    );

    // A point whose value changes type (a driver's string where numbers were): the equipment is born
    // again with the new type, once its last birth is a rebirth interval old.
    const lastBirth = host.messages.findLast((m) => m.type === 'DBIRTH')!;
    const k = host.messages.length;
    await new Promise((r) => setTimeout(r, 150)); // rebirth_interval: 100ms since that DBIRTH
    gw.pipeline.push([{ equipment: 'B-07', point: 'steam_pressure', value: 'n/a', quality: 'good', ts: Date.now() }]);
    const retyped = await host.waitFor(
      after(host, k, (m) => m.type === 'DBIRTH'),
      5000,
      'DBIRTH with the new type',
    );
    expect(retyped).not.toBe(lastBirth);
    expect(retyped.metrics.find((x) => x.name === 'steam_pressure')).toMatchObject({ type: 'String', value: 'n/a' });

    // Another client, even one allowed spBv1.0/<site>/DDATA/#, cannot publish as the node.
    const refusedBefore = gw.broker!.stats().refusedPublishes;
    const forger = await mqtt.connectAsync(url, { username: 'scada', password, reconnectPeriod: 0 });
    forger.on('error', () => {});
    forger.publish(`spBv1.0/${site}/DDATA/gw-spb/B-07`, Buffer.from('forged'), { qos: 0 });
    await new Promise<void>((resolve) => forger.once('close', () => resolve()));
    expect(gw.broker!.stats().refusedPublishes).toBe(refusedBefore + 1);
    forger.end(true);

    await gw.stop();
    await host.waitFor((m) => m.type === 'NDEATH', 5000, 'NDEATH at stop');
    expect(host.messages.some((m) => m.metrics.length === 0 && m.type === 'DDATA')).toBe(false);
    expect(host.violations).toEqual([]);
  });

  it('with a primary host: waits for its STATE, stores while it is offline, a new session (bdSeq) each time, seq wraps at 255, bdSeq goes on after a restart', async () => {
    const mosquitto = inject('mosquitto');
    const group = `h-${Date.now()}`;
    const hostId = `host-${Date.now()}`;
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-data-'));
    const yaml = siteYaml({
      broker: mosquitto.url,
      site: 'spb-host',
      dataDir,
      poll: '10ms',
      sparkplug: [`group_id: ${group}`, `primary_host_id: ${hostId}`, 'rebirth_interval: 100ms', 'max_stored: 1000'],
    });
    const host = await startSparkplugHost(mosquitto.url, { group, node: 'gw-spb', hostId });
    cleanup.push(() => host.close());
    cleanup.push(() => host.client.publishAsync(`spBv1.0/STATE/${hostId}`, '', { retain: true, qos: 1 }));
    await host.state(false);
    let gw = createGateway(parseSite(yaml, { env: {} }), silent);
    cleanup.push(() => gw.stop());
    const stored = () => (gw.services.find((s) => s.id === 'sparkplug') as SparkplugService).node()!.stats().stored;
    const until = (what: string, ok: () => boolean) =>
      new Promise<void>((resolve, reject) => {
        const deadline = Date.now() + 10_000;
        const check = () => (ok() ? resolve() : Date.now() > deadline ? reject(new Error(`not ${what}`)) : setTimeout(check, 20));
        check();
      });
    await gw.start();
    // The host is offline: no births, readings wait.
    // A STATE that is not Sparkplug's is ignored.
    await host.client.publishAsync(`spBv1.0/STATE/${hostId}`, 'maybe', { qos: 1 });
    // Past max_stored the oldest go, counted.
    const dropped = async () =>
      (await gw.metrics.getSingleMetric('gateway_sparkplug_dropped_total')!.get()).values.find((v) => v.labels.reason === 'queue_full')
        ?.value ?? 0;
    await new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + 10_000;
      const check = async () =>
        (await dropped()) > 0
          ? resolve()
          : Date.now() > deadline
            ? reject(new Error('nothing dropped'))
            : setTimeout(() => void check(), 20);
      void check();
    });
    expect(stored()).toBe(1000);
    expect(host.messages).toEqual([]);

    await host.state(true);
    const first = await host.waitFor((m) => m.type === 'NBIRTH', 5000, 'NBIRTH once the host is online');
    const bdSeq = first.metrics.find((m) => m.name === 'bdSeq')!.value as number;
    await host.waitFor((m) => m.type === 'DDATA' && m.metrics.some((x) => x.isHistorical), 5000, 'historical DDATA');
    await until('drained', () => stored() === 0);

    // The host goes offline: the node ends its session (NDEATH) and stores again.
    await host.state(false);
    const death = await host.waitFor((m) => m.type === 'NDEATH', 5000, 'NDEATH when the host goes offline');
    expect(death.metrics.find((m) => m.name === 'bdSeq')!.value).toBe(bdSeq);
    await until('storing again', () => stored() > 0);
    await host.state(true);
    const second = await host.waitFor((m) => m.type === 'NBIRTH' && m !== first, 5000, 'NBIRTH of the new session');
    expect(second.metrics.find((m) => m.name === 'bdSeq')!.value).toBe((bdSeq + 1) % 256);

    // Polls every 10 ms: seq runs past 255 to 0 without a gap (the host checks every message).
    await host.waitFor((m) => m.type === 'DDATA' && m.seq === 0, 10_000, 'DDATA with seq wrapped to 0');

    await gw.stop();
    await host.waitFor((m) => m.type === 'NDEATH' && host.messages.indexOf(m) > host.messages.indexOf(second), 5000, 'NDEATH at stop');
    // Restarted on the same data folder, the node's bdSeq goes on from where it was.
    gw = createGateway(parseSite(yaml, { env: {} }), silent);
    await gw.start();
    const third = await host.waitFor((m) => m.type === 'NBIRTH' && m !== first && m !== second, 5000, 'NBIRTH after a restart');
    expect(third.metrics.find((m) => m.name === 'bdSeq')!.value).toBe((bdSeq + 2) % 256);
    await gw.stop();
    expect(host.violations).toEqual([]);
  });
});
