// Quality control of lab instruments: control samples (recognised by the site file's sample-id pattern
// or marked by the instrument) are judged by the Westgard multirules (rules/westgard.ts) against
// their analyte's and level's target, in the order they arrive (one older than its level's last one
// judged does not change that level's verdict); the other results of an analyte are
// marked `pending` while one of its levels stands rejected, `passed` once its controls pass again.
//
// The state per instrument and analyte (the controls the rules read, each level's last verdict, since
// when the analyte is pending) is committed in the same transaction as the results that changed it,
// with a `qc` journal entry per control judged (the daily summary counts them; the Levey-Jennings
// points are read back from it after a restart). Nothing here may lose a result: a control that
// cannot be judged (no targets for its analyte or level, no numeric value) is counted and logged
// once, and the result service stores a batch unmarked when judging it fails.
import { Counter } from 'prom-client';
import type { QcConfig } from '../../config/lab-schema.js';
import type { SiteConfig } from '../../config/schema.js';
import type { LabResult, ResultQc } from '../../drivers/common/result.js';
import { qcRuleId } from '../../rules/lab-alarms.js';
import {
  judge,
  remember,
  zScore,
  HISTORY_PER_LEVEL,
  WESTGARD_RULES,
  type ControlHistory,
  type ControlStatus,
  type WestgardRule,
} from '../../rules/westgard.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { GatewayStore } from '../store.js';

/** One control series: an instrument's analyte at one control level, against its target. */
export interface QcSeriesView {
  instrument: string;
  analyte: string;
  level: string;
  unit?: string;
  target: { mean: number; sd: number };
  /** The last control's verdict; `no-data` before the first. */
  state: 'no-data' | 'in-control' | 'warning' | 'rejected';
  /** The rule(s) that fired on the last control, when any did. */
  rule?: string;
  /** The last POINTS_PER_SERIES controls, oldest first. */
  points: Array<{ ts: number; sampleId: string; value: number; z: number; status: ControlStatus; rules: string[] }>;
}

/** What the HTTP API and the dashboard read. */
export interface QcApi {
  series(instrument?: string): QcSeriesView[];
}

/** Controls kept per series for the Levey-Jennings chart. */
export const POINTS_PER_SERIES = 60;

/** What the store keeps per instrument and analyte (table qc). */
export interface AnalyteState {
  /** Controls of the analyte judged so far, all levels: the next one's seq. */
  seq: number;
  /** The controls the rules read (rules/westgard.ts). */
  history: ControlHistory;
  /** Each level's last verdict (`at`: its result time, epoch ms). */
  levels: Record<
    string,
    {
      status: ControlStatus;
      rules: WestgardRule[];
      at: number;
      /** The control's sample id, result time and value: the same control sent again under another result id is not judged again. */
      same?: string;
    }
  >;
  /** While a level's last control stands rejected: the rule that rejected the first, and since when (epoch ms). */
  pending?: { rule: string; since: number };
}

/** The `qc` journal entry of one control judged. */
export interface QcJournalBody {
  instrument: string;
  analyte: string;
  level: string;
  value: number;
  unit?: string;
  z: number;
  status: ControlStatus;
  rules: WestgardRule[];
  sampleId: string;
  resultId: string;
  resultAt: string;
}

/** An alarm condition to set: `<instrument>/qc.<analyte>.<level>.rejected`, with the rule(s) as its {detail}. */
export interface QcAlarm {
  key: string;
  value: boolean;
  detail?: string;
}

/** One batch judged: its results marked, and what to commit with them and do after. */
export interface QcBatch {
  results: LabResult[];
  /** The hold a result waits under (hold mode, analyte pending), undefined for one uploaded at once. */
  hold: (r: LabResult) => string | undefined;
  /** Inside the results' transaction: the changed states, the journal entries, the holds that end. */
  save(store: GatewayStore, release: (hold: string) => number): void;
  /** After the commit: the new states become current; returns the alarm conditions to set, in order. */
  done(): QcAlarm[];
}

export interface Qc {
  readonly api: QcApi;
  /** Loads the states and the chart points; returns every QC alarm's condition to set. */
  start(store: GatewayStore): QcAlarm[];
  /** Whether results held under this name still wait (false: their hold ended while the gateway was down, or the site file changed). */
  stillHeld(hold: string): boolean;
  /**
   * Judges the controls of a batch in order and marks its results (copies); undefined when no
   * instrument of the batch has QC. `seen` tells a result already captured: a control sent again is
   * not judged twice.
   */
  apply(results: readonly LabResult[], seen: (resultId: string) => boolean, now: number): QcBatch | undefined;
}

/** Controls not judged that are remembered as logged (per instrument, analyte and reason). */
export const TOLD_MAX = 1_000;

/** One mark shared by every passed result (most of them): nothing allocated for it per result. */
const PASSED: ResultQc = Object.freeze({ status: 'passed' });

/** The name results of one instrument and analyte are held under in the store (result.held). */
export function holdName(instrument: string, analyte: string): string {
  return JSON.stringify([instrument, analyte]);
}

/**
 * Whether a result is a control sample, judged or not (no target for its level, QC failed on its
 * batch): marked by its instrument, or its sample id matches its instrument's qc.control_samples.
 */
export function controlSamplesOf(config: Pick<SiteConfig, 'equipment'>): (r: LabResult) => boolean {
  const patterns = new Map(config.equipment.flatMap((e) => (e.qc ? [[e.id, new RegExp(e.qc.control_samples, 'u')] as const] : [])));
  return (r) => r.control !== undefined || patterns.get(r.instrument)?.test(r.sampleId) === true;
}

interface Instrument {
  id: string;
  qc: QcConfig;
  pattern: RegExp;
  rules: ReadonlySet<WestgardRule>;
}

type Point = QcSeriesView['points'][number] & { unit?: string };

const seriesKey = (instrument: string, analyte: string, level: string) => `${instrument}\0${analyte}\0${level}`;
const stateKey = (instrument: string, analyte: string) => `${instrument}\0${analyte}`;
/** z-scores to 4 decimals: 2.1, not 2.0999999999999996, in bodies, charts and the rules. */
const round = (z: number) => Math.round(z * 10_000) / 10_000;

export function createQc(opts: { config: SiteConfig; log: Logger; metrics: Metrics }): Qc {
  const { log } = opts;
  const instruments = new Map<string, Instrument>();
  for (const e of opts.config.equipment) {
    if (!e.qc) continue;
    // The schema compiled the pattern once already: it compiles.
    instruments.set(e.id, { id: e.id, qc: e.qc, pattern: new RegExp(e.qc.control_samples, 'u'), rules: new Set(e.qc.rules) });
  }
  const states = new Map<string, AnalyteState>();
  const points = new Map<string, Point[]>();
  const told = new Set<string>();
  const judged = new Counter({
    name: 'gateway_lab_qc_controls_total',
    help: 'Control samples judged by the Westgard rules, by instrument and verdict',
    labelNames: ['instrument', 'status'],
    registers: [opts.metrics],
  });
  const skipped = new Counter({
    name: 'gateway_lab_qc_skipped_total',
    help: 'Control samples not judged (no targets for their analyte or level, no level, no numeric value), by instrument and reason',
    labelNames: ['instrument', 'reason'],
    registers: [opts.metrics],
  });

  /** A control not judged: counted each time, logged once per instrument, analyte and reason. */
  const skip = (r: LabResult, reason: 'no-targets' | 'no-level' | 'unknown-level' | 'not-numeric', message: string) => {
    skipped.inc({ instrument: r.instrument, reason });
    const key = `${r.instrument}\0${r.analyte}\0${reason}`;
    if (told.has(key)) return;
    // Analyte names come from the instrument: past TOLD_MAX different ones, the rest are only counted
    // (memory and the log stay bounded whatever it sends).
    if (told.size >= TOLD_MAX) return;
    told.add(key);
    log.warn({ instrument: r.instrument, analyte: r.analyte, sampleId: r.sampleId, reason }, message);
  };

  /** Whether a result is a control sample, and the level it says (undefined when it says none). */
  const controlOf = (inst: Instrument, r: LabResult): { level: string | undefined } | undefined => {
    const m = inst.pattern.exec(r.sampleId);
    if (!r.control && !m) return undefined;
    return { level: r.control?.level ?? m?.groups?.level ?? m?.[1] };
  };

  /** The target level a control's level names (as written, else ignoring case); its analyte's only level when it names none. */
  const levelOf = (levels: Record<string, unknown>, said: string | undefined): string | undefined => {
    const names = Object.keys(levels);
    if (said === undefined) return names.length === 1 ? names[0] : undefined;
    const s = said.trim();
    return names.find((n) => n === s) ?? names.find((n) => n.toLowerCase() === s.toLowerCase());
  };

  const viewState = (s: ControlStatus | undefined): QcSeriesView['state'] =>
    s === undefined ? 'no-data' : s === 'accepted' ? 'in-control' : s;

  const api: QcApi = {
    series(instrument) {
      const out: QcSeriesView[] = [];
      for (const inst of instruments.values()) {
        if (instrument !== undefined && inst.id !== instrument) continue;
        for (const [analyte, levels] of Object.entries(inst.qc.targets)) {
          const state = states.get(stateKey(inst.id, analyte));
          for (const [level, target] of Object.entries(levels)) {
            const list = points.get(seriesKey(inst.id, analyte, level)) ?? [];
            const last = state?.levels[level];
            const unit = list.at(-1)?.unit;
            out.push({
              instrument: inst.id,
              analyte,
              level,
              ...(unit !== undefined ? { unit } : {}),
              target: { mean: target.mean, sd: target.sd },
              state: viewState(last?.status),
              ...(last && last.rules.length > 0 ? { rule: last.rules.join(', ') } : {}),
              points: list.map(({ unit: _unit, ...p }) => p),
            });
          }
        }
      }
      return out;
    },
  };

  const addPoint = (key: string, p: Point) => {
    let list = points.get(key);
    if (!list) points.set(key, (list = []));
    list.push(p);
    if (list.length > POINTS_PER_SERIES) list.splice(0, list.length - POINTS_PER_SERIES);
  };

  return {
    api,
    start(store) {
      states.clear();
      points.clear();
      for (const row of store.loadQc()) {
        if (!isAnalyteState(row.state)) {
          log.error(
            { instrument: row.instrument, analyte: row.analyte },
            'The stored QC state of this analyte does not read: its Westgard rules start again from no history',
          );
          continue;
        }
        const inst = instruments.get(row.instrument);
        const targets = inst && Object.hasOwn(inst.qc.targets, row.analyte) ? inst.qc.targets[row.analyte]! : undefined;
        // An analyte the site file no longer has targets for: no control of it will be judged again,
        // so nothing of it waits (its held results are let go by the result service).
        if (!targets) continue;
        const state = row.state;
        // A level whose target was removed is never judged again: a rejection standing on it would keep
        // the analyte pending (and its held results unsent) for ever.
        let changed = false;
        for (const level of new Set([...Object.keys(state.levels), ...Object.keys(state.history)]))
          if (!Object.hasOwn(targets, level)) {
            delete state.levels[level];
            delete state.history[level];
            changed = true;
          }
        if (state.pending && !Object.values(state.levels).some((l) => l.status === 'rejected')) {
          delete state.pending;
          changed = true;
        }
        if (changed) {
          log.warn(
            { instrument: row.instrument, analyte: row.analyte },
            'QC levels without targets in the site file are forgotten: their last verdicts no longer keep the analyte pending',
          );
          store.saveQc([{ instrument: row.instrument, analyte: row.analyte, state }]);
        }
        states.set(stateKey(row.instrument, row.analyte), state);
      }
      // The chart's points after a restart: each series' newest controls, from the journal, newest
      // first until every series has its POINTS_PER_SERIES (a busy series must not crowd out a slow one).
      const newestFirst = store.db
        .prepare("SELECT body FROM journal WHERE kind = 'qc' AND equipment = ? ORDER BY ts DESC, id DESC")
        .pluck();
      for (const inst of instruments.values()) {
        const wanted = new Map<string, Point[]>();
        for (const [analyte, levels] of Object.entries(inst.qc.targets))
          for (const level of Object.keys(levels)) wanted.set(seriesKey(inst.id, analyte, level), []);
        let open = wanted.size;
        for (const text of newestFirst.iterate(inst.id) as IterableIterator<string>) {
          if (open === 0) break;
          let b: Partial<QcJournalBody>;
          try {
            b = JSON.parse(text) as Partial<QcJournalBody>;
          } catch {
            continue;
          }
          if (typeof b.analyte !== 'string' || typeof b.level !== 'string' || typeof b.value !== 'number' || typeof b.z !== 'number')
            continue;
          const list = wanted.get(seriesKey(inst.id, b.analyte, b.level));
          if (!list || list.length === POINTS_PER_SERIES) continue;
          list.push({
            ts: Date.parse(b.resultAt ?? '') || 0,
            sampleId: String(b.sampleId ?? ''),
            value: b.value,
            z: b.z,
            status: b.status ?? 'accepted',
            rules: b.rules ?? [],
            ...(b.unit !== undefined ? { unit: b.unit } : {}),
          });
          if (list.length === POINTS_PER_SERIES) open--;
        }
        for (const [key, list] of wanted) for (const p of list.reverse()) addPoint(key, p);
      }
      const alarms: QcAlarm[] = [];
      for (const inst of instruments.values())
        for (const [analyte, levels] of Object.entries(inst.qc.targets))
          for (const level of Object.keys(levels)) {
            const last = states.get(stateKey(inst.id, analyte))?.levels[level];
            const rejected = last?.status === 'rejected';
            alarms.push({
              key: `${inst.id}/${qcRuleId(analyte, level)}`,
              value: rejected,
              ...(rejected ? { detail: rejectionOf(last.rules) } : {}),
            });
          }
      return alarms;
    },

    stillHeld(hold) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(hold);
      } catch {
        return false;
      }
      if (!Array.isArray(parsed) || typeof parsed[0] !== 'string' || typeof parsed[1] !== 'string') return false;
      const inst = instruments.get(parsed[0]);
      return inst?.qc.on_reject === 'hold' && states.get(stateKey(parsed[0], parsed[1]))?.pending !== undefined;
    },

    apply(results, seen, now) {
      // Sites without QC pay nothing per batch (the 1-million-row bench).
      if (instruments.size === 0 || !results.some((r) => instruments.has(r.instrument))) return undefined;
      // Changed states are copies until the commit: a failed transaction leaves the current ones as they were.
      const working = new Map<string, AnalyteState>();
      const journal: Array<{ ts: number; equipment: string; body: QcJournalBody }> = [];
      const releases = new Set<string>();
      const alarms: QcAlarm[] = [];
      const newPoints: Array<[string, Point]> = [];
      const counted: Array<{ instrument: string; status: ControlStatus }> = [];
      const inBatch = new Set<string>();
      const stateOf = (key: string, write: boolean): AnalyteState | undefined => {
        const mine = working.get(key);
        if (mine || !write) return mine ?? states.get(key);
        const copy: AnalyteState = structuredClone(states.get(key) ?? { seq: 0, history: {}, levels: {} });
        working.set(key, copy);
        return copy;
      };

      const marked = results.map((r): LabResult => {
        const inst = instruments.get(r.instrument);
        if (!inst) return r;
        const targets = Object.hasOwn(inst.qc.targets, r.analyte) ? inst.qc.targets[r.analyte]! : undefined;
        const control = controlOf(inst, r);
        if (control) {
          if (!targets) {
            skip(
              r,
              'no-targets',
              'Control sample of an analyte without QC targets: counted, not judged (add its targets under qc.targets)',
            );
            return r;
          }
          // Sent again (a resent message, a file copied twice): judged when it was first taken.
          if (inBatch.has(r.resultId) || seen(r.resultId)) return r;
          inBatch.add(r.resultId);
          const level = levelOf(targets, control.level);
          if (level === undefined) {
            skip(
              r,
              control.level === undefined ? 'no-level' : 'unknown-level',
              control.level === undefined
                ? 'Control sample without a level, of an analyte with several: counted, not judged (give the level in qc.control_samples)'
                : `Control sample of level "${control.level}", which has no QC target: counted, not judged`,
            );
            return r;
          }
          // A value so far out that its z-score overflows (1e308 against an sd of 0.2) has no z to judge,
          // show or send (JSON would carry null, the platform would refuse the result).
          if (typeof r.value !== 'number' || !Number.isFinite(zScore(r.value, targets[level]!))) {
            skip(r, 'not-numeric', 'Control sample without a numeric value (or one too large for a z-score): counted, not judged');
            return r;
          }
          const key = stateKey(inst.id, r.analyte);
          const state = stateOf(key, true)!;
          const parsed = Date.parse(r.resultAt);
          const ts = Number.isFinite(parsed) ? parsed : now;
          // Runs and order by result time, but never later than now: one control from a clock years
          // ahead would otherwise make every later control look older than it and keep its verdict.
          const at = Math.min(ts, now);
          // Judged as shown: -2.0000000000000018 from float arithmetic is -2, within 2 sd.
          const z = round(zScore(r.value, targets[level]!));
          const standing = state.levels[level];
          // The level's last control again under another result id (a cumulative export, a file
          // exported twice, a message resent with a new id): judging it again would make it its own
          // 2-2s partner. It carries the verdict it had.
          const same = JSON.stringify([r.sampleId, r.resultAt, r.value]);
          if (standing?.same === same) return { ...r, qc: { status: standing.status, level, rules: standing.rules, z } };
          const j = judge(state.history, level, { z, ts: at }, { rules: inst.rules, runWindowMs: inst.qc.run_window });
          state.seq++;
          const rejection = rejectionOf(j.rules);
          // A control older than its level's last one judged (a file copied in late, a message resent
          // with a new id) is judged and shown, but the level's standing verdict is the newer one's: an
          // old pass must not clear a newer rejection, nor an old failure reject a newer pass.
          if (standing === undefined || at >= standing.at) {
            state.history = remember(state.history, level, { z, seq: state.seq - 1, ts: at }, j.status);
            state.levels[level] = { status: j.status, rules: j.rules, at, same };
            if (j.status === 'rejected') state.pending ??= { rule: rejection, since: now };
            else if (state.pending && !Object.values(state.levels).some((l) => l.status === 'rejected')) {
              delete state.pending;
              if (inst.qc.on_reject === 'hold') releases.add(holdName(inst.id, r.analyte));
            }
            alarms.push({
              key: `${inst.id}/${qcRuleId(r.analyte, level)}`,
              value: j.status === 'rejected',
              ...(j.status === 'rejected' ? { detail: rejection } : {}),
            });
          }
          const body: QcJournalBody = {
            instrument: inst.id,
            analyte: r.analyte,
            level,
            value: r.value,
            ...(r.unit !== undefined ? { unit: r.unit } : {}),
            z,
            status: j.status,
            rules: j.rules,
            sampleId: r.sampleId,
            resultId: r.resultId,
            resultAt: r.resultAt,
          };
          journal.push({ ts: now, equipment: inst.id, body });
          newPoints.push([
            seriesKey(inst.id, r.analyte, level),
            {
              ts,
              sampleId: r.sampleId,
              value: r.value,
              z: body.z,
              status: j.status,
              rules: j.rules,
              ...(r.unit !== undefined ? { unit: r.unit } : {}),
            },
          ]);
          counted.push({ instrument: inst.id, status: j.status });
          return { ...r, qc: { status: j.status, level, rules: j.rules, z: body.z } };
        }
        if (!targets) return r;
        const state = stateOf(stateKey(inst.id, r.analyte), false);
        // Before the analyte's first control QC has nothing to say of it.
        if (!state || state.seq === 0) return r;
        const qc: ResultQc = state.pending ? { status: 'pending', rule: state.pending.rule, since: state.pending.since } : PASSED;
        return { ...r, qc };
      });

      return {
        results: marked,
        hold: (r) =>
          r.qc?.status === 'pending' && instruments.get(r.instrument)?.qc.on_reject === 'hold'
            ? holdName(r.instrument, r.analyte)
            : undefined,
        save(store, release) {
          store.saveQc(
            [...working].map(([key, state]) => {
              const [instrument, analyte] = key.split('\0') as [string, string];
              return { instrument, analyte, state };
            }),
          );
          store.appendJournal(journal.map((e) => ({ ...e, kind: 'qc' as const })));
          for (const hold of releases) {
            const n = release(hold);
            if (n > 0) {
              const [instrument, analyte] = JSON.parse(hold) as [string, string];
              log.info({ instrument, analyte, results: n }, 'QC passed again: the results held for it are uploaded');
            }
          }
        },
        done() {
          for (const [key, state] of working) states.set(key, state);
          for (const [key, p] of newPoints) addPoint(key, p);
          for (const c of counted) judged.inc(c);
          for (const j of journal)
            if (j.body.status === 'rejected')
              log.warn(
                { instrument: j.body.instrument, analyte: j.body.analyte, level: j.body.level, sampleId: j.body.sampleId, z: j.body.z },
                `QC rejected: ${j.body.analyte} level ${j.body.level}, rule ${rejectionOf(j.body.rules)}`,
              );
          return alarms;
        },
      };
    },
  };
}

/** The rejection rules that fired (1-2s is only a warning), as an alarm's detail and a result's `rule`. */
function rejectionOf(rules: readonly WestgardRule[]): string {
  return rules.filter((r) => r !== '1-2s').join(', ');
}

function isAnalyteState(v: unknown): v is AnalyteState {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Partial<AnalyteState>;
  if (!Number.isSafeInteger(s.seq) || typeof s.history !== 'object' || s.history === null) return false;
  if (typeof s.levels !== 'object' || s.levels === null) return false;
  const known = new Set<string>(WESTGARD_RULES);
  for (const points of Object.values(s.history))
    if (
      !Array.isArray(points) ||
      // Its last HISTORY_PER_LEVEL controls, then the latest when it was rejected (rules/westgard.ts).
      points.length > HISTORY_PER_LEVEL + 1 ||
      !points.every((p: unknown) => typeof p === 'object' && p !== null && typeof (p as { z: unknown }).z === 'number')
    )
      return false;
  for (const l of Object.values(s.levels))
    if (
      typeof l !== 'object' ||
      l === null ||
      !['accepted', 'warning', 'rejected'].includes(l.status) ||
      // Without its time no later control could ever take the level's verdict over.
      !Number.isFinite(l.at) ||
      !Array.isArray(l.rules) ||
      !l.rules.every((r) => known.has(r))
    )
      return false;
  return s.pending === undefined || (typeof s.pending.rule === 'string' && typeof s.pending.since === 'number');
}
