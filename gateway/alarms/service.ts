// Wires the rule engine into the gateway: every batch of readings is evaluated in-process before it is
// published (hazard detection never waits on the network), time passes in ticks, and what each batch
// changed (alarm states, the journal of alarm events and the platform's incident events) is committed
// to the gateway's store in one transaction. When the store cannot write (disk full, I/O error) hazard detection goes on: the
// events are published on MQTT and shown as usual, and held in memory, in order, until a commit works.
// A step of the wall clock is found at each tick, batch and action (rules/clock.ts) and the engine's
// times move by it: hazard detection never waits for the clock to catch up.
import { Counter, Gauge } from 'prom-client';
import type { SiteConfig } from '../../config/schema.js';
import { rateLimited } from '../../drivers/common/log-budget.js';
import { reportsOnChangeOf, resultFileConnectionsOf } from '../../drivers/index.js';
import { adminSpecsOf } from '../../rules/admin.js';
import { ClockWatch, describeStep } from '../../rules/clock.js';
import { labSpecsOf } from '../../rules/lab-alarms.js';
import { ruleSpecsOf } from '../../rules/compile.js';
import { specFingerprint } from '../../rules/fingerprint.js';
import { RuleEngine } from '../../rules/engine.js';
import { LEVELS, type ActiveAlarm, type AlarmEvent, type PersistedAlarm, type RuleSpec } from '../../rules/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { MqttLink } from '../mqtt/link.js';
import type { Topics } from '../mqtt/topics.js';
import type { Pipeline } from '../pipeline.js';
import type { GatewayStore } from '../store.js';

const TICK_MS = 250;
/**
 * While the store cannot write, a commit is tried again after 1 s, then twice as long each time up to
 * 30 s: each try is one transaction of everything held (up to 10,000 events, a few hundred ms).
 */
const RETRY_MS = { first: 1000, max: 30_000 };
/** Events held in memory while the store cannot write; beyond this the oldest are dropped, counted. */
export const MAX_UNCOMMITTED_EVENTS = 10_000;
/** The journal is pruned this often; the first prune comes this long after start, never in it. */
export const PRUNE_EVERY_MS = 3_600_000;
export const FIRST_PRUNE_MS = 60_000;
/**
 * Journal entries deleted per tick while a prune runs: a few ms of work each, so a journal of
 * millions of old entries is deleted over many ticks without holding the event loop.
 */
export const PRUNE_BATCH = 5000;

export type AlarmListener = (events: readonly AlarmEvent[]) => void;

export interface AlarmService {
  start(): Promise<void>;
  stop(): Promise<void>;
  active(): ActiveAlarm[];
  /** The latest alarm events, newest last (at most 1,000, kept in memory). */
  history(): readonly AlarmEvent[];
  acknowledge(key: string, by: string, comment: string): AlarmEvent[];
  shelve(key: string, by: string, comment: string, durationMs: number): AlarmEvent[];
  unshelve(key: string, by: string, comment: string): AlarmEvent[];
  setOutOfService(key: string, outOfService: boolean, by: string, comment: string): AlarmEvent[];
  /**
   * Sets the condition of an external alarm (the administrative dates: inspection, maintenance,
   * certificate), committed with its events like an operator's action, with nobody's name.
   */
  setExternal(key: string, value: boolean | undefined, detail?: string): AlarmEvent[];
  onEvents(listener: AlarmListener): void;
  /** Whether the last commit worked, and what is waiting for one. */
  storeStats(): StoreStats;
  readonly ruleCount: number;
  /** Every alarm the engine evaluates: the site's rules, compiled, and the administrative alarms of its equipment. */
  readonly specs: readonly RuleSpec[];
  /**
   * Swaps in the rules of a reloaded site file (gateway/reload.ts; RuleEngine.reconfigure says what
   * each alarm keeps), commits and publishes what that changed. Returns how many alarms changed,
   * were added and were removed.
   */
  reconfigure(next: SiteConfig): { unchanged: number; changed: number; added: number; removed: number };
}

export interface StoreStats {
  writable: boolean;
  /** The store's last error while it cannot write. */
  error: string | undefined;
  /** Events (and alarm states) waiting for the store. */
  uncommittedEvents: number;
  uncommittedStates: number;
  /** Events dropped from the memory queue at its bound while the store could not write. */
  droppedEvents: number;
}

/** What the platform adds to a commit: the incidents of these events, into the outbox. */
export interface PlatformCommit {
  add(events: readonly AlarmEvent[]): void;
  /** After a commit: wakes the forwarder. */
  notify(): void;
}

export function createAlarmService(opts: {
  config: SiteConfig;
  pipeline: Pipeline;
  link: MqttLink;
  topics: Topics;
  log: Logger;
  metrics: Metrics;
  /** The gateway's store, open from start() on. */
  store: () => GatewayStore;
  /** The platform outbox's part of each commit, when the site forwards to a platform. */
  platform?: () => PlatformCommit | undefined;
  maxUncommittedEvents?: number;
  /** The wall clock: the times of readings and events. */
  now?: () => number;
  /** A monotonic clock (ms): what finds the wall clock's steps, and times the store's retries. */
  monotonic?: () => number;
}): AlarmService {
  const now = opts.now ?? Date.now;
  const monotonic = opts.monotonic ?? (() => performance.now());
  const { link, topics, log } = opts;
  let config = opts.config;
  let specs = specsOf(config, log);
  const chattering = config.alarms.chattering;
  const maxUncommitted = opts.maxUncommittedEvents ?? MAX_UNCOMMITTED_EVENTS;
  const listeners: AlarmListener[] = [];
  let engine: RuleEngine | undefined;
  let timer: NodeJS.Timeout | undefined;
  let lastActive = '';
  const recent: AlarmEvent[] = [];
  // What the engine changed and the store has not taken yet: the latest state per alarm, events in order.
  const unsavedStates = new Map<string, PersistedAlarm | null>();
  const uncommitted: AlarmEvent[] = [];
  const store = { writable: true, error: undefined as string | undefined, droppedEvents: 0, lastTry: 0, retryMs: RETRY_MS.first };
  const failedLog = rateLimited(60_000);
  // Journal housekeeping: entries older than report.keep are deleted here, since the alarm service
  // runs on every site (the risk service does not when risk.enabled is false).
  const keepMs = config.report.keep;
  const prune = { next: 0, deleted: 0 };
  let clock: ClockWatch | undefined;
  const clockSteps = new Counter({
    name: 'gateway_clock_steps_total',
    help: 'Steps of the wall clock (beyond 1 s) the rule engine moved its delays, shelves and windows by, by direction',
    labelNames: ['direction'],
    registers: [opts.metrics],
  });
  const eventCounter = new Counter({
    name: 'gateway_alarm_events_total',
    help: 'Alarm events, by type and level',
    labelNames: ['type', 'level'],
    registers: [opts.metrics],
  });
  new Gauge({
    name: 'gateway_alarms',
    help: 'Alarms that are not normal, by state and level',
    labelNames: ['state', 'level'],
    registers: [opts.metrics],
    collect() {
      this.reset();
      for (const a of engine?.active() ?? []) this.inc({ state: a.state, level: a.level });
    },
  });
  new Gauge({
    name: 'gateway_store_uncommitted_events',
    help: 'Alarm events waiting in memory because the store cannot write (disk full, I/O error)',
    registers: [opts.metrics],
    collect() {
      this.set(uncommitted.length);
    },
  });
  new Gauge({
    name: 'gateway_store_dropped_events',
    help: 'Alarm events dropped from the memory queue at its bound while the store could not write',
    registers: [opts.metrics],
    collect() {
      this.set(store.droppedEvents);
    },
  });

  /** Commits everything waiting, in one transaction; false (logged) when the store cannot write. */
  const commit = (): boolean => {
    if (unsavedStates.size === 0 && uncommitted.length === 0) return true;
    store.lastTry = monotonic();
    const platform = opts.platform?.();
    try {
      const db = opts.store();
      db.transaction(() => {
        db.saveAlarms([...unsavedStates].map(([key, state]) => ({ key, state })));
        // The journal of alarm events: the KPIs and the daily report read it back after a restart.
        db.appendJournal(
          uncommitted.map((e) => ({ ts: e.ts, kind: 'alarm', ...(e.equipment ? { equipment: e.equipment } : {}), body: e })),
        );
        platform?.add(uncommitted);
      });
    } catch (err) {
      const error = (err as Error).message;
      if (store.writable) link.setGatewayHealth(`store not writable: ${error}`);
      else store.retryMs = Math.min(store.retryMs * 2, RETRY_MS.max);
      store.writable = false;
      store.error = error;
      failedLog((notLogged) =>
        log.error(
          { err, uncommittedEvents: uncommitted.length, droppedEvents: store.droppedEvents, ...(notLogged ? { notLogged } : {}) },
          'The store cannot write: alarms are still evaluated and published, their events held in memory until it can',
        ),
      );
      return false;
    }
    const events = uncommitted.length;
    unsavedStates.clear();
    uncommitted.length = 0;
    if (!store.writable) {
      store.writable = true;
      store.error = undefined;
      store.retryMs = RETRY_MS.first;
      link.setGatewayHealth(undefined);
      log.info({ events, droppedEvents: store.droppedEvents }, 'The store writes again: the alarm events held meanwhile are committed');
    }
    platform?.notify();
    return true;
  };

  const take = (events: readonly AlarmEvent[]) => {
    if (!engine) return;
    for (const { key, state } of engine.takeChanges()) unsavedStates.set(key, state);
    uncommitted.push(...events);
    if (uncommitted.length > maxUncommitted) {
      const drop = uncommitted.length - maxUncommitted;
      uncommitted.splice(0, drop);
      store.droppedEvents += drop;
    }
    // While the store fails, a commit is tried from the tick with backoff, not at every batch.
    if (store.writable || monotonic() - store.lastTry >= store.retryMs) commit();
  };

  const deliver = (events: readonly AlarmEvent[]) => {
    take(events);
    if (events.length === 0) return;
    recent.push(...events);
    if (recent.length > 1000) recent.splice(0, recent.length - 1000);
    for (const e of events) {
      eventCounter.inc({ type: e.type, level: e.level });
      const line = {
        equipment: e.equipment || undefined,
        rule: e.rule,
        level: e.level,
        state: e.state,
        incidentId: e.incidentId || undefined,
        by: e.by,
      };
      if (e.type === 'raised' || e.type === 'escalated' || e.type === 'flood') log.warn(line, `Alarm ${e.type}: ${e.message}`);
      else log.info(line, `Alarm ${e.type}: ${e.message}`);
      link.publishEvent(e.equipment ? topics.alarms(e.equipment) : topics.alarmHealth(), e, false);
    }
    publishActive();
    for (const l of listeners) {
      try {
        l(events);
      } catch (err) {
        log.error({ err }, 'Alarm listener failed');
      }
    }
  };

  const publishActive = () => {
    const active = engine?.active() ?? [];
    active.sort((a, b) => LEVELS.indexOf(b.level) - LEVELS.indexOf(a.level) || a.raisedAt - b.raisedAt);
    const text = JSON.stringify(active);
    if (text === lastActive) return;
    lastActive = text;
    link.publishEvent(topics.activeAlarms(), { ts: Date.now(), alarms: active }, true);
  };

  /**
   * One batch of the journal prune, from the tick: when a batch was full more is left, and the next
   * tick takes the next batch; otherwise the prune is done until the next hour.
   */
  const pruneStep = () => {
    const t = now();
    if (t < prune.next) return;
    let n: number;
    try {
      n = opts.store().pruneJournal(t - keepMs, PRUNE_BATCH);
    } catch (err) {
      prune.next = t + PRUNE_EVERY_MS;
      prune.deleted = 0;
      log.error({ err }, 'Cannot prune the journal: it is tried again in an hour');
      return;
    }
    prune.deleted += n;
    if (n >= PRUNE_BATCH) return;
    if (prune.deleted > 0)
      log.info({ entries: prune.deleted, keepDays: Math.round(keepMs / 86_400_000) }, 'Journal entries older than report.keep deleted');
    prune.deleted = 0;
    prune.next = t + PRUNE_EVERY_MS;
  };

  /**
   * The wall clock now, once the engine's times are on it: a step since the last look (beyond
   * CLOCK_STEP_TOLERANCE_MS) moves them by its size, said once and counted. The moved alarm states
   * are committed with what the engine is called for next (every caller delivers).
   */
  const wallNow = (): number => {
    const wall = now();
    const step = clock?.check(wall, monotonic()) ?? 0;
    if (step !== 0 && engine) {
      engine.clockStepped(step);
      prune.next += step;
      clockSteps.inc({ direction: step < 0 ? 'back' : 'forward' });
      log.warn(
        { stepMs: Math.round(step) },
        `The clock stepped ${describeStep(step)}: alarm delays, stale data, shelves and escalation keep the time that really elapsed`,
      );
    }
    return wall;
  };

  /** An operator's action: committed with its events like a batch's (held in memory too while the store cannot write). */
  const act = (what: (t: number) => AlarmEvent[], operator = true) => {
    if (!engine) throw new Error('The alarm service is not running');
    const events = what(wallNow());
    deliver(events);
    if (!store.writable && operator)
      log.warn({ events: events.map((e) => e.type) }, 'Operator action taken while the store cannot write: held in memory until it can');
    return events;
  };

  /** Each alarm's fingerprint, by key: a reload keeps what did not change. */
  const fingerprints = (site: SiteConfig, list: readonly RuleSpec[]) => {
    const limits = new Map(site.equipment.map((e) => [e.id, e.limits as Readonly<Record<string, unknown>> | undefined]));
    return new Map(list.map((s) => [`${s.equipment}/${s.id}`, specFingerprint(s, limits.get(s.equipment))]));
  };

  return {
    get ruleCount() {
      return specs.length;
    },
    get specs() {
      return specs;
    },
    reconfigure(next) {
      const nextSpecs = specsOf(next, log);
      const before = fingerprints(config, specs);
      const after = fingerprints(next, nextSpecs);
      const counts = { unchanged: 0, changed: 0, added: 0, removed: 0 };
      for (const [key, fp] of after) {
        const was = before.get(key);
        if (was === undefined) counts.added++;
        else if (was === fp) counts.unchanged++;
        else counts.changed++;
      }
      for (const key of before.keys()) if (!after.has(key)) counts.removed++;
      if (engine) {
        const same = (a: RuleSpec, b: RuleSpec) => before.get(`${a.equipment}/${a.id}`) === after.get(`${b.equipment}/${b.id}`);
        engine.reconfigure(nextSpecs, same, wallNow());
        deliver(engine.takeEvents());
        publishActive();
      }
      config = next;
      specs = nextSpecs;
      log.info({ rules: next.rules.length, alarms: specs.length, ...counts }, 'Rules reloaded');
      return counts;
    },
    async start() {
      engine = new RuleEngine({
        now: now(),
        site: config.gateway.site,
        rules: specs,
        store: { load: () => opts.store().loadAlarms() },
        health: { chatterActivations: chattering.activations, chatterWindowMs: chattering.window },
      });
      clock = new ClockWatch(now(), monotonic());
      if (engine.restartedBack > 0)
        log.warn(
          { backMs: Math.round(engine.restartedBack) },
          `The clock went ${describeStep(-engine.restartedBack)} while the gateway was down (saved alarm times lie ahead of it): they are moved back by that`,
        );
      const restored = engine.active();
      if (restored.length > 0) log.info({ alarms: restored.length }, 'Active alarms restored from the store');
      log.info({ rules: config.rules.length, alarms: specs.length }, 'Rule engine started');
      // Incidents of rules removed from the site file are closed now.
      deliver(engine.takeEvents());
      // Rules run on every batch before it is published.
      opts.pipeline.onBatch((batch) => {
        if (!engine) return;
        wallNow();
        deliver(engine.ingest(batch));
      });
      prune.next = now() + FIRST_PRUNE_MS;
      timer = setInterval(() => {
        if (!engine) return;
        deliver(engine.tick(wallNow()));
        pruneStep();
      }, TICK_MS);
      // The retained list says what is active now, also after a restart.
      lastActive = '';
      publishActive();
    },
    async stop() {
      clearInterval(timer);
      // A last try: what still cannot be written is lost with the process, and said so.
      if (!commit())
        log.error(
          { uncommittedEvents: uncommitted.length, uncommittedStates: unsavedStates.size },
          'Stopped with alarm events the store could not take',
        );
      engine = undefined;
    },
    active: () => engine?.active() ?? [],
    history: () => recent,
    acknowledge: (key, by, comment) => act((t) => engine!.acknowledge(key, by, comment, t)),
    shelve: (key, by, comment, durationMs) => act((t) => engine!.shelve(key, by, comment, durationMs, t)),
    unshelve: (key, by, comment) => act((t) => engine!.unshelve(key, by, comment, t)),
    setOutOfService: (key, outOfService, by, comment) => act((t) => engine!.setOutOfService(key, outOfService, by, comment, t)),
    setExternal: (key, value, detail) => act((t) => engine!.setExternal(key, value, t, detail), false),
    onEvents: (listener) => void listeners.push(listener),
    storeStats: () => ({
      writable: store.writable,
      error: store.error,
      uncommittedEvents: uncommitted.length,
      uncommittedStates: unsavedStates.size,
      droppedEvents: store.droppedEvents,
    }),
  };
}

/** Every alarm the engine evaluates for a site: its rules, its equipment's administrative dates, its lab alarms. */
function specsOf(config: SiteConfig, log: Logger): RuleSpec[] {
  return [
    ...ruleSpecsOf(config, reportsOnChangeOf(config), (rule, equipment) =>
      log.info(
        { rule, equipment },
        'Stale rule leaves out equipment that reports its values on change (a quiet value is not a lost connection)',
      ),
    ),
    // Inspection, maintenance and certificate dates: alarms set from outside the readings (setExternal)
    // by the risk service. Without it nothing would set them: they are compiled only when it runs.
    ...(config.risk.enabled ? config.equipment.flatMap((e) => adminSpecsOf(e)) : []),
    // Quality-control rejections and refused result files: set from outside by the lab service.
    ...labSpecsOf(config, resultFileConnectionsOf(config)),
  ];
}
