// Risk judgement beside the rule bench (issue 19: risk and KPI evaluation for 5,000 equipment x 10
// points must not lower the rule bench's readings/s by more than 20 %). The rule bench's workload
// (bench/rules.ts: the same site, batches and scenarios, through the real alarm service and store)
// runs in three variants, alternated in one process (the order turned each round) so that they
// share the machine's moods:
//   A  the alarm service with predictions off (`predict: false`): the rule bench as it was;
//   B  the alarm service with predictions at their defaults (`p0 > 90` has a `.predicted` warning);
//   C  B plus the real risk service (Judge, near misses on p0, KPIs, its 1 s tick and its commits).
// Absolute figures on this shared machine swing by a factor of two from one minute to the next, so
// the figure that answers the issue is the ratio of B and C to the A of the same round.
// Then the risk service's tick on its own terms, and the KPI report over 24 h of alarm history.
import { pino } from 'pino';
import type { SiteConfig } from '../config/schema.js';
import type { Reading } from '../drivers/types.js';
import { reportsOnChangeOf } from '../drivers/index.js';
import { createMetrics } from '../gateway/metrics.js';
import { topicsFor } from '../gateway/mqtt/topics.js';
import { createRiskService } from '../gateway/risk/service.js';
import { ruleSpecsOf, thresholdsOf } from '../rules/compile.js';
import { Judge } from '../rules/judge.js';
import { AlarmKpi } from '../rules/kpi.js';
import type { ActiveAlarm, AlarmEvent, Level } from '../rules/types.js';
import {
  discardingLink,
  EQUIPMENT,
  MEASURE_MS,
  POINTS,
  READ,
  SCENARIOS,
  siteOf,
  throughService,
  WARM_UP_MS,
  type Attach,
  type Measured,
} from './rules.js';

/** Rounds of A B C per scenario: enough for a range, few enough for the CI machine's minutes. */
const ROUNDS = 3;
/** p0's normal value: the scenarios' quiet 50, so a near-miss tracker follows p0 on every batch (margin 10 % of 50..90: from 86). */
const NEAR_MISS_NORMAL = 50;
const DAY = 86_400_000;

interface Variant {
  key: 'A' | 'B' | 'C';
  label: string;
  config: SiteConfig;
  attach?: Attach;
}

/**
 * The real risk service on the bench's pipeline, alarm service and store, its platform bodies into
 * the same outbox. Its 1 s tick is timed from outside: the service's interval is wrapped while it
 * starts (the service keeps its tick to itself, and a bench must not change it to be measured).
 */
export function riskAttach(ticks: number[]): Attach {
  return ({ config, pipeline, alarms, store, outbox }) => {
    const service = createRiskService({
      config,
      pipeline,
      alarms,
      link: discardingLink,
      topics: topicsFor('gw', config.gateway.site),
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
      store: () => store,
      outbox: () => outbox,
      influx: () => {},
    });
    return {
      async start() {
        const original = globalThis.setInterval;
        const timed = ((fn: () => void, ms: number) =>
          original(
            ms === 1000
              ? () => {
                  const t = performance.now();
                  fn();
                  ticks.push(performance.now() - t);
                }
              : fn,
            ms,
          )) as unknown as typeof setInterval;
        globalThis.setInterval = timed;
        try {
          await service.start();
        } finally {
          globalThis.setInterval = original;
        }
      },
      stop: () => service.stop(),
    };
  };
}

const rate = (m: Measured) => (m.batches * READ) / m.seconds;
/** Per CPU second of this process: what other processes on the machine take from it does not count. */
const perCpu = (m: Measured) => (m.batches * READ) / m.cpuSeconds;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const pct = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const n0 = (x: number) => Math.round(x).toLocaleString('en-US');
const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(0));

/** The Judge alone re-assessing all 5,000 equipment (what every fifth tick does), some with alarms, near misses and a connection history. */
function fullAssessment(config: SiteConfig): number[] {
  const onChange = reportsOnChangeOf(config);
  const t0 = Date.now();
  const judge = new Judge({
    site: config.gateway.site,
    equipment: config.equipment.map((e) => ({
      id: e.id,
      category: e.category,
      consequence: e.consequence,
      pollIntervalMs: e.poll_interval,
      reportsOnChange: onChange(e.id),
      factors: e.risk_factors,
    })),
    thresholds: thresholdsOf(ruleSpecsOf(config, onChange)),
    config: config.risk,
    operators: config.alarms.operators,
    now: t0,
  });
  // One equipment in ten has an active alarm, one in twenty came near its limit, one in fifty lost its connection once.
  const active: ActiveAlarm[] = [];
  for (let e = 0; e < EQUIPMENT; e += 10)
    active.push({
      key: `E-${e}/limit`,
      equipment: `E-${e}`,
      rule: 'limit',
      level: 'orange',
      state: 'active_unacknowledged',
      incidentId: `E-${e}/limit/1`,
      message: 'x',
      raisedAt: t0,
      uncertain: false,
    });
  judge.activeAlarms(active);
  for (let e = 0; e < EQUIPMENT; e++) {
    const values = e % 20 === 0 ? [50, 87, 88, 50] : [50];
    judge.ingest(values.map((value, k) => ({ equipment: `E-${e}`, point: 'p0', value, quality: 'good', ts: t0 + k }) as Reading));
    if (e % 50 === 0) {
      judge.status(`E-${e}`, false, t0);
      judge.status(`E-${e}`, true, t0 + 1);
    }
  }
  const times: number[] = [];
  // Five seconds apart: every call is a full re-assessment, never the dirty-only one.
  for (let i = 1; i <= 60; i++) {
    // A good reading of every equipment just before (not timed): polled equipment is not silent.
    for (let e = 0; e < EQUIPMENT; e++)
      judge.ingest([{ equipment: `E-${e}`, point: 'p5', value: 40, quality: 'good', ts: t0 + i * 5000 - 1 }]);
    const t = performance.now();
    judge.tick(t0 + i * 5000);
    times.push(performance.now() - t);
  }
  return times.slice(10);
}

/**
 * A day of alarm history for 5,000 equipment: `incidents` incidents spread over 24 h, with a flood
 * hour holding a fifth of them; each raised, acknowledged after 20 s to 10 min (nine in ten),
 * cleared, closed; one in twenty fleeting, a few shelved and chattering; 200 still active.
 */
function history(incidents: number, now: number): { events: AlarmEvent[]; active: ActiveAlarm[] } {
  const events: AlarmEvent[] = [];
  const levels: Level[] = ['blue', 'yellow', 'yellow', 'orange', 'orange', 'red'];
  const flood = now - 6 * 3_600_000;
  let seed = 19;
  const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
  const active: ActiveAlarm[] = [];
  for (let i = 0; i < incidents; i++) {
    const e = Math.floor(random() * EQUIPMENT);
    const rule = i % 7 === 0 ? 'combined' : 'limit';
    const level = levels[i % levels.length]!;
    const raised = i % 5 === 0 ? flood + random() * 3_600_000 : now - DAY + random() * (DAY - 60_000);
    const base = { incidentId: `E-${e}/${rule}/${i}`, level, site: 'bench', equipment: `E-${e}`, rule, message: 'x' };
    const ev = (type: AlarmEvent['type'], state: AlarmEvent['state'], ts: number, extra: Partial<AlarmEvent> = {}) =>
      events.push({ ...base, eventId: `${i}-${type}`, type, state, ts: Math.min(ts, now - 1), ...extra });
    ev('raised', 'active_unacknowledged', raised);
    if (i < 200) {
      active.push({
        ...base,
        key: `E-${e}/${rule}`,
        state: 'active_unacknowledged',
        raisedAt: raised,
        uncertain: false,
      });
      continue;
    }
    if (i % 97 === 0) ev('chattering', 'active_unacknowledged', raised + 1000);
    const clearedAt = raised + (i % 20 === 0 ? 3000 : 30_000 + random() * 1_800_000);
    if (i % 10 !== 0) {
      const acked = raised + 20_000 + random() * 580_000;
      ev('acknowledged', 'active_acknowledged', acked, { by: 'op' });
      if (i % 50 === 1) {
        ev('shelved', 'shelved', acked + 1000, { by: 'op', shelvedUntil: acked + 3_600_000 });
        ev('unshelved', 'active_acknowledged', acked + 600_000);
      }
    }
    ev('cleared', i % 10 !== 0 ? 'normal' : 'returned_unacknowledged', Math.max(clearedAt, raised + 1));
    ev('closed', 'normal', Math.max(clearedAt, raised + 1) + 1);
  }
  events.sort((a, b) => a.ts - b.ts);
  return { events, active };
}

function kpiTimes(incidents: number): { events: number; times: number[] } {
  const now = Date.now();
  const { events, active } = history(incidents, now);
  const kpi = new AlarmKpi({ operators: 1 });
  kpi.add(events);
  kpi.setActive(active);
  const times: number[] = [];
  for (let i = 0; i < 15; i++) {
    const t = performance.now();
    kpi.report(DAY, now);
    times.push(performance.now() - t);
  }
  return { events: events.length, times: times.slice(3) };
}

export async function riskBeside(): Promise<{ name: string; lines: string[] }> {
  const common = { nearMissNormal: NEAR_MISS_NORMAL };
  const ticks: number[] = [];
  const defaults = siteOf(common);
  const variants: Variant[] = [
    { key: 'A', label: 'alarm service, predictions off', config: siteOf({ ...common, predict: false }) },
    { key: 'B', label: 'alarm service, predictions at their defaults', config: defaults },
    { key: 'C', label: 'B + risk service', config: defaults, attach: riskAttach(ticks) },
  ];
  const lines = [
    `${(EQUIPMENT * POINTS).toLocaleString('en-US')} points (${EQUIPMENT.toLocaleString('en-US')} equipment × ${POINTS}), the rule bench's site, batches and scenarios (${READ} readings of 10 counted); ${MEASURE_MS / 1000} s each after ${WARM_UP_MS / 1000} s of warm-up; A B C alternated (the order turned each round), ${ROUNDS} rounds per scenario; ratios are B/A and C/A of the same round`,
  ];
  for (const s of SCENARIOS) {
    const runs: Record<Variant['key'], Measured[]> = { A: [], B: [], C: [] };
    for (let r = 0; r < ROUNDS; r++) {
      // The order turns each round (A B C, B C A, C A B) and the heap is collected before each run: the
      // variant run last would otherwise always pay for the garbage of the two before it.
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(k + r) % variants.length]!;
        (globalThis as { gc?: () => void }).gc?.();
        runs[v.key].push(await throughService(v.config, s, v.attach));
      }
    }
    const ratios = (k: 'B' | 'C', f = rate) => runs[k].map((m, i) => f(m) / f(runs.A[i]!));
    const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)} (median ${median(xs).toFixed(2)})`;
    const cpu = (k: Variant['key']) => `${median(runs[k].map((m) => (m.cpuSeconds / m.seconds) * 100)).toFixed(0)} %`;
    lines.push(
      `${s.name}: evaluated readings/s, median of ${ROUNDS}: A ${n0(median(runs.A.map(rate)))}, B ${n0(median(runs.B.map(rate)))}, C ${n0(median(runs.C.map(rate)))}; B/A ${range(ratios('B'))}, C/A ${range(ratios('C'))}; per CPU second B/A ${range(ratios('B', perCpu))}, C/A ${range(ratios('C', perCpu))}; CPU of one core A ${cpu('A')}, B ${cpu('B')}, C ${cpu('C')}; alarm events C ${n0(median(runs.C.map((m) => m.events)))}`,
    );
  }
  const sorted = [...ticks].sort((a, b) => a - b);
  lines.push(
    `risk service tick (1 s interval, timed around the whole callback: judge, commit, publish) during the C runs: ${sorted.length} ticks, p50 ${ms(pct(sorted, 0.5))} ms, p99 ${ms(pct(sorted, 0.99))} ms, max ${ms(sorted.at(-1)!)} ms`,
  );
  const full = fullAssessment(defaults).sort((a, b) => a - b);
  lines.push(
    `Judge re-assessing all ${EQUIPMENT.toLocaleString('en-US')} equipment (every 5 s; 500 with an active alarm, 250 with a near miss, 100 with a connection drop): p50 ${ms(pct(full, 0.5))} ms, p99 ${ms(pct(full, 0.99))} ms over ${full.length} ticks`,
  );
  for (const incidents of [2_000, 40_000]) {
    const k = kpiTimes(incidents);
    const t = k.times.sort((a, b) => a - b);
    lines.push(
      `KPI report for the site over 24 h, ${incidents.toLocaleString('en-US')} incidents (${k.events.toLocaleString('en-US')} events, a fifth in one flood hour, 200 active): p50 ${ms(pct(t, 0.5))} ms, p99 ${ms(pct(t, 0.99))} ms`,
    );
  }
  return { name: 'Risk judgement beside the rule engine (issue 19: at most 20 % fewer readings/s)', lines };
}
