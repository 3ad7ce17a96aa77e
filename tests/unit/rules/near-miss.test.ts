import { describe, expect, it } from 'vitest';
import { NearMissTracker, tracksNearMisses } from '../../../rules/near-miss.js';
import type { Threshold } from '../../../rules/types.js';

// The drum level: normal 0 mm, low alarm at -50 mm, a margin of 10 mm (10 % of the span would be 5 mm; 10 reads easier).
const low: Threshold & { nearMiss: { normal: number; margin: number } } = {
  point: 'drum_level',
  limit: -50,
  direction: 'below',
  nearMiss: { normal: 0, margin: 10 },
};
const high: Threshold & { nearMiss: { normal: number; margin: number } } = {
  point: 'steam_pressure',
  limit: 1.6,
  direction: 'above',
  nearMiss: { normal: 1.0, margin: 0.1 },
};

/** Feeds values one second apart from t = 1000; returns the near misses. */
function run(t: NearMissTracker, values: number[]) {
  return values.flatMap((v, i) => t.feed(v, 1000 * (i + 1)) ?? []);
}

describe('near misses', () => {
  it('counts a value that comes within the margin and leaves, with its closest approach', () => {
    const t = new NearMissTracker('B-1', 'drum-level.lo', 'yellow', low);
    // -42 is within the margin (-40..-50): the approach opens at t = 3000; -47 is the closest; -30 is back beyond -45 (the reset line, -40 - 5).
    expect(run(t, [-10, -30, -42, -47, -44, -30, -10])).toEqual([
      {
        equipment: 'B-1',
        point: 'drum_level',
        rule: 'drum-level.lo',
        limit: -50,
        direction: 'below',
        closest: -47,
        enteredAt: 3000,
        ts: 6000,
        level: 'yellow',
      },
    ]);
  });

  it('works the same way for a high limit', () => {
    const t = new NearMissTracker('B-1', 'pressure-high', 'orange', high);
    // Margin 1.5..1.6, reset line 1.45.
    expect(run(t, [1.2, 1.55, 1.58, 1.4]).map((n) => [n.closest, n.enteredAt, n.ts])).toEqual([[1.58, 2000, 4000]]);
  });

  it('does not count a value that crosses the limit, nor its way back through the margin', () => {
    const t = new NearMissTracker('B-1', 'drum-level.lo', 'yellow', low);
    expect(run(t, [-10, -45, -50, -60, -48, -42, -20, -10])).toEqual([]);
    // After the alarm is over, a new approach counts again.
    expect(run(t, [-43, -20])).toHaveLength(1);
  });

  it('counts noise at the edge of the margin once per approach', () => {
    const t = new NearMissTracker('B-1', 'drum-level.lo', 'yellow', low);
    // Wobbling around the edge (-40) by 3 mm: in, out, in, out... all within the reset band (-35..-40 is not yet back).
    const noise = [-20, -41, -38, -42, -37, -41, -39, -43, -38, -20];
    expect(run(t, noise)).toHaveLength(1);
    expect(run(t, noise)[0]?.closest).toBe(-43);
  });

  it('counts two separate approaches twice', () => {
    const t = new NearMissTracker('B-1', 'drum-level.lo', 'yellow', low);
    expect(run(t, [-20, -44, -20, -46, -20])).toHaveLength(2);
  });

  it('needs a positive margin', () => {
    expect(tracksNearMisses({ point: 'a', limit: 1, direction: 'above' })).toBe(false);
    expect(tracksNearMisses({ point: 'a', limit: 1, direction: 'above', nearMiss: { normal: 0, margin: 0 } })).toBe(false);
    expect(tracksNearMisses(low)).toBe(true);
  });
});
