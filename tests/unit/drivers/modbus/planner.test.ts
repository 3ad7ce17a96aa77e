import { describe, expect, it } from 'vitest';
import type { Area } from '../../../../drivers/modbus/address.js';
import { planRequests, type PlannedRead, type PlanOptions } from '../../../../drivers/modbus/planner.js';

/** Deterministic pseudo-random numbers, so a failing case can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** The fewest requests for one unit and area, by dynamic programming over the sorted points. */
function minimum(points: PlannedRead[], opts: PlanOptions, limit: number, gap: number): number {
  const p = [...points].sort((a, b) => a.offset - b.offset || a.count - b.count);
  const best = new Array<number>(p.length + 1).fill(Infinity);
  best[0] = 0;
  for (let i = 0; i < p.length; i++) {
    let end = -Infinity;
    for (let j = i; j < p.length; j++) {
      if (j > i && p[j]!.offset - end > gap) break;
      end = Math.max(end, p[j]!.offset + p[j]!.count);
      if (end - p[i]!.offset > limit) break;
      best[j + 1] = Math.min(best[j + 1]!, best[i]! + 1);
    }
  }
  void opts;
  return best[p.length]!;
}

function randomPoints(r: () => number, n: number): PlannedRead[] {
  const areas: Area[] = ['hr', 'ir', 'co', 'di'];
  return Array.from({ length: n }, () => {
    const area = areas[Math.floor(r() * 4)]!;
    const bits = area === 'co' || area === 'di';
    return {
      unit: 1 + Math.floor(r() * 3),
      area,
      offset: Math.floor(r() * (bits ? 5000 : 600)),
      count: bits ? 1 : [1, 1, 2, 2, 4, 8][Math.floor(r() * 6)]!,
    };
  });
}

describe('block planner', () => {
  it('merges a boiler register map into few requests', () => {
    const points: PlannedRead[] = [
      { unit: 3, area: 'hr', offset: 100, count: 2 },
      { unit: 3, area: 'hr', offset: 102, count: 2 },
      { unit: 3, area: 'hr', offset: 110, count: 1 },
      { unit: 3, area: 'hr', offset: 125, count: 1 },
      { unit: 3, area: 'di', offset: 0, count: 1 },
      { unit: 4, area: 'hr', offset: 100, count: 2 },
    ];
    const plan = planRequests(points, { maxGap: 16, maxRegisters: 125 });
    expect(plan.map(({ unit, area, start, count }) => [unit, area, start, count])).toEqual([
      [3, 'hr', 100, 26],
      [3, 'di', 0, 1],
      [4, 'hr', 100, 2],
    ]);
    expect(planRequests(points, { maxGap: 0, maxRegisters: 125 })).toHaveLength(5);
  });

  it('honours max_registers_per_read and the 125-register limit', () => {
    const points = Array.from({ length: 200 }, (_, i) => ({ unit: 1, area: 'hr' as const, offset: i, count: 1 }));
    expect(planRequests(points, { maxGap: 16, maxRegisters: 125 }).map((r) => r.count)).toEqual([125, 75]);
    expect(planRequests(points, { maxGap: 16, maxRegisters: 50 }).map((r) => r.count)).toEqual([50, 50, 50, 50]);
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20])(
    'random map %i: covers every point once, within limits, with the fewest requests',
    (seed) => {
      const r = rng(seed);
      const points = randomPoints(r, 5 + Math.floor(r() * 150));
      const opts = { maxGap: Math.floor(r() * 40), maxRegisters: 10 + Math.floor(r() * 116) };
      const plan = planRequests(points, opts);

      const covered = plan.flatMap((q) => q.points).sort((a, b) => a - b);
      expect(covered).toEqual(points.map((_, i) => i));
      for (const q of plan) {
        const bits = q.area === 'co' || q.area === 'di';
        expect(q.count).toBeLessThanOrEqual(bits ? 2000 : Math.min(125, opts.maxRegisters));
        for (const i of q.points) {
          const p = points[i]!;
          expect([p.unit, p.area]).toEqual([q.unit, q.area]);
          expect(p.offset).toBeGreaterThanOrEqual(q.start);
          expect(p.offset + p.count).toBeLessThanOrEqual(q.start + q.count);
        }
      }
      // Minimal: per unit and area, no plan with the same gap and limit has fewer requests.
      const groups = new Map<string, PlannedRead[]>();
      for (const p of points) groups.set(`${p.unit}:${p.area}`, [...(groups.get(`${p.unit}:${p.area}`) ?? []), p]);
      let least = 0;
      for (const list of groups.values()) {
        const bits = list[0]!.area === 'co' || list[0]!.area === 'di';
        least += minimum(list, opts, bits ? 2000 : Math.min(125, opts.maxRegisters), bits ? opts.maxGap * 16 : opts.maxGap);
      }
      expect(plan.length).toBe(least);
    },
  );
});
