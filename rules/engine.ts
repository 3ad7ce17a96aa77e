// The rule engine: evaluates rules on batches of readings as they arrive and runs the ISA-18.2 alarm
// lifecycle (delays, deadband, latching, shelving, suppression, escalation, alarm health). Pure: time
// comes from the readings and from tick(now); state comes from the AlarmStore it is given, and the
// states that changed are taken with takeChanges(), to be committed with the events they caused.
// Times are the gateway's wall clock; when it steps, clockStepped() moves every time the engine holds
// by the step, so durations (delays, stale windows, shelves, escalation, health windows) keep the
// time that really elapsed (rules/clock.ts detects the step).
import { randomUUID } from 'node:crypto';
import type { Reading } from '../drivers/types.js';
import { inTimeOrder } from '../drivers/common/reading-time.js';
import type { Scope, Value } from './expression.js';
import { formatEta, projectCrossing, SampleSeries, type Line } from './trend.js';
import {
  LEVELS,
  type ActiveAlarm,
  type AlarmEvent,
  type AlarmEventType,
  type AlarmState,
  type AlarmStore,
  type Level,
  type PersistedAlarm,
  type RuleSpec,
} from './types.js';

export interface EngineOptions {
  site: string;
  rules: readonly RuleSpec[];
  store?: AlarmStore;
  /** Longest a shelve lasts, whatever is asked (ms). */
  maxShelveMs?: number;
  /** Ids for events and incidents (deterministic ones in backtests). */
  newId?: () => string;
  /** When the engine starts (ms): stale rules count from here until a first reading. */
  now?: number;
  health?: Partial<HealthOptions>;
}

/** Alarm health: chattering (activations of one alarm) and floods (new alarms of the site). */
export interface HealthOptions {
  chatterWindowMs: number;
  /** This many activations (raised events) of one alarm within the window make it chattering. */
  chatterActivations: number;
  floodWindowMs: number;
  floodStart: number;
  floodEnd: number;
}

/** A state to commit: null when the alarm is gone from the site file. */
export interface AlarmChange {
  key: string;
  state: PersistedAlarm | null;
}

interface PointValue {
  value: Value | null;
  good: boolean;
  ts: number;
}

interface Instance {
  key: string;
  spec: RuleSpec;
  p: PersistedAlarm;
  /** Result of the last evaluation: undefined = uncertain. */
  cond: boolean | undefined;
  /** Times of the last activations, for chattering. */
  activations: number[];
  chattering: boolean;
  /** Rate rules: recent good samples. */
  samples?: Array<[number, number]>;
  /** Predicted warnings: the point's series, shared with the other predictions on it over the same window. */
  series?: Series;
  /** Predicted warnings: the time to the limit at the last evaluation (ms), for the message. */
  etaMs?: number | undefined;
  /**
   * Predicted warnings: the line last judged to be no threat (no significant trend, or one away from
   * the limit) while the warning was not active. Until the series is fitted again nothing can change
   * that verdict, so new samples of the point need no evaluation (what keeps 5,000 equipment cheap).
   */
  settled?: Line | undefined;
  /** External conditions: the value setExternal gave. */
  external?: boolean | undefined;
  /** External conditions: the detail setExternal gave with it, the message's `{detail}`. */
  externalDetail?: string | undefined;
  /** Predicted warnings: the normal value of the limit foreseen (its part's near-miss normal), when it has one. */
  normal?: number | undefined;
}

/**
 * The good numeric samples of one point over one window, on the values' own time (bounded, see
 * SampleSeries), and the last line fitted through them. One object: a reading of the point, met in
 * turn with thousands of others, finds what it needs without following further references.
 */
export class Series extends SampleSeries {
  line: Line | undefined = undefined;
  /** Newest sample time the line was fitted at. */
  fittedAt = -Infinity;
  /** Refit at most this often (sample time): max(1 s, window / 30). */
  readonly fitEveryMs: number;

  constructor(
    readonly point: string,
    windowMs: number,
  ) {
    super(windowMs);
    this.fitEveryMs = Math.max(1000, windowMs / 30);
  }
}

/** Longest a shelve lasts when neither the rule nor the site says (ms). */
export const DEFAULT_MAX_SHELVE_MS = 8 * 3_600_000;

/** ISA-18.2 with EEMUA 191's figures: 3 annunciations of one alarm within 60 s is chattering. */
export const DEFAULT_HEALTH: HealthOptions = {
  chatterWindowMs: 60_000,
  chatterActivations: 3,
  floodWindowMs: 600_000,
  floodStart: 10,
  floodEnd: 5,
};

export class RuleEngine {
  private readonly instances: Instance[] = [];
  private readonly byKey = new Map<string, Instance>();
  /** equipment → point → instances that read it (conditions and suppressions). */
  private readonly index = new Map<string, Map<string, Instance[]>>();
  private readonly stale = new Map<string, Instance[]>();
  private readonly values = new Map<string, Map<string, PointValue>>();
  /** `<equipment>\0<point>\0<window>` → the series every prediction on that point and window shares. */
  private readonly series = new Map<string, Series>();
  private readonly lastGood = new Map<string, number>();
  private readonly raises: number[] = [];
  private flood = false;
  private readonly health: HealthOptions;
  private readonly newId: () => string;
  private events: AlarmEvent[] = [];
  /** Alarms whose state changed since the last takeChanges(). */
  private readonly dirty = new Set<Instance>();
  /** Saved alarms whose rule is gone from the site file: their rows are to be deleted. */
  private readonly removed: string[] = [];
  /** Rule errors (text where a number is needed...): counted, and the rule is uncertain. */
  readonly errors: Array<{ rule: string; equipment: string; message: string }> = [];
  /**
   * How far the saved states' times were ahead of the clock at start (ms, 0 when none was): the clock
   * went back at least that far while the gateway was down, and they were moved back by it.
   */
  readonly restartedBack: number;

  constructor(private readonly opts: EngineOptions) {
    this.health = { ...DEFAULT_HEALTH, ...opts.health };
    this.newId = opts.newId ?? randomUUID;
    const saved = opts.store?.load() ?? new Map<string, PersistedAlarm>();
    const start = opts.now ?? Date.now();
    this.restartedBack = fitSavedTimes(saved, start);
    this.place(opts.rules, saved, new Map(), start);
    // The moved times are the states to keep: a second restart finds them as they are now.
    if (this.restartedBack > 0) for (const inst of this.instances) if (saved.has(inst.key)) this.save(inst);
    for (const [key, p] of saved) if (!this.byKey.has(key)) this.remove(key, p, start, 'rule removed from the site file');
  }

  /**
   * Swaps in the rules of a reloaded site file (gateway/reload.ts). A rule whose compiled definition
   * did not change (`same`) keeps everything: its state, its condition as last evaluated, its delays,
   * its samples and series, its chattering count. A changed rule of the same key (equipment and id)
   * keeps its state, as across a restart: an active alarm stays active (no second `raised` while the
   * condition holds) and the new definition judges the next readings (it clears through its off-delay
   * when the condition no longer holds). A rule gone from the file ends its open incident (`closed`)
   * and its state is deleted. The values last read stay, so the new rules evaluate at once.
   */
  reconfigure(rules: readonly RuleSpec[], same: (before: RuleSpec, after: RuleSpec) => boolean, now: number): void {
    const before = new Map(this.byKey);
    const series = new Map(this.series);
    const keep = new Map<string, Instance>();
    const states = new Map<string, PersistedAlarm>();
    for (const spec of rules) {
      const key = `${spec.equipment}/${spec.id}`;
      const old = before.get(key);
      if (!old) continue;
      if (same(old.spec, spec)) keep.set(key, old);
      else states.set(key, old.p);
    }
    this.instances.length = 0;
    this.byKey.clear();
    this.index.clear();
    this.stale.clear();
    this.series.clear();
    this.place(rules, states, keep, now, series);
    for (const [key, old] of before) {
      const after = this.byKey.get(key);
      if (!after) {
        this.remove(key, old.p, now, 'rule removed from the site file (reload)');
        continue;
      }
      if (after === old) continue;
      // A changed rule: its alarm's history goes on (chattering counts the same annunciations).
      after.activations = old.activations;
      after.chattering = old.chattering;
      after.external = old.external;
      after.externalDetail = old.externalDetail;
      // One state per alarm to commit: the new instance holds the old one's.
      this.dirty.delete(old);
      this.save(after);
    }
  }

  /** Builds the instances of `rules`: those in `keep` as they are, the others from their saved state. */
  private place(
    rules: readonly RuleSpec[],
    saved: ReadonlyMap<string, PersistedAlarm>,
    keep: ReadonlyMap<string, Instance>,
    start: number,
    oldSeries: ReadonlyMap<string, Series> = new Map(),
  ): void {
    for (const spec of rules) {
      const key = `${spec.equipment}/${spec.id}`;
      if (this.byKey.has(key)) throw new Error(`Rule ${spec.id} applies to ${spec.equipment} twice`);
      let inst = keep.get(key);
      if (inst) {
        // The same definition, compiled again: the new objects, the old state.
        inst.spec = spec;
      } else {
        const p = saved.get(key) ?? { active: false, acked: true, level: spec.level };
        // A shelve never outlasts its maximum from now, whatever the clock did while the gateway was down.
        const maxUntil = start + (spec.maxShelveMs ?? this.opts.maxShelveMs ?? DEFAULT_MAX_SHELVE_MS);
        if (p.shelvedUntil !== undefined && p.shelvedUntil > maxUntil) p.shelvedUntil = maxUntil;
        // States saved before incidents were closed explicitly: an incident still open is the one to close.
        if (p.openIncident === undefined && p.incidentId !== undefined && (p.active || !p.acked)) p.openIncident = p.incidentId;
        // Every instance has the same fields from the start: one object shape keeps the hot paths monomorphic.
        inst = {
          key,
          spec,
          p,
          cond: undefined,
          activations: [],
          chattering: false,
          samples: undefined,
          series: undefined,
          etaMs: undefined,
          settled: undefined,
          external: undefined,
          normal: undefined,
        };
      }
      this.instances.push(inst);
      this.byKey.set(key, inst);
      const reads = new Set<string>();
      const c = spec.condition;
      if (c.kind === 'expression') for (const pt of c.expr.points) reads.add(pt);
      if (c.kind === 'rate') {
        reads.add(c.point);
        inst.samples ??= [];
      }
      if (c.kind === 'predict') {
        reads.add(c.point);
        const id = `${spec.equipment}\0${c.point}\0${c.windowMs}`;
        // A reloaded prediction on the same point and window goes on with the samples it had.
        let series = this.series.get(id) ?? oldSeries.get(id);
        if (!series) series = new Series(c.point, c.windowMs);
        this.series.set(id, series);
        if (inst.series !== series) inst.settled = undefined;
        inst.series = series;
      }
      if (spec.suppressWhen) for (const pt of spec.suppressWhen.points) reads.add(pt);
      if (c.kind === 'stale') {
        this.stale.set(spec.equipment, [...(this.stale.get(spec.equipment) ?? []), inst]);
        if (!this.lastGood.has(spec.equipment)) this.lastGood.set(spec.equipment, start);
      }
      let points = this.index.get(spec.equipment);
      if (!points) this.index.set(spec.equipment, (points = new Map()));
      for (const pt of reads) points.set(pt, [...(points.get(pt) ?? []), inst]);
    }
    // A prediction knows the normal value of the limit it foresees from the part it names.
    for (const inst of this.instances) {
      if (inst.spec.condition.kind !== 'predict' || inst.spec.predicts === undefined) continue;
      inst.normal = this.byKey.get(`${inst.spec.equipment}/${inst.spec.predicts}`)?.spec.threshold?.nearMiss?.normal;
    }
  }

  /** An alarm whose rule is gone: its state is deleted, and its open incident ends (nobody can acknowledge it any more). */
  private remove(key: string, p: PersistedAlarm, ts: number, comment: string): void {
    this.removed.push(key);
    const open = p.openIncident ?? (p.incidentId !== undefined && (p.active || !p.acked) ? p.incidentId : undefined);
    if (open === undefined) return;
    const slash = key.indexOf('/');
    this.events.push({
      eventId: this.newId(),
      incidentId: open,
      type: 'closed',
      state: 'normal',
      level: p.level,
      site: this.opts.site,
      equipment: key.slice(0, slash),
      rule: key.slice(slash + 1),
      message: p.message ?? key,
      ...(p.point !== undefined ? { point: p.point } : {}),
      ...(p.value !== undefined ? { value: p.value } : {}),
      ts,
      comment,
    });
  }

  /**
   * The gateway's wall clock stepped by `stepMs` (negative: back) beyond the time that elapsed
   * (rules/clock.ts). Every time the engine holds moves with it, so each duration keeps the time that
   * really elapsed: a pending on- or off-delay, the silence a stale rule counts, a shelve (a duration
   * asked by an operator), the time to the next escalation, rate and trend samples, the chattering and
   * flood windows. Events already emitted keep their times. The states move too (committed with the
   * next changes): a restart sees them on the clock it then has.
   */
  clockStepped(stepMs: number): void {
    if (stepMs === 0 || !Number.isFinite(stepMs)) return;
    const by = (t: number | undefined) => (t === undefined ? undefined : t + stepMs);
    for (const inst of this.instances) {
      const { p } = inst;
      const before = [p.pendingSince, p.clearingSince, p.raisedAt, p.lastEscalationAt, p.shelvedUntil];
      p.pendingSince = by(p.pendingSince);
      p.clearingSince = by(p.clearingSince);
      p.raisedAt = by(p.raisedAt);
      p.lastEscalationAt = by(p.lastEscalationAt);
      p.shelvedUntil = by(p.shelvedUntil);
      if (before.some((t) => t !== undefined)) this.save(inst);
      for (let i = 0; i < inst.activations.length; i++) inst.activations[i]! += stepMs;
      if (inst.samples) for (const sample of inst.samples) sample[0] += stepMs;
    }
    // Shared series: each once, with its fitted line (kept: the same object is a settled verdict).
    for (const series of this.series.values()) {
      series.shift(stepMs);
      series.fittedAt += stepMs;
      if (series.line) series.line.at += stepMs;
    }
    for (const [equipment, t] of this.lastGood) this.lastGood.set(equipment, t + stepMs);
    for (const points of this.values.values()) for (const v of points.values()) v.ts += stepMs;
    for (let i = 0; i < this.raises.length; i++) this.raises[i]! += stepMs;
  }

  /** The states that changed since the last call (a copy of each), to commit with their events. */
  takeChanges(): AlarmChange[] {
    const out: AlarmChange[] = this.removed.splice(0).map((key) => ({ key, state: null }));
    for (const inst of this.dirty) out.push({ key: inst.key, state: { ...inst.p } });
    this.dirty.clear();
    return out;
  }

  /** Events made outside ingest/tick/actions (incidents of removed rules closed at start). */
  takeEvents(): AlarmEvent[] {
    return this.flush();
  }

  /**
   * Feeds a batch of readings; returns the alarm events it caused, in time order. Every value counts,
   * in the order of its own time (a notification can hold several values of a point: a spike among
   * them must raise). The rules a reading touches are evaluated once the values of its time are in,
   * and before a point's value is replaced by a later one; before a value is applied, time passes up
   * to it for the rules that read it, so an on-delay that ran out meanwhile raises with the value it
   * had. Stale-data rules go by when data was received: they are evaluated after the whole batch.
   */
  ingest(batch: readonly Reading[]): AlarmEvent[] {
    const timeOf = batchClock(batch);
    const ordered = inTimeOrder(batch, timeOf);
    const touched = new Set<Instance>();
    /** Values applied since the rules were last evaluated: a point met again evaluates them first. */
    const fresh = new Set<PointValue>();
    let stale: Set<Instance> | undefined;
    let at = ordered.length > 0 ? timeOf(ordered[0]!) : 0;
    let received = 0;
    const evaluateTouched = () => {
      for (const inst of touched) this.evaluate(inst, at);
      touched.clear();
      fresh.clear();
    };
    for (const r of ordered) {
      const t = timeOf(r);
      let eq = this.values.get(r.equipment);
      if (!eq) this.values.set(r.equipment, (eq = new Map()));
      const before = eq.get(r.point);
      if (t !== at || (before !== undefined && fresh.has(before))) {
        evaluateTouched();
        at = t;
      }
      const good = r.quality === 'good' && r.value !== null;
      const readers = this.index.get(r.equipment)?.get(r.point);
      if (readers) {
        for (const inst of readers) {
          if (inst.series && inst.series.point === r.point) {
            // Several predictions share a series: a sample of the same instant replaces itself.
            if (good && typeof r.value === 'number' && Number.isFinite(r.value)) {
              const reread = before !== undefined && before.ts === t && before.value === r.value && t < r.ts;
              inst.series.add(reread ? r.ts : t, r.value);
            }
            if (isSettled(inst, r.point)) continue;
          }
          if (!touched.has(inst)) {
            // Only a delay can have run out with the value it had (shelve expiry and escalation do not depend on it).
            if (inst.p.pendingSince !== undefined || inst.p.clearingSince !== undefined) this.step(inst, t);
            touched.add(inst);
          }
          if (
            inst.samples &&
            inst.spec.condition.kind === 'rate' &&
            inst.spec.condition.point === r.point &&
            good &&
            typeof r.value === 'number'
          ) {
            // A value read again with the same source time (an OPC UA Read of a value that has not
            // changed: its source time is that of its last change) is still that value when received.
            const reread = before !== undefined && before.ts === t && before.value === r.value && t < r.ts;
            addSample(inst.samples, reread ? r.ts : t, r.value, inst.spec.condition.windowMs);
          }
        }
      }
      const value: PointValue = { value: r.value, good, ts: t };
      eq.set(r.point, value);
      fresh.add(value);
      if (r.ts > received) received = r.ts;
      if (good && (this.lastGood.get(r.equipment) ?? 0) < r.ts) this.lastGood.set(r.equipment, r.ts);
      const staleRules = this.stale.get(r.equipment);
      if (staleRules && good) for (const inst of staleRules) (stale ??= new Set()).add(inst);
    }
    evaluateTouched();
    if (stale) for (const inst of stale) this.evaluate(inst, received);
    return this.flush();
  }

  /** Lets time pass: delays, shelve expiry, escalation, stale data, alarm health. */
  tick(now: number): AlarmEvent[] {
    for (const inst of this.instances) {
      if (inst.spec.condition.kind === 'stale') this.evaluate(inst, now);
      else this.step(inst, now);
    }
    this.checkHealth(now);
    return this.flush();
  }

  acknowledge(key: string, by: string, comment: string, now: number): AlarmEvent[] {
    const inst = this.find(key);
    const { p } = inst;
    if (p.outOfService) throw new RuleActionError(`${key} is out of service`);
    const latchedClear = inst.spec.latch && p.active && inst.cond === false;
    if (p.acked && !latchedClear) throw new RuleActionError(`${key} has nothing to acknowledge (${this.stateOf(inst)})`);
    p.acked = true;
    // A latched alarm whose condition has gone is reset by the acknowledgement.
    if (latchedClear) p.active = false;
    this.emit(inst, 'acknowledged', now, { by, comment });
    return this.flush();
  }

  shelve(key: string, by: string, comment: string, durationMs: number, now: number): AlarmEvent[] {
    const inst = this.find(key);
    if (inst.p.outOfService) throw new RuleActionError(`${key} is out of service`);
    const max = inst.spec.maxShelveMs ?? this.opts.maxShelveMs ?? DEFAULT_MAX_SHELVE_MS;
    inst.p.shelvedUntil = now + Math.min(Math.max(durationMs, 1), max);
    // Shelving a normal alarm belongs to no incident.
    this.emit(inst, 'shelved', now, { by, comment, shelvedUntil: inst.p.shelvedUntil, noIncident: !inst.p.active && inst.p.acked });
    return this.flush();
  }

  unshelve(key: string, by: string, comment: string, now: number): AlarmEvent[] {
    const inst = this.find(key);
    if (inst.p.shelvedUntil === undefined) throw new RuleActionError(`${key} is not shelved`);
    this.endShelve(inst, now, { by, comment });
    return this.flush();
  }

  setOutOfService(key: string, outOfService: boolean, by: string, comment: string, now: number): AlarmEvent[] {
    const inst = this.find(key);
    if (Boolean(inst.p.outOfService) === outOfService) return [];
    if (outOfService) {
      const open = inst.p.incidentId !== undefined && (inst.p.active || !inst.p.acked);
      inst.p.outOfService = true;
      this.closeIncident(inst);
      // It ends an open incident; otherwise it belongs to none.
      this.emit(inst, 'out_of_service', now, { by, comment, noIncident: !open });
    } else {
      inst.p.outOfService = false;
      inst.p.pendingSince = undefined;
      // Out of service ended the incident it had: back in service belongs to none.
      this.emit(inst, 'in_service', now, { by, comment, noIncident: true });
      this.step(inst, now);
    }
    return this.flush();
  }

  /**
   * Sets the condition of an external alarm (an administrative date: overdue or not; undefined when
   * unknown) and runs its lifecycle as a reading would: delays, acknowledgement, latch and shelving apply.
   * `detail` fills the message's `{detail}` when the alarm is raised (a QC rejection: which rule fired).
   */
  setExternal(key: string, value: boolean | undefined, now: number, detail?: string): AlarmEvent[] {
    const inst = this.find(key);
    if (inst.spec.condition.kind !== 'external')
      throw new RuleActionError(`${key} is not an external alarm (its condition is ${inst.spec.condition.kind})`);
    inst.external = value;
    if (detail !== undefined) inst.externalDetail = detail;
    this.evaluate(inst, now);
    return this.flush();
  }

  /** Alarms that are not normal (active, returned unacknowledged, shelved, out of service). */
  active(): ActiveAlarm[] {
    const out: ActiveAlarm[] = [];
    for (const inst of this.instances) {
      const state = this.stateOf(inst);
      if (state === 'normal' || state === 'suppressed' || !inst.p.incidentId) continue;
      out.push({
        key: inst.key,
        equipment: inst.spec.equipment,
        rule: inst.spec.id,
        state,
        level: inst.p.level,
        incidentId: inst.p.incidentId,
        message: inst.p.message ?? inst.spec.message,
        point: inst.p.point,
        value: inst.p.value,
        raisedAt: inst.p.raisedAt ?? 0,
        uncertain: inst.cond === undefined,
        ...(inst.p.shelvedUntil !== undefined ? { shelvedUntil: inst.p.shelvedUntil } : {}),
        ...(inst.spec.origin !== undefined ? { origin: inst.spec.origin } : {}),
      });
    }
    return out;
  }

  /** Rule keys (`<equipment>/<rule>`) with the state of each. */
  states(): Array<{ key: string; state: AlarmState; condition: 'true' | 'false' | 'uncertain' }> {
    return this.instances.map((i) => ({
      key: i.key,
      state: this.stateOf(i),
      condition: i.cond === undefined ? 'uncertain' : i.cond ? 'true' : 'false',
    }));
  }

  get ruleCount(): number {
    return this.instances.length;
  }

  private find(key: string): Instance {
    const inst = this.byKey.get(key);
    if (!inst) throw new RuleActionError(`no alarm ${key}`);
    return inst;
  }

  private stateOf(inst: Instance): AlarmState {
    const { p } = inst;
    if (p.outOfService) return 'out_of_service';
    if (p.shelvedUntil !== undefined) return 'shelved';
    if (p.suppressed) return 'suppressed';
    if (p.active) return p.acked ? 'active_acknowledged' : 'active_unacknowledged';
    return p.acked ? 'normal' : 'returned_unacknowledged';
  }

  private scope(inst: Instance, active: boolean): Scope {
    const values = this.values.get(inst.spec.equipment);
    return {
      point: (name) => {
        const v = values?.get(name);
        return v && v.good ? (v.value as Value) : undefined;
      },
      deadband: inst.spec.deadband,
      active,
    };
  }

  private condition(inst: Instance, now: number): boolean | undefined {
    const c = inst.spec.condition;
    switch (c.kind) {
      case 'expression':
        return c.expr.evaluate(this.scope(inst, inst.p.active));
      case 'stale':
        return now - (this.lastGood.get(inst.spec.equipment) ?? now) >= c.afterMs;
      case 'rate': {
        const s = inst.samples!;
        while (s.length > 2 && s[0]![0] < now - c.windowMs) s.shift();
        if (s.length < 2 || s.at(-1)![0] === s[0]![0]) return undefined;
        const rate = this.rateOf(inst)!;
        const hold = inst.p.active ? inst.spec.deadband : 0;
        return (c.above !== undefined && rate > c.above - hold) || (c.below !== undefined && rate < c.below + hold);
      }
      case 'predict':
        return this.predict(inst, c, now);
      case 'external':
        return inst.external;
    }
  }

  /**
   * A predicted warning's condition: uncertain with fewer than minReadings samples in the window;
   * true when a significant trend moves toward the limit and reaches it within the horizon (or is
   * beyond it), the fitted value being on the limit's side of its normal value (when it has one).
   * Once active it holds until the trend turns away, fades into the noise, the value goes back past
   * normal, or the crossing moves beyond twice the horizon: a trend near the horizon does not flap.
   */
  private predict(inst: Instance, c: Extract<RuleSpec['condition'], { kind: 'predict' }>, now: number): boolean | undefined {
    const s = inst.series!;
    s.dropBefore(now - c.windowMs);
    const n = s.length;
    inst.settled = undefined;
    if (n < c.minReadings) {
      inst.etaMs = undefined;
      return undefined;
    }
    // One fit serves every prediction on the series until enough sample time has passed.
    const newest = s.newest();
    if (s.line === undefined || newest - s.fittedAt >= s.fitEveryMs || newest < s.fittedAt) {
      s.line = s.fit();
      s.fittedAt = newest;
    }
    if (!s.line) return undefined;
    const x = projectCrossing(s.line, now, c.limit, c.direction);
    inst.etaMs = x.etaMs;
    // A value on the other side of normal that moves toward this limit is coming back to normal (a
    // boiler's drum level rising fast from -184 mm after a trip levels off at 0, not at +50): only a
    // value already on the limit's side of normal is on its way there. Without a normal, every trend counts.
    if (inst.normal !== undefined && (x.fitted - inst.normal) * (c.direction === 'above' ? 1 : -1) <= 0) return false;
    if (!x.significant || !x.towards) {
      if (!inst.p.active) inst.settled = s.line;
      return false;
    }
    // Already beyond the limit there is nothing left to foretell: the limit's own alarm (with its
    // on-delay) says it. A warning raised before the crossing holds while the trend goes on; none is
    // raised after it (a value that jumps past its limit, such as a flag stored as a number, is no trend).
    if (x.beyond) return inst.p.active;
    return x.etaMs! <= (inst.p.active ? 2 * c.horizonMs : c.horizonMs);
  }

  private rateOf(inst: Instance): number | undefined {
    const c = inst.spec.condition;
    const s = inst.samples;
    if (c.kind !== 'rate' || !s || s.length < 2) return undefined;
    const [t0, v0] = s[0]!;
    const [t1, v1] = s.at(-1)!;
    return t1 === t0 ? undefined : ((v1 - v0) / (t1 - t0)) * c.perMs;
  }

  private evaluate(inst: Instance, now: number): void {
    try {
      if (inst.spec.suppressWhen) {
        const suppressed = inst.spec.suppressWhen.evaluate(this.scope(inst, false));
        // Uncertain suppression keeps what it was.
        if (suppressed !== undefined && suppressed !== Boolean(inst.p.suppressed)) this.setSuppressed(inst, suppressed, now);
      }
      inst.cond = this.condition(inst, now);
    } catch (err) {
      inst.cond = undefined;
      if (this.errors.length < 1000)
        this.errors.push({ rule: inst.spec.id, equipment: inst.spec.equipment, message: (err as Error).message });
    }
    if (inst.cond === undefined) {
      // Uncertain data neither raises nor clears, and does not count toward a delay.
      if (inst.p.pendingSince !== undefined || inst.p.clearingSince !== undefined) {
        inst.p.pendingSince = undefined;
        inst.p.clearingSince = undefined;
        this.save(inst);
      }
      return;
    }
    if (inst.cond && inst.p.pendingSince === undefined && !inst.p.active) {
      // Data went stale when the last good reading was that old, not when a tick noticed it.
      const c = inst.spec.condition;
      inst.p.pendingSince = c.kind === 'stale' ? (this.lastGood.get(inst.spec.equipment) ?? now) + c.afterMs : now;
      this.save(inst);
    }
    if (!inst.cond && inst.p.pendingSince !== undefined) {
      inst.p.pendingSince = undefined;
      this.save(inst);
    }
    if (!inst.cond && inst.p.active && inst.p.clearingSince === undefined && !inst.spec.latch) {
      inst.p.clearingSince = now;
      this.save(inst);
    }
    if (inst.cond && inst.p.clearingSince !== undefined) {
      inst.p.clearingSince = undefined;
      this.save(inst);
    }
    this.step(inst, now);
  }

  /** Applies what time has decided: delays, shelve expiry, escalation. */
  private step(inst: Instance, now: number): void {
    const { p, spec } = inst;
    if (p.outOfService) return;
    if (p.shelvedUntil !== undefined) {
      if (now < p.shelvedUntil) return;
      this.endShelve(inst, p.shelvedUntil, {});
      return;
    }
    if (p.suppressed) return;
    if (inst.cond === true && !p.active && p.pendingSince !== undefined && now - p.pendingSince >= spec.onDelayMs) {
      this.raise(inst, p.pendingSince + spec.onDelayMs);
    } else if (inst.cond === false && p.active && p.clearingSince !== undefined && now - p.clearingSince >= spec.offDelayMs) {
      const at = p.clearingSince + spec.offDelayMs;
      p.active = false;
      p.clearingSince = undefined;
      this.emit(inst, 'cleared', at, {});
    }
    if (p.active && !p.acked && spec.escalateAfterMs !== undefined) {
      let since = p.lastEscalationAt ?? p.raisedAt ?? now;
      while (p.level !== 'red' && now - since >= spec.escalateAfterMs) {
        since += spec.escalateAfterMs;
        p.level = LEVELS[LEVELS.indexOf(p.level) + 1]!;
        p.lastEscalationAt = since;
        this.emit(inst, 'escalated', since, {});
      }
    }
  }

  private raise(inst: Instance, at: number): void {
    const { p } = inst;
    // A new incident, unless the last one is still waiting for its acknowledgement.
    if (p.acked || !p.incidentId) {
      p.incidentId = this.newId();
      p.level = inst.spec.level;
      p.lastEscalationAt = undefined;
      this.raises.push(at);
    }
    p.active = true;
    p.acked = false;
    p.raisedAt = at;
    p.pendingSince = undefined;
    const values = this.values.get(inst.spec.equipment);
    const c = inst.spec.condition;
    p.point = c.kind === 'expression' ? c.expr.primaryPoint : c.kind === 'rate' || c.kind === 'predict' ? c.point : undefined;
    p.value = c.kind === 'rate' ? round(this.rateOf(inst)) : p.point !== undefined ? (values?.get(p.point)?.value ?? null) : null;
    p.message = this.message(inst);
    this.emit(inst, 'raised', at, {});
    this.activated(inst, at);
  }

  private endShelve(inst: Instance, at: number, who: { by?: string; comment?: string }): void {
    inst.p.shelvedUntil = undefined;
    this.emit(inst, 'unshelved', at, { ...who, noIncident: !inst.p.active && inst.p.acked });
    this.step(inst, at);
  }

  private setSuppressed(inst: Instance, suppressed: boolean, now: number): void {
    inst.p.suppressed = suppressed;
    if (suppressed) {
      const open = inst.p.incidentId !== undefined && (inst.p.active || !inst.p.acked);
      this.closeIncident(inst);
      if (open) this.emit(inst, 'suppressed', now, {});
    }
    inst.p.pendingSince = undefined;
    this.save(inst);
  }

  /** Suppression and out of service end an incident: the condition means nothing meanwhile. */
  private closeIncident(inst: Instance): void {
    inst.p.active = false;
    inst.p.acked = true;
    inst.p.pendingSince = undefined;
    inst.p.clearingSince = undefined;
  }

  /** Counts an activation (an annunciation: a raised event) toward chattering. */
  private activated(inst: Instance, at: number): void {
    const t = inst.activations;
    t.push(at);
    while (t.length > 0 && t[0]! <= at - this.health.chatterWindowMs) t.shift();
    if (!inst.chattering && t.length >= this.health.chatterActivations) {
      inst.chattering = true;
      this.emit(inst, 'chattering', at, { comment: `${t.length} activations in ${this.health.chatterWindowMs / 1000} s` });
    }
  }

  private checkHealth(now: number): void {
    for (const inst of this.instances) {
      if (!inst.chattering) continue;
      const t = inst.activations;
      while (t.length > 0 && t[0]! <= now - this.health.chatterWindowMs) t.shift();
      if (t.length < this.health.chatterActivations) {
        inst.chattering = false;
        this.emit(inst, 'chattering_ended', now, {});
      }
    }
    const r = this.raises;
    while (r.length > 0 && r[0]! <= now - this.health.floodWindowMs) r.shift();
    if (!this.flood && r.length > this.health.floodStart) {
      this.flood = true;
      this.siteEvent('flood', now, `${r.length} new alarms in ${this.health.floodWindowMs / 60_000} min`);
    } else if (this.flood && r.length < this.health.floodEnd) {
      this.flood = false;
      this.siteEvent('flood_ended', now, `${r.length} new alarms in the last ${this.health.floodWindowMs / 60_000} min`);
    }
  }

  private siteEvent(type: 'flood' | 'flood_ended', ts: number, message: string): void {
    this.events.push({
      eventId: this.newId(),
      incidentId: '',
      type,
      state: 'normal',
      level: 'yellow',
      site: this.opts.site,
      equipment: '',
      rule: 'alarm-flood',
      message: `Alarm flood: ${message}`,
      ts,
    });
  }

  private emit(
    inst: Instance,
    type: AlarmEventType,
    ts: number,
    extra: { by?: string; comment?: string; shelvedUntil?: number; noIncident?: boolean },
  ): void {
    const { p } = inst;
    this.save(inst);
    if (type === 'raised') p.openIncident = p.incidentId;
    this.events.push(this.eventOf(inst, type, ts, extra));
    // An incident is over once its alarm is back to normal and acknowledged, in either order, or when
    // suppression or out of service ended it: the platform gets one `closed` event for it, always.
    if (p.openIncident !== undefined && !p.active && p.acked) {
      const incidentId = p.openIncident;
      p.openIncident = undefined;
      this.events.push({ ...this.eventOf(inst, 'closed', ts, {}), incidentId, comment: `after ${type}` });
    }
  }

  private eventOf(
    inst: Instance,
    type: AlarmEventType,
    ts: number,
    extra: { by?: string; comment?: string; shelvedUntil?: number; noIncident?: boolean },
  ): AlarmEvent {
    const { p, spec } = inst;
    const health = type === 'chattering' || type === 'chattering_ended';
    return {
      eventId: this.newId(),
      incidentId: health || extra.noIncident ? '' : (p.incidentId ?? ''),
      type,
      state: this.stateOf(inst),
      level: p.level,
      site: this.opts.site,
      equipment: spec.equipment,
      rule: spec.id,
      message: health ? `Chattering alarm ${spec.id} on ${spec.equipment}` : (p.message ?? this.message(inst)),
      ...(p.point !== undefined ? { point: p.point } : {}),
      ...(p.value !== undefined ? { value: p.value } : {}),
      ...(spec.unit !== undefined ? { unit: spec.unit } : {}),
      ts,
      ...(extra.by !== undefined ? { by: extra.by } : {}),
      ...(extra.comment !== undefined ? { comment: extra.comment } : {}),
      ...(extra.shelvedUntil !== undefined ? { shelvedUntil: extra.shelvedUntil } : {}),
      ...(spec.origin !== undefined ? { origin: spec.origin } : {}),
    };
  }

  private message(inst: Instance): string {
    const { spec, p } = inst;
    const value = p.value;
    const fill: Record<string, string> = {
      value: value === undefined || value === null ? '?' : String(value),
      unit: spec.unit ?? '',
      equipment: spec.equipment,
      name: spec.equipmentName ?? spec.equipment,
      level: p.level,
      rule: spec.id,
      detail: inst.externalDetail ?? '',
    };
    // A prediction says where and when: the limit, and the time to it when it was raised.
    if (spec.condition.kind === 'predict') {
      fill.limit = String(spec.condition.limit);
      fill.eta = inst.etaMs === undefined ? '?' : formatEta(inst.etaMs);
    }
    return spec.message.replace(/\{(\w+)\}/g, (all, k: string) => (Object.hasOwn(fill, k) ? fill[k]! : all));
  }

  private save(inst: Instance): void {
    this.dirty.add(inst);
  }

  private flush(): AlarmEvent[] {
    const out = this.events;
    this.events = [];
    return out.length > 1 ? out.sort((a, b) => a.ts - b.ts) : out;
  }
}

export class RuleActionError extends Error {
  override name = 'RuleActionError';
}

function round(v: number | undefined): number | undefined {
  return v === undefined ? undefined : Math.round(v * 1000) / 1000;
}

export type { Level };

/**
 * Saved states' times on the clock of a restart. The clock cannot be followed while the gateway is
 * down: a step forward then looks like time that passed (a delay pending at the stop runs out at the
 * first evaluation, as it would after a long stop). A step back shows as saved times ahead of the
 * clock: a time saved is never later than when it was saved, so the clock went back at least as far
 * as the latest of them is ahead, and every saved time moves back by that: the latest lands on the
 * restart (a delay pending at the stop runs its whole length from the restart at most, not an hour
 * more). Shelve ends are not times that happened (they lie ahead): they move with the others.
 * Returns how far they moved (ms).
 */
function fitSavedTimes(saved: Map<string, PersistedAlarm>, start: number): number {
  let latest = -Infinity;
  for (const p of saved.values())
    for (const t of [p.pendingSince, p.clearingSince, p.raisedAt, p.lastEscalationAt]) if (t !== undefined && t > latest) latest = t;
  const back = latest - start;
  if (!(back > 0) || !Number.isFinite(back)) return 0;
  const by = (t: number | undefined) => (t === undefined ? undefined : t - back);
  for (const [key, p] of saved)
    saved.set(key, {
      ...p,
      pendingSince: by(p.pendingSince),
      clearingSince: by(p.clearingSince),
      raisedAt: by(p.raisedAt),
      lastEscalationAt: by(p.lastEscalationAt),
      shelvedUntil: by(p.shelvedUntil),
    });
  return back;
}

/**
 * A batch whose freshest source time is older than its receive time by more than this is not late:
 * its source clock runs behind the gateway's (or its values are old ones read again).
 */
export const SOURCE_LAG_TOLERANCE_MS = 5000;

/**
 * When each reading's value held, on the gateway's clock. A reading's own time is its source time
 * (device or OPC UA server); one without (0 or less is OPC UA's "no time") is timed when received.
 * Delays, escalation and stale data are timed by tick() on the gateway's clock, so a source clock
 * that is off cannot be taken as it is: a minute behind would make every on-delay run out at the next
 * tick, ahead would run rules ahead of the clock. So when the freshest source time of the batch (the
 * one received soonest after it) is ahead of its receive time, or behind it by more than
 * SOURCE_LAG_TOLERANCE_MS, the batch's source times are moved together until it falls on its receive
 * time: they keep their order and spacing (what finds a spike and times a delay inside the batch),
 * and no reading is later than when it was received.
 */
function batchClock(batch: readonly Reading[]): (r: Reading) => number {
  let lag = Infinity;
  for (const r of batch) if (r.sourceTs !== undefined && r.sourceTs > 0) lag = Math.min(lag, r.ts - r.sourceTs);
  if (lag === Infinity) return (r) => r.ts;
  const shift = lag >= 0 && lag <= SOURCE_LAG_TOLERANCE_MS ? 0 : lag;
  return (r) => (r.sourceTs !== undefined && r.sourceTs > 0 ? r.sourceTs + shift : r.ts);
}

/**
 * A rate sample in time order (almost always at the end); a later value of the same instant replaces
 * it. Samples older than the window before the newest go (two are kept), as they do at evaluation.
 */
function addSample(samples: Array<[number, number]>, t: number, v: number, windowMs: number): void {
  let k = samples.length;
  while (k > 0 && samples[k - 1]![0] > t) k--;
  if (k > 0 && samples[k - 1]![0] === t) samples[k - 1]![1] = v;
  else samples.splice(k, 0, [t, v]);
  const newest = samples.at(-1)![0];
  while (samples.length > 2 && samples[0]![0] < newest - windowMs) samples.shift();
}

/**
 * A prediction whose last verdict (no threat) holds for its current line, which is not yet due to be
 * fitted again: a sample of its point cannot change it. Its suppression may read the point too, and
 * then it is evaluated as any rule.
 */
function isSettled(inst: Instance, point: string): boolean {
  const s = inst.series!;
  if (inst.settled === undefined || inst.settled !== s.line || inst.spec.suppressWhen?.points.has(point)) return false;
  const newest = s.newest();
  return s.length > 0 && newest - s.fittedAt < s.fitEveryMs && newest >= s.fittedAt;
}
