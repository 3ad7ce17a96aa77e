// A file of a million rows is stored far faster than a broker acknowledges its results' MQTT
// publishes: the publishes awaiting acknowledgement are bounded (the rest counted, never silently
// dropped: the results are stored and go to the platform), and room() holds a bulk reader back.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { SiteConfig } from '../../../../config/schema.js';
import type { LabResult } from '../../../../drivers/common/result.js';
import { createResultService, MAX_UNACKED_RESULTS, ROOM_RESULTS } from '../../../../gateway/lab/results.js';
import { createMetrics } from '../../../../gateway/metrics.js';
import { topicsFor } from '../../../../gateway/mqtt/topics.js';
import { GatewayStore, STORE_FILE } from '../../../../gateway/store.js';

const config = {
  gateway: { id: 'gw-1', site: 's' },
  connections: [{ id: 'drop', type: 'file-drop' }],
  equipment: [{ id: 'UTM-1', connection: 'drop', category: 'lab_analyzer', points: [] }],
} as unknown as SiteConfig;

const results = (from: number, n: number): LabResult[] =>
  Array.from({ length: n }, (_, i) => ({
    resultId: `UTM-1:file:x:${from + i}`,
    instrument: 'UTM-1',
    sampleId: `S-${from + i}`,
    analyte: 'Rm',
    value: 500 + i,
    flags: [],
    status: 'final',
    resultAt: '2026-12-03T08:00:00.000Z',
  }));

describe('lab results on MQTT under a burst', () => {
  it('keeps at most MAX_UNACKED_RESULTS publishes awaiting the broker, counts the rest, and room() waits for acknowledgements', async () => {
    const store = new GatewayStore(join(mkdtempSync(join(tmpdir(), 'gw-lab-room-')), STORE_FILE));
    const acks: Array<(err?: Error) => void> = [];
    const lines: Array<{ msg: string; unpublished?: number }> = [];
    const metrics = createMetrics();
    const service = createResultService({
      config,
      link: { publishEvent: (_t: string, _p: unknown, _r: boolean, done?: (err?: Error) => void) => void acks.push(done!) } as never,
      topics: topicsFor('gw', 's'),
      log: pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l) as { msg: string }) }),
      metrics,
      store: () => store,
    });
    await service.start();
    try {
      for (let i = 0; i < MAX_UNACKED_RESULTS + 2000; i += 500) service.sink(results(i, 500));
      // Every result is stored; only the bound was handed to the broker.
      expect(store.db.prepare('SELECT count(*) FROM result').pluck().get()).toBe(MAX_UNACKED_RESULTS + 2000);
      expect(acks).toHaveLength(MAX_UNACKED_RESULTS);
      expect(await metrics.getSingleMetricAsString('gateway_lab_results_unpublished_total')).toContain('instrument="UTM-1"} 2000');
      expect(lines.some((l) => l.msg.startsWith('Lab results stored but not published on MQTT'))).toBe(true);

      let free = false;
      const room = service.room().then(() => (free = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(free).toBe(false);
      // Acknowledged (or failed: a publish that ends either way frees its place) down to ROOM_RESULTS: room again.
      for (const done of acks.splice(0, MAX_UNACKED_RESULTS - ROOM_RESULTS - 1)) done();
      await new Promise((r) => setTimeout(r, 20));
      expect(free).toBe(false);
      acks.shift()!(new Error('connection lost'));
      await room;
      expect(free).toBe(true);
      // Below the bound, results are published again.
      service.sink(results(100_000, 10));
      expect(acks).toHaveLength(ROOM_RESULTS + 10);
    } finally {
      await service.stop();
      store.close();
    }
  });
});
