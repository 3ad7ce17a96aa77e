// The edge node's rebirth bound against a clock step: the wall clock set back (NTP, an operator)
// must not hold back a rebirth a host asks for.
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { createMetrics } from '../../gateway/metrics.js';
import { testEdgeNode } from '../helpers/edge-node.js';
import { startProxy, startSparkplugHost } from '../helpers/sparkplug-host.js';

describe('Sparkplug rebirth and the wall clock', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    while (cleanup.length) await cleanup.pop()!();
  });

  it('a rebirth asked for after the clock was set back an hour comes within the rebirth interval', async () => {
    const mosquitto = inject('mosquitto');
    const group = `ck-${Date.now()}`;
    const node = testEdgeNode(mosquitto.url, { groupId: group, edgeNodeId: 'gw-ck', rebirthInterval: 200 });
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
    const metrics = createMetrics();
    const group = `cu-${Date.now()}`;
    const node = testEdgeNode(url, { groupId: group, edgeNodeId: 'gw-cu', rebirthInterval: 200, metrics });
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
