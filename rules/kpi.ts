// Alarm performance after ISA-18.2 and EEMUA 191, over rolling windows, per site and per equipment.
// The figures come from a bounded in-memory history of alarm events (24 h at most, and at most
// `maxEvents` of them, the oldest dropped and those the bound forced out counted) and from the alarms active now. They are
// computed on demand (the API, the metrics, the daily report), never per reading: one pass over the
// events of the window. docs/risk.md defines each figure.
import type { ActiveAlarm, AlarmEvent, Level } from './types.js';

export const TEN_MINUTES = 600_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;
/** ISA-18.2: more than 10 alarms annunciated to one operator in 10 minutes is a flood. */
export const FLOOD_PER_10_MIN = 10;
/** Raised and cleared within this: a fleeting alarm. */
export const FLEETING_MS = 10_000;
/** Active (standing), or active and unacknowledged (stale), longer than this. */
export const STANDING_MS = DAY;
/** ISA-18.2's recommended priority distribution (low, medium, high), in %. */
export const PRIORITY_TARGET = { low: 80, medium: 15, high: 5 } as const;

/** The events the figures read; the rest (suppression, out of service, floods) are not kept. */
const KEPT: ReadonlySet<string> = new Set(['raised', 'acknowledged', 'shelved', 'unshelved', 'cleared', 'closed', 'chattering']);

interface Kept {
  type: AlarmEvent['type'];
  ts: number;
  equipment: string;
  /** `<equipment>/<rule>`. */
  key: string;
  incidentId: string;
  level: Level;
  origin: AlarmEvent['origin'];
}

export interface Durations {
  count: number;
  /** ms; undefined without any. */
  median?: number | undefined;
  p90?: number | undefined;
  max?: number | undefined;
}

export interface KpiReport {
  /** Site-wide when undefined. */
  equipment?: string | undefined;
  windowMs: number;
  from: number;
  to: number;
  operators: number;
  /** Raised events of alarms seen in the readings (predicted and administrative ones counted apart). */
  annunciated: number;
  predicted: number;
  administrative: number;
  /** annunciated / operators / (window / 10 min). */
  perOperatorPer10Min: number;
  /** Share (%) of the window's 10-minute periods with more than 10 annunciated per operator. */
  floodPercent: number;
  /** Most annunciated in one of the window's 10-minute periods (all operators). */
  peakPer10Min: number;
  /** Active now (the condition present: not returned, shelved or out of service) and raised more than 24 h ago. */
  standing: number;
  /** Active and unacknowledged now, raised more than 24 h ago. */
  stale: number;
  /** Alarms (equipment/rule) flagged chattering in the window. */
  chattering: number;
  /** Incidents raised in the window and cleared within 10 s. */
  fleeting: number;
  shelvedNow: number;
  /** Shelves that ended (unshelved, or the incident closed) in the window. */
  shelveDurations: Durations;
  /** Raised in the window -> acknowledged, per incident. */
  timeToAcknowledge: Durations;
  top: Array<{ key: string; equipment: string; count: number }>;
  /** Share (%) of annunciated alarms by priority: low = blue + yellow, medium = orange, high = red; against 80/15/5. */
  priority: { low: number; medium: number; high: number; target: typeof PRIORITY_TARGET };
  /**
   * Events the bound (maxEvents) forced out of the history before they were 24 h old, since the
   * start: when not 0, a window that reaches back to them is short. Ageing out after 24 h is not counted.
   */
  dropped: number;
}

/** The p-th percentile by nearest rank (p in 0..100) of ascending `sorted`. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

/** Median: the middle value, or the mean of the two middle ones. */
export function median(sorted: readonly number[]): number | undefined {
  const n = sorted.length;
  if (n === 0) return undefined;
  return n % 2 === 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
}

function durations(list: number[], withP90: boolean): Durations {
  const sorted = list.sort((a, b) => a - b);
  return {
    count: sorted.length,
    median: median(sorted),
    ...(withP90 ? { p90: percentile(sorted, 90) } : {}),
    max: sorted.at(-1),
  };
}

const round = (x: number) => Math.round(x * 100) / 100;

/** Alarm events the KPI history keeps by default (about 200 bytes each: 10 MB at most). */
export const MAX_KPI_EVENTS = 50_000;

export class AlarmKpi {
  private events: Kept[] = [];
  /** Index of the oldest event still kept (dropping moves it; the array is compacted now and then). */
  private head = 0;
  private droppedCount = 0;
  private active: readonly ActiveAlarm[] = [];

  constructor(private readonly opts: { operators: number; maxEvents?: number; keepMs?: number } = { operators: 1 }) {}

  private get maxEvents() {
    return this.opts.maxEvents ?? MAX_KPI_EVENTS;
  }

  /** Alarm events as the engine emits them (in time order as far as it goes). */
  add(events: readonly AlarmEvent[]): void {
    for (const e of events) {
      if (!KEPT.has(e.type)) continue;
      this.events.push({
        type: e.type,
        ts: e.ts,
        equipment: e.equipment,
        key: `${e.equipment}/${e.rule}`,
        incidentId: e.incidentId,
        level: e.level,
        origin: e.origin,
      });
    }
    const over = this.events.length - this.head - this.maxEvents;
    if (over > 0) this.drop(over);
  }

  /** The alarms active now (standing, stale, shelved). */
  setActive(list: readonly ActiveAlarm[]): void {
    this.active = list;
  }

  /** Forgets events older than the longest window; call it now and then (the judge does on its ticks). */
  prune(now: number): void {
    const keep = this.opts.keepMs ?? DAY;
    let n = 0;
    for (let i = this.head; i < this.events.length && this.events[i]!.ts < now - keep; i++) n++;
    // Ageing out is what the history is for: only what the bound forces out makes a window short.
    if (n > 0) this.drop(n, false);
  }

  private drop(n: number, forced = true): void {
    this.head += n;
    if (forced) this.droppedCount += n;
    // Compacting only when half the array is dead keeps dropping O(1) on average.
    if (this.head > 1024 && this.head * 2 > this.events.length) {
      this.events = this.events.slice(this.head);
      this.head = 0;
    }
  }

  get size(): number {
    return this.events.length - this.head;
  }

  report(windowMs: number, now: number, equipment?: string): KpiReport {
    const from = now - windowMs;
    const operators = Math.max(1, this.opts.operators);
    const periods = Math.max(1, Math.ceil(windowMs / TEN_MINUTES));
    const perPeriod = new Array<number>(periods).fill(0);
    let annunciated = 0;
    let predicted = 0;
    let administrative = 0;
    const byPriority = { low: 0, medium: 0, high: 0 };
    const raisedAt = new Map<string, number>();
    const shelvedAt = new Map<string, number>();
    const chattering = new Set<string>();
    const acked = new Set<string>();
    const counts = new Map<string, { key: string; equipment: string; count: number }>();
    let fleeting = 0;
    const tta: number[] = [];
    const shelves: number[] = [];
    // A shelve or a raise that began before the window still ends in it: the whole history (24 h) is
    // read for their starts, so a short window finds one that began up to 24 h ago; one that began
    // before the history (any before the 24 h window) is not found, and its end is not counted.
    for (let i = this.head; i < this.events.length; i++) {
      const e = this.events[i]!;
      if (e.ts > now) continue;
      if (equipment !== undefined && e.equipment !== equipment) continue;
      const inWindow = e.ts >= from;
      switch (e.type) {
        case 'raised': {
          if (e.origin === 'predicted' || e.origin === 'administrative') {
            if (inWindow && e.origin === 'predicted') predicted++;
            else if (inWindow) administrative++;
            break;
          }
          raisedAt.set(e.incidentId, e.ts);
          if (!inWindow) break;
          annunciated++;
          // Period 0 is the oldest; the newest ends at `now`.
          const p = periods - 1 - Math.min(periods - 1, Math.floor((now - e.ts) / TEN_MINUTES));
          perPeriod[p]!++;
          if (e.level === 'red') byPriority.high++;
          else if (e.level === 'orange') byPriority.medium++;
          else byPriority.low++;
          const c = counts.get(e.key) ?? { key: e.key, equipment: e.equipment, count: 0 };
          c.count++;
          counts.set(e.key, c);
          break;
        }
        case 'acknowledged': {
          const r = raisedAt.get(e.incidentId);
          // The first acknowledgement of an incident raised in the window.
          if (r !== undefined && r >= from && !acked.has(e.incidentId)) tta.push(e.ts - r);
          acked.add(e.incidentId);
          break;
        }
        case 'cleared': {
          const r = raisedAt.get(e.incidentId);
          if (r !== undefined && r >= from && e.ts - r <= FLEETING_MS) fleeting++;
          break;
        }
        case 'shelved':
          shelvedAt.set(e.incidentId, e.ts);
          break;
        case 'unshelved':
        case 'closed': {
          const s = shelvedAt.get(e.incidentId);
          if (s !== undefined && inWindow) shelves.push(e.ts - s);
          shelvedAt.delete(e.incidentId);
          if (e.type === 'closed') {
            raisedAt.delete(e.incidentId);
            acked.delete(e.incidentId);
          }
          break;
        }
        case 'chattering':
          if (inWindow) chattering.add(e.key);
          break;
      }
    }
    let standing = 0;
    let stale = 0;
    let shelvedNow = 0;
    for (const a of this.active) {
      if (equipment !== undefined && a.equipment !== equipment) continue;
      if (a.origin !== undefined) continue;
      if (a.state === 'shelved') shelvedNow++;
      // Standing and stale are about a condition present now, as the judge's `standing` factor: an alarm
      // that returned and waits for its acknowledgement, or one shelved or out of service, is neither.
      if (a.state !== 'active_unacknowledged' && a.state !== 'active_acknowledged') continue;
      if (now - a.raisedAt <= STANDING_MS) continue;
      standing++;
      if (a.state === 'active_unacknowledged') stale++;
    }
    const floods = perPeriod.filter((n) => n / operators > FLOOD_PER_10_MIN).length;
    const share = (n: number) => (annunciated === 0 ? 0 : round((100 * n) / annunciated));
    return {
      ...(equipment !== undefined ? { equipment } : {}),
      windowMs,
      from,
      to: now,
      operators,
      annunciated,
      predicted,
      administrative,
      perOperatorPer10Min: round(annunciated / operators / (windowMs / TEN_MINUTES)),
      floodPercent: round((100 * floods) / periods),
      peakPer10Min: Math.max(...perPeriod),
      standing,
      stale,
      chattering: chattering.size,
      fleeting,
      shelvedNow,
      shelveDurations: durations(shelves, false),
      timeToAcknowledge: durations(tta, true),
      top: [...counts.values()].sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : 1)).slice(0, 10),
      priority: { low: share(byPriority.low), medium: share(byPriority.medium), high: share(byPriority.high), target: PRIORITY_TARGET },
      dropped: this.droppedCount,
    };
  }
}
