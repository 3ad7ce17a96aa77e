// Replays recorded readings through a site's rules and returns the alarm events they would raise, so
// a safety engineer can try a limit change before deploying it. Also the engine's table-driven tests.
import type { Reading } from '../drivers/types.js';
import { RuleEngine } from './engine.js';
import type { AlarmEvent, RuleSpec } from './types.js';

export interface Action {
  ts: number;
  action: 'ack' | 'shelve' | 'unshelve' | 'out_of_service' | 'in_service';
  /** `<equipment>/<rule>` */
  alarm: string;
  by: string;
  comment: string;
  durationMs?: number;
}

export interface BacktestOptions {
  site: string;
  rules: readonly RuleSpec[];
  readings: readonly Reading[];
  actions?: readonly Action[];
  /** Time passes in steps of this between readings (delays, stale data, shelve expiry). */
  tickMs?: number;
  /** Time to let pass after the last reading. */
  tailMs?: number;
  /** The site's chattering settings (`alarms.chattering`); the defaults otherwise. */
  chattering?: { activations: number; window: number };
}

/** Deterministic ids (`e1`, `e2`... for events, `i1`... for incidents would need two sequences: one is enough). */
export function backtest(opts: BacktestOptions): AlarmEvent[] {
  return replayRules(opts);
}

/**
 * What a replay follows beside the rule engine (the risk judgement: rules/replay.ts), called the way
 * the gateway's services are: every reading batch, every step's alarm events, and time passing.
 */
export interface ReplayObserver {
  /** A batch of readings, before the engine reads it (the pipeline hands a batch to every listener). */
  readings(batch: readonly Reading[], now: number): void;
  /** The alarm events of one engine step (readings, an operator's action, time passing), never empty. */
  events(events: readonly AlarmEvent[], engine: RuleEngine, now: number): void;
  /** Time has come to `now`, after the engine's own tick; returns the events of what it set on the engine (external conditions). */
  time(engine: RuleEngine, now: number): AlarmEvent[];
  /** The next time it must be called at (its own timer), or Infinity. */
  next(): number;
}

/** After this long with no reading, action or alarm event, time passes in QUIET_STEP_MS steps. */
export const QUIET_MS = 600_000;
export const QUIET_STEP_MS = 60_000;

/**
 * The replay loop: readings in batches by their `ts`, the operator's actions, and time in steps of
 * `tickMs`; after QUIET_MS with nothing happening, in steps of QUIET_STEP_MS (the observer's timer
 * too), so that a gap of days or a long tail does not take millions of steps. What time alone decides
 * (delays, stale data, shelve expiry, escalation) carries its own time, so the steps change none of
 * it; what is stamped with the step's time (the end of chattering or of a flood, a risk change, an
 * administrative date) is then seen up to a minute late.
 */
export function replayRules(opts: BacktestOptions, observer?: ReplayObserver): AlarmEvent[] {
  const readings = [...opts.readings].sort((a, b) => a.ts - b.ts);
  const actions = [...(opts.actions ?? [])].sort((a, b) => a.ts - b.ts);
  if (readings.length === 0) return [];
  let n = 0;
  const start = Math.min(readings[0]!.ts, actions[0]?.ts ?? Infinity);
  const health = opts.chattering ? { chatterActivations: opts.chattering.activations, chatterWindowMs: opts.chattering.window } : undefined;
  const engine = new RuleEngine({ site: opts.site, rules: opts.rules, newId: () => `#${++n}`, now: start, ...(health ? { health } : {}) });
  const tickMs = opts.tickMs ?? 100;
  const end = Math.max(readings.at(-1)!.ts, actions.at(-1)?.ts ?? 0) + (opts.tailMs ?? 0);
  const out: AlarmEvent[] = [];
  let r = 0;
  let a = 0;
  let lastActive = start;
  for (let now = start; now <= end;) {
    const emit = (events: AlarmEvent[]) => {
      if (events.length === 0) return;
      lastActive = now;
      out.push(...events);
      observer?.events(events, engine, now);
    };
    // Everything received at `now` as one batch (of any equipment), then the operator's actions.
    const batch: Reading[] = [];
    while (r < readings.length && readings[r]!.ts <= now) batch.push(readings[r++]!);
    if (batch.length > 0) {
      lastActive = now;
      observer?.readings(batch, now);
      emit(engine.ingest(batch));
    }
    while (a < actions.length && actions[a]!.ts <= now) {
      lastActive = now;
      emit(apply(engine, actions[a++]!));
    }
    emit(engine.tick(now));
    if (observer) emit(observer.time(engine, now));
    const quiet = now - lastActive >= QUIET_MS;
    const step = quiet ? Math.max(tickMs, QUIET_STEP_MS) : tickMs;
    // An observer's time that is not ahead of `now` would stop the clock: only a later one counts.
    // In a quiet time the observer is called at each coarser step instead.
    const own = observer?.next() ?? Infinity;
    const ownNext = own > now && !quiet ? own : Infinity;
    // A coarse step does not overshoot the end: the tail's last moment is still looked at.
    const last = quiet && now < end ? end : Infinity;
    const next = Math.min(readings[r]?.ts ?? Infinity, actions[a]?.ts ?? Infinity, now + step, ownNext, last);
    now = next === Infinity ? now + step : next;
  }
  return out;
}

function apply(engine: RuleEngine, x: Action): AlarmEvent[] {
  switch (x.action) {
    case 'ack':
      return engine.acknowledge(x.alarm, x.by, x.comment, x.ts);
    case 'shelve':
      return engine.shelve(x.alarm, x.by, x.comment, x.durationMs ?? 3_600_000, x.ts);
    case 'unshelve':
      return engine.unshelve(x.alarm, x.by, x.comment, x.ts);
    case 'out_of_service':
      return engine.setOutOfService(x.alarm, true, x.by, x.comment, x.ts);
    case 'in_service':
      return engine.setOutOfService(x.alarm, false, x.by, x.comment, x.ts);
  }
}

/**
 * Parses `ts,equipment,point,value,quality[,source_ts]` (times in ms or ISO 8601; quality defaults to
 * good). `ts` is when the gateway received a reading, and the readings of one `ts` arrive as one
 * batch; `source_ts`, when given, is the device's or OPC UA server's own time of the value.
 */
export function parseReadingsCsv(text: string): Reading[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.startsWith('#'));
  const out: Reading[] = [];
  const header = lines[0]?.split(',').map((h) => h.trim());
  if (!header || header[0] !== 'ts') throw new CsvError('line 1: expected the header ts,equipment,point,value,quality');
  const sourceColumn = header.indexOf('source_ts');
  lines.slice(1).forEach((line, k) => {
    const cells = line.split(',').map((c) => c.trim());
    const [ts, equipment, point, value, quality] = cells;
    const at = `line ${k + 2}`;
    const time = parseTime(ts ?? '', at);
    if (!equipment || !point) throw new CsvError(`${at}: expected ts,equipment,point,value,quality`);
    const q = quality === undefined || quality === '' ? 'good' : quality;
    if (q !== 'good' && q !== 'uncertain' && q !== 'bad') throw new CsvError(`${at}: quality must be good, uncertain or bad, not "${q}"`);
    const reading: Reading = { ts: time, equipment, point, value: q === 'bad' ? null : parseValue(value ?? ''), quality: q };
    const source = sourceColumn > 0 ? cells[sourceColumn] : undefined;
    if (source) reading.sourceTs = parseTime(source, at);
    out.push(reading);
  });
  return out;
}

/** Parses `ts,action,alarm,by,comment,duration_ms`. */
export function parseActionsCsv(text: string): Action[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.startsWith('#'));
  return lines.slice(1).map((line, k) => {
    const [ts, action, alarm, by, comment, duration] = line.split(',').map((c) => c.trim());
    const at = `line ${k + 2}`;
    if (!['ack', 'shelve', 'unshelve', 'out_of_service', 'in_service'].includes(action ?? ''))
      throw new CsvError(`${at}: unknown action "${action}"`);
    return {
      ts: parseTime(ts ?? '', at),
      action: action as Action['action'],
      alarm: alarm ?? '',
      by: by ?? '',
      comment: comment ?? '',
      ...(duration ? { durationMs: Number(duration) } : {}),
    };
  });
}

/** One line per event: time, type, alarm, level, state, message. */
export function formatEvent(e: AlarmEvent): string {
  const time = e.ts > 1e11 ? new Date(e.ts).toISOString() : String(e.ts);
  const who = e.by ? ` by ${e.by}` : '';
  const alarm = e.equipment ? `${e.equipment}/${e.rule}` : e.rule;
  return `${time} ${e.type} ${alarm} ${e.level} ${e.state}${who}: ${e.message}`;
}

export class CsvError extends Error {
  override name = 'CsvError';
}

function parseTime(text: string, at: string): number {
  if (/^\d+$/.test(text)) return Number(text);
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new CsvError(`${at}: expected a time in ms or ISO 8601, not "${text}"`);
  return t;
}

function parseValue(text: string): number | boolean | string | null {
  if (text === '') return null;
  if (text === 'true' || text === 'false') return text === 'true';
  const n = Number(text);
  return Number.isNaN(n) ? text : n;
}
