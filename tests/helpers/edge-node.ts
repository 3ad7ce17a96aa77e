// A Sparkplug edge node for tests, built the way the gateway builds it but on its own: one equipment
// E-1 with a point p, a new queue file, bdSeq 0 and not kept, a rebirth bound of 100 ms.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseSite } from '../../config/load.js';
import { createMetrics } from '../../gateway/metrics.js';
import { createEdgeNode, type EdgeNode, type EdgeNodeOptions } from '../../gateway/sparkplug/node.js';
import { testSiteYaml } from './site.js';

/** An edge node on the broker at `url` (the test site's mqtt settings); `o` sets anything else. */
export function testEdgeNode(url: string, o: Pick<EdgeNodeOptions, 'groupId' | 'edgeNodeId'> & Partial<EdgeNodeOptions>): EdgeNode {
  return createEdgeNode({
    url,
    mqtt: parseSite(testSiteYaml({ broker: url }), { env: {} }).mqtt,
    clientId: `${o.edgeNodeId}-${Date.now()}`,
    equipment: [{ id: 'E-1', points: [{ name: 'p' }] }],
    activeAlarms: () => [],
    bdSeq: { load: () => 0, save: () => {} },
    queueFile: join(mkdtempSync(join(tmpdir(), 'spb-node-')), 'sparkplug-queue.db'),
    maxStored: 1000,
    rebirthInterval: 100,
    info: {},
    log: pino({ level: 'silent' }),
    metrics: createMetrics(),
    ...o,
  });
}
