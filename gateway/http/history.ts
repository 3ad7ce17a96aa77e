// Recent readings of every point, for the dashboard's trend: rings in three typed arrays shared by all
// points (time, value, and a byte for quality and kind), allocated once at their full size, so 10,000
// points cost a known number of bytes and no objects per reading, and a reading costs three stores,
// never an array shift.
import { pointTime } from '../../drivers/common/reading-time.js';
import type { Quality, Reading } from '../../drivers/types.js';

/** Bytes one sample takes: time (float64), value (float64), flags (quality and kind). */
export const SAMPLE_BYTES = 17;
/** Text values longer than this are kept cut, with a marker: the trend shows text, it is not an archive. */
export const MAX_TEXT = 256;
/** Fewest samples a point keeps whatever the budget: a trend needs two. */
const MIN_SAMPLES = 2;
/** Bytes a kept text takes beyond its sample: the string's header and its slot in the text table. */
const TEXT_OVERHEAD = 32;

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

/** The arrays rings live in. */
interface Storage {
  ts: Float64Array;
  values: Float64Array;
  flags: Uint8Array;
  /** Text values by slot, made when a point first reports text. */
  texts: Map<number, string>;
  /** Characters of text kept, and the most all rings may keep. */
  textChars: number;
  maxTextChars: number;
  /** Texts not kept because the text budget was spent (the sample is kept, its value shown as null). */
  textsNotKept: number;
}

function storage(samples: number, maxTextChars: number): Storage {
  return {
    ts: new Float64Array(samples),
    values: new Float64Array(samples),
    flags: new Uint8Array(samples),
    texts: new Map(),
    textChars: 0,
    maxTextChars,
    textsNotKept: 0,
  };
}

/** A text cut to MAX_TEXT, as a string of its own (a slice would keep the whole original alive). */
function flatText(value: string): string {
  const cut = value.length > MAX_TEXT ? `${value.slice(0, MAX_TEXT)}…` : value;
  return Buffer.from(cut, 'utf16le').toString('utf16le');
}

/** A fixed number of samples of one point, the oldest overwritten first. */
export class PointRing {
  private readonly s: Storage;
  /** The ring's first slot in the arrays. */
  private readonly offset: number;
  /** Where the next sample goes, and how many the ring holds. */
  private head = 0;
  private count = 0;

  /** A ring of its own, or `capacity` slots from `offset` of a History's shared arrays. */
  constructor(
    readonly capacity: number,
    shared?: { storage: Storage; offset: number },
  ) {
    this.s = shared?.storage ?? storage(capacity, capacity * (MAX_TEXT + 1));
    this.offset = shared?.offset ?? 0;
  }

  push(ts: number, value: Reading['value'], quality: Quality): void {
    const s = this.s;
    const i = this.offset + this.head;
    const old = s.texts.get(i);
    if (old !== undefined) {
      s.texts.delete(i);
      s.textChars -= old.length;
    }
    let kind: Kind;
    if (typeof value === 'number') {
      kind = Kind.Number;
      s.values[i] = value;
    } else if (typeof value === 'boolean') {
      kind = Kind.Boolean;
      s.values[i] = value ? 1 : 0;
    } else if (typeof value === 'string') {
      // The same text as the sample before shares its string; a new one is kept while the budget lasts.
      const before = s.texts.get(this.offset + ((this.head - 1 + this.capacity) % this.capacity));
      const text =
        before !== undefined && (before === value || (value.length > MAX_TEXT && before === flatText(value))) ? before : flatText(value);
      if (s.textChars + text.length <= s.maxTextChars) {
        kind = Kind.Text;
        s.texts.set(i, text);
        s.textChars += text.length;
      } else {
        kind = Kind.Null;
        s.textsNotKept++;
      }
    } else {
      kind = Kind.Null;
    }
    s.ts[i] = ts;
    const q = QUALITIES.indexOf(quality);
    s.flags[i] = (kind << 2) | (q < 0 ? 2 : q); // a quality it does not know is kept as bad, never as good
    this.head = (this.head + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  get size(): number {
    return this.count;
  }

  /** Time of the oldest sample held (readings may come out of time order), undefined when empty. */
  oldest(): number | undefined {
    if (this.count === 0) return undefined;
    let min = Infinity;
    const first = this.head - this.count + this.capacity;
    for (let k = 0; k < this.count; k++) min = Math.min(min, this.s.ts[this.offset + ((first + k) % this.capacity)]!);
    return min;
  }

  /** The samples at or after `since`, oldest first by time (stable for equal times); at most `limit`, the newest ones. */
  read(since = -Infinity, limit = Infinity): Sample[] {
    const s = this.s;
    const slots: number[] = [];
    const first = this.head - this.count + this.capacity;
    let ordered = true;
    let last = -Infinity;
    for (let k = 0; k < this.count; k++) {
      const i = this.offset + ((first + k) % this.capacity);
      const ts = s.ts[i]!;
      if (ts < since) continue;
      if (ts < last) ordered = false;
      last = ts;
      slots.push(i);
    }
    if (!ordered) slots.sort((a, b) => s.ts[a]! - s.ts[b]!);
    const from = Math.max(0, slots.length - limit);
    const out: Sample[] = [];
    for (let k = from; k < slots.length; k++) {
      const i = slots[k]!;
      const flags = s.flags[i]!;
      const kind = (flags >> 2) as Kind;
      const value =
        kind === Kind.Number
          ? s.values[i]!
          : kind === Kind.Boolean
            ? s.values[i] === 1
            : kind === Kind.Text
              ? (s.texts.get(i) ?? null)
              : null;
      out.push({ ts: s.ts[i]!, value, quality: QUALITIES[flags & 3] ?? 'bad' });
    }
    return out;
  }
}

export interface HistoryPlanInput {
  /** Samples per point (a number), or a time span in ms that each point's poll interval divides. */
  keep: { samples: number } | { ms: number };
  /** Bytes all rings together may take, their texts included. */
  maxBytes: number;
  points: ReadonlyArray<{ key: string; intervalMs: number }>;
}

export interface HistoryPlan {
  /** Samples per point, after the budget. */
  samples: Map<string, number>;
  /** What the setting asked for, in bytes, before the budget. */
  wantedBytes: number;
  /** Bytes of the samples' arrays. */
  bytes: number;
  /** Below 1 when the budget cut every ring by this factor. */
  scale: number;
  /** Characters of text all rings may keep together: what the budget leaves after the arrays. */
  maxTextChars: number;
}

/** How many samples each point keeps: what `keep` asks for, scaled down alike when the budget is smaller. */
export function planHistory({ keep, maxBytes, points }: HistoryPlanInput): HistoryPlan {
  const wanted = points.map((p) => ({
    key: p.key,
    n: Math.max(MIN_SAMPLES, 'samples' in keep ? keep.samples : Math.ceil(keep.ms / Math.max(1, p.intervalMs))),
  }));
  const wantedBytes = wanted.reduce((sum, w) => sum + w.n * SAMPLE_BYTES, 0);
  // Text values (rare: codes, states) share the budget: an eighth of it is kept for them.
  const forSamples = Math.floor(maxBytes * 0.875);
  const scale = wantedBytes > forSamples ? forSamples / wantedBytes : 1;
  const samples = new Map<string, number>();
  let bytes = 0;
  for (const w of wanted) {
    const n = Math.max(MIN_SAMPLES, Math.floor(w.n * scale));
    samples.set(w.key, n);
    bytes += n * SAMPLE_BYTES;
  }
  return { samples, wantedBytes, bytes, scale, maxTextChars: Math.max(0, Math.floor((maxBytes - bytes) / 2)) };
}

/**
 * The rings of every declared point, made up front from the plan in three shared arrays. Readings of
 * a point that is not declared are not kept (a driver or a peer cannot make the gateway allocate
 * rings), only counted.
 */
export class History {
  private readonly rings = new Map<string, Map<string, PointRing>>();
  private readonly storage: Storage;
  /** Readings of points that have no ring. */
  undeclared = 0;

  constructor(plan: HistoryPlan) {
    let total = 0;
    for (const n of plan.samples.values()) total += n;
    this.storage = storage(total, plan.maxTextChars);
    let offset = 0;
    for (const [key, n] of plan.samples) {
      const slash = key.indexOf('/');
      const equipment = key.slice(0, slash);
      let points = this.rings.get(equipment);
      if (!points) this.rings.set(equipment, (points = new Map()));
      points.set(key.slice(slash + 1), new PointRing(n, { storage: this.storage, offset }));
      offset += n;
    }
  }

  add(batch: readonly Reading[]): void {
    for (const r of batch) {
      const ring = this.rings.get(r.equipment)?.get(r.point);
      if (ring) ring.push(pointTime(r), r.value, r.quality);
      else this.undeclared++;
    }
  }

  ring(equipment: string, point: string): PointRing | undefined {
    return this.rings.get(equipment)?.get(point);
  }

  /** Texts not kept because the text share of the budget was spent. */
  get textsNotKept(): number {
    return this.storage.textsNotKept;
  }

  /** Bytes held: the three arrays, and the texts kept (two bytes a character and their overhead). */
  bytes(): number {
    const s = this.storage;
    return s.ts.byteLength + s.values.byteLength + s.flags.byteLength + s.textChars * 2 + s.texts.size * TEXT_OVERHEAD;
  }
}
