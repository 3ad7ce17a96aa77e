// The edge node's rebirth bound against a clock step: the wall clock set back (NTP, an operator)
// must not hold back a rebirth a host asks for.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { parseSite } from '../../config/load.js';
import { createMetrics } from '../../gateway/metrics.js';
import { createEdgeNode } from '../../gateway/sparkplug/node.js';
import { testSiteYaml } from '../helpers/site.js';
import { startProxy, startSparkplugHost } from '../helpers/sparkplug-host.js';

describe('Sparkplug rebirth and the wall clock', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    while (cleanup.length) await cleanup.pop()!();
  });

  it('a rebirth asked for after the clock was set back an hour comes within the rebirth interval', async () => {
    const mosquitto = inject('mosquitto');
    const mqtt = parseSite(testSiteYaml({ broker: mosquitto.url }), { env: {} }).mqtt;
    const group = `ck-${Date.now()}`;
    const node = createEdgeNode({
      groupId: group,
      edgeNodeId: 'gw-ck',
      url: mosquitto.url,
      mqtt,
      clientId: `gw-ck-${Date.now()}`,
      equipment: [{ id: 'E-1', points: [{ name: 'p' }] }],
      activeAlarms: () => [],
      bdSeq: { load: () => 0, save: () => {} },
      queueFile: join(mkdtempSync(join(tmpdir(), 'spb-clock-')), 'sparkplug-queue.db'),
      maxStored: 1000,
      rebirthInterval: 200,
      info: {},
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
    });
    const host = await startSparkplugHost(mosquitto.url, { group, node: 'gw-ck' });
    cleanup.push(() => host.close());
    cleanup.push(() => node.stop());
    await node.start();
    await host.waitFor((m) => m.type === 'NBIRTH', 5000, 'NBIRTH');
    await new Promise((r) => setTimeout(r, 300));
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() - 3_600_000);
    const before = host.messages.length;
    await host.rebirth();
    await host.waitFor((m) => m.type === 'NBIRTH' && host.messages.indexOf(m) >= before, 2000, 'NBIRTH after the clock step');
    expect(host.violations).toEqual([]);
  });

  it('data sent just before a cut is counted as unconfirmed though the clock stepped forward in between', async () => {
    const mosquitto = inject('mosquitto');
    const proxy = await startProxy(Number(new URL(mosquitto.url).port));
    cleanup.push(() => proxy.close());
    const url = `mqtt://127.0.0.1:${proxy.port}`;
    const mqtt = parseSite(testSiteYaml({ broker: url }), { env: {} }).mqtt;
    const metrics = createMetrics();
    const group = `cu-${Date.now()}`;
    const node = createEdgeNode({
      groupId: group,
      edgeNodeId: 'gw-cu',
      url,
      mqtt,
      clientId: `gw-cu-${Date.now()}`,
      equipment: [{ id: 'E-1', points: [{ name: 'p' }] }],
      activeAlarms: () => [],
      bdSeq: { load: () => 0, save: () => {} },
      queueFile: join(mkdtempSync(join(tmpdir(), 'spb-clock-')), 'sparkplug-queue.db'),
      maxStored: 1000,
      rebirthInterval: 200,
      info: {},
      log: pino({ level: 'silent' }),
      metrics,
    });
    const host = await startSparkplugHost(mosquitto.url, { group, node: 'gw-cu' });
    cleanup.push(() => host.close());
    cleanup.push(() => node.stop());
    await node.start();
    await host.waitFor((m) => m.type === 'NBIRTH', 5000, 'NBIRTH');
    node.readings([{ equipment: 'E-1', point: 'p', value: 1, quality: 'good', ts: Date.now() }]);
    node.readings([{ equipment: 'E-1', point: 'p', value: 2, quality: 'good', ts: Date.now() }]);
    await host.waitFor((m) => m.type === 'DDATA', 5000, 'DDATA');
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 3_600_000);
    await proxy.cut();
    const deadline = realNow() + 3000;
    while (node.stats().state === 'online' && realNow() < deadline) await new Promise((r) => setTimeout(r, 20));
    const unconfirmed = (await metrics.getSingleMetric('gateway_sparkplug_unconfirmed_total')!.get()).values[0]?.value ?? 0;
    expect(unconfirmed).toBe(1);
  });
});
