// The robust line that predicted warnings follow: exact on clean data, unmoved by a third of wild
// readings, and never significant for a steady signal with noise.
import { describe, expect, it } from 'vitest';
import { fitLine, formatEta, MAX_PAIRS, projectCrossing } from '../../../rules/trend.js';

/** A deterministic pseudo-random sequence in [0, 1) (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n samples one second apart from t = 1,000,000 ms. */
function series(n: number, value: (k: number) => number): { times: number[]; values: number[] } {
  const times = Array.from({ length: n }, (_, k) => 1_000_000 + k * 1000);
  return { times, values: times.map((_, k) => value(k)) };
}

describe('fitLine', () => {
  it('finds the exact slope and value of a clean line, with no scatter', () => {
    const { times, values } = series(30, (k) => 100 - 8 * k);
    const line = fitLine(times, values)!;
    expect(line.slope * 1000).toBeCloseTo(-8, 12);
    expect(line.intercept).toBeCloseTo(100 - 8 * 29, 9);
    expect(line.scale).toBeCloseTo(0, 9);
    expect(line.span).toBe(29_000);
  });

  it('takes the longest pairs only past MAX_PAIRS and stays exact (120 samples)', () => {
    const { times, values } = series(120, (k) => 2.5 * k - 40);
    expect((120 * 119) / 2).toBeGreaterThan(MAX_PAIRS);
    const line = fitLine(times, values)!;
    expect(line.slope * 1000).toBeCloseTo(2.5, 12);
    expect(line.intercept).toBeCloseTo(2.5 * 119 - 40, 9);
  });

  it('is not moved by 30 % wild readings, where least squares is', () => {
    const rnd = random(11);
    const { times, values } = series(60, (k) => 5 + 0.5 * k + (rnd() - 0.5) * 0.2);
    // Every third-and-a-bit reading replaced by a spike of up to ±500 (a bad sensor, a glitching bus).
    const wild = new Set<number>();
    while (wild.size < 18) wild.add(Math.floor(rnd() * 60));
    for (const k of wild) values[k] = values[k]! + (rnd() < 0.5 ? -1 : 1) * (100 + rnd() * 400);
    const line = fitLine(times, values)!;
    expect(line.slope * 1000).toBeGreaterThan(0.45);
    expect(line.slope * 1000).toBeLessThan(0.55);
    expect(line.intercept).toBeCloseTo(5 + 0.5 * 59, 0);
    // Least squares over the same samples, for contrast: the spikes carry it far off.
    const n = times.length;
    const mt = times.reduce((a, b) => a + b) / n;
    const mv = values.reduce((a, b) => a + b) / n;
    const ls = times.reduce((a, t, k) => a + (t - mt) * (values[k]! - mv), 0) / times.reduce((a, t) => a + (t - mt) ** 2, 0);
    expect(Math.abs(ls * 1000 - 0.5)).toBeGreaterThan(Math.abs(line.slope * 1000 - 0.5));
  });

  it('has no line through one instant', () => {
    expect(fitLine([5, 5, 5], [1, 2, 3])).toBeUndefined();
    expect(fitLine([5], [1])).toBeUndefined();
  });
});

describe('projectCrossing', () => {
  it('gives the time to the limit of a significant trend toward it', () => {
    const { times, values } = series(20, (k) => -8 * k);
    const line = fitLine(times, values)!;
    const now = times.at(-1)!;
    // At -152 mm, falling 8 mm/s: -200 in 6 s.
    const x = projectCrossing(line, now, -200, 'below');
    expect(x).toMatchObject({ significant: true, towards: true, beyond: false });
    expect(x.etaMs).toBeCloseTo(6000, 6);
    expect(projectCrossing(line, now + 2000, -200, 'below').etaMs).toBeCloseTo(4000, 6);
    expect(projectCrossing(line, now, 50, 'above')).toMatchObject({ towards: false, etaMs: undefined });
    expect(projectCrossing(line, now, -100, 'below')).toMatchObject({ beyond: true, etaMs: 0 });
  });

  it('never calls a steady signal with noise significant, whatever its small slope', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rnd = random(seed);
      const { times, values } = series(60, () => 37 + (rnd() - 0.5) * 2);
      const line = fitLine(times, values)!;
      const x = projectCrossing(line, times.at(-1)!, 37.5, 'above');
      expect(x.significant, `seed ${seed}: slope ${line.slope * 1000}/s, scale ${line.scale}`).toBe(false);
    }
  });

  it('calls the same noise significant once a real trend rises out of it', () => {
    const rnd = random(3);
    const { times, values } = series(60, (k) => 37 + (rnd() - 0.5) * 2 + 0.1 * k);
    const x = projectCrossing(fitLine(times, values)!, times.at(-1)!, 50, 'above');
    expect(x).toMatchObject({ significant: true, towards: true });
  });
});

describe('formatEta', () => {
  it('reads as people say it', () => {
    expect([500, 12_400, 119_000, 240_000, 3 * 3_600_000, 2.5 * 3_600_000].map(formatEta)).toEqual([
      'under 1 s',
      '12 s',
      '119 s',
      '4 min',
      '3 h',
      '2.5 h',
    ]);
  });
});
