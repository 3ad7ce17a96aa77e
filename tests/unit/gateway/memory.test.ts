// The memory watch: figures on /metrics beside the budget, and a warning when the process passes its
// share, repeated while it stays above, and a note when it is back under.
import { describe, expect, it } from 'vitest';
import { createMemoryWatch } from '../../../gateway/memory.js';
import { createMetrics } from '../../../gateway/metrics.js';
import { Writable } from 'node:stream';
import { pino } from 'pino';

function captureLog() {
  const captured: Array<Record<string, unknown>> = [];
  const log = pino(
    { level: 'info' },
    new Writable({ write: (c: Buffer, _e, cb) => (captured.push(JSON.parse(c.toString()) as Record<string, unknown>), cb()) }),
  );
  return { log, lines: () => captured };
}

const MiB = 2 ** 20;

describe('memory watch', () => {
  it('puts the budget, the resident set, the heap and each component on /metrics', async () => {
    const metrics = createMetrics();
    const { log } = captureLog();
    const watch = createMemoryWatch({ metrics, log, budget: 256 * MiB, warnAt: 0.8, rss: () => 100 * MiB });
    watch.register('http_history', () => 4096);
    watch.register('broken', () => {
      throw new Error('stopped');
    });
    const text = await metrics.metrics();
    expect(text).toMatch(/gateway_memory_budget_bytes 268435456/);
    expect(text).toMatch(/gateway_memory_rss_bytes 104857600/);
    expect(text).toMatch(/gateway_memory_heap_bytes\{kind="heap_used"\} \d+/);
    expect(text).toMatch(/gateway_memory_component_bytes\{component="http_history"\} 4096/);
    // A component that cannot tell is left out rather than shown as 0.
    expect(text).not.toMatch(/component="broken"/);
  });

  it('warns once past the share, again after 10 minutes above, and notes the way back', () => {
    let rss = 100 * MiB;
    let now = 0;
    const { log, lines } = captureLog();
    const watch = createMemoryWatch({ metrics: createMetrics(), log, budget: 200 * MiB, warnAt: 0.8, rss: () => rss, now: () => now });
    watch.register('http_history', () => 1234);
    watch.check();
    expect(lines()).toEqual([]);
    rss = 170 * MiB;
    watch.check();
    now += 60_000;
    watch.check();
    expect(lines().filter((l) => l.level === 40)).toHaveLength(1);
    expect(lines()[0]).toMatchObject({
      msg: 'Gateway memory passed 80 % of gateway.memory_budget',
      rss: 170 * MiB,
      budget: 200 * MiB,
      components: { http_history: 1234 },
    });
    now += 10 * 60_000;
    watch.check();
    expect(lines().filter((l) => l.level === 40)).toHaveLength(2);
    // Just under the line is not yet back (no flapping at the edge); well under is.
    rss = 159 * MiB;
    watch.check();
    expect(lines().filter((l) => l.level === 30)).toHaveLength(0);
    rss = 100 * MiB;
    watch.check();
    expect(lines().at(-1)).toMatchObject({ level: 30, msg: 'Gateway memory back under its warning level' });
  });
});
