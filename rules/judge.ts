// The judgement step: near misses, alarm KPIs and each equipment's risk level, composed in one
// object that the gateway's risk service and the replay and bench drive the same way. Pure (no I/O,
// no timers): it is fed readings, alarm events, the active alarm list and connection states, and
// `tick(now)` re-assesses. Reading batches are the hot path (beside the rule engine on every batch):
// `ingest` does two map lookups per reading and nothing else for points without a near-miss limit.
import type { Reading } from '../drivers/types.js';
import { inTimeOrder, pointTime } from '../drivers/common/reading-time.js';
import type { FactorOverrides, RiskSection } from '../config/risk-schema.js';
import { adminKindOf } from './admin.js';
import { AlarmKpi, DAY, HOUR, STANDING_MS, type KpiReport } from './kpi.js';
import { NearMissTracker, tracksNearMisses, type NearMiss } from './near-miss.js';
import {
  applyHysteresis,
  effectiveWeights,
  initialRisk,
  score,
  type FactorValue,
  type PersistedRisk,
  type RiskAssessment,
  type RiskChange,
  type RiskScale,
  type Score,
  type Weights,
} from './risk.js';
import { LEVELS, type ActiveAlarm, type AlarmEvent, type Level, type Threshold } from './types.js';

export interface JudgeEquipment {
  id: string;
  name?: string | undefined;
  category: string;
  consequence: number;
  pollIntervalMs: number;
  /** Values come on change: an old last reading is no silence. */
  reportsOnChange: boolean;
  /** Its template's weights (the site's `risk.factors` go over them). */
  factors?: FactorOverrides | undefined;
}

/**
 * The judge's equipment from a loaded site's: the risk service and the replay build it the same way.
 * `reportsOnChange` tells, from each equipment's driver, whether its values come on change.
 */
export function judgeEquipmentOf(
  equipment: ReadonlyArray<{
    id: string;
    name?: string | undefined;
    category: string;
    consequence: number;
    poll_interval: number;
    risk_factors?: FactorOverrides | undefined;
  }>,
  reportsOnChange: (id: string) => boolean,
): JudgeEquipment[] {
  return equipment.map((e) => ({
    id: e.id,
    name: e.name,
    category: e.category,
    consequence: e.consequence,
    pollIntervalMs: e.poll_interval,
    reportsOnChange: reportsOnChange(e.id),
    factors: e.risk_factors,
  }));
}

/** rules/compile.ts `thresholdsOf`: each limit of each rule part, per equipment. */
export interface JudgeThreshold {
  equipment: string;
  rule: string;
  level: Level;
  threshold: Threshold;
}

export interface JudgeOptions {
  site: string;
  equipment: readonly JudgeEquipment[];
  thresholds: readonly JudgeThreshold[];
  config: Pick<RiskSection, 'hold' | 'factors' | 'likelihood' | 'levels'>;
  /** ISA-18.2 rates are per operator (alarms.operators). */
  operators?: number | undefined;
  restored?: ReadonlyMap<string, PersistedRisk> | undefined;
  now: number;
  /** Every equipment is re-assessed this often for the time-based factors, changed or not. */
  fullEveryMs?: number | undefined;
  /** Most alarm events the KPI history keeps. */
  maxKpiEvents?: number | undefined;
}

/** A good reading older than this many poll intervals is silence (the `silence` factor). */
const SILENT_POLLS = 3;
const MINUTE = 60_000;
/** Near-miss times kept per equipment (the last 24 h, at most this many). */
const MAX_NEAR_MISSES = 10_000;

interface State {
  eq: JudgeEquipment;
  weights: Weights;
  trackers: Map<string, NearMissTracker[]>;
  lastGood: number;
  /** Times of the near misses of the last 24 h, oldest first. */
  nearMisses: number[];
  active: ActiveAlarm[];
  activeSignature: string;
  /** Rules flagged chattering and not yet ended. */
  chattering: Set<string>;
  /** Connection state changes of the last hour (and the one before it), oldest first. */
  online: Array<{ ts: number; online: boolean }>;
  risk: PersistedRisk;
  assessment?: RiskAssessment;
  /** The score with no factor at all, computed once. */
  quiet?: Score;
  dirty: boolean;
}

const NONE: FactorValue[] = [];

export class Judge {
  readonly site: string;
  private readonly states = new Map<string, State>();
  private readonly kpiHistory: AlarmKpi;
  private readonly holdMs: number;
  private readonly scale: RiskScale;
  private readonly fullEveryMs: number;
  private readonly startedAt: number;
  private lastFull = -Infinity;
  private changedStates = new Map<string, PersistedRisk>();

  constructor(opts: JudgeOptions) {
    this.site = opts.site;
    this.holdMs = opts.config.hold;
    this.scale = { likelihood: opts.config.likelihood, levels: opts.config.levels };
    this.fullEveryMs = opts.fullEveryMs ?? 5000;
    this.startedAt = opts.now;
    this.kpiHistory = new AlarmKpi({ operators: opts.operators ?? 1, ...(opts.maxKpiEvents ? { maxEvents: opts.maxKpiEvents } : {}) });
    for (const eq of opts.equipment) {
      this.states.set(eq.id, {
        eq,
        weights: effectiveWeights(eq.factors, opts.config.factors),
        trackers: new Map(),
        // Nothing heard yet: silence counts from the start, not from 1970.
        lastGood: opts.now,
        nearMisses: [],
        active: [],
        activeSignature: '',
        chattering: new Set(),
        online: [],
        risk: opts.restored?.get(eq.id) ?? initialRisk(opts.now),
        dirty: true,
      });
    }
    this.setThresholds(opts.thresholds);
  }

  /**
   * The limits whose near misses are followed, again after a reload of the rules: a tracker of a
   * limit that did not change (same rule, level and threshold) goes on with the approach it follows.
   */
  setThresholds(thresholds: readonly JudgeThreshold[]): void {
    const before = new Map<string, NearMissTracker>();
    for (const s of this.states.values()) {
      for (const list of s.trackers.values())
        for (const t of list) before.set(JSON.stringify([t.equipment, t.rule, t.level, t.threshold]), t);
      s.trackers = new Map();
    }
    for (const t of thresholds) {
      const s = this.states.get(t.equipment);
      if (!s || !tracksNearMisses(t.threshold)) continue;
      const list = s.trackers.get(t.threshold.point) ?? [];
      list.push(
        before.get(JSON.stringify([t.equipment, t.rule, t.level, t.threshold])) ??
          new NearMissTracker(t.equipment, t.rule, t.level, t.threshold),
      );
      s.trackers.set(t.threshold.point, list);
    }
  }

  /** One batch of readings: near misses and the last good reading per equipment. Returns the near misses it completed. */
  ingest(batch: readonly Reading[]): NearMiss[] {
    // A batch is mostly one equipment's poll: its state is looked up once, not per reading.
    let id: string | undefined;
    let s: State | undefined;
    let tracked: Reading[] | undefined;
    for (const r of batch) {
      if (r.quality !== 'good') continue;
      if (r.equipment !== id) {
        id = r.equipment;
        s = this.states.get(id);
      }
      if (!s) continue;
      // Silence is about what arrives, on the gateway's clock: an OPC UA Read of a value that has not
      // changed carries the time of its last change, and an idle elevator is not silent for that.
      if (r.ts > s.lastGood) s.lastGood = r.ts;
      if (s.trackers.size === 0 || typeof r.value !== 'number' || !s.trackers.has(r.point)) continue;
      (tracked ??= []).push(r);
    }
    if (!tracked) return [];
    // Trackers follow a value in time: only the readings they read are put in order.
    let out: NearMiss[] | undefined;
    for (const r of inTimeOrder(tracked)) {
      const value = r.value as number;
      if (!Number.isFinite(value)) continue;
      const st = this.states.get(r.equipment)!;
      const ts = pointTime(r);
      for (const t of st.trackers.get(r.point)!) {
        const nm = t.feed(value, ts);
        if (!nm) continue;
        (out ??= []).push(nm);
        st.nearMisses.push(nm.ts);
        // The factor is capped long before this; the bound only keeps a limit that is approached on every poll from growing memory.
        if (st.nearMisses.length > MAX_NEAR_MISSES) st.nearMisses.shift();
        st.dirty = true;
      }
    }
    return out ?? [];
  }

  /** Alarm events as the engine emitted them: the KPI history and the chattering flags. */
  alarmEvents(events: readonly AlarmEvent[]): void {
    this.kpiHistory.add(events);
    for (const e of events) {
      if (e.type !== 'chattering' && e.type !== 'chattering_ended') continue;
      const s = this.states.get(e.equipment);
      if (!s) continue;
      if (e.type === 'chattering') s.chattering.add(e.rule);
      else s.chattering.delete(e.rule);
      s.dirty = true;
    }
  }

  /** The engine's whole active alarm list: equipment whose alarms changed are re-assessed on the next tick. */
  activeAlarms(list: readonly ActiveAlarm[]): void {
    this.kpiHistory.setActive(list);
    const by = new Map<string, ActiveAlarm[]>();
    for (const a of list) {
      const l = by.get(a.equipment);
      if (l) l.push(a);
      else by.set(a.equipment, [a]);
    }
    for (const [id, s] of this.states) {
      const active = by.get(id) ?? [];
      const signature = active.map((a) => `${a.rule}:${a.level}:${a.state}:${a.origin ?? ''}:${a.raisedAt}`).join('|');
      if (signature === s.activeSignature) continue;
      s.active = active;
      s.activeSignature = signature;
      s.dirty = true;
    }
  }

  /**
   * Whether the equipment's connection is up (communication availability over the last hour). Until
   * the first call the connection counts as up: nothing says otherwise, and silence counts the rest.
   */
  status(equipment: string, online: boolean, now: number): void {
    const s = this.states.get(equipment);
    if (!s) return;
    const last = s.online.at(-1);
    if (last && last.online === online) return;
    s.online.push({ ts: now, online });
    s.dirty = true;
  }

  /** Re-assesses what changed (and everything every few seconds); returns the level changes, in equipment order. */
  tick(now: number): RiskChange[] {
    // A clock stepped back (NTP) makes the last full pass lie in the future: it is due now, not when
    // the clock catches up with it again.
    const full = now - this.lastFull >= this.fullEveryMs || now < this.lastFull;
    if (full) {
      this.lastFull = now;
      this.kpiHistory.prune(now);
    }
    const changes: RiskChange[] = [];
    for (const s of this.states.values()) {
      if (!full && !s.dirty && s.risk.pendingSince === undefined) continue;
      const change = this.assess(s, now);
      if (change) changes.push(change);
    }
    return changes;
  }

  assessments(): RiskAssessment[] {
    return [...this.states.values()].flatMap((s) => (s.assessment ? [s.assessment] : []));
  }

  assessment(equipment: string): RiskAssessment | undefined {
    return this.states.get(equipment)?.assessment;
  }

  kpi(windowMs: number, now: number, equipment?: string): KpiReport {
    return this.kpiHistory.report(windowMs, now, equipment);
  }

  /** Near misses of the last 24 h found before a restart (the journal's), so the factor goes on counting them. */
  recallNearMisses(found: ReadonlyArray<{ equipment: string; ts: number }>): void {
    for (const n of found) {
      const s = this.states.get(n.equipment);
      if (!s) continue;
      s.nearMisses.push(n.ts);
      s.dirty = true;
    }
    for (const s of this.states.values()) {
      s.nearMisses.sort((a, b) => a - b);
      if (s.nearMisses.length > MAX_NEAR_MISSES) s.nearMisses.splice(0, s.nearMisses.length - MAX_NEAR_MISSES);
    }
  }

  nearMissCount(equipment: string, sinceMs: number): number {
    const list = this.states.get(equipment)?.nearMisses ?? [];
    let n = 0;
    for (let i = list.length - 1; i >= 0 && list[i]! >= sinceMs; i--) n++;
    return n;
  }

  /** The persisted states that changed since the last call: to commit with the change events. */
  takeStates(): Map<string, PersistedRisk> {
    const out = this.changedStates;
    this.changedStates = new Map();
    return out;
  }

  private assess(s: State, now: number): RiskChange | undefined {
    s.dirty = false;
    const values = this.factorValues(s, now);
    // Most equipment has nothing to report most of the time: its score is the same every time.
    const computed =
      values.length > 0
        ? score(values, s.weights, s.eq.consequence, this.scale)
        : (s.quiet ??= score([], s.weights, s.eq.consequence, this.scale));
    const before = s.risk;
    const after = applyHysteresis(before, computed.level, now, this.holdMs);
    if (after !== before) {
      s.risk = after;
      this.changedStates.set(s.eq.id, after);
    }
    s.assessment = {
      equipment: s.eq.id,
      ...(s.eq.name !== undefined ? { name: s.eq.name } : {}),
      category: s.eq.category,
      level: after.level,
      score: computed.score,
      likelihood: computed.likelihood,
      consequence: computed.consequence,
      points: computed.points,
      factors: computed.factors,
      computedLevel: computed.level,
      since: after.since,
      computedAt: now,
    };
    if (after.level === before.level) return undefined;
    return { equipment: s.eq.id, from: before.level, to: after.level, change: after.changes, assessment: s.assessment };
  }

  private factorValues(s: State, now: number): FactorValue[] {
    while (s.nearMisses.length > 0 && s.nearMisses[0]! < now - DAY) s.nearMisses.shift();
    // A clock stepped back puts the last reading in the future: silence counts again from the step,
    // not only once the clock has caught up with it.
    if (s.lastGood > now) s.lastGood = now;
    const silent = !s.eq.reportsOnChange && now - s.lastGood > SILENT_POLLS * s.eq.pollIntervalMs;
    // Nothing to count (the common case, on every full tick): no lists built for it.
    if (s.active.length === 0 && s.nearMisses.length === 0 && s.chattering.size === 0 && s.online.length === 0 && !silent) return NONE;
    const out: FactorValue[] = [];
    const byLevel: Record<Level, string[]> = { red: [], orange: [], yellow: [], blue: [] };
    // One trend is one factor: a point's lo and lolo predictions (or hi and hihi) count once, as its highest.
    const predicted = new Map<string, { rule: string; level: Level }>();
    const standing: string[] = [];
    const overdue = { inspection: [] as string[], maintenance: [] as string[], certificate: [] as string[] };
    for (const a of s.active) {
      // Only a condition present now is a risk: an alarm that returned to normal and waits for its
      // acknowledgement, or one shelved or out of service (its condition unknown here), adds nothing.
      if (a.state !== 'active_unacknowledged' && a.state !== 'active_acknowledged') continue;
      if (a.origin === 'predicted') {
        const point = a.point ?? a.rule;
        const seen = predicted.get(point);
        if (!seen || LEVELS.indexOf(a.level) > LEVELS.indexOf(seen.level)) predicted.set(point, { rule: a.rule, level: a.level });
      } else if (a.origin === 'administrative') {
        const kind = adminKindOf(a.rule);
        // Only overdue counts (yellow, or orange when in use); due soon is a reminder, not a risk.
        if (kind && a.level !== 'blue') overdue[kind].push(a.message);
      } else {
        byLevel[a.level].push(a.rule);
        if (now - a.raisedAt > STANDING_MS) standing.push(a.rule);
      }
    }
    const list = (rules: string[]) =>
      rules.length > 5 ? `${rules.slice(0, 5).join(', ')} and ${rules.length - 5} more` : rules.join(', ');
    for (const level of ['red', 'orange', 'yellow', 'blue'] as const) {
      const rules = byLevel[level];
      if (rules.length > 0) out.push({ factor: `alarm_${level}`, value: rules.length, detail: list(rules) });
    }
    if (predicted.size > 0)
      out.push({ factor: 'predicted', value: predicted.size, detail: list([...predicted.values()].map((p) => p.rule)) });
    if (s.nearMisses.length > 0) out.push({ factor: 'near_misses', value: s.nearMisses.length, detail: 'in the last 24 h' });
    if (s.chattering.size > 0) out.push({ factor: 'chattering', value: s.chattering.size, detail: list([...s.chattering]) });
    if (standing.length > 0)
      out.push({ factor: 'standing', value: standing.length, detail: `active for more than 24 h: ${list(standing)}` });
    const unavailable = this.unavailablePercent(s, now);
    if (unavailable > 0)
      out.push({ factor: 'communication', value: unavailable, detail: `connection down ${unavailable} % of the last hour` });
    if (silent) {
      const minutes = Math.round(((now - s.lastGood) / MINUTE) * 10) / 10;
      out.push({ factor: 'silence', value: minutes, detail: `no good reading for ${minutes} min` });
    }
    for (const kind of ['inspection', 'maintenance', 'certificate'] as const) {
      if (overdue[kind].length > 0) out.push({ factor: `${kind}_overdue`, value: 1, detail: overdue[kind].join('; ') });
    }
    return out;
  }

  /** Share (%, one decimal) of the last hour (or of the time since start, when shorter) the connection was down. */
  private unavailablePercent(s: State, now: number): number {
    const from = Math.max(now - HOUR, this.startedAt);
    if (now <= from || s.online.length === 0) return 0;
    // Drop what ended before the hour, keeping the state the hour starts in.
    while (s.online.length > 1 && s.online[1]!.ts <= from) s.online.shift();
    let down = 0;
    for (let i = 0; i < s.online.length; i++) {
      const c = s.online[i]!;
      if (c.online) continue;
      const start = Math.max(from, c.ts);
      const end = Math.min(now, s.online[i + 1]?.ts ?? now);
      if (end > start) down += end - start;
    }
    return Math.round((1000 * down) / (now - from)) / 10;
  }
}
