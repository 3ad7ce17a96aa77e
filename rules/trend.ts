// A robust straight line through (time, value) samples, and when it crosses a limit: what predicted
// warnings follow. Pure: no I/O, no clock; the engine gives it the samples of one point and the time.
//
// The slope is Theil-Sen's (the median of the slopes between pairs of samples), which a few spikes or
// a stuck reading cannot drag the way they drag a least-squares fit. Every pair costs O(n^2); above
// MAX_PAIRS pairs only the pairs whose samples lie furthest apart in the series are taken (index gap
// at least g, with g chosen to keep about MAX_PAIRS of them). Those are the pairs whose slopes the
// noise disturbs least (it is divided by the longest time), each sample still takes part in many of
// them, and the estimate keeps Theil-Sen's median over slopes, so an outlier moves it as little.

/** At most this many pairwise slopes per fit: 60 samples' worth, every pair. */
export const MAX_PAIRS = 1770;

/** 1.4826 x MAD estimates the standard deviation of normally distributed residuals. */
const MAD_TO_SIGMA = 1.4826;

/** A trend must explain at least this many residual scales over its samples' span to count. */
export const SIGNIFICANT_SCALES = 3;

export interface Line {
  /** Change per ms. */
  slope: number;
  /** Time (ms) the intercept is given at: the newest sample's. */
  at: number;
  /** The line's value at `at`. */
  intercept: number;
  /** Residual scale: 1.4826 x the median absolute residual. */
  scale: number;
  /** Time between the oldest and newest sample (ms). */
  span: number;
  n: number;
}

export interface Crossing {
  /** Change per ms. */
  slope: number;
  /** The line's value at `now`. */
  fitted: number;
  /** The slope explains at least SIGNIFICANT_SCALES residual scales over the samples' span. */
  significant: boolean;
  /** The line moves toward the limit (or is already beyond it and moves further). */
  towards: boolean;
  /** The line is at or beyond the limit now. */
  beyond: boolean;
  /** Time from `now` until the line reaches the limit (ms): 0 when beyond, undefined when it never does. */
  etaMs: number | undefined;
}

/** Scratch space for the medians, reused between fits (the engine fits thousands of series). */
let scratch = new Float64Array(MAX_PAIRS + 256);

/** The robust line through samples given as parallel arrays in time order; undefined for fewer than 2 distinct times. */
export function fitLine(times: ArrayLike<number>, values: ArrayLike<number>, n = times.length): Line | undefined {
  if (n < 2) return undefined;
  const t0 = times[0]!;
  const tn = times[n - 1]!;
  if (tn === t0) return undefined;
  // The smallest index gap whose pairs number at most MAX_PAIRS: (n - g)(n - g + 1) / 2 of them.
  let gap = 1;
  while (((n - gap) * (n - gap + 1)) / 2 > MAX_PAIRS) gap++;
  const pairs = ((n - gap) * (n - gap + 1)) / 2;
  if (scratch.length < Math.max(pairs, n)) scratch = new Float64Array(Math.max(pairs, n));
  let k = 0;
  for (let i = 0; i + gap < n; i++) {
    const ti = times[i]!;
    const vi = values[i]!;
    for (let j = i + gap; j < n; j++) {
      const dt = times[j]! - ti;
      // Samples of the same instant say nothing about the slope.
      if (dt > 0) scratch[k++] = (values[j]! - vi) / dt;
    }
  }
  if (k === 0) return undefined;
  const slope = median(scratch, k);
  // The intercept (at the newest sample) is the median of what each sample says it is.
  for (let i = 0; i < n; i++) scratch[i] = values[i]! - slope * (times[i]! - tn);
  const intercept = median(scratch, n);
  for (let i = 0; i < n; i++) scratch[i] = Math.abs(values[i]! - (intercept + slope * (times[i]! - tn)));
  const scale = MAD_TO_SIGMA * median(scratch, n);
  return { slope, at: tn, intercept, scale, span: tn - t0, n };
}

/** Where the line goes with respect to a limit, seen at `now`. */
export function projectCrossing(line: Line, now: number, limit: number, direction: 'above' | 'below'): Crossing {
  const { slope } = line;
  const fitted = line.intercept + slope * (now - line.at);
  const sign = direction === 'above' ? 1 : -1;
  const towards = slope * sign > 0;
  const beyond = (fitted - limit) * sign >= 0;
  // A steady signal with noise has some slope: it counts only when it explains more than the noise
  // could over the span (a line with no scatter at all is significant as soon as it moves).
  const significant = slope !== 0 && Math.abs(slope) * line.span >= SIGNIFICANT_SCALES * line.scale;
  const etaMs = beyond ? 0 : towards ? (limit - fitted) / slope : undefined;
  return { slope, fitted, significant, towards, beyond, etaMs };
}

/** Samples a series keeps at most. */
export const MAX_SERIES = 120;

/** Room for MAX_SERIES samples and the one that makes a series thin out. */
const CAPACITY = MAX_SERIES + 1;

/** The samples of the series being fitted, in time order from index 0 (the fit wants them so). */
const orderedTimes = new Float64Array(CAPACITY);
const orderedValues = new Float64Array(CAPACITY);

/**
 * The good numeric samples of one point over one window, in time order, bounded: past MAX_SERIES
 * samples every other one goes, counted from the newest (kept), so a fast poll keeps the whole window
 * at a coarser spacing rather than losing its oldest part, and a fit never costs more than MAX_SERIES
 * allow. The samples live in a ring of fixed capacity, pruned and thinned in place: adding a sample
 * allocates nothing and moves nothing in the usual case (a sample at the end). That matters when
 * thousands of points are sampled several times a second, each in turn: a sample's time and value sit
 * side by side in one buffer, and the oldest and newest times in fields, so a sample at the end reads
 * nothing from the buffer and writes one place in it (measured: the memory a sample touches, not the
 * work it does, is what a point's series costs on a large site).
 */
export class SampleSeries {
  /** Sample slot i: its time at 2i, its value at 2i + 1. */
  private readonly ring = new Float64Array(2 * CAPACITY);
  /** The slot of the oldest sample. */
  private start = 0;
  private count = 0;
  /** Times of the oldest and newest samples; +Infinity and -Infinity when there is none. */
  private first = Infinity;
  private last = -Infinity;

  constructor(readonly windowMs: number) {}

  get length(): number {
    return this.count;
  }

  /** Time of the i-th sample, the oldest being 0. */
  timeAt(i: number): number {
    return this.ring[2 * this.slot(i)]!;
  }

  valueAt(i: number): number {
    return this.ring[2 * this.slot(i) + 1]!;
  }

  /** Time of the newest sample; -Infinity when there is none. */
  newest(): number {
    return this.last;
  }

  /**
   * A sample in time order (almost always at the end); a later value of the same instant replaces it.
   * Samples older than the window before the newest go (evaluation prunes by its own time too).
   */
  add(t: number, v: number): void {
    const { ring } = this;
    let k = this.count;
    if (t <= this.last) {
      while (k > 0 && ring[2 * this.slot(k - 1)]! > t) k--;
      if (k > 0 && ring[2 * this.slot(k - 1)] === t) {
        ring[2 * this.slot(k - 1) + 1] = v;
        return;
      }
      // Out of order: the later samples move up one slot (the ring has room: count <= MAX_SERIES here).
      for (let i = this.count; i > k; i--) {
        const to = 2 * this.slot(i);
        const from = 2 * this.slot(i - 1);
        ring[to] = ring[from]!;
        ring[to + 1] = ring[from + 1]!;
      }
    } else {
      this.last = t;
    }
    const at = 2 * this.slot(k);
    ring[at] = t;
    ring[at + 1] = v;
    if (k === 0) this.first = t;
    this.count++;
    this.dropBefore(this.last - this.windowMs);
    if (this.count > MAX_SERIES) {
      const last = this.count - 1;
      let w = 0;
      for (let i = last % 2; i <= last; i += 2) {
        const from = 2 * this.slot(i);
        const to = 2 * this.slot(w++);
        ring[to] = ring[from]!;
        ring[to + 1] = ring[from + 1]!;
      }
      this.count = w;
      this.first = ring[2 * this.start]!;
    }
  }

  /** Moves every sample's time by `ms` (the gateway's clock stepped: RuleEngine.clockStepped). */
  shift(ms: number): void {
    for (let i = 0; i < this.count; i++) {
      const at = 2 * this.slot(i);
      this.ring[at] = this.ring[at]! + ms;
    }
    this.first += ms;
    this.last += ms;
  }

  /** Drops the samples older than `from`. */
  dropBefore(from: number): void {
    if (!(this.first < from)) return;
    while (this.count > 0 && this.ring[2 * this.start]! < from) {
      this.start = this.start + 1 === CAPACITY ? 0 : this.start + 1;
      this.count--;
    }
    this.first = this.count > 0 ? this.ring[2 * this.start]! : Infinity;
    if (this.count === 0) this.last = -Infinity;
  }

  /** The robust line through the samples (fitLine); undefined as fitLine says. */
  fit(): Line | undefined {
    const n = this.count;
    for (let i = 0; i < n; i++) {
      const at = 2 * this.slot(i);
      orderedTimes[i] = this.ring[at]!;
      orderedValues[i] = this.ring[at + 1]!;
    }
    return fitLine(orderedTimes, orderedValues, n);
  }

  private slot(i: number): number {
    const s = this.start + i;
    return s < CAPACITY ? s : s - CAPACITY;
  }
}

/** Time (ms) as people read it in an alarm message: "under 1 s", "12 s", "4 min", "2.5 h". */
export function formatEta(ms: number): string {
  if (ms < 1000) return 'under 1 s';
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 360_000) / 10} h`;
}

/** The median of the first n entries (they are reordered): quickselect, no allocation. */
function median(a: Float64Array, n: number): number {
  const mid = n >> 1;
  const hi = select(a, n, mid);
  if (n % 2 === 1) return hi;
  // The largest of the lower half, which quickselect left below mid.
  let lo = -Infinity;
  for (let i = 0; i < mid; i++) if (a[i]! > lo) lo = a[i]!;
  return (lo + hi) / 2;
}

/** The k-th smallest of the first n entries; afterwards the entries before k are all <= it. */
function select(a: Float64Array, n: number, k: number): number {
  let left = 0;
  let right = n - 1;
  while (right > left) {
    // Median of three as the pivot: sorted or constant series do not make it quadratic.
    const m = (left + right) >> 1;
    const x = a[left]!;
    const y = a[m]!;
    const z = a[right]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = left;
    let j = right;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const tmp = a[i]!;
        a[i] = a[j]!;
        a[j] = tmp;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else return a[k]!;
  }
  return a[k]!;
}
