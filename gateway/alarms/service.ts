// Wires the rule engine into the gateway: every batch of readings is evaluated in-process before it is
// published (hazard detection never waits on the network), time passes in ticks, alarm states live in
// SQLite in the data folder, and alarm events go to MQTT and to whoever listens (InfluxDB, outbox).
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { Counter, Gauge } from 'prom-client';
import type { SiteConfig } from '../../config/schema.js';
import { ruleSpecsOf } from '../../rules/compile.js';
import { RuleEngine } from '../../rules/engine.js';
import { LEVELS, type ActiveAlarm, type AlarmEvent, type AlarmStore, type PersistedAlarm } from '../../rules/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { MqttLink } from '../mqtt/link.js';
import type { Topics } from '../mqtt/topics.js';
import type { Pipeline } from '../pipeline.js';

const TICK_MS = 250;

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
  onEvents(listener: AlarmListener): void;
  readonly ruleCount: number;
}

/** Alarm states in SQLite (WAL, synchronous FULL): an active alarm survives a crash or a power cut. */
export class SqliteAlarmStore implements AlarmStore {
  private readonly db: Database.Database;
  private readonly upsert: Database.Statement<[string, string]>;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec('CREATE TABLE IF NOT EXISTS alarm (key TEXT PRIMARY KEY, state TEXT NOT NULL)');
    this.upsert = this.db.prepare('INSERT INTO alarm (key, state) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET state = excluded.state');
  }

  load(): Map<string, PersistedAlarm> {
    const rows = this.db.prepare('SELECT key, state FROM alarm').all() as Array<{ key: string; state: string }>;
    return new Map(rows.map((r) => [r.key, JSON.parse(r.state) as PersistedAlarm]));
  }

  save(key: string, alarm: PersistedAlarm): void {
    this.upsert.run(key, JSON.stringify(alarm));
  }

  close(): void {
    this.db.close();
  }
}

export function createAlarmService(opts: {
  config: SiteConfig;
  pipeline: Pipeline;
  link: MqttLink;
  topics: Topics;
  log: Logger;
  metrics: Metrics;
  dataDir: string;
  /** Takes events durably (the platform outbox) before they are published anywhere. */
  commit?: (events: readonly AlarmEvent[]) => void;
}): AlarmService {
  const { config, link, topics, log } = opts;
  const specs = ruleSpecsOf(config);
  const listeners: AlarmListener[] = [];
  let engine: RuleEngine | undefined;
  let store: SqliteAlarmStore | undefined;
  let timer: NodeJS.Timeout | undefined;
  let lastActive = '';
  const recent: AlarmEvent[] = [];
  const eventCounter = new Counter({ name: 'gateway_alarm_events_total', help: 'Alarm events, by type and level', labelNames: ['type', 'level'], registers: [opts.metrics] });
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

  const deliver = (events: readonly AlarmEvent[]) => {
    for (const { key, state } of engine?.takeChanges() ?? []) if (state) store?.save(key, state);
    if (events.length === 0) return;
    try {
      opts.commit?.(events);
    } catch (err) {
      // The alarm still shows locally; the platform will miss it, and the log says so.
      log.error({ err, events: events.map((e) => e.eventId) }, 'Alarm events could not be committed to the platform outbox');
    }
    recent.push(...events);
    if (recent.length > 1000) recent.splice(0, recent.length - 1000);
    for (const e of events) {
      eventCounter.inc({ type: e.type, level: e.level });
      const line = { equipment: e.equipment || undefined, rule: e.rule, level: e.level, state: e.state, incidentId: e.incidentId || undefined, by: e.by };
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

  const run = (what: () => AlarmEvent[]) => {
    if (!engine) throw new Error('The alarm service is not running');
    const events = what();
    deliver(events);
    return events;
  };

  return {
    ruleCount: specs.length,
    async start() {
      store = new SqliteAlarmStore(join(opts.dataDir, 'alarms.db'));
      engine = new RuleEngine({ site: config.gateway.site, rules: specs, store });
      const restored = engine.active();
      if (restored.length > 0) log.info({ alarms: restored.length }, 'Active alarms restored from the data folder');
      log.info({ rules: config.rules.length, alarms: specs.length }, 'Rule engine started');
      // Rules run on every batch before it is published.
      opts.pipeline.onBatch((batch) => {
        if (engine) deliver(engine.ingest(batch));
      });
      timer = setInterval(() => {
        if (engine) deliver(engine.tick(Date.now()));
      }, TICK_MS);
      // The retained list says what is active now, also after a restart.
      lastActive = '';
      publishActive();
    },
    async stop() {
      clearInterval(timer);
      engine = undefined;
      store?.close();
      store = undefined;
    },
    active: () => engine?.active() ?? [],
    history: () => recent,
    acknowledge: (key, by, comment) => run(() => engine!.acknowledge(key, by, comment, Date.now())),
    shelve: (key, by, comment, durationMs) => run(() => engine!.shelve(key, by, comment, durationMs, Date.now())),
    unshelve: (key, by, comment) => run(() => engine!.unshelve(key, by, comment, Date.now())),
    onEvents: (listener) => void listeners.push(listener),
  };
}
