// The replay extended to risk: recorded readings through the rule engine AND the Judge, driven the
// way the gateway's alarm and risk services drive them (gateway/risk/service.ts), so that a safety
// engineer sees, before deploying a change, which alarms, near misses and risk level changes the same
// readings would have given, each risk change with the factors behind it.
//
// What the replay cannot know it leaves out, as the gateway would on a connection that never failed:
// a CSV holds readings, not connection states, so communication availability counts as 100 % (a bad
// reading is no good reading: silence still counts), and an equipment counts as in use for its
// administrative dates once it has been heard from.
import type { SiteConfig } from '../config/schema.js';
import type { Reading } from '../drivers/types.js';
import { adminConditions, adminSpecsOf, localDate, type AdminEquipment } from './admin.js';
import { formatEvent, replayRules, type Action } from './backtest.js';
import { ruleSpecsOf, thresholdsOf } from './compile.js';
import { Judge, judgeEquipmentOf, type JudgeOptions } from './judge.js';
import type { NearMiss } from './near-miss.js';
import type { FactorPoints, RiskChange } from './risk.js';
import type { AlarmEvent, Level, RuleSpec } from './types.js';

/** The risk service re-assesses every second (its TICK_MS): the replay ticks the judge on the same clock. */
export const JUDGE_TICK_MS = 1000;
const HOUR = 3_600_000;

/** One line of a replay, in time order; `kind` tells which. */
export type ReplayEntry =
  | ({ kind: 'alarm' } & AlarmEvent)
  | ({ kind: 'near_miss'; unit?: string } & NearMiss)
  | {
      kind: 'risk';
      /** When the judge's tick saw the change (ms). */
      ts: number;
      equipment: string;
      from: Level;
      to: Level;
      /** The change number (1, 2, ... from a fresh state). */
      change: number;
      score: number;
      likelihood: number;
      consequence: number;
      points: number;
      factors: FactorPoints[];
    };

export interface RiskReplayOptions {
  site: string;
  /** The rule specs, the administrative ones included (they are set from `admin`'s dates). */
  rules: readonly RuleSpec[];
  readings: readonly Reading[];
  actions?: readonly Action[] | undefined;
  tickMs?: number | undefined;
  tailMs?: number | undefined;
  chattering?: { activations: number; window: number } | undefined;
  judge: Pick<JudgeOptions, 'equipment' | 'config' | 'operators'>;
  /** Equipment with administrative dates, and the site's time zone they are read in. */
  admin?: { equipment: readonly AdminEquipment[]; timeZone: string } | undefined;
}

/** Replays readings through the engine and the judge; returns alarm events, near misses and risk changes in time order. */
export function replayRisk(opts: RiskReplayOptions): ReplayEntry[] {
  if (opts.readings.length === 0) return [];
  // The replay's clock starts where replayRules starts it: at the first reading or action.
  let start = Infinity;
  for (const list of [opts.readings, opts.actions ?? []]) for (const x of list) if (x.ts < start) start = x.ts;
  const judge = new Judge({ site: opts.site, ...opts.judge, thresholds: thresholdsOf(opts.rules), now: start });
  const units = new Map(opts.rules.flatMap((s) => (s.unit ? [[`${s.equipment}/${s.id}`, s.unit] as const] : [])));
  const out: ReplayEntry[] = [];
  const heard = new Set<string>();
  const dated = opts.admin?.equipment.filter((e) => e.inspection || e.maintenance || e.certificate) ?? [];
  let lastAdmin: string | undefined;
  let nextTick = start;

  const changed = (changes: readonly RiskChange[], ts: number) => {
    for (const c of changes) {
      const a = c.assessment;
      out.push({
        kind: 'risk',
        ts,
        equipment: c.equipment,
        from: c.from,
        to: c.to,
        change: c.change,
        score: a.score,
        likelihood: a.likelihood,
        consequence: a.consequence,
        points: a.points,
        factors: a.factors,
      });
    }
  };

  replayRules(
    { site: opts.site, rules: opts.rules, readings: opts.readings, actions: opts.actions ?? [], ...timing(opts) },
    {
      readings(batch) {
        for (const r of batch) heard.add(r.equipment);
        for (const n of judge.ingest(batch)) {
          const unit = units.get(`${n.equipment}/${n.rule}`);
          out.push({ kind: 'near_miss', ...n, ...(unit ? { unit } : {}) });
        }
      },
      events(events, engine) {
        for (const e of events) out.push({ kind: 'alarm', ...e });
        judge.alarmEvents(events);
        judge.activeAlarms(engine.active());
      },
      time(engine, now) {
        const events: AlarmEvent[] = [];
        // As the risk service: the dates are set at start, and again when the hour, the site's date or an equipment's use changed.
        if (opts.admin && dated.length > 0) {
          const key = `${localDate(now, opts.admin.timeZone)}|${Math.floor(now / HOUR)}|${dated.map((e) => (heard.has(e.id) ? 1 : 0)).join('')}`;
          if (key !== lastAdmin) {
            lastAdmin = key;
            for (const e of dated)
              for (const c of adminConditions(e, now, opts.admin.timeZone, (id) => heard.has(id)))
                events.push(...engine.setExternal(c.key, c.value, now));
          }
        }
        if (now >= nextTick) {
          // The judge sees the events set just now on its next tick, as in the gateway where they arrive between ticks.
          changed(judge.tick(now), now);
          nextTick = now + JUDGE_TICK_MS;
        }
        return events;
      },
      next: () => nextTick,
    },
  );
  // Near misses carry the time the value left the margin (source time), which may precede the batch that told it.
  return out.sort((a, b) => a.ts - b.ts);
}

function timing(o: {
  tickMs?: number | undefined;
  tailMs?: number | undefined;
  chattering?: { activations: number; window: number } | undefined;
}) {
  return {
    ...(o.tickMs !== undefined ? { tickMs: o.tickMs } : {}),
    ...(o.tailMs !== undefined ? { tailMs: o.tailMs } : {}),
    ...(o.chattering ? { chattering: o.chattering } : {}),
  };
}

/**
 * A loaded site's replay: its rules and administrative alarms (as the alarm service compiles them),
 * its judge's equipment and risk settings (as the risk service builds them), its chattering settings.
 * `reportsOnChange` tells, from each equipment's driver, whether its values come on change.
 */
export function siteRiskReplay(
  config: SiteConfig,
  reportsOnChange: (id: string) => boolean,
  run: { readings: readonly Reading[]; actions?: readonly Action[] | undefined; tickMs?: number | undefined; tailMs?: number | undefined },
): ReplayEntry[] {
  return replayRisk({
    site: config.gateway.site,
    rules: [...ruleSpecsOf(config, reportsOnChange), ...config.equipment.flatMap((e) => adminSpecsOf(e))],
    ...run,
    chattering: config.alarms.chattering,
    judge: { equipment: judgeEquipmentOf(config.equipment, reportsOnChange), config: config.risk, operators: config.alarms.operators },
    admin: { equipment: config.equipment, timeZone: config.gateway.timezone },
  });
}

/** One line per entry: alarm events as `formatEvent` writes them, near misses and risk changes with their figures. */
export function formatEntry(e: ReplayEntry): string {
  if (e.kind === 'alarm') return formatEvent(e);
  const time = e.ts > 1e11 ? new Date(e.ts).toISOString() : String(e.ts);
  if (e.kind === 'near_miss') {
    const unit = e.unit ? ` ${e.unit}` : '';
    return `${time} near-miss ${e.equipment} ${e.point} closest ${e.closest}${unit} (limit ${e.limit}, ${e.rule})`;
  }
  const factors = e.factors.length > 0 ? e.factors.map((f) => `${f.factor} ${f.value} = ${f.points}`).join(', ') : 'no factors';
  return `${time} risk ${e.equipment} ${e.from} -> ${e.to} (index ${e.score}: ${factors})`;
}
