// Recent readings of every point, for the dashboard's trend: one ring per point in typed arrays
// (time, value, and a byte for quality and kind), allocated once at its full size, so 10,000 points
// cost a known number of bytes and no objects, and a reading costs three stores, never an array shift.
import { pointTime } from '../../drivers/common/reading-time.js';
import type { Quality, Reading } from '../../drivers/types.js';

/** Bytes one sample takes: time (float64), value (float64), flags (quality and kind). */
export const SAMPLE_BYTES = 17;
/** Text values longer than this are kept cut, with a marker: the trend shows text, it is not an archive. */
export const MAX_TEXT = 256;
/** Fewest samples a point keeps whatever the budget: a trend needs two. */
const MIN_SAMPLES = 2;

const QUALITIES: readonly Quality[] = ['good', 'uncertain', 'bad'];
const enum Kind {
  Number = 0,
  Boolean = 1,
  Text = 2,
  Null = 3,
}

export interface Sample {
  ts: number;
  value: number | boolean | string | null;
  quality: Quality;
}

/** A fixed number of samples of one point, the oldest overwritten first. */
export class PointRing {
  private readonly ts: Float64Array;
  private readonly values: Float64Array;
  private readonly flags: Uint8Array;
  /** Text values by slot, made when the point first reports text. */
  private texts: Array<string | undefined> | undefined;
  /** Where the next sample goes, and how many the ring holds. */
  private head = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    this.ts = new Float64Array(capacity);
    this.values = new Float64Array(capacity);
    this.flags = new Uint8Array(capacity);
  }

  push(ts: number, value: Reading['value'], quality: Quality): void {
    const i = this.head;
    let kind: Kind;
    if (typeof value === 'number') {
      kind = Kind.Number;
      this.values[i] = value;
    } else if (typeof value === 'boolean') {
      kind = Kind.Boolean;
      this.values[i] = value ? 1 : 0;
    } else if (typeof value === 'string') {
      kind = Kind.Text;
      this.texts ??= new Array<string | undefined>(this.capacity);
      this.texts[i] = value.length > MAX_TEXT ? `${value.slice(0, MAX_TEXT)}…` : value;
    } else {
      kind = Kind.Null;
    }
    if (kind !== Kind.Text && this.texts) this.texts[i] = undefined;
    this.ts[i] = ts;
    const q = QUALITIES.indexOf(quality);
    this.flags[i] = (kind << 2) | (q < 0 ? 2 : q); // a quality it does not know is kept as bad, never as good
    this.head = (i + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  get size(): number {
    return this.count;
  }

  /** Time of the oldest sample held, undefined when empty. */
  oldest(): number | undefined {
    return this.count === 0 ? undefined : this.ts[(this.head - this.count + this.capacity) % this.capacity];
  }

  /** The samples at or after `since` in the order they came (oldest first); at most `limit`, the newest ones. */
  read(since = -Infinity, limit = Infinity): Sample[] {
    const out: Sample[] = [];
    const first = this.head - this.count + this.capacity;
    for (let k = 0; k < this.count; k++) {
      const i = (first + k) % this.capacity;
      const ts = this.ts[i]!;
      if (ts < since) continue;
      const flags = this.flags[i]!;
      const kind = (flags >> 2) as Kind;
      const value = kind === Kind.Number ? this.values[i]! : kind === Kind.Boolean ? this.values[i] === 1 : kind === Kind.Text ? (this.texts?.[i] ?? null) : null;
      out.push({ ts, value, quality: QUALITIES[flags & 3] ?? 'bad' });
    }
    return out.length > limit ? out.slice(out.length - limit) : out;
  }

  /** Bytes the ring holds: its arrays, and its text values roughly (two bytes a character). */
  bytes(): number {
    let text = 0;
    if (this.texts) {
      text = this.capacity * 8;
      for (const t of this.texts) if (t) text += t.length * 2;
    }
    return this.capacity * SAMPLE_BYTES + text;
  }
}

export interface HistoryPlanInput {
  /** Samples per point (a number), or a time span in ms that each point's poll interval divides. */
  keep: { samples: number } | { ms: number };
  /** Bytes all rings together may take. */
  maxBytes: number;
  points: ReadonlyArray<{ key: string; intervalMs: number }>;
}

export interface HistoryPlan {
  /** Samples per point, after the budget. */
  samples: Map<string, number>;
  /** What the setting asked for, in bytes, before the budget. */
  wantedBytes: number;
  bytes: number;
  /** Below 1 when the budget cut every ring by this factor. */
  scale: number;
}

/** How many samples each point keeps: what `keep` asks for, scaled down alike when the budget is smaller. */
export function planHistory({ keep, maxBytes, points }: HistoryPlanInput): HistoryPlan {
  const wanted = points.map((p) => ({ key: p.key, n: Math.max(MIN_SAMPLES, 'samples' in keep ? keep.samples : Math.ceil(keep.ms / Math.max(1, p.intervalMs))) }));
  const wantedBytes = wanted.reduce((sum, w) => sum + w.n * SAMPLE_BYTES, 0);
  const scale = wantedBytes > maxBytes ? maxBytes / wantedBytes : 1;
  const samples = new Map<string, number>();
  let bytes = 0;
  for (const w of wanted) {
    const n = Math.max(MIN_SAMPLES, Math.floor(w.n * scale));
    samples.set(w.key, n);
    bytes += n * SAMPLE_BYTES;
  }
  return { samples, wantedBytes, bytes, scale };
}

/**
 * The rings of every declared point, made up front from the plan. Readings of a point that is not
 * declared are not kept (a driver or a peer cannot make the gateway allocate rings), only counted.
 */
export class History {
  private readonly rings = new Map<string, PointRing>();
  /** Readings of points that have no ring. */
  undeclared = 0;

  constructor(plan: HistoryPlan) {
    for (const [key, n] of plan.samples) this.rings.set(key, new PointRing(n));
  }

  add(batch: readonly Reading[]): void {
    for (const r of batch) {
      const ring = this.rings.get(`${r.equipment}/${r.point}`);
      if (ring) ring.push(pointTime(r), r.value, r.quality);
      else this.undeclared++;
    }
  }

  ring(equipment: string, point: string): PointRing | undefined {
    return this.rings.get(`${equipment}/${point}`);
  }

  bytes(): number {
    let sum = 0;
    for (const ring of this.rings.values()) sum += ring.bytes();
    return sum;
  }
}
