// The robust line that predicted warnings follow: exact on clean data, unmoved by a third of wild
// readings, and never significant for a steady signal with noise.
import { describe, expect, it } from 'vitest';
import { fitLine, formatEta, MAX_PAIRS, MAX_SERIES, projectCrossing, SampleSeries } from '../../../rules/trend.js';

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

/**
 * The series as it was first written, on plain arrays: the ring must keep exactly these samples. A
 * sample in time order, the same instant replaced; older than the window before the newest gone;
 * past MAX_SERIES every other one gone, counted from the newest.
 */
function addToArrays(s: { times: number[]; values: number[] }, windowMs: number, t: number, v: number): void {
  const { times, values } = s;
  let k = times.length;
  while (k > 0 && times[k - 1]! > t) k--;
  if (k > 0 && times[k - 1] === t) {
    values[k - 1] = v;
    return;
  }
  times.splice(k, 0, t);
  values.splice(k, 0, v);
  const newest = times.at(-1)!;
  let old = 0;
  while (old < times.length && times[old]! < newest - windowMs) old++;
  times.splice(0, old);
  values.splice(0, old);
  if (times.length > MAX_SERIES) {
    const last = times.length - 1;
    const keep = (_: number, i: number) => i % 2 === last % 2;
    s.times = times.filter(keep);
    s.values = values.filter(keep);
  }
}

describe('SampleSeries', () => {
  it('keeps exactly the samples of the plain-array series, in order, out of order and pruned, and fits the same line', () => {
    const rnd = random(19);
    const windowMs = 30_000;
    const ring = new SampleSeries(windowMs);
    let plain = { times: [] as number[], values: [] as number[] };
    let t = 1_000_000;
    let fits = 0;
    let thinned = false;
    for (let k = 0; k < 20_000; k++) {
      const r = rnd();
      // Mostly forward at poll-like steps, now and then the same instant again, late, or after a gap.
      const at = r < 0.05 ? t : r < 0.1 ? t - Math.floor(rnd() * 3000) : (t += r < 0.11 ? 40_000 : Math.floor(rnd() * 400));
      const v = Math.round(rnd() * 1000) / 10;
      ring.add(at, v);
      addToArrays(plain, windowMs, at, v);
      if (k % 97 === 0) {
        // What evaluation prunes by its own time.
        const from = t - windowMs + Math.floor(rnd() * 5000);
        ring.dropBefore(from);
        const old = plain.times.findIndex((x) => x >= from);
        plain = old < 0 ? { times: [], values: [] } : { times: plain.times.slice(old), values: plain.values.slice(old) };
      }
      // One expect per step would take seconds: the first difference is kept and shown.
      const n = ring.length;
      let same = n === plain.times.length && ring.newest() === (n > 0 ? plain.times.at(-1) : -Infinity);
      for (let i = 0; same && i < n; i++) same = ring.timeAt(i) === plain.times[i] && ring.valueAt(i) === plain.values[i];
      if (!same) {
        const ringTimes = Array.from({ length: n }, (_, i) => ring.timeAt(i));
        expect({ step: k, times: ringTimes, newest: ring.newest() }).toEqual({ step: k, times: plain.times, newest: plain.times.at(-1) });
        expect({ step: k, values: Array.from({ length: n }, (_, i) => ring.valueAt(i)) }).toEqual({ step: k, values: plain.values });
      }
      if (k % 50 === 0) {
        expect(ring.fit()).toEqual(fitLine(plain.times, plain.values));
        fits++;
        thinned ||= plain.times.length === MAX_SERIES / 2 + 1;
      }
    }
    expect(fits).toBe(400);
    expect(thinned).toBe(true);
  });
});
