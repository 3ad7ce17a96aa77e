// The trend's rings: fixed size, oldest overwritten, every kind of value and quality kept as it came,
// and the budget that shares memory among many points.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { History, MAX_TEXT, planHistory, PointRing, SAMPLE_BYTES } from '../../../../gateway/http/history.js';
import type { Reading } from '../../../../drivers/types.js';

describe('PointRing', () => {
  it('keeps the last `capacity` samples, oldest first, with their values, kinds and qualities', () => {
    const ring = new PointRing(3);
    expect(ring.read()).toEqual([]);
    ring.push(1, 1.5, 'good');
    ring.push(2, true, 'uncertain');
    ring.push(3, 'E42', 'good');
    ring.push(4, null, 'bad');
    expect(ring.read()).toEqual([
      { ts: 2, value: true, quality: 'uncertain' },
      { ts: 3, value: 'E42', quality: 'good' },
      { ts: 4, value: null, quality: 'bad' },
    ]);
    expect(ring.oldest()).toBe(2);
    // A slot that held text and then a number gives the number back, not the old text.
    ring.push(5, 7, 'good');
    ring.push(6, 8, 'good');
    expect(ring.read().map((s) => s.value)).toEqual([null, 7, 8]);
  });

  it('reads from a time on, and at most `limit` of the newest', () => {
    const ring = new PointRing(10);
    for (let t = 1; t <= 15; t++) ring.push(t * 1000, t, 'good');
    expect(ring.read(12_000).map((s) => s.ts)).toEqual([12_000, 13_000, 14_000, 15_000]);
    expect(ring.read(undefined, 2).map((s) => s.value)).toEqual([14, 15]);
    expect(ring.read(0).length).toBe(10);
  });

  it('never turns a quality it does not know into good', () => {
    const ring = new PointRing(2);
    ring.push(1, 3, 'weird' as never);
    expect(ring.read()[0]!.quality).toBe('bad');
  });

  it('keeps text cut at MAX_TEXT characters, marked, and counts its bytes', () => {
    const history = new History(
      planHistory({ keep: { samples: 2 }, maxBytes: 1024 * 1024, points: [{ key: 'E/code', intervalMs: 1000 }] }),
    );
    const empty = history.bytes();
    expect(empty).toBe(2 * SAMPLE_BYTES);
    history.add([{ equipment: 'E', point: 'code', value: 'x'.repeat(10 * MAX_TEXT), quality: 'good', ts: 1 }]);
    const value = history.ring('E', 'code')!.read()[0]!.value as string;
    expect(value.length).toBe(MAX_TEXT + 1);
    expect(value.endsWith('…')).toBe(true);
    expect(history.bytes()).toBeGreaterThan(empty + 2 * MAX_TEXT);
  });

  it('keeps text within the budget: past it, the sample is kept without its text, counted', () => {
    const plan = planHistory({
      keep: { samples: 4 },
      maxBytes: 2 * 4 * SAMPLE_BYTES + 2 * 300,
      points: [
        { key: 'E/a', intervalMs: 1000 },
        { key: 'E/b', intervalMs: 1000 },
      ],
    });
    const history = new History(plan);
    const r = (point: string, value: string, ts: number) => ({ equipment: 'E', point, value, quality: 'good' as const, ts });
    history.add([r('a', 'x'.repeat(200), 1), r('b', 'y'.repeat(200), 1)]);
    expect(history.ring('E', 'a')!.read()[0]!.value).toHaveLength(200);
    expect(history.ring('E', 'b')!.read()[0]!.value).toBeNull();
    expect(history.textsNotKept).toBe(1);
    // Overwritten texts give their share back.
    for (let t = 2; t <= 5; t++) history.add([r('a', `${t}`, t)]);
    history.add([r('b', 'y'.repeat(200), 6)]);
    expect(history.ring('E', 'b')!.read().at(-1)!.value).toHaveLength(200);
  });

  it('gives readings that came out of time order back in time order, and the oldest time held', () => {
    const ring = new PointRing(4);
    for (const t of [5000, 2000, 6000, 2000]) ring.push(t, t / 1000, 'good');
    expect(ring.read().map((s) => s.ts)).toEqual([2000, 2000, 5000, 6000]);
    expect(ring.oldest()).toBe(2000);
    expect(ring.read(3000).map((s) => s.ts)).toEqual([5000, 6000]);
    expect(ring.read(undefined, 1).map((s) => s.ts)).toEqual([6000]);
  });

  it('gives back exactly what a plain list of the last N would (property)', () => {
    const sample = fc.record({
      value: fc.oneof(fc.double({ noNaN: false }), fc.boolean(), fc.string({ maxLength: 5 }), fc.constant(null)),
      quality: fc.constantFrom('good' as const, 'uncertain' as const, 'bad' as const),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.array(sample, { maxLength: 60 }), (capacity, samples) => {
        const ring = new PointRing(capacity);
        samples.forEach((s, i) => ring.push(i, s.value, s.quality));
        const expected = samples
          .map((s, i) => ({ ts: i, value: Object.is(s.value, -0) ? -0 : s.value, quality: s.quality }))
          .slice(-capacity);
        expect(ring.read()).toEqual(expected);
      }),
    );
  });
});

describe('planHistory', () => {
  const points = (n: number, intervalMs = 1000) => Array.from({ length: n }, (_, i) => ({ key: `E/p${i}`, intervalMs }));

  it('gives each point `keep` at its own poll interval when the budget allows', () => {
    const plan = planHistory({
      keep: { ms: 600_000 },
      maxBytes: 16 * 2 ** 20,
      points: [
        { key: 'A/fast', intervalMs: 200 },
        { key: 'B/slow', intervalMs: 5000 },
      ],
    });
    expect(plan.samples.get('A/fast')).toBe(3000);
    expect(plan.samples.get('B/slow')).toBe(120);
    expect(plan.scale).toBe(1);
    expect(plan.bytes).toBe(3120 * SAMPLE_BYTES);
  });

  it('scales every point down alike to stay within the budget: 10,000 points at 1 s in 16 MiB', () => {
    const maxBytes = 16 * 2 ** 20;
    const plan = planHistory({ keep: { samples: 600 }, maxBytes, points: points(10_000) });
    expect(plan.wantedBytes).toBe(10_000 * 600 * SAMPLE_BYTES);
    expect(plan.scale).toBeLessThan(1);
    expect(plan.bytes).toBeLessThanOrEqual(maxBytes);
    expect(plan.samples.get('E/p0')).toBe(Math.floor(600 * plan.scale));
    expect(plan.samples.get('E/p0')).toBeGreaterThan(80);
  });

  it('keeps two samples a point whatever the budget', () => {
    const plan = planHistory({ keep: { samples: 600 }, maxBytes: 1024, points: points(1000) });
    expect(plan.samples.get('E/p999')).toBe(2);
  });
});

describe('History', () => {
  it("keeps declared points only, at each reading's own time, and counts the rest", () => {
    const history = new History(planHistory({ keep: { samples: 4 }, maxBytes: 2 ** 20, points: [{ key: 'B-07/p', intervalMs: 1000 }] }));
    const r = (point: string, ts: number, sourceTs?: number): Reading => ({
      equipment: 'B-07',
      point,
      value: ts,
      quality: 'good',
      ts,
      ...(sourceTs ? { sourceTs } : {}),
    });
    history.add([r('p', 1000), r('p', 2000, 1500), r('stranger', 3000)]);
    expect(
      history
        .ring('B-07', 'p')!
        .read()
        .map((s) => s.ts),
    ).toEqual([1000, 1500]);
    expect(history.ring('B-07', 'stranger')).toBeUndefined();
    expect(history.undeclared).toBe(1);
    expect(history.bytes()).toBe(4 * SAMPLE_BYTES);
  });

  it('shares three arrays among all its rings: bytes are what the plan says, whatever the number of points', () => {
    const plan = planHistory({
      keep: { samples: 49 },
      maxBytes: 64 * 2 ** 20,
      points: Array.from({ length: 10_000 }, (_, i) => ({ key: `E-${i % 100}/p${i}`, intervalMs: 1000 })),
    });
    const history = new History(plan);
    expect(history.bytes()).toBe(plan.bytes);
    expect(plan.bytes).toBe(10_000 * 49 * SAMPLE_BYTES);
    history.add([{ equipment: 'E-7', point: 'p7', value: 1, quality: 'good', ts: 1 }]);
    expect(history.ring('E-8', 'p7')).toBeUndefined();
    expect(history.ring('E-7', 'p7')!.read()).toEqual([{ ts: 1, value: 1, quality: 'good' }]);
  });
});
