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
import { startSparkplugHost } from '../helpers/sparkplug-host.js';

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
});
