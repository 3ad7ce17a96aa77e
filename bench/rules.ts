// Rule engine: 10,000 alarms over 50,000 points (5,000 equipment × 10 points, two rules each), fed
// batches of one equipment's readings as drivers produce them, through the gateway's alarm service
// with its real store: what each batch changed (alarm states and the platform's incident events) is
// committed in one SQLite transaction (WAL, synchronous FULL) before the batch goes on. Only the
// MQTT link (it discards) and the pipeline (the bench pushes batches into the service's listener)
// are stand-ins. Figures are per reading a rule reads: the other points of a batch are not counted.
import { reportsOnChangeOf } from '../drivers/index.js';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseSite } from '../config/load.js';
import type { SiteConfig } from '../config/schema.js';
import type { Reading } from '../drivers/types.js';
import { createAlarmService, type AlarmService, type PlatformCommit } from '../gateway/alarms/service.js';
import { createMetrics } from '../gateway/metrics.js';
import type { MqttLink } from '../gateway/mqtt/link.js';
import { topicsFor } from '../gateway/mqtt/topics.js';
import type { BatchListener, Pipeline } from '../gateway/pipeline.js';
import { incidentOf } from '../gateway/platform/contract.js';
import { Outbox } from '../gateway/platform/outbox.js';
import { GatewayStore, STORE_FILE } from '../gateway/store.js';
import { ruleSpecsOf } from '../rules/compile.js';
import { RuleEngine } from '../rules/engine.js';

export const EQUIPMENT = 5000;
export const POINTS = 10;
/** The points the two rules read (`p0 > 90`, `p1 < 10 && p2 > 0.5 * p3`); p4..p9 are read by none. */
export const READ = 4;
export const WARM_UP_MS = 1000;
export const MEASURE_MS = 3000;

export interface Scenario {
  name: string;
  /** Whether batch n of equipment e crosses the limits (p0 above 90, p1 below 10). */
  hot: (e: number, n: number) => boolean;
}

export const SCENARIOS: Scenario[] = [
  { name: 'no transition (values inside the limits): nothing to commit', hot: () => false },
  { name: '2 % of batches cross a limit (a raise, then a clear at the next poll)', hot: (e, n) => (e * 7 + n) % 50 === 0 },
  // Round-robin over 5,000 equipment: an equipment's first poll raises both its alarms, its next clears them.
  { name: 'every batch changes two alarms (raised, then cleared at the next poll): one commit per batch', hot: (_e, n) => n % 2 === 0 },
];

/** What the rules add beyond the rule bench's site: `predict: false` turns the predicted warnings off; a near-miss normal on p0 makes the risk service track near misses. */
export interface SiteOptions {
  predict?: false;
  nearMissNormal?: number;
}

export function siteOf(opts: SiteOptions = {}): SiteConfig {
  const points = Array.from({ length: POINTS }, (_, k) => `{ name: p${k}, address: "hr:${k * 2}", type: float32 }`).join(', ');
  // Drivers are never started here: the connections only make the site file valid (250 unit ids on each).
  const connections = Math.ceil(EQUIPMENT / 250);
  const extra = (near: boolean) =>
    `${opts.predict === false ? ', predict: false' : ''}${near && opts.nearMissNormal !== undefined ? `, near_miss: { normal: ${opts.nearMissNormal} }` : ''}`;
  const yaml = `version: 1
gateway: { id: gw-bench, site: bench, data_dir: /tmp/gw-bench-rules }
connections:
${Array.from({ length: connections }, (_, c) => `  - { id: c${c}, type: modbus-tcp, host: 127.0.0.1, port: ${10_000 + c} }`).join('\n')}
equipment:
${Array.from({ length: EQUIPMENT }, (_, e) => `  - { id: E-${e}, category: pressure_vessel, connection: c${Math.floor(e / 250)}, unit_id: ${(e % 250) + 1}, points: [${points}] }`).join('\n')}
rules:
  - { id: limit, equipment: { category: pressure_vessel }, when: "p0 > 90", level: orange, message: "x {value}", deadband: 1${extra(true)} }
  - { id: combined, equipment: { category: pressure_vessel }, when: "p1 < 10 && p2 > 0.5 * p3", level: orange, message: "x {value}", deadband: 1${extra(false)} }
`;
  return parseSite(yaml, { env: {} });
}

/** One equipment's poll: 10 readings, 4 of them read by a rule. */
export function batchOf(s: Scenario, e: number, n: number, ts: number): Reading[] {
  const hot = s.hot(e, n);
  const values = [hot ? 95 : 50, hot ? 5 : 50, 40, 40, 40, 40, 40, 40, 40, 40];
  return values.map((value, k) => ({ equipment: `E-${e}`, point: `p${k}`, value, quality: 'good' as const, ts }));
}

/** The MQTT link, discarding: what it costs is measured by the telemetry benchmark. */
export const discardingLink: MqttLink = {
  start: async () => {},
  stop: async () => {},
  publishTelemetry: () => {},
  publishStatus: () => {},
  setGatewayHealth: () => {},
  publishEvent: () => {},
  clearRetained: () => {},
  stats: () => ({ connected: true, delivered: 0, pending: 0, dropped: 0, queued: 0, queuedBytes: 0, oldestQueuedAt: undefined }),
};

export interface Measured {
  batches: number;
  seconds: number;
  cpuSeconds: number;
  latencies: number[];
  events: number;
  /** Batches whose changes were committed (one transaction each). */
  commits: number;
  outboxRows: number;
  alarmRows: number;
  /** Alarms in the active list at the end (raised or cleared, not acknowledged: nobody acknowledges here). */
  active: number;
}

/** Feeds batches for `ms`, round-robin over the equipment, yielding now and then so the service's 250 ms tick runs as in a gateway. */
export async function feed(
  push: (batch: Reading[]) => number,
  s: Scenario,
  ms: number,
  from: number,
): Promise<{ next: number; batches: number; latencies: number[]; seconds: number; cpuSeconds: number }> {
  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let i = from;
  while (performance.now() - t0 < ms) {
    for (let k = 0; k < 50; k++, i++) {
      const batch = batchOf(s, i % EQUIPMENT, Math.floor(i / EQUIPMENT), Date.now());
      latencies.push(push(batch));
    }
    await new Promise((r) => setImmediate(r));
  }
  const cpu = process.cpuUsage(cpu0);
  return { next: i, batches: i - from, latencies, seconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/** What a service that rides along with the alarm service is given (bench/risk.ts starts the risk service with it). */
export interface Companion {
  start(): Promise<void>;
  stop(): Promise<void>;
}
export type Attach = (deps: {
  config: SiteConfig;
  pipeline: Pipeline;
  alarms: AlarmService;
  store: GatewayStore;
  outbox: Outbox;
}) => Companion;

/** Every equipment online, as the pipeline reports one whose readings are good (the risk service asks each tick). */
const ONLINE = { state: 'online' as const, ts: Date.now() };

/**
 * The alarm service with its store in a temp folder, and the platform's outbox on the same store;
 * `attach` adds a service on the same pipeline, alarm service and store, started after the alarm
 * service and stopped before it, as in the gateway.
 */
export async function throughService(config: SiteConfig, s: Scenario, attach?: Attach): Promise<Measured> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-rules-'));
  const store = new GatewayStore(join(dir, STORE_FILE));
  const outbox = new Outbox(store);
  const equipment = new Map(config.equipment.map((e) => [e.id, { id: e.id, code: e.code, category: e.category, name: e.name }]));
  // What the gateway's platform component adds to each commit: the incidents of the events (no forwarder runs).
  const platform: PlatformCommit = {
    add: (events) => void outbox.add(events.flatMap((e) => incidentOf(e, equipment.get(e.equipment), config.gateway.id) ?? [])),
    notify: () => {},
  };
  const listeners: BatchListener[] = [];
  const pipeline: Pipeline = {
    push: (batch) => listeners.forEach((l) => l(batch)),
    onBatch: (l) => void listeners.push(l),
    stop: async () => {},
    status: () => ONLINE,
    stats: () => ({ readings: 0, batches: 0, listenerErrors: 0 }),
    pointsChanged: () => {},
    equipmentChanged: () => {},
  };
  const service = createAlarmService({
    config,
    pipeline,
    link: discardingLink,
    topics: topicsFor('gw', config.gateway.site),
    log: pino({ level: 'silent' }),
    metrics: createMetrics(),
    store: () => store,
    platform: () => platform,
  });
  const companion = attach?.({ config, pipeline, alarms: service, store, outbox });
  let events = 0;
  let commits = 0;
  service.onEvents((e) => {
    events += e.length;
    commits++;
  });
  try {
    await service.start();
    await companion?.start();
    const push = (batch: Reading[]) => {
      const t = performance.now();
      pipeline.push(batch);
      return performance.now() - t;
    };
    const { next } = await feed(push, s, WARM_UP_MS, 0);
    const [rows0, events0, commits0] = [countRows(store), events, commits];
    const m = await feed(push, s, MEASURE_MS, next);
    const rows = countRows(store);
    const measured = {
      ...m,
      events: events - events0,
      commits: commits - commits0,
      outboxRows: rows.event - rows0.event,
      alarmRows: rows.alarm,
      active: service.active().length,
    };
    await companion?.stop();
    await service.stop();
    return measured;
  } finally {
    outbox.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function bareCommitsPerSecond(): number {
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-fsync-'));
  const db = new Database(join(dir, 'bare.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const row = 'x'.repeat(300);
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 1000) {
      insert.run(row);
      n++;
    }
    return n / ((performance.now() - t0) / 1000);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function countRows(store: GatewayStore): { event: number; alarm: number } {
  const count = (table: string) => (store.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  return { event: count('event'), alarm: count('alarm') };
}

/** The engine alone, in memory, as the earlier figure measured it: no store, no service. */
async function engineAlone(config: SiteConfig, s: Scenario): Promise<Measured> {
  const engine = new RuleEngine({ site: config.gateway.site, rules: ruleSpecsOf(config, reportsOnChangeOf(config)), now: Date.now() });
  let events = 0;
  const push = (batch: Reading[]) => {
    const t = performance.now();
    events += engine.ingest(batch).length;
    return performance.now() - t;
  };
  const { next } = await feed(push, s, WARM_UP_MS, 0);
  const events0 = events;
  const m = await feed(push, s, MEASURE_MS, next);
  return { ...m, events: events - events0, commits: 0, outboxRows: 0, alarmRows: 0, active: engine.active().length };
}

function line(label: string, m: Measured, withStore: boolean): string {
  m.latencies.sort((a, b) => a - b);
  const pct = (q: number) => (m.latencies[Math.min(m.latencies.length - 1, Math.floor(q * m.latencies.length))]! * 1000).toFixed(1);
  const evaluated = (m.batches * READ) / m.seconds;
  const store = withStore
    ? `; ${m.commits.toLocaleString('en-US')} commits (${Math.round(m.commits / m.seconds).toLocaleString('en-US')}/s), ${m.outboxRows.toLocaleString('en-US')} outbox events committed, ${m.alarmRows.toLocaleString('en-US')} alarm states in the store, ${m.active.toLocaleString('en-US')} alarms in the active list`
    : '';
  return `${label}: ${Math.round(evaluated).toLocaleString('en-US')} evaluated readings/s (${Math.round(m.batches / m.seconds).toLocaleString('en-US')} batches/s, ${m.events.toLocaleString('en-US')} alarm events${store}; CPU ${((m.cpuSeconds / m.seconds) * 100).toFixed(0)} % of one core); per batch p50 ${pct(0.5)} µs, p99 ${pct(0.99)} µs, max ${(m.latencies.at(-1)! * 1000).toFixed(0)} µs`;
}

export async function rulesEngine(): Promise<{ name: string; lines: string[] }> {
  const config = siteOf();
  const lines = [
    `${ruleSpecsOf(config, reportsOnChangeOf(config)).length.toLocaleString('en-US')} alarms (2 rules × ${EQUIPMENT.toLocaleString('en-US')} equipment, and the predicted warning of p0 > 90 on each, on by default), ${(EQUIPMENT * POINTS).toLocaleString('en-US')} points; batches of ${POINTS} readings of which ${READ} are read by a rule (only those are counted); ${MEASURE_MS / 1000} s each after ${WARM_UP_MS / 1000} s of warm-up`,
  ];
  // What a commit costs at least on this disk, measured just before and after the scenarios that commit (the disk is shared).
  const floorBefore = bareCommitsPerSecond();
  for (const s of SCENARIOS) lines.push(line(`alarm service + store, ${s.name}`, await throughService(config, s), true));
  const floorAfter = bareCommitsPerSecond();
  lines.push(
    `fsync floor on this disk, just before and after: ${[floorBefore, floorAfter].map((f) => Math.round(f).toLocaleString('en-US')).join(' and ')} bare SQLite commits/s (WAL, synchronous FULL, one row each)`,
  );
  // Side by side in the same run: the engine alone (the earlier headline), with no store and no service.
  lines.push(line(`engine alone in memory, ${SCENARIOS[0]!.name}`, await engineAlone(config, SCENARIOS[0]!), false));
  lines.push(line(`engine alone in memory, ${SCENARIOS[2]!.name.split(':')[0]}`, await engineAlone(config, SCENARIOS[2]!), false));
  return { name: 'Rule engine through the alarm service and its SQLite store (2 rules on 50,000 points)', lines };
}
