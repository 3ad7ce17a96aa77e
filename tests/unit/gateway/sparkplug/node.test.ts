// The edge node's readiness: /ready tells the operator when the SCADA gets nothing from it.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { parseSite } from '../../../../config/load.js';
import { createMetrics } from '../../../../gateway/metrics.js';
import { createEdgeNode } from '../../../../gateway/sparkplug/node.js';
import { testSiteYaml } from '../../../helpers/site.js';

describe('Sparkplug edge node health', () => {
  it('is not ok while its session is not up (no broker, or the primary host not online yet)', () => {
    for (const primaryHostId of [undefined, 'IgnitionTarget']) {
      const node = createEdgeNode({
        groupId: 'g',
        edgeNodeId: 'n',
        primaryHostId,
        url: 'mqtt://127.0.0.1:1',
        mqtt: parseSite(testSiteYaml(), { env: {} }).mqtt,
        clientId: 'n-sparkplug',
        equipment: [{ id: 'E-1', points: [{ name: 'p' }] }],
        activeAlarms: () => [],
        bdSeq: { load: () => 0, save: () => {} },
        queueFile: '/nonexistent/never-opened.db',
        maxStored: 1000,
        rebirthInterval: 100,
        info: {},
        log: pino({ level: 'silent' }),
        metrics: createMetrics(),
      });
      expect(node.health()).toMatchObject({ ok: false, detail: { state: 'connecting' } });
    }
  });
});
