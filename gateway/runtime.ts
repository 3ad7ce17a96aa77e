// Builds the gateway's components from a site config, starts them in dependency order and stops them
// in reverse, flushing what they hold.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { Counter, Gauge } from 'prom-client';
import { findDriver } from '../drivers/index.js';
import type { OpcuaSimulatorConfig } from '../drivers/opcua/schema.js';
import type { ElevatorServer } from '../drivers/opcua/simulator.js';
import type { Driver } from '../drivers/types.js';
import { GatewayError } from '../config/errors.js';
import { insecureRemote } from '../config/platform-schema.js';
import type { SiteConfig } from '../config/schema.js';
import { LEVELS } from '../rules/types.js';
import { createAlarmService, type AlarmService, type PlatformCommit } from './alarms/service.js';
import { prepareDataDir } from './data-dir.js';
import type { HttpApi } from './http/server.js';
import { encodeAlarms, encodeResults } from './influx/line-protocol.js';
import type { TelemetrySource } from './influx/source.js';
import type { InfluxWriter } from './influx/writer.js';
import { createResultService, type ResultService } from './lab/results.js';
import type { Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createMemoryWatch } from './memory.js';
import { BROKER_COUNTERS, GATEWAY_USER, zeroBrokerStats } from './mqtt/acl.js';
import type { EmbeddedBroker, EmbeddedBrokerOptions } from './mqtt/broker.js';
import { createMqttLink, type MqttLink } from './mqtt/link.js';
import { topicsFor, type Topics } from './mqtt/topics.js';
import { createPipeline, type Pipeline } from './pipeline.js';
import { incidentOf } from './platform/contract.js';
import type { Forwarder } from './platform/forwarder.js';
import { Outbox } from './platform/outbox.js';
import type { Uplink } from './platform/uplink.js';
import { GatewayStore, STORE_FILE } from './store.js';

// The parts a site may leave out (embedded broker, InfluxDB writer, platform forwarder and uplink,
// HTTP API, simulators, and the drivers, see drivers/index.ts) import their modules when they start:
// a site that does not configure one does not load its packages (aedes, the InfluxDB client,
// https, fastify, node-opcua, serialport). What every site runs is imported above.

interface Component {
  name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface Gateway {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly config: SiteConfig;
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
  /** The HTTP API, when the site has an `http:` section; built by start(), undefined before. */
  readonly http: HttpApi | undefined;
  /** The durable store (alarm states, outbox, lab results), open while the gateway runs. */
  store(): GatewayStore | undefined;
  /** The platform outbox and forwarder, when the site has a `platform:` section. */
  readonly platform: { outbox(): Outbox | undefined; forwarder(): Forwarder | undefined; uplink(): Uplink | undefined } | undefined;
}

const STOP_TIMEOUT_MS = 1500;
/** An alarm event waiting for the store, as an estimate of its bytes in memory (an object of a dozen short fields). */
const EVENT_BYTES = 600;

export function createGateway(config: SiteConfig, log: Logger): Gateway {
  const topics = topicsFor(config.mqtt.topic_prefix, config.gateway.site);
  const dataDir = resolve(config.gateway.data_dir);
  const embedded = config.mqtt.broker === 'embedded';
  const clientId = config.mqtt.client_id ?? config.gateway.id;
  // The gateway's own clients log in to its embedded broker with a secret made for this process:
  // nothing to configure, nothing another client can learn from a file.
  const gatewaySecret = randomBytes(32).toString('base64url');
  const broker = embedded
    ? lazyBroker({
        host: config.mqtt.host,
        port: config.mqtt.port,
        username: config.mqtt.username,
        password: config.mqtt.password,
        maxPacketSize: config.mqtt.max_packet_size,
        maxConnections: config.mqtt.max_connections,
        topicPrefix: config.mqtt.topic_prefix,
        site: config.gateway.site,
        users: config.mqtt.users,
        // Older site files required mqtt.password of every client: they keep refusing anonymous ones.
        anonymous: config.mqtt.anonymous ?? (config.mqtt.password === undefined ? 'loopback' : 'off'),
        gatewaySecret,
        // The link's id and the gateway's, and the InfluxDB client's when it reads a broker over TCP.
        gatewayClientIds: [...new Set([clientId, config.gateway.id, `${clientId}-influx`])],
        maxRetainedSize: config.mqtt.max_retained_size,
        maxRetained: config.mqtt.max_retained,
        maxPublishRate: config.mqtt.max_publish_rate,
        tls: config.mqtt.tls,
        log: log.child({ component: 'broker' }),
      })
    : undefined;
  const mqttUrl = () => {
    if (!broker) return config.mqtt.broker;
    const { host, port } = broker.address();
    const connectHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
    return `mqtt://${connectHost.includes(':') ? `[${connectHost}]` : connectHost}:${port}`;
  };
  // Process figures too (CPU, memory, event-loop lag) for /metrics.
  const metrics = createMetrics({ defaults: true });
  const memory = createMemoryWatch({
    metrics,
    log: log.child({ component: 'memory' }),
    budget: config.gateway.memory_budget,
    warnAt: config.gateway.memory_warn_at,
  });
  const link = createMqttLink({
    url: mqttUrl,
    config: embedded ? { ...config.mqtt, username: GATEWAY_USER, password: gatewaySecret } : config.mqtt,
    clientId,
    topics,
    log: log.child({ component: 'mqtt' }),
    waitForConnection: embedded,
    queueFile: embedded ? undefined : join(dataDir, 'mqtt-queue.db'),
    metrics,
  });
  const influx = config.influx
    ? createInfluxWriterComponent(config, log, metrics, {
        broker,
        url: mqttUrl,
        clientId: `${config.mqtt.client_id ?? config.gateway.id}-influx`,
      })
    : undefined;
  const pipeline = createPipeline({
    link,
    topics,
    equipment: config.equipment.map((e) => e.id),
    log: log.child({ component: 'pipeline' }),
  });
  let store: GatewayStore | undefined;
  const openStore = () => {
    if (!store) throw new Error('The store is not open');
    return store;
  };
  const platform = config.platform ? createPlatformComponent(config, log, metrics, openStore) : undefined;
  const readingsTotal = new Counter({
    name: 'gateway_readings_total',
    help: 'Readings taken from the equipment, by equipment and quality',
    labelNames: ['equipment', 'quality'],
    registers: [metrics],
  });
  pipeline.onBatch((batch) => {
    for (const r of batch) readingsTotal.inc({ equipment: r.equipment, quality: r.quality });
  });
  const alarms = createAlarmService({
    config,
    pipeline,
    link,
    topics,
    log: log.child({ component: 'rules' }),
    metrics,
    store: openStore,
    ...(platform ? { platform: platform.commitPart } : {}),
  });
  // Out of service closed its incident at the platform: not an active one there.
  platform?.countActive(() => alarms.active().filter((a) => a.state !== 'out_of_service').length);
  if (influx) alarms.onEvents((events) => influx.writer.acceptLines(encodeAlarms(events)));
  const results = createResultService({
    config,
    link,
    topics,
    log: log.child({ component: 'lab' }),
    metrics,
    store: openStore,
    ...(platform ? { platformOutbox: platform.outbox, notifyPlatform: platform.notify } : {}),
  });
  if (influx) results.onResults((r) => influx.writer.acceptLines(encodeResults(r, config.gateway.site)));
  // A result whose analyte is a declared point of its instrument is also a reading: rules see it
  // (a value outside its reference range can raise an alarm like any other).
  const analytePoints = new Map(config.equipment.map((e) => [e.id, new Set(e.points.map((p) => p.name))]));
  results.onResults((r) => {
    const readings = r
      .filter((x) => analytePoints.get(x.instrument)?.has(x.analyte) && (typeof x.value === 'number' || typeof x.value === 'string'))
      .map((x) => ({ equipment: x.instrument, point: x.analyte, value: x.value, quality: 'good' as const, ts: Date.parse(x.resultAt) }));
    if (readings.length > 0) pipeline.push(readings);
  });

  const drivers: Array<{ name: string; connection: string; type: string; driver: Driver }> = [];
  for (const connection of config.connections) {
    const equipment = config.equipment.filter((e) => e.connection === connection.id);
    if (equipment.length === 0) {
      log.warn({ connection: connection.id }, 'Connection has no equipment; not opened');
      continue;
    }
    const definition = findDriver(connection.type);
    if (!definition) throw new GatewayError('GW_ERR_COMPONENT_START', `No driver for connection type "${connection.type}"`);
    const driverLog = log.child({ component: 'driver', connection: connection.id, type: connection.type });
    drivers.push({
      name: `connection ${connection.id} (${connection.type})`,
      connection: connection.id,
      type: connection.type,
      driver: definition.create(connection, equipment, {
        log: driverLog,
        sink: (batch) => pipeline.push(batch),
        results: (r, counter) => void results.sink(r, counter),
        counters: { get: (key) => openStore().counter(key), save: (key, state) => openStore().saveCounter(key, state) },
        dataDir,
      }),
    });
  }
  // Every driver's counters (requests, failures, refused answers, resets, NAKs...) in /metrics, read
  // when scraped: what a driver counts is visible without code of its own here.
  new Gauge({
    name: 'gateway_driver_counter',
    help: "A driver's counters by connection: requests, failures, refused answers (badAnswers), framing errors, resets, late answers, refused connections...",
    labelNames: ['connection', 'type', 'counter'],
    registers: [metrics],
    collect() {
      this.reset();
      for (const d of drivers)
        for (const [counter, value] of Object.entries(d.driver.stats?.() ?? {}))
          this.set({ connection: d.connection, type: d.type, counter }, value);
    },
  });

  // What the embedded broker refused and dropped (logins, publishes, subscriptions, retained, rate...), read when scraped.
  if (broker) {
    new Gauge({
      name: 'gateway_mqtt_broker_counter',
      help: 'Embedded MQTT broker: packets over max_packet_size, connections refused, slow clients, logins, subscriptions and publishes refused, retained messages refused, messages dropped over max_publish_rate, clients disconnected for flooding',
      labelNames: ['counter'],
      registers: [metrics],
      collect() {
        const stats = broker.stats();
        for (const counter of BROKER_COUNTERS) this.set({ counter }, stats[counter]);
      },
    });
  }

  // The HTTP API is built at start before anything reads or raises (it keeps the last readings and
  // the alarm events from the first on), and listens once everything else runs.
  const httpSection = config.http;
  let http: HttpApi | undefined;
  const buildHttp = async (section: NonNullable<SiteConfig['http']>) => {
    const { createHttpApi } = await import('./http/server.js');
    http = createHttpApi({
      config,
      http: section,
      log: log.child({ component: 'http' }),
      metrics,
      pipeline,
      alarms,
      outbox: () => platform?.outbox(),
      dataDir,
      memory,
      ready: () => ({
        store: storeReadiness(alarms.storeStats()),
        mqtt: { ok: link.stats().connected, detail: link.stats() },
        ...(influx ? { influx: { ok: influx.writer.stats().healthy, detail: { spoolLines: influx.writer.stats().spoolLines } } } : {}),
        ...(platform ? { platform: { ok: platform.forwarder()?.stats().healthy ?? false, detail: platform.outbox()?.stats() } } : {}),
        equipment: { ok: true, detail: Object.fromEntries(config.equipment.map((e) => [e.id, pipeline.status(e.id)?.state ?? 'unknown'])) },
      }),
    });
  };
  const simulators = config.simulators.map((s) => ({
    name: `simulator ${s.type} on ${s.host}:${s.port}`,
    type: s.type,
    sim: createSimulator(s, dataDir, log),
  }));

  // Parts that load node-opcua take seconds to start: they come last, so the other devices are
  // already being read meanwhile. Every simulator still starts before the drivers that read it.
  const slow = (type: string) => type.startsWith('opcua');
  const simulatorComponents = simulators.map(({ name, type, sim }) => ({
    name,
    slow: slow(type),
    start: () => sim.start(),
    stop: () => sim.stop(),
  }));
  const driverComponents = drivers.map(({ name, type, driver }) => ({
    name,
    slow: slow(type),
    start: async () => {
      await driver.init();
      await driver.start();
    },
    stop: () => driver.stop(),
  }));
  // What the parts hold in memory, for /metrics and the budget warning (the HTTP API adds its own).
  memory.register('mqtt_unacknowledged', () => link.stats().pendingChars ?? 0);
  if (influx) memory.register('influx_before_spool', () => influx.writer.stats().memoryBytes);
  memory.register('alarm_events_before_store', () => alarms.storeStats().uncommittedEvents * EVENT_BYTES);
  const components: Component[] = [
    { name: 'memory watch', start: async () => memory.start(), stop: async () => memory.stop() },
    // Owner only (0700, files 0600): what was left more open is tightened before anything opens it.
    { name: 'data folder', start: async () => prepareDataDir(dataDir, log.child({ component: 'data' })), stop: async () => {} },
    {
      name: 'store',
      start: async () => {
        store = new GatewayStore(join(dataDir, STORE_FILE));
      },
      stop: async () => {
        store?.close();
        store = undefined;
      },
    },
    ...(httpSection ? [{ name: 'HTTP API module', start: () => buildHttp(httpSection), stop: async () => {} }] : []),
    ...(broker ? [{ name: 'embedded MQTT broker', start: () => broker.start(), stop: () => broker.stop() }] : []),
    // The writer subscribes before anything publishes, so it sees the first reading; it stops after the MQTT client.
    ...(influx ? [influx.component] : []),
    { name: 'MQTT client', start: () => link.start(), stop: () => link.stop() },
    { name: 'pipeline', start: async () => {}, stop: () => pipeline.stop() },
    // The outbox is open before the first alarm event, which it takes before anything publishes it.
    ...(platform ? [platform.component] : []),
    // Rules see every reading before it is published, from the first poll on.
    { name: 'rule engine', start: () => alarms.start(), stop: () => alarms.stop() },
    { name: 'lab results', start: () => results.start(), stop: () => results.stop() },
    ...simulatorComponents.filter((c) => !c.slow),
    ...driverComponents.filter((c) => !c.slow),
    ...simulatorComponents.filter((c) => c.slow),
    ...driverComponents.filter((c) => c.slow),
    ...(httpSection ? [{ name: 'HTTP API', start: () => http!.start(), stop: async () => http?.stop() }] : []),
  ];
  const started: Component[] = [];
  let starting: Promise<void> | undefined;
  let stopping = false;

  const stopAll = async () => {
    while (started.length > 0) {
      const c = started.pop()!;
      let timer: NodeJS.Timeout | undefined;
      const t0 = Date.now();
      try {
        await Promise.race([
          c.stop(),
          new Promise((_, reject) => {
            timer = setTimeout(
              () => reject(new GatewayError('GW_ERR_STOP_TIMEOUT', `${c.name} did not stop within ${STOP_TIMEOUT_MS} ms`)),
              STOP_TIMEOUT_MS,
            );
          }),
        ]);
      } catch (err) {
        log.error({ err, component: c.name }, 'Component did not stop cleanly');
      } finally {
        clearTimeout(timer);
        log.debug({ component: c.name, ms: Date.now() - t0 }, 'Component stopped');
      }
    }
  };

  return {
    config,
    topics,
    pipeline,
    link,
    broker,
    mqttUrl,
    get influx() {
      return influx?.writer;
    },
    metrics,
    alarms,
    results,
    get http() {
      return http;
    },
    store: () => store,
    platform: platform ? { outbox: platform.outbox, forwarder: platform.forwarder, uplink: platform.uplink } : undefined,
    driverStats: () => drivers.map((d) => ({ connection: d.connection, stats: d.driver.stats?.() ?? {} })),
    start() {
      starting = (async () => {
        for (const c of components) {
          if (stopping) return;
          try {
            await c.start();
            started.push(c);
          } catch (err) {
            await stopAll();
            if (err instanceof GatewayError) throw err;
            throw new GatewayError('GW_ERR_COMPONENT_START', `Cannot start ${c.name}: ${(err as Error).message}`, { cause: err });
          }
        }
        if (!stopping)
          log.info({ gateway: config.gateway.id, site: config.gateway.site, equipment: config.equipment.length }, 'Gateway started');
      })();
      return starting;
    },
    async stop() {
      // A stop during start lets the component being started finish, then stops what was started.
      stopping = true;
      await starting?.catch(() => undefined);
      await stopAll();
      log.info('Gateway stopped');
    },
  };
}

/** The store's part of /ready: not ready while it cannot write, with why. */
function storeReadiness(stats: ReturnType<AlarmService['storeStats']>): { ok: boolean; detail: unknown } {
  return { ok: stats.writable, detail: stats.writable ? stats : { ...stats, reason: `store not writable: ${stats.error}` } };
}

/**
 * The InfluxDB writer with its telemetry source: an in-process subscription on the embedded broker,
 * or a shared subscription with a persistent session on an external one. The writer is built when
 * the component starts (it imports the InfluxDB client), and read after that.
 */
export function createInfluxWriterComponent(
  config: SiteConfig,
  log: Logger,
  metrics: Metrics,
  where: { broker: EmbeddedBroker | undefined; url: () => string; clientId: string; spoolFile?: string },
): { readonly writer: InfluxWriter; component: Component } {
  const influxConfig = config.influx!;
  const writerLog = log.child({ component: 'influx' });
  let writer: InfluxWriter | undefined;
  let source: TelemetrySource | undefined;
  return {
    get writer() {
      if (!writer) throw new Error('The InfluxDB writer is not started');
      return writer;
    },
    component: {
      name: 'InfluxDB writer',
      async start() {
        const { createInfluxWriter } = await import('./influx/writer.js');
        const { brokerSource, embeddedSource, telemetryTopic } = await import('./influx/source.js');
        const w = createInfluxWriter({
          config: influxConfig,
          site: config.gateway.site,
          topicPrefix: config.mqtt.topic_prefix,
          equipment: config.equipment,
          dataDir: resolve(config.gateway.data_dir),
          log: writerLog,
          metrics,
          spoolFile: where.spoolFile,
          maxPayloadBytes: config.mqtt.max_packet_size,
        });
        writer = w;
        await w.start();
        const topic = telemetryTopic(config.mqtt.topic_prefix, config.gateway.site);
        const onMessage = (t: string, payload: Buffer) => w.accept(t, payload);
        source = where.broker
          ? embeddedSource(where.broker, topic, onMessage)
          : brokerSource({
              url: where.url(),
              config: config.mqtt,
              clientId: where.clientId,
              topic,
              group: influxConfig.shared_subscription_group,
              log: writerLog,
              onMessage,
            });
        await source.start();
      },
      async stop() {
        await source?.stop();
        await writer?.stop();
      },
    },
  };
}

/**
 * The durable outbox and the forwarder to the central platform. `commit` takes alarm events into the
 * outbox (before they are published anywhere) and wakes the forwarder.
 */
function createPlatformComponent(config: SiteConfig, log: Logger, metrics: Metrics, store: () => GatewayStore) {
  const platformConfig = config.platform!;
  const platformLog = log.child({ component: 'platform' });
  const equipment = new Map(config.equipment.map((e) => [e.id, { id: e.id, code: e.code, category: e.category, name: e.name }]));
  const minLevel = LEVELS.indexOf(platformConfig.min_level);
  let outbox: Outbox | undefined;
  let forwarder: Forwarder | undefined;
  let uplink: Uplink | undefined;
  let active = () => 0;
  return {
    forwarder: () => forwarder,
    outbox: () => outbox,
    uplink: () => uplink,
    notify() {
      forwarder?.notify();
      uplink?.notify();
    },
    countActive(count: () => number) {
      active = count;
    },
    /** The outbox's part of an alarm commit: the incidents of the events, in the same transaction. */
    commitPart(): PlatformCommit | undefined {
      const box = outbox;
      if (!box) return undefined;
      return {
        add(events) {
          const incidents = events.flatMap((e) => {
            const i = LEVELS.indexOf(e.level) >= minLevel ? incidentOf(e, equipment.get(e.equipment), config.gateway.id) : undefined;
            return i ? [i] : [];
          });
          box.add(incidents);
        },
        notify() {
          forwarder?.notify();
          uplink?.notify();
        },
      };
    },
    component: {
      name: 'platform outbox',
      async start() {
        const mqttUrl = platformConfig.mqtt_url;
        // Accepted by platform.allow_insecure: said at every start, so that it is not forgotten.
        for (const url of [platformConfig.url, mqttUrl]) {
          if (url !== undefined && platformConfig.allow_insecure && insecureRemote(url))
            platformLog.warn(
              { url },
              'Platform URL is unencrypted to another machine (platform.allow_insecure: true): incidents and their signatures cross the network readable',
            );
        }
        outbox = new Outbox(store(), { uplink: mqttUrl !== undefined });
        const { createForwarder } = await import('./platform/forwarder.js');
        forwarder = createForwarder({
          config: platformConfig,
          gatewayId: config.gateway.id,
          site: config.gateway.site,
          outbox,
          log: platformLog,
          metrics,
          activeIncidents: () => active(),
        });
        forwarder.start();
        if (mqttUrl !== undefined) {
          const { createUplink } = await import('./platform/uplink.js');
          uplink = createUplink({
            config: { ...platformConfig, mqtt_url: mqttUrl },
            gatewayId: config.gateway.id,
            site: config.gateway.site,
            outbox,
            log: platformLog,
            maxPacketSize: config.mqtt.max_packet_size,
          });
          uplink.start();
        }
      },
      async stop() {
        await uplink?.stop();
        await forwarder?.stop();
        outbox?.close();
        outbox = undefined;
      },
    },
  };
}

/** `gateway influx-writer`: only the writer, against the site's external broker. */
export function createInfluxWriterService(config: SiteConfig, log: Logger, clientId = `${config.gateway.id}-influx-${hostname()}`) {
  if (config.mqtt.broker === 'embedded')
    throw new GatewayError(
      'GW_ERR_COMPONENT_START',
      'gateway influx-writer reads an external broker: set mqtt.broker to its URL (the embedded broker lives inside `gateway run`)',
    );
  if (!config.influx) throw new GatewayError('GW_ERR_COMPONENT_START', 'gateway influx-writer needs an influx: section in the site file');
  // Process figures too (CPU, memory, event-loop lag) for /metrics.
  const metrics = createMetrics({ defaults: true });
  const dataDir = resolve(config.gateway.data_dir);
  const influx = createInfluxWriterComponent(config, log, metrics, {
    broker: undefined,
    url: () => config.mqtt.broker,
    clientId,
    spoolFile: `influx-spool-${clientId}.db`,
  });
  let started = false;
  return {
    get writer() {
      return influx.writer;
    },
    metrics,
    async start() {
      prepareDataDir(dataDir, log.child({ component: 'data' }));
      await influx.component.start();
      started = true;
      log.info({ clientId, target: influx.writer.target }, 'InfluxDB writer running');
    },
    async stop() {
      if (!started) return;
      started = false;
      await influx.component.stop();
      const { received, written, rejectedLines, droppedLines, spoolLines } = influx.writer.stats();
      log.info({ received, written, rejectedLines, droppedLines, spoolLines }, 'InfluxDB writer stopped');
    },
  };
}

/** A simulator from the site file's `simulators:` section, started before the drivers; its module loads then. */
function createSimulator(
  s: SiteConfig['simulators'][number],
  dataDir: string,
  log: Logger,
): { start(): Promise<void>; stop(): Promise<void> } {
  let sim: { start(): Promise<void>; stop(): Promise<void> } | undefined;
  const make = async () => {
    if (s.type === 'modbus-boiler') {
      const { BoilerDevice, createModbusTcpSimulator } = await import('../drivers/modbus/simulator.js');
      return createModbusTcpSimulator({
        host: s.host,
        port: s.port,
        devices: new Map([[s.unit_id, new BoilerDevice(s.scenario, s.seed)]]),
      });
    }
    if (s.type === 'astm-analyzer') return (await import('../drivers/astm/simulator.js')).createAstmAnalyzer(s);
    if (s.type === 'platform-inbox') {
      const inboxLog = log.child({ component: 'platform-inbox' });
      const { createPlatformInbox } = await import('./platform/inbox.js');
      // The ids it has taken stay in the data folder: a restarted demo still recognises a resent event.
      return createPlatformInbox({
        host: s.host,
        port: s.port,
        secret: s.secret,
        out: s.out,
        state: s.state ?? join(dataDir, `platform-inbox-${s.port}.db`),
        print: (line) => inboxLog.info(`Platform inbox: ${line}`),
      });
    }
    return createOpcuaSimulator(s, dataDir);
  };
  return {
    async start() {
      sim = await make();
      await sim.start();
    },
    stop: async () => sim?.stop(),
  };
}

/** The OPC UA elevator simulator, whose certificate the gateway trusts (so the demo runs SignAndEncrypt). */
function createOpcuaSimulator(s: OpcuaSimulatorConfig, dataDir: string): { start(): Promise<void>; stop(): Promise<void> } {
  const pkiDir = join(dataDir, 'simulators', `opcua-elevator-${s.port}`);
  let server: ElevatorServer | undefined;
  return {
    async start() {
      const { createElevatorServer } = await import('../drivers/opcua/simulator.js');
      const { addTrusted } = await import('../drivers/opcua/certs.js');
      server = createElevatorServer({
        host: s.host,
        port: s.port,
        id: s.id,
        security: s.security,
        seed: s.seed,
        scenario: s.scenario,
        pkiDir,
      });
      await server.start();
      addTrusted(join(dataDir, 'pki'), join(pkiDir, 'server', 'own', 'certs', 'certificate.pem'));
    },
    stop: async () => server?.stop(),
  };
}

/**
 * The embedded broker, whose module (aedes) is imported when it starts. Before that it answers as a
 * broker not started yet: its configured address, no clients.
 */
function lazyBroker(opts: EmbeddedBrokerOptions): EmbeddedBroker {
  let inner: EmbeddedBroker | undefined;
  return {
    async start() {
      inner = (await import('./mqtt/broker.js')).createEmbeddedBroker(opts);
      await inner.start();
    },
    stop: async () => inner?.stop(),
    address: () => inner?.address() ?? { host: opts.host, port: opts.port },
    clientCount: () => inner?.clientCount() ?? 0,
    stats: () => inner?.stats() ?? zeroBrokerStats(),
    async subscribe(topic, onMessage) {
      if (!inner) throw new Error('Embedded broker is not started');
      return inner.subscribe(topic, onMessage);
    },
    async publish(topic, payload, retain) {
      if (!inner) throw new Error('Embedded broker is not started');
      return inner.publish(topic, payload, retain);
    },
  };
}
