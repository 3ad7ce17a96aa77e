// The replay loop (rules/backtest.ts) through long gaps: after ten quiet minutes time passes in
// coarser steps, so a year between two readings replays in a moment, and what time alone decides
// keeps its own time.
import { describe, expect, it } from 'vitest';
import type { Reading } from '../../../drivers/types.js';
import { backtest } from '../../../rules/backtest.js';
import type { RuleSpec } from '../../../rules/types.js';

const T0 = Date.parse('2026-03-01T08:00:00Z');
const YEAR = 365 * 86_400_000;

/** No good reading from T-1 for 5 s (a stale rule, as compile.ts makes comm-loss). */
const stale: RuleSpec = {
  id: 'comm-loss',
  equipment: 'T-1',
  level: 'orange',
  message: 'No good reading for 5 s',
  condition: { kind: 'stale', afterMs: 5000 },
  onDelayMs: 0,
  offDelayMs: 0,
  deadband: 0,
  latch: false,
  maxShelveMs: 7 * 86_400_000,
};

const reading = (ts: number): Reading => ({ ts, equipment: 'T-1', point: 'x', value: 0, quality: 'good' });

describe('a replay through a long gap', () => {
  it('replays two readings a year apart quickly, the stale alarm raised and cleared at their own times', () => {
    const started = performance.now();
    const events = backtest({ site: 's', rules: [stale], readings: [reading(T0), reading(T0 + YEAR)] });
    // 100 ms steps would take 315 million of them; the coarse steps take about half a million.
    expect(performance.now() - started).toBeLessThan(8000);
    expect(events.map((e) => [e.type, e.ts - T0])).toEqual([
      ['raised', 5000],
      ['cleared', YEAR],
    ]);
  }, 20_000);

  it('ends a shelve hours into a quiet time at the moment it expires, and looks at the end of the tail', () => {
    const events = backtest({
      site: 's',
      rules: [stale],
      readings: [reading(T0)],
      actions: [
        { ts: T0 + 10_000, action: 'shelve', alarm: 'T-1/comm-loss', by: 'op', comment: 'pump swap', durationMs: 3 * 3_600_000 + 1234 },
      ],
      tailMs: 3 * 3_600_000 + 20_000 + 7,
    });
    expect(events.map((e) => [e.type, e.ts - T0])).toEqual([
      ['raised', 5000],
      ['shelved', 10_000],
      ['unshelved', 10_000 + 3 * 3_600_000 + 1234],
    ]);
  });
});
