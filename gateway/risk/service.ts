// Risk judgement in the running gateway: the Judge (rules/judge.ts) fed every reading batch, every
// alarm event with the active alarm list, and each equipment's connection state, re-assessed every
// second. What a tick changed (the risk states with their change counters, the journal of risk
// changes and near misses, and the gw.risk.v1 bodies for the platform) is committed to the store in
// ONE transaction: a gateway killed at any moment has either all of a change (and sends it once, by
// its eventId `risk-<gatewayId>-<store epoch>-<equipment>-<n>`) or none of it (and its counter is
// where it was). Then the assessments go out: the retained MQTT risk topic, InfluxDB's `risk`
// measurement and Prometheus. Hourly it commits a gw.risk-summary.v1, and it sets the administrative
// alarms from the site's dates at start, every hour and right after midnight site time. The journal
// is pruned by the alarm service, which runs also when risk judgement is off.
import { Counter, Gauge } from 'prom-client';
import type { SiteConfig } from '../../config/schema.js';
import { rateLimited } from '../../drivers/common/log-budget.js';
import { reportsOnChangeOf } from '../../drivers/index.js';
import { adminConditions, localDate } from '../../rules/admin.js';
import { thresholdsOf } from '../../rules/compile.js';
import { Judge, judgeEquipmentOf } from '../../rules/judge.js';
import { MAX_KPI_EVENTS, type KpiReport } from '../../rules/kpi.js';
import type { NearMiss } from '../../rules/near-miss.js';
import type { PersistedRisk, RiskAssessment, RiskChange } from '../../rules/risk.js';
import { LEVELS, type AlarmEvent, type Level } from '../../rules/types.js';
import type { AlarmService } from '../alarms/service.js';
import { encodeRisk } from '../influx/line-protocol.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { MqttLink } from '../mqtt/link.js';
import type { Topics } from '../mqtt/topics.js';
import type { Pipeline } from '../pipeline.js';
import {
  riskBodyOf,
  riskSummaryEventId,
  RISK_SUMMARY_SCHEMA,
  type EquipmentInfo,
  type QueuedBody,
  type RiskSummaryBody,
} from '../platform/contract.js';
import type { Service } from '../services/service.js';
import type { GatewayStore, JournalEntry } from '../store.js';

const TICK_MS = 1000;
/** A score that moved without a level change is published at most this often per equipment. */
export const SCORE_PUBLISH_MS = 5000;
/** Administrative dates are looked at this often; they are set again when the hour, the site's date or an equipment's use changed. */
const ADMIN_CHECK_MS = 10_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** Score points kept in memory per equipment for the history's trend (level changes come from the journal). */
export const MAX_HISTORY_POINTS = 1000;
/**
 * Score points kept in memory for the whole site (about 60 bytes each): a site of 5,000 equipment
 * keeps 20 per equipment, not 1,000, so the trend never costs it more than a few MB.
 */
export const MAX_HISTORY_POINTS_TOTAL = 100_000;
/**
 * What is held in memory while the store cannot write; beyond these the oldest are dropped, counted
 * (gateway_risk_dropped_total) and logged once per episode. A summary lists up to every equipment, so
 * a day of them is the most kept; a change is a few hundred bytes.
 */
export const MAX_UNCOMMITTED_NEAR_MISSES = 10_000;
export const MAX_UNCOMMITTED_CHANGES = 10_000;
export const MAX_UNCOMMITTED_SUMMARIES = 24;
/** KPI windows exported as metrics. */
const KPI_WINDOWS = { '10m': 10 * 60_000, '1h': HOUR, '24h': DAY } as const;

/** What the HTTP API and the daily report read from the risk judgement. */
export interface RiskService {
  assessments(): RiskAssessment[];
  assessment(id: string): RiskAssessment | undefined;
  /** The equipment's level and score from `from` to `to` (epoch ms), oldest first: level changes from the journal, the score's trend from memory. */
  history(id: string, from: number, to: number): Array<{ ts: number; level: Level; score: number }>;
  /** ISA-18.2 alarm KPIs over the last `windowMs`, for the site or one equipment. */
  kpi(windowMs: number, equipment?: string): KpiReport;
  /** The near misses from `from` to `to` (epoch ms), oldest first, from the journal. */
  nearMisses(from: number, to: number, equipment?: string): NearMiss[];
}

export interface RiskServiceHandle extends Service {
  /** The judgement's figures; they read the judge of the running service (empty before start). */
  readonly api: RiskService;
  /** After a reload of the rules (gateway/reload.ts): the near misses follow the limits of the rules as they are now. */
  rulesChanged(): void;
}

/** The platform outbox as the risk service needs it: bodies by eventId, in the caller's transaction. */
export interface RiskOutbox {
  add(bodies: readonly QueuedBody[], now?: number): unknown;
}

export interface RiskServiceOptions {
  config: SiteConfig;
  pipeline: Pipeline;
  alarms: AlarmService;
  link: MqttLink;
  topics: Topics;
  log: Logger;
  metrics: Metrics;
  /** The open store. */
  store: () => GatewayStore;
  /** The platform outbox, when the site forwards to a platform (open from the platform's start). */
  outbox?: (() => RiskOutbox | undefined) | undefined;
  /** Wakes the forwarder after a commit that queued something. */
  notify?: (() => void) | undefined;
  /** InfluxDB lines, when the site writes to InfluxDB. */
  influx?: ((lines: string[]) => void) | undefined;
  now?: () => number;
}

/** A gw.risk.v1 and its journal entry waiting for the store (the change number is in both). */
interface Pending {
  change: RiskChange;
  at: number;
}

/**
 * A summary waiting for the store: the platform's body lists only the equipment worth a look; the
 * journal keeps every equipment's figures, which the daily report averages hour by hour.
 */
interface PendingSummary {
  body: Omit<RiskSummaryBody, 'seq'>;
  all: RiskSummaryBody['equipment'];
}

/** The period of the next summary, and what was seen in it. */
interface Period {
  from: number;
  maxLevel: Map<string, Level>;
  maxScore: Map<string, number>;
  nearMisses: Map<string, number>;
  /** Ms observed and ms online per equipment (1 s ticks). */
  observed: Map<string, number>;
  up: Map<string, number>;
}

const rank = (l: Level) => LEVELS.indexOf(l);

/** The start of the period of length `every` that `t` falls in (periods aligned to the epoch: whole hours for 1h). */
export const periodStart = (t: number, every: number) => Math.floor(t / every) * every;

/** A persisted risk state as the store returns it, checked: a wrong one would restart the change counter and reuse eventIds. */
function persistedRisk(equipment: string, v: unknown): PersistedRisk {
  const s = v as Partial<PersistedRisk> | null;
  if (
    typeof s !== 'object' ||
    s === null ||
    !LEVELS.includes(s.level as Level) ||
    !Number.isSafeInteger(s.changes) ||
    (s.changes as number) < 0 ||
    typeof s.since !== 'number'
  )
    throw new Error(`the risk state of ${equipment} does not read: ${JSON.stringify(v).slice(0, 200)}`);
  return s as PersistedRisk;
}

export function createRiskService(o: RiskServiceOptions): RiskServiceHandle {
  const { config, pipeline, alarms, link, topics, log } = o;
  const now = o.now ?? Date.now;
  const site = config.gateway.site;
  const timeZone = config.gateway.timezone;
  const summaryEvery = config.risk.summary_every;
  const info = new Map<string, EquipmentInfo>(
    config.equipment.map((e) => [e.id, { id: e.id, code: e.code, category: e.category, name: e.name }]),
  );
  let judge: Judge | undefined;
  let timer: NodeJS.Timeout | undefined;
  let adminTimer: NodeJS.Timeout | undefined;
  // What the store has not taken yet: the latest state per equipment, changes and near misses in order.
  const unsavedStates = new Map<string, PersistedRisk>();
  const pendingChanges: Pending[] = [];
  let pendingNearMisses: NearMiss[] = [];
  const pendingSummaries: PendingSummary[] = [];
  let droppedNearMisses = 0;
  /** Whether something was dropped since the store last wrote: the drop is logged once per episode. */
  let droppingLogged = false;
  let writable = true;
  /** The store's epoch, read at start: part of every risk change's eventId. */
  let epoch = '';
  const failedLog = rateLimited(60_000);
  // What was published, per equipment: a level change goes out at once, a score change at most every 5 s.
  const published = new Map<string, { level: Level; signature: string; at: number }>();
  /** The assessment object last published (or found equal to it) per equipment: the judge keeps an unchanged one. */
  const examined = new Map<string, RiskAssessment>();
  let activeStale = false;
  const scores = new Map<string, Array<{ ts: number; level: Level; score: number }>>();
  const historyPoints = Math.max(
    1,
    Math.min(MAX_HISTORY_POINTS, Math.floor(MAX_HISTORY_POINTS_TOTAL / Math.max(1, config.equipment.length))),
  );
  let period: Period | undefined;
  let lastAdmin: { date: string; hour: number; inUse: string } | undefined;

  new Gauge({
    name: 'gateway_risk_level',
    help: 'Risk level of each equipment: 0 blue, 1 yellow, 2 orange, 3 red',
    labelNames: ['equipment'],
    registers: [o.metrics],
    collect() {
      this.reset();
      for (const a of judge?.assessments() ?? []) this.set({ equipment: a.equipment }, rank(a.level));
    },
  });
  new Gauge({
    name: 'gateway_risk_score',
    help: 'Risk index (likelihood x consequence) of each equipment',
    labelNames: ['equipment'],
    registers: [o.metrics],
    collect() {
      this.reset();
      for (const a of judge?.assessments() ?? []) this.set({ equipment: a.equipment }, a.score);
    },
  });
  const droppedCounter = new Counter({
    name: 'gateway_risk_dropped_total',
    help: 'Risk changes, near misses and summaries dropped from memory at their bound while the store could not write',
    labelNames: ['kind'],
    registers: [o.metrics],
  });
  /** Keeps the newest `max` of `list`, dropping the oldest, counted and logged once per episode. */
  const bound = <T>(list: T[], max: number, kind: 'change' | 'near_miss' | 'summary') => {
    if (list.length <= max) return;
    const drop = list.length - max;
    list.splice(0, drop);
    droppedCounter.inc({ kind }, drop);
    if (kind === 'near_miss') droppedNearMisses += drop;
    if (!droppingLogged) {
      droppingLogged = true;
      log.error(
        { kind, dropped: drop, kept: max },
        'The store still cannot write: the oldest risk data held in memory are dropped (counted in gateway_risk_dropped_total)',
      );
    }
  };
  const nearMissCounter = new Counter({
    name: 'gateway_near_misses_total',
    help: 'Near misses: a value that came within the margin of a limit and went back without crossing it',
    labelNames: ['equipment'],
    registers: [o.metrics],
  });
  new Gauge({
    name: 'gateway_alarm_kpi',
    help: 'ISA-18.2 alarm performance of the site over a rolling window (docs/risk.md); times in seconds',
    labelNames: ['kpi', 'window'],
    registers: [o.metrics],
    collect() {
      this.reset();
      if (!judge) return;
      for (const [window, ms] of Object.entries(KPI_WINDOWS)) {
        const k = judge.kpi(ms, now());
        const figures: Record<string, number | undefined> = {
          annunciated: k.annunciated,
          per_operator_per_10min: k.perOperatorPer10Min,
          flood_percent: k.floodPercent,
          peak_per_10min: k.peakPer10Min,
          standing: k.standing,
          stale: k.stale,
          chattering: k.chattering,
          fleeting: k.fleeting,
          shelved: k.shelvedNow,
          time_to_ack_median_seconds: k.timeToAcknowledge.median === undefined ? undefined : k.timeToAcknowledge.median / 1000,
          time_to_ack_p90_seconds: k.timeToAcknowledge.p90 === undefined ? undefined : k.timeToAcknowledge.p90 / 1000,
          priority_low_percent: k.priority.low,
          priority_medium_percent: k.priority.medium,
          priority_high_percent: k.priority.high,
        };
        for (const [kpi, v] of Object.entries(figures)) if (v !== undefined) this.set({ kpi, window }, v);
      }
    },
  });

  const newPeriod = (from: number): Period => ({
    from,
    maxLevel: new Map(),
    maxScore: new Map(),
    nearMisses: new Map(),
    observed: new Map(),
    up: new Map(),
  });

  /** The journal body of a risk change: flat, with the equipment's id, for the daily report and the history. */
  const journalOf = (p: Pending) => ({
    equipment: p.change.equipment,
    change: p.change.change,
    level: p.change.to,
    previousLevel: p.change.from,
    score: p.change.assessment.score,
    likelihood: p.change.assessment.likelihood,
    consequence: p.change.assessment.consequence,
    points: p.change.assessment.points,
    factors: p.change.assessment.factors,
  });

  /** Commits everything waiting in one transaction; false (logged) when the store cannot write, and it is tried again next tick. */
  const commit = (): boolean => {
    if (unsavedStates.size === 0 && pendingChanges.length === 0 && pendingNearMisses.length === 0 && pendingSummaries.length === 0)
      return true;
    const outbox = o.outbox?.();
    const queued = pendingChanges.length + pendingSummaries.length;
    try {
      const store = o.store();
      store.transaction(() => {
        store.saveRisk([...unsavedStates].map(([equipment, state]) => ({ equipment, state })));
        store.appendJournal([
          ...pendingChanges.map((p) => ({ ts: p.at, kind: 'risk' as const, equipment: p.change.equipment, body: journalOf(p) })),
          ...pendingNearMisses.map((n) => ({ ts: n.ts, kind: 'near_miss' as const, equipment: n.equipment, body: n })),
          ...pendingSummaries.map((s) => ({
            ts: Date.parse(s.body.from),
            kind: 'risk_summary' as const,
            body: { ...s.body, equipment: s.all },
          })),
        ]);
        outbox?.add([
          ...pendingChanges.map((p) =>
            riskBodyOf(
              {
                equipment: p.change.equipment,
                change: p.change.change,
                from: p.change.from,
                to: p.change.to,
                score: p.change.assessment.score,
                likelihood: p.change.assessment.likelihood,
                consequence: p.change.assessment.consequence,
                factors: p.change.assessment.factors,
                at: p.at,
              },
              info.get(p.change.equipment),
              config.gateway.id,
              site,
              epoch,
            ),
          ),
          ...pendingSummaries.map((s) => s.body),
        ]);
      });
    } catch (err) {
      writable = false;
      failedLog((notLogged) =>
        log.error(
          {
            err,
            riskChanges: pendingChanges.length,
            nearMisses: pendingNearMisses.length,
            droppedNearMisses,
            ...(notLogged ? { notLogged } : {}),
          },
          'The store cannot write: risk changes and near misses are held in memory until it can',
        ),
      );
      return false;
    }
    if (!writable) {
      writable = true;
      log.info(
        { riskChanges: pendingChanges.length, droppedNearMisses },
        'The store writes again: the risk changes held meanwhile are committed',
      );
    }
    droppingLogged = false;
    unsavedStates.clear();
    pendingChanges.length = 0;
    pendingNearMisses = [];
    pendingSummaries.length = 0;
    if (queued > 0) o.notify?.();
    return true;
  };

  /** Publishes an assessment (MQTT retained, InfluxDB) when its level changed, or its score at most every 5 s. */
  const publish = (assessments: readonly RiskAssessment[], t: number) => {
    const lines: RiskAssessment[] = [];
    for (const a of assessments) {
      // Only what the judge re-assessed is a new object: the others were looked at already.
      if (examined.get(a.equipment) === a) continue;
      const last = published.get(a.equipment);
      const signature = `${a.level}|${a.score}|${a.factors.map((f) => `${f.factor}:${f.points}`).join(',')}`;
      if (last && last.signature === signature) {
        examined.set(a.equipment, a);
        continue;
      }
      // A score change held back is looked at again on the next tick.
      if (last && last.level === a.level && t - last.at < SCORE_PUBLISH_MS) continue;
      examined.set(a.equipment, a);
      published.set(a.equipment, { level: a.level, signature, at: t });
      link.publishEvent(topics.risk(a.equipment), a, true);
      lines.push(a);
      const list = scores.get(a.equipment) ?? [];
      list.push({ ts: a.computedAt, level: a.level, score: a.score });
      if (list.length > historyPoints) list.splice(0, list.length - historyPoints);
      scores.set(a.equipment, list);
    }
    if (lines.length > 0) o.influx?.(encodeRisk(lines, site));
  };

  /** Each equipment's connection state for the judge, and its share of the period online. */
  const observeStatus = (t: number) => {
    if (!judge) return;
    for (const e of config.equipment) {
      const status = pipeline.status(e.id);
      // Nothing heard yet: neither up nor down (a gateway just started is not an outage).
      if (!status) continue;
      const online = status.state !== 'offline';
      judge.status(e.id, online, t);
      if (period) {
        period.observed.set(e.id, (period.observed.get(e.id) ?? 0) + TICK_MS);
        if (online) period.up.set(e.id, (period.up.get(e.id) ?? 0) + TICK_MS);
      }
    }
  };

  /**
   * The summary of the period that ended at `to`, queued for the next commit. Every equipment is
   * counted by level; only those worth a look are listed (above blue at some time, near misses, not
   * online all the period), so the body stays small on a large site: listing all of 7,500 equipment
   * would pass the 1 MiB a platform takes, and the summary would be refused every hour. The journal
   * keeps them all: the daily report's availability is the mean of every hour's figure.
   */
  const summarize = (p: Period, to: number) => {
    if (!judge) return;
    const k = judge.kpi(to - p.from, to);
    const levels: Record<Level, number> = { blue: 0, yellow: 0, orange: 0, red: 0 };
    const all: RiskSummaryBody['equipment'] = [];
    for (const a of judge.assessments()) {
      levels[a.level]++;
      const observed = p.observed.get(a.equipment) ?? 0;
      const seenMax = p.maxLevel.get(a.equipment) ?? a.level;
      const maxLevel = rank(a.level) > rank(seenMax) ? a.level : seenMax;
      const nearMisses = p.nearMisses.get(a.equipment) ?? 0;
      const availability = observed === 0 ? 1 : Math.round(((p.up.get(a.equipment) ?? 0) / observed) * 1000) / 1000;
      all.push({
        id: a.equipment,
        category: a.category,
        level: a.level,
        maxLevel,
        score: a.score,
        maxScore: Math.max(a.score, p.maxScore.get(a.equipment) ?? 0),
        nearMisses,
        availability,
      });
    }
    const equipment = all.filter((e) => e.maxLevel !== 'blue' || e.nearMisses > 0 || e.availability < 1);
    const body: Omit<RiskSummaryBody, 'seq'> = {
      schema: RISK_SUMMARY_SCHEMA,
      eventId: riskSummaryEventId(config.gateway.id, p.from),
      gatewayId: config.gateway.id,
      site,
      from: new Date(p.from).toISOString(),
      to: new Date(to).toISOString(),
      levels,
      equipment,
      kpi: {
        annunciated: k.annunciated,
        perOperatorPer10Min: k.perOperatorPer10Min,
        peakPer10Min: k.peakPer10Min,
        floodPeriodsPercent: k.floodPercent,
        standing: k.standing,
        stale: k.stale,
        chattering: k.chattering,
        fleeting: k.fleeting,
        shelved: k.shelvedNow,
        ...(k.timeToAcknowledge.median !== undefined ? { timeToAckMedianMs: k.timeToAcknowledge.median } : {}),
        ...(k.timeToAcknowledge.p90 !== undefined ? { timeToAckP90Ms: k.timeToAcknowledge.p90 } : {}),
      },
    };
    pendingSummaries.push({ body, all });
    bound(pendingSummaries, MAX_UNCOMMITTED_SUMMARIES, 'summary');
  };

  /** Hands the judge the engine's active alarms, when alarm events came since it last had them. */
  const refreshActive = () => {
    if (!judge || !activeStale) return;
    activeStale = false;
    judge.activeAlarms(alarms.active());
  };

  const tick = () => {
    if (!judge) return;
    const t = now();
    refreshActive();
    observeStatus(t);
    const changes = judge.tick(t);
    for (const [equipment, state] of judge.takeStates()) unsavedStates.set(equipment, state);
    for (const change of changes) {
      pendingChanges.push({ change, at: t });
      const line = { equipment: change.equipment, from: change.from, to: change.to, score: change.assessment.score };
      if (rank(change.to) > rank(change.from)) log.warn(line, `Risk of ${change.equipment} up to ${change.to}`);
      else log.info(line, `Risk of ${change.equipment} down to ${change.to}`);
    }
    bound(pendingChanges, MAX_UNCOMMITTED_CHANGES, 'change');
    const assessments = judge.assessments();
    if (period) {
      for (const a of assessments) {
        const max = period.maxLevel.get(a.equipment);
        if (!max || rank(a.level) > rank(max)) period.maxLevel.set(a.equipment, a.level);
        if (a.score > (period.maxScore.get(a.equipment) ?? -1)) period.maxScore.set(a.equipment, a.score);
      }
      const boundary = periodStart(t, summaryEvery);
      if (boundary > period.from) {
        summarize(period, boundary);
        period = newPeriod(boundary);
      }
    }
    // The risk states, journal and outbox first: what was published is always in the store.
    if (!commit()) return;
    publish(assessments, t);
  };

  /** Equipment with administrative dates: only they have administrative alarms to set. */
  const dated = config.equipment.filter((e) => e.inspection || e.maintenance || e.certificate);
  /**
   * In use: the equipment's connection is up. The gateway cannot tell a boiler that is read but cold
   * from one that is firing, so an equipment it hears from is taken as in use: an overdue date on
   * equipment that still answers is the orange warning, not the yellow one.
   */
  const inUse = (id: string) => {
    const s = pipeline.status(id);
    return s !== undefined && s.state !== 'offline';
  };

  /**
   * Sets the administrative alarms from the site's dates: at start, every hour, when the site's date
   * changes (right after midnight, site time), and when an equipment with dates comes into use or out of it.
   */
  const checkAdmin = (force = false) => {
    const t = now();
    const date = localDate(t, timeZone);
    const hour = Math.floor(t / HOUR);
    const used = dated.map((e) => (inUse(e.id) ? '1' : '0')).join('');
    if (!force && lastAdmin && lastAdmin.date === date && lastAdmin.hour === hour && lastAdmin.inUse === used) return;
    lastAdmin = { date, hour, inUse: used };
    for (const e of dated) {
      for (const { key, value } of adminConditions(e, t, timeZone, inUse)) {
        try {
          alarms.setExternal(key, value);
        } catch (err) {
          log.error({ err, alarm: key }, 'Cannot set an administrative alarm');
        }
      }
    }
  };

  const api: RiskService = {
    assessments: () => judge?.assessments() ?? [],
    assessment: (id) => judge?.assessment(id),
    history(id, from, to) {
      const points = new Map<number, { ts: number; level: Level; score: number }>();
      for (const e of o.store().readJournal('risk', from, to, { equipment: id })) {
        const b = e.body as { level?: unknown; score?: unknown };
        if (LEVELS.includes(b.level as Level) && typeof b.score === 'number')
          points.set(e.ts, { ts: e.ts, level: b.level as Level, score: b.score });
      }
      for (const p of scores.get(id) ?? []) if (p.ts >= from && p.ts < to && !points.has(p.ts)) points.set(p.ts, p);
      return [...points.values()].sort((a, b) => a.ts - b.ts);
    },
    kpi(windowMs, equipment) {
      if (!judge) throw new Error('The risk service is not running');
      refreshActive();
      return judge.kpi(windowMs, now(), equipment);
    },
    nearMisses: (from, to, equipment) =>
      o
        .store()
        .readJournal('near_miss', from, to, equipment === undefined ? {} : { equipment })
        .map((e: JournalEntry) => e.body as NearMiss),
  };

  return {
    id: 'risk',
    name: 'risk judgement',
    api,
    rulesChanged: () => judge?.setThresholds(thresholdsOf(alarms.specs)),
    async start() {
      const t = now();
      const store = o.store();
      epoch = store.epoch();
      const restored = new Map([...store.loadRisk()].map(([id, v]) => [id, persistedRisk(id, v)]));
      const onChange = reportsOnChangeOf(config);
      judge = new Judge({
        site,
        equipment: judgeEquipmentOf(config.equipment, onChange),
        thresholds: thresholdsOf(alarms.specs),
        config: config.risk,
        operators: config.alarms.operators,
        restored,
        now: t,
      });
      // The KPIs of the last 24 h include the alarms before a restart: they are in the journal.
      // The newest of them when there were more than the history keeps.
      judge.alarmEvents(
        store.readJournal('alarm', t - DAY, t + 1, { limit: MAX_KPI_EVENTS, newest: true }).map((e) => e.body as AlarmEvent),
      );
      // And so do the near misses of the last 24 h.
      judge.recallNearMisses(
        store
          .readJournal('near_miss', t - DAY, t + 1, { limit: 100_000, newest: true })
          .map((e) => e.body as { equipment: string; ts: number }),
      );
      judge.activeAlarms(alarms.active());
      pipeline.onBatch((batch) => {
        if (!judge) return;
        const found = judge.ingest(batch);
        if (found.length === 0) return;
        for (const n of found) {
          nearMissCounter.inc({ equipment: n.equipment });
          if (period) period.nearMisses.set(n.equipment, (period.nearMisses.get(n.equipment) ?? 0) + 1);
        }
        pendingNearMisses.push(...found);
        bound(pendingNearMisses, MAX_UNCOMMITTED_NEAR_MISSES, 'near_miss');
      });
      alarms.onEvents((events) => {
        if (!judge) return;
        judge.alarmEvents(events);
        // The active list is read once per tick, not per batch: building it walks every alarm of the
        // site, and a busy site has alarm events in most batches (measured: 31 % of the CPU).
        activeStale = true;
      });
      period = newPeriod(periodStart(t, summaryEvery));
      checkAdmin(true);
      log.info({ equipment: config.equipment.length, restored: restored.size }, 'Risk judgement started');
      tick();
      timer = setInterval(tick, TICK_MS);
      adminTimer = setInterval(() => checkAdmin(), ADMIN_CHECK_MS);
    },
    async stop() {
      clearInterval(timer);
      clearInterval(adminTimer);
      timer = adminTimer = undefined;
      if (judge && !commit())
        log.error(
          { riskChanges: pendingChanges.length, nearMisses: pendingNearMisses.length },
          'Stopped with risk changes the store could not take',
        );
      judge = undefined;
    },
  };
}
