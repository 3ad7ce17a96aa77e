// A running gateway: its parts built from a site config as a list of services (gateway/services/),
// started in that order and stopped in reverse by one runner.
import { resolve } from 'node:path';
import { ConfigError, formatProblem, GatewayError } from '../config/errors.js';
import { loadSiteFile } from '../config/load.js';
import { forgetProfiles } from '../config/profiles.js';
import type { SiteConfig } from '../config/schema.js';
import { forgetTemplates } from '../config/templates.js';
import { createAlarmService, type AlarmService } from './alarms/service.js';
import type { HttpApi } from './http/server.js';
import { encodeAlarms, encodeResults } from './influx/line-protocol.js';
import type { InfluxWriter } from './influx/writer.js';
import type { QcApi } from './lab/qc.js';
import type { ResultService } from './lab/results.js';
import type { Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createMemoryWatch } from './memory.js';
import type { EmbeddedBroker } from './mqtt/broker.js';
import type { MqttLink } from './mqtt/link.js';
import { topicsFor, type Topics } from './mqtt/topics.js';
import type { Pipeline } from './pipeline.js';
import type { Forwarder } from './platform/forwarder.js';
import type { Outbox } from './platform/outbox.js';
import type { Uplink } from './platform/uplink.js';
import { createLabDailyService } from './lab/daily.js';
import { equipmentChanged, pointsChanged, restartNeeded, type ReloadOutcome } from './reload.js';
import { createReportService } from './report/service.js';
import { createRiskService, type RiskService } from './risk/service.js';
import { deviceServices } from './services/devices.js';
import { httpService } from './services/http.js';
import { influxService } from './services/influx.js';
import { labService } from './services/lab.js';
import { mqttServices } from './services/mqtt.js';
import { pipelineService } from './services/pipeline.js';
import { platformService } from './services/platform.js';
import { service, ServiceRunner, type Service } from './services/service.js';
import { sparkplugClientId, sparkplugService } from './services/sparkplug.js';
import { storeService } from './services/store.js';
import type { GatewayStore } from './store.js';

export { createInfluxWriterService } from './services/influx.js';

// The parts a site may leave out (embedded broker, InfluxDB writer, platform forwarder and uplink,
// HTTP API, simulators, and the drivers, see drivers/index.ts) import their modules when they start:
// a site that does not configure one does not load its packages (aedes, the InfluxDB client,
// https, fastify, node-opcua, serialport). What every site runs is imported above.

export interface Gateway {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The site config it runs now: a reload (docs/reload.md) replaces it. */
  readonly config: SiteConfig;
  /**
   * Re-reads the site file it was started from (or takes `next`) and applies it without a restart
   * (gateway/reload.ts): refused, with `path: message` lines, when the file is invalid, changes what
   * needs a restart, or a reload, start or stop is under way.
   */
  reload(next?: SiteConfig): Promise<ReloadOutcome>;
  readonly topics: Topics;
  readonly pipeline: Pipeline;
  readonly link: MqttLink;
  /** The embedded broker, when the site uses it. */
  readonly broker: EmbeddedBroker | undefined;
  /** The URL the gateway's MQTT client uses (for the embedded broker: its real address). */
  mqttUrl(): string;
  /** Each opened connection's driver counters (requests, failures, overruns...). */
  driverStats(): Array<{ connection: string; stats: Record<string, number> }>;
  /** The InfluxDB writer, when the site has an `influx:` section; built by start(), read it after. */
  readonly influx: InfluxWriter | undefined;
  readonly metrics: Metrics;
  /** The rule engine and alarm lifecycle. */
  readonly alarms: AlarmService;
  /** Lab results from the instruments. */
  readonly results: ResultService;
  /** The lab results (as above) and quality control's control series. */
  readonly lab: { results: ResultService; qc: QcApi };
  /** Risk judgement (levels with their reasons, KPIs, near misses); undefined when the site file sets risk.enabled: false. */
  readonly risk: RiskService | undefined;
  /** The HTTP API, when the site has an `http:` section; built by start(), undefined before. */
  readonly http: HttpApi | undefined;
  /** The durable store (alarm states, outbox, lab results), open while the gateway runs. */
  store(): GatewayStore | undefined;
  /** Its parts, in the order they start. */
  readonly services: readonly Service[];
  /** The platform outbox and forwarder, when the site has a `platform:` section. */
  readonly platform: { outbox(): Outbox | undefined; forwarder(): Forwarder | undefined; uplink(): Uplink | undefined } | undefined;
}

/** An alarm event waiting for the store, as an estimate of its bytes in memory (an object of a dozen short fields). */
const EVENT_BYTES = 600;

export function createGateway(config: SiteConfig, log: Logger, opts: { siteFile?: string } = {}): Gateway {
  let current = config;
  let phase: 'new' | 'starting' | 'running' | 'stopping' = 'new';
  let reloading: Promise<unknown> | undefined;
  const topics = topicsFor(config.mqtt.topic_prefix, config.gateway.site);
  const dataDir = resolve(config.gateway.data_dir);
  // Process figures too (CPU, memory, event-loop lag) for /metrics.
  const metrics = createMetrics({ defaults: true });
  const memory = createMemoryWatch({
    metrics,
    log: log.child({ component: 'memory' }),
    budget: config.gateway.memory_budget,
    warnAt: config.gateway.memory_warn_at,
  });
  const mqtt = mqttServices(config, {
    log,
    metrics,
    dataDir,
    topics,
    ...(config.sparkplug?.enabled ? { otherClientIds: [sparkplugClientId(config)] } : {}),
  });
  const { broker, link } = mqtt;
  const influx = config.influx
    ? influxService(config, log, metrics, { broker: broker?.broker, url: mqtt.url, clientId: mqtt.influxClientId })
    : undefined;
  // Its health lists the equipment of the moment: a reload may add or remove some.
  const pipeline = pipelineService(
    liveConfig(() => current),
    { link, topics, log, metrics },
  );
  // The alarm service, built below, sees first whether the store can write (for /ready).
  const store = storeService(dataDir, log, () => alarms.storeStats());
  const platform = config.platform ? platformService(config, log, metrics, store.store) : undefined;
  const alarms = createAlarmService({
    config,
    pipeline: pipeline.pipeline,
    link,
    topics,
    log: log.child({ component: 'rules' }),
    metrics,
    store: store.store,
    ...(platform ? { platform: platform.commitPart } : {}),
  });
  // Out of service closed its incident at the platform: not an active one there.
  platform?.countActive(() => alarms.active().filter((a) => a.state !== 'out_of_service').length);
  if (influx) alarms.onEvents((events) => influx.writer.acceptLines(encodeAlarms(events)));
  const risk = config.risk.enabled
    ? createRiskService({
        config,
        pipeline: pipeline.pipeline,
        alarms,
        link,
        topics,
        log: log.child({ component: 'risk' }),
        metrics,
        store: store.store,
        ...(platform ? { outbox: platform.outbox, notify: platform.notify } : {}),
        ...(influx ? { influx: (lines: string[]) => influx.writer.acceptLines(lines) } : {}),
      })
    : undefined;
  // The daily safety report: written at report.at (site time) for the day before, kept in the data folder.
  const report = createReportService({
    // The equipment of the moment in each day's report.
    config: liveConfig(() => current),
    log,
    dataDir,
    store: store.current,
    ...(platform ? { outbox: platform.outbox, notify: platform.notify } : {}),
  });
  // Each lab instrument's daily upload summary: at lab.daily_summary.at (site time) for the day before, to the platform.
  const labDaily =
    platform && createLabDailyService({ config, log, store: store.current, outbox: platform.outbox, notify: platform.notify });
  // The Sparkplug B edge node (docs/sparkplug.md), fed every batch and every alarm event.
  const sparkplug = config.sparkplug?.enabled
    ? sparkplugService(
        { ...config, sparkplug: config.sparkplug },
        {
          log,
          metrics,
          dataDir,
          store: store.store,
          gatewayBroker: { url: mqtt.url, login: mqtt.gatewayLogin },
          onReadings: (l) => pipeline.pipeline.onBatch(l),
          onAlarmEvents: (l) => alarms.onEvents(l),
          activeAlarms: () => alarms.active(),
        },
      )
    : undefined;
  const lab = labService(
    {
      config,
      link,
      topics,
      log: log.child({ component: 'lab' }),
      metrics,
      store: store.store,
      ...(platform ? { platformOutbox: platform.outbox, notifyPlatform: platform.notify } : {}),
      // QC rejections and refused files are external alarms; the rule engine starts before the lab service.
      setAlarm: (key, value, detail) => void alarms.setExternal(key, value, detail),
    },
    (batch) => pipeline.pipeline.push(batch),
  );
  if (influx) lab.results.onResults((r) => influx.writer.acceptLines(encodeResults(r, config.gateway.site)));
  const devices = deviceServices(config, {
    log,
    metrics,
    dataDir,
    context: (driverLog) => ({
      log: driverLog,
      sink: (batch) => pipeline.pipeline.push(batch),
      results: (r, counter) => lab.results.sink(r, counter),
      labEvents: (e) => lab.labEvent(e),
      resultRoom: () => lab.results.room(),
      counters: { get: (key) => store.store().counter(key), save: (key, state) => store.store().saveCounter(key, state) },
      dataDir,
      timeZone: config.gateway.timezone,
    }),
  });

  // What the parts hold in memory, for /metrics and the budget warning (the HTTP API adds its own).
  memory.register('mqtt_unacknowledged', () => link.stats().pendingChars ?? 0);
  if (influx) memory.register('influx_before_spool', () => influx.writer.stats().memoryBytes);
  memory.register('alarm_events_before_store', () => alarms.storeStats().uncommittedEvents * EVENT_BYTES);

  const http = config.http
    ? httpService({
        // Read at each request: the equipment's limits and intervals as the last reload left them.
        config: liveConfig(() => current),
        http: config.http,
        log: log.child({ component: 'http' }),
        metrics,
        pipeline: pipeline.pipeline,
        alarms,
        // The risk API serves the kept daily reports too.
        risk: risk && { ...risk.api, ...(report ? { report: report.report } : {}) },
        outbox: () => platform?.outbox(),
        dataDir,
        memory,
        reportsOnChange: devices.reportsOnChange,
        // The latest lab results and the QC series (/api/lab/*).
        lab: { results: lab.results, qc: lab.qc },
        ready: () => runner.health(),
        reload: () => reload(),
      })
    : undefined;

  const services: Service[] = [
    service('memory', 'memory watch', { start: async () => memory.start(), stop: async () => memory.stop() }),
    store,
    ...(broker ? [broker] : []),
    // The writer subscribes before anything publishes, so it sees the first reading; it stops after the MQTT client.
    ...(influx ? [influx] : []),
    mqtt.linkService,
    pipeline,
    // The outbox is open before the first alarm event, which it takes before anything publishes it.
    ...(platform ? [platform] : []),
    // Rules see every reading before it is published, from the first poll on.
    service('rules', 'rule engine', { start: () => alarms.start(), stop: () => alarms.stop() }),
    // Judges risk from the rules' alarms and every reading, from the first poll on.
    ...(risk ? [risk] : []),
    // After the rules (its first births carry the active alarms), before the devices' first readings.
    ...(sparkplug ? [sparkplug] : []),
    ...(report ? [report] : []),
    ...(labDaily ? [labDaily] : []),
    lab,
    ...devices.services,
    ...(http ? [http] : []),
  ];
  const runner = new ServiceRunner(services, log);

  const apply = async (next: SiteConfig): Promise<ReloadOutcome> => {
    const t0 = Date.now();
    const needed = restartNeeded(current, next);
    if (needed.length > 0)
      return {
        ok: false,
        reason: 'restart',
        message: 'the new site file changes what needs a restart; nothing was applied',
        problems: needed,
      };
    // Rules first, in one turn of the event loop: no batch of readings meets half of them; then the
    // connections, so a reopened one's first readings meet the new rules.
    // A removed rule's incident ends at the platform with its equipment's code and name: the platform's
    // equipment only grows; an added equipment's rules may raise as soon as its driver reads.
    platform?.equipmentChanged(next.equipment);
    const counts = alarms.reconfigure(next);
    risk?.rulesChanged();
    // The parts that describe points follow them before a restarted driver reads a new one: the
    // pipeline's status, the HTTP API's trend rings (from `current`), the Sparkplug births.
    const changedPoints = pointsChanged(current, next);
    const previous = current;
    current = next;
    pipeline.pipeline.pointsChanged(changedPoints);
    http?.api?.equipmentChanged();
    sparkplug?.node()?.pointsChanged(next.equipment.filter((e) => changedPoints.includes(e.id)));
    // Equipment added or removed (only without the risk judgement, gateway/reload.ts): the parts that
    // take telemetry by equipment know an added one before its driver starts.
    const { added, removed } = equipmentChanged(previous, next);
    if (added.length + removed.length > 0) {
      sparkplug?.node()?.equipmentChanged(next.equipment);
      influx?.writer.equipmentChanged(next.equipment);
    }
    const connections = await devices.reload(next, (svc) => {
      if (!runner.adopt(svc)) void svc.stop();
    });
    // A removed one's driver is stopped now: its retained status goes.
    if (added.length + removed.length > 0) pipeline.pipeline.equipmentChanged(next.equipment.map((e) => e.id));
    return { ok: true, alarms: counts, connections, ms: Date.now() - t0 };
  };
  const reload = async (given?: SiteConfig): Promise<ReloadOutcome> => {
    const busy = (message: string): ReloadOutcome => ({ ok: false, reason: 'busy', message, problems: [] });
    if (phase !== 'running') return busy(`the gateway is ${phase === 'new' ? 'not started' : phase}; try again once it runs`);
    if (reloading) return busy('a reload is under way; try again once it is done');
    if (!given && !opts.siteFile) return busy('the gateway was not started from a site file');
    // Taken before the file is read: a second request meanwhile is refused, not applied twice.
    const applying = (async () => {
      let next = given;
      if (!next) {
        const read = readSiteFile(opts.siteFile!);
        if (!read.ok) return read;
        next = read.config;
      }
      return apply(next);
    })();
    reloading = applying;
    try {
      return await applying;
    } finally {
      reloading = undefined;
    }
  };

  return {
    get config() {
      return current;
    },
    reload,
    topics,
    pipeline: pipeline.pipeline,
    link,
    broker: broker?.broker,
    mqttUrl: mqtt.url,
    get influx() {
      return influx?.writer;
    },
    metrics,
    alarms,
    results: lab.results,
    lab: { results: lab.results, qc: lab.qc },
    risk: risk?.api,
    get http() {
      return http?.api;
    },
    store: store.current,
    platform: platform ? { outbox: platform.outbox, forwarder: platform.forwarder, uplink: platform.uplink } : undefined,
    driverStats: devices.stats,
    services,
    async start() {
      phase = 'starting';
      await runner.start();
      if (runner.stopped) return;
      phase = 'running';
      log.info({ gateway: config.gateway.id, site: config.gateway.site, equipment: config.equipment.length }, 'Gateway started');
    },
    async stop() {
      phase = 'stopping';
      // A reload under way finishes first: what it started is stopped with the rest.
      await reloading?.catch(() => undefined);
      await runner.stop();
      log.info('Gateway stopped');
    },
  };
}

/** The site file as a reload reads it: the config, or the loader's problems as `path: message` lines. */
function readSiteFile(file: string): { ok: true; config: SiteConfig } | (ReloadOutcome & { ok: false }) {
  // An edited template or profile file is read as the site file is.
  forgetTemplates();
  forgetProfiles();
  try {
    return { ok: true, config: loadSiteFile(file) };
  } catch (err) {
    if (err instanceof ConfigError)
      return {
        ok: false,
        reason: 'invalid',
        message: `${file} is not valid; the running config goes on`,
        problems: err.problems.map(formatProblem),
      };
    if (err instanceof GatewayError) return { ok: false, reason: 'invalid', message: err.message, problems: [] };
    throw err;
  }
}

/** A config whose sections are read from `get()` at each use: what a part built once sees of a reload. */
function liveConfig(get: () => SiteConfig): SiteConfig {
  const view = {};
  for (const key of Object.keys(get()))
    Object.defineProperty(view, key, { enumerable: true, get: () => (get() as unknown as Record<string, unknown>)[key] });
  return view as SiteConfig;
}
