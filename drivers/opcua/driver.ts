// The OPC UA driver proper, loaded on demand by ./index.ts (node-opcua takes seconds to import).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AttributeIds,
  type ClientMonitoredItemGroup as ClientMonitoredItemGroupType,
  ClientMonitoredItemGroup,
  type ClientSession,
  type ClientSubscription,
  DataChangeFilter,
  DataChangeTrigger,
  type DataValue,
  DeadbandType,
  makeBrowsePath,
  MessageSecurityMode,
  type NodeIdLike,
  OPCUACertificateManager,
  OPCUAClient,
  SecurityPolicy,
  TimestampsToReturn,
  type UserIdentityInfo,
  UserTokenType,
} from 'node-opcua';
import { convertPEMtoDER } from 'node-opcua-crypto';
import { setDebugLogger, setErrorLogger, setWarningLogger } from 'node-opcua-debug';
import type { Logger } from 'pino';
import type { Driver, DriverContext, EquipmentBase, Quality, Reading } from '../types.js';
import { rateLimited } from '../common/log-budget.js';
import type { OpcuaConnection, OpcuaEquipment, OpcuaPoint } from './schema.js';
import { onGrid } from '../common/schedule.js';
import { ResultTrigger } from '../common/result-trigger.js';
import { LadsResultReader } from './lads.js';
import { BoundedTransport, checkedValue, qualityOf, transportLimits } from './values.js';

export { qualityOf, valueOf } from './values.js';

export type Equipment = EquipmentBase & OpcuaEquipment;

interface Item {
  equipment: string;
  point: OpcuaPoint;
  /** Resolved NodeId (browse paths are translated after connecting). */
  nodeId: NodeIdLike | undefined;
  /** Why the item cannot be read, once known (BadNodeIdUnknown...). */
  badReason: string | undefined;
}

/**
 * A reading from what the server sent: bad with the status code's name when the server says so;
 * bad with the size when the value is over max_value_size (nothing is derived from it); the value.
 */
function readingOf(item: Item, dv: DataValue, ts: number, maxValueSize: number): Reading {
  let quality: Quality = qualityOf(dv.statusCode);
  let reason = quality === 'good' ? undefined : dv.statusCode.name;
  let value: Reading['value'] = null;
  if (quality !== 'bad') {
    const checked = checkedValue(dv, maxValueSize);
    if (checked.ok) value = checked.value;
    else [quality, reason] = ['bad', checked.reason];
  }
  const reading: Reading = { equipment: item.equipment, point: item.point.name, value, quality, ts };
  if (reason !== undefined) reading.reason = reason;
  if (dv.sourceTimestamp) reading.sourceTs = dv.sourceTimestamp.getTime();
  return reading;
}

/** A Read refused for its size as a whole (the server's or our own transport limit): read in parts. */
export const TOO_LARGE = /Bad(TcpMessageTooLarge|ResponseTooLarge|EncodingLimitsExceeded)/;

const CHUNK = 1000;

/** node-opcua prints its own diagnostics to the console; they go to our log at debug level instead. */
export function routeLibraryLogs(log: Logger): void {
  const library = log.child({ component: 'node-opcua' });
  const print = (...args: unknown[]) =>
    library.debug(
      args
        .map((a) => (typeof a === 'string' ? a : String(a)))
        .join(' ')
        .slice(0, 2000),
    );
  setDebugLogger(print);
  setWarningLogger(print);
  setErrorLogger(print);
}

class OpcuaDriver implements Driver {
  private client: OPCUAClient | undefined;
  private session: ClientSession | undefined;
  private certificates: OPCUACertificateManager | undefined;
  private readonly subscriptions: ClientSubscription[] = [];
  private readonly items: Item[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly schedules: Array<{ stop(): void }> = [];
  private pending: Reading[] = [];
  private flushScheduled = false;
  private stopped = false;
  private readonly counters = {
    notifications: 0,
    reconnections: 0,
    monitoredItems: 0,
    badItems: 0,
    sessionFailures: 0,
    oversizedValues: 0,
  };
  private readonly oversizedLog = rateLimited();
  private readonly log: Logger;
  /** Lab analyzers: equipment id → its result trigger and the point that triggers it. */
  private readonly resultTriggers = new Map<string, { point: string; trigger: ResultTrigger }>();
  private readonly lads: Array<{ eq: Equipment; reader: LadsResultReader }> = [];

  constructor(
    private readonly conn: OpcuaConnection,
    private readonly equipment: Equipment[],
    private readonly ctx: DriverContext,
  ) {
    this.log = ctx.log;
    for (const eq of equipment)
      for (const point of eq.points) this.items.push({ equipment: eq.id, point, nodeId: undefined, badReason: undefined });
    for (const eq of equipment) {
      const r = eq.results;
      if (!r) continue;
      if (!ctx.results || !ctx.counters) throw new Error(`Equipment ${eq.id} has results, and this gateway takes no lab results`);
      const triggerNode = eq.points.find((p) => p.name === r.trigger)!.node;
      const nodes = [r.sample_id.node, ...r.analytes.map((a) => a.node), triggerNode];
      const trigger = new ResultTrigger({
        equipment: eq.id,
        kind: r.kind,
        analytes: r.analytes,
        sink: ctx.results,
        log: ctx.log,
        counters: ctx.counters,
        retryMs: 1000,
        read: async () => {
          const session = this.session;
          if (!session) throw new Error('no OPC UA session');
          const values = await session.read(nodes.map((nodeId) => ({ nodeId, attributeId: AttributeIds.Value })));
          const bad = values.findIndex((dv) => qualityOf(dv.statusCode) !== 'good');
          if (bad >= 0) throw new Error(`${nodes[bad]}: ${values[bad]!.statusCode.name}`);
          const v = values.map((dv, k) => {
            const checked = checkedValue(dv, conn.max_value_size);
            if (!checked.ok) throw new Error(`${nodes[k]}: ${checked.reason}`);
            return checked.value;
          });
          return { sampleId: v[0]!, values: new Map(r.analytes.map((a, k) => [a.name, v[k + 1]!])), trigger: v.at(-1)! };
        },
      });
      this.resultTriggers.set(eq.id, { point: r.trigger, trigger });
    }
    for (const eq of equipment) {
      if (!eq.lads) continue;
      if (!ctx.results) throw new Error(`Equipment ${eq.id} is a LADS device, and this gateway takes no lab results`);
      this.lads.push({ eq, reader: new LadsResultReader(eq.id, eq.lads.result_set, ctx.results, ctx.log, conn.max_value_size) });
    }
  }

  async init(): Promise<void> {
    for (const { trigger } of this.resultTriggers.values()) trigger.init();
    routeLibraryLogs(this.log);
    this.certificates = new OPCUACertificateManager({
      rootFolder: join(this.ctx.dataDir, 'pki'),
      automaticallyAcceptUnknownCertificate: this.conn.trust_unknown_certificates,
    });
    await this.certificates.initialize();
    if (this.conn.trust_unknown_certificates) {
      this.log.warn(
        { endpoint: this.conn.endpoint },
        'trust_unknown_certificates is on: any server certificate is accepted, so a man in the middle would be too',
      );
    }
  }

  async start(): Promise<void> {
    const policy = this.conn.security_policy ?? (this.conn.security_mode === 'None' ? 'None' : 'Basic256Sha256');
    const { reconnect } = this.conn;
    // Asked of the server in the Hello, and held to whatever it acknowledges (BoundedTransport).
    const limits = transportLimits(this.conn.max_message_size);
    const client = OPCUAClient.create({
      applicationName: 'special-equipment-gateway',
      securityMode: MessageSecurityMode[this.conn.security_mode],
      securityPolicy: SecurityPolicy[policy],
      endpointMustExist: false,
      keepSessionAlive: true,
      requestedSessionTimeout: this.conn.session_timeout,
      defaultTransactionTimeout: this.conn.request_timeout,
      connectionStrategy: {
        initialDelay: reconnect.initial_delay,
        maxDelay: reconnect.max_delay,
        randomisationFactor: reconnect.jitter,
        maxRetry: 1_000_000_000,
      },
      clientCertificateManager: this.certificates,
      transportSettings: limits,
      transportFactory: { create: () => new BoundedTransport(limits) },
    });
    this.client = client;
    client.on('backoff', (count: number, delay: number) => {
      if (count === 0 || count % 10 === 0)
        this.log.warn(
          { endpoint: this.conn.endpoint, attempt: count + 1, retryIn: delay },
          'OPC UA server not reachable; retrying with backoff',
        );
      // node-opcua retries by itself; meanwhile the points say why they have no value.
      if (!this.session) this.emitAllBad('not connected: OPC UA server not reachable');
    });
    client.on('connection_lost', () => {
      this.log.warn({ endpoint: this.conn.endpoint }, 'OPC UA connection lost; reconnecting');
      this.emitAllBad('connection lost');
    });
    client.on('after_reconnection', () => {
      this.counters.reconnections++;
      this.log.info({ endpoint: this.conn.endpoint }, 'OPC UA connection restored');
      // Subscriptions come back by transfer or re-creation; read everything once so no point waits for its next change.
      void this.readAll();
    });
    // Connecting retries forever in the background: the gateway never waits on a device.
    this.connectAndSubscribe().catch((err: Error) => {
      if (!this.stopped)
        this.log.error(
          { endpoint: this.conn.endpoint, err: err.message },
          'OPC UA driver gave up connecting; its points stay bad until restart',
        );
      if (!this.stopped) this.emitAllBad(`driver failed: ${err.message.split('\n')[0]}`);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const { trigger } of this.resultTriggers.values()) trigger.stop();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.schedules.splice(0)) s.stop();
    // A server that is gone cannot answer: nothing here may wait on it for long.
    const bounded = (p: Promise<unknown>, ms: number) => Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, ms))]);
    const client = this.client;
    try {
      if (client && !client.isReconnecting && this.session) {
        await bounded(Promise.all(this.subscriptions.map((s) => s.terminate())), 1000);
        await bounded(this.session.close(), 1000);
      }
      if (client) await bounded(client.disconnect(), 2000);
    } finally {
      this.subscriptions.length = 0;
      this.session = undefined;
      await this.certificates?.dispose();
    }
  }

  stats(): Record<string, number> {
    const lads = this.lads.reduce(
      (a, { reader }) => ({ ladsResults: a.ladsResults + reader.stats.ladsResults, ladsErrors: a.ladsErrors + reader.stats.ladsErrors }),
      { ladsResults: 0, ladsErrors: 0 },
    );
    return { ...this.counters, connected: this.session ? 1 : 0, ...(this.lads.length ? lads : {}) };
  }

  private async connectAndSubscribe(): Promise<void> {
    const client = this.client!;
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await client.connect(this.conn.endpoint);
        break;
      } catch (err) {
        if (this.stopped) return;
        const reason = (err as Error).message.split('\n')[0];
        this.log.warn({ endpoint: this.conn.endpoint, reason }, 'Cannot connect to OPC UA server');
        this.emitAllBad(`not connected: ${reason}`);
        await this.sleep(Math.min(this.conn.reconnect.max_delay, this.conn.reconnect.initial_delay * 2 ** attempt));
      }
    }
    // A session whose setup fails half-way (the server closes it, the link drops) is closed and set up again.
    for (let attempt = 0; !this.stopped; attempt++) {
      await this.openSession();
      if (this.stopped || !this.session) return;
      try {
        await this.setUpSession();
        return;
      } catch (err) {
        if (this.stopped) return;
        const reason = (err as Error).message.split('\n')[0];
        this.log.warn({ endpoint: this.conn.endpoint, reason }, 'OPC UA session setup failed; opening a new session');
        this.emitAllBad(`setup failed: ${reason}`);
        await this.dropSession();
        await this.sleep(Math.min(this.conn.reconnect.max_delay, this.conn.reconnect.initial_delay * 2 ** attempt));
      }
    }
  }

  private async openSession(): Promise<void> {
    const client = this.client!;
    // A refused identity (wrong password) is retried with backoff too, and says so.
    for (let attempt = 0; !this.stopped && !this.session; attempt++) {
      try {
        this.session = await client.createSession(this.identity());
      } catch (err) {
        if (this.stopped) return;
        this.counters.sessionFailures++;
        const reason = (err as Error).message.split('\n')[0];
        if (attempt === 0)
          this.log.error({ endpoint: this.conn.endpoint, reason }, 'OPC UA server refused the session; retrying with backoff');
        this.emitAllBad(`session refused: ${reason}`);
        await this.sleep(Math.min(this.conn.reconnect.max_delay, this.conn.reconnect.initial_delay * 2 ** (attempt + 2)));
      }
    }
  }

  private async setUpSession(): Promise<void> {
    this.log.info({ endpoint: this.conn.endpoint, securityMode: this.conn.security_mode }, 'OPC UA session open');
    await this.resolveBrowsePaths();
    await this.readAll();
    await this.subscribe();
    this.startPolling();
    this.startLads();
  }

  private async dropSession(): Promise<void> {
    const session = this.session;
    const subscriptions = this.subscriptions.splice(0);
    this.session = undefined;
    this.counters.monitoredItems = 0;
    this.counters.badItems = 0;
    const bounded = (p: Promise<unknown>) => Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
    await bounded(Promise.all(subscriptions.map((s) => s.terminate())));
    if (session) await bounded(session.close());
  }

  private identity(): UserIdentityInfo {
    const u = this.conn.user;
    if (u.type === 'username') return { type: UserTokenType.UserName, userName: u.username, password: u.password };
    if (u.type === 'certificate') {
      return {
        type: UserTokenType.Certificate,
        certificateData: convertPEMtoDER(readFileSync(u.certificate_file, 'utf8')),
        privateKey: readFileSync(u.private_key_file, 'utf8'),
      } as UserIdentityInfo;
    }
    return { type: UserTokenType.Anonymous };
  }

  private async resolveBrowsePaths(): Promise<void> {
    const session = this.session!;
    const paths = this.items.filter((i) => i.point.node.startsWith('/'));
    if (paths.length > 0) {
      const results = await session.translateBrowsePath(paths.map((i) => makeBrowsePath('RootFolder', `/Objects${i.point.node}`)));
      results.forEach((r, k) => {
        const item = paths[k]!;
        if (r.statusCode.isGood() && r.targets?.[0]) item.nodeId = r.targets[0].targetId;
        else item.badReason = r.statusCode.name;
      });
    }
    for (const i of this.items) if (!i.point.node.startsWith('/')) i.nodeId = i.point.node;
  }

  /** One Read request for every point: the first values, each poll, and again after a reconnection. */
  private async readAll(equipment?: Equipment): Promise<void> {
    const session = this.session;
    if (!session) return;
    const items = this.items.filter((i) => i.nodeId !== undefined && (!equipment || i.equipment === equipment.id));
    if (items.length > 0) this.push(await this.readItems(session, items));
    const ts = Date.now();
    const unresolved = this.items.filter((i) => i.badReason && !i.nodeId && (!equipment || i.equipment === equipment.id));
    if (unresolved.length)
      this.push(
        unresolved.map((i) => ({
          equipment: i.equipment,
          point: i.point.name,
          value: null,
          quality: 'bad' as const,
          reason: i.badReason!,
          ts,
        })),
      );
  }

  /**
   * The items' readings from one Read request. An answer too large for the transport fails as a
   * whole: the items are read again in halves, until each value that does not fit stands alone and
   * is bad, and the others are read (one huge value costs log2(items) extra requests, not all points).
   */
  private async readItems(session: ClientSession, items: Item[]): Promise<Reading[]> {
    try {
      const values = await session.read(items.map((i) => ({ nodeId: i.nodeId!, attributeId: AttributeIds.Value })));
      const ts = Date.now();
      return values.map((dv, k) => this.checked(readingOf(items[k]!, dv, ts, this.conn.max_value_size)));
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0]!.trim();
      if (items.length > 1 && TOO_LARGE.test(reason)) {
        const half = Math.ceil(items.length / 2);
        return [...(await this.readItems(session, items.slice(0, half))), ...(await this.readItems(session, items.slice(half)))];
      }
      const ts = Date.now();
      const tooLarge = TOO_LARGE.exec(reason)?.[0];
      return items.map((i) => ({
        equipment: i.equipment,
        point: i.point.name,
        value: null,
        quality: 'bad' as const,
        reason: tooLarge ? `${tooLarge}: the value is over max_message_size (${this.conn.max_message_size} bytes)` : reason,
        ts,
      }));
    }
  }

  /** Counts and logs (once a minute at most) readings refused for their size. */
  private checked(r: Reading): Reading {
    if (r.quality === 'bad' && r.reason?.startsWith('value of ')) {
      this.counters.oversizedValues++;
      this.oversizedLog((notLogged) =>
        this.log.warn(
          {
            equipment: r.equipment,
            point: r.point,
            reason: r.reason,
            oversizedValues: this.counters.oversizedValues,
            ...(notLogged ? { notLogged } : {}),
          },
          'OPC UA value over max_value_size; the point is bad (counted)',
        ),
      );
    }
    return r;
  }

  /** One subscription per publishing interval; monitored items created in groups, not one by one. */
  private async subscribe(): Promise<void> {
    const session = this.session!;
    const byInterval = new Map<number, Item[]>();
    for (const eq of this.equipment) {
      if (eq.mode !== 'subscription') continue;
      for (const item of this.items.filter((i) => i.equipment === eq.id && i.nodeId !== undefined)) {
        const interval = item.point.sampling_interval ?? eq.poll_interval;
        byInterval.set(interval, [...(byInterval.get(interval) ?? []), item]);
      }
    }
    for (const [interval, items] of byInterval) {
      const subscription = await session.createSubscription2({
        requestedPublishingInterval: interval,
        requestedMaxKeepAliveCount: 10,
        requestedLifetimeCount: 60,
        maxNotificationsPerPublish: 0,
        publishingEnabled: true,
        priority: 10,
      });
      this.subscriptions.push(subscription);
      for (let k = 0; k < items.length; k += CHUNK) {
        const chunk = items.slice(k, k + CHUNK);
        const group: ClientMonitoredItemGroupType = ClientMonitoredItemGroup.create(
          subscription,
          chunk.map((i) => ({ nodeId: i.nodeId!, attributeId: AttributeIds.Value })),
          { samplingInterval: interval, queueSize: 10, discardOldest: true },
          TimestampsToReturn.Both,
        );
        group.on('changed', (_mi, dv: DataValue, index: number) => {
          this.counters.notifications++;
          this.push([this.checked(readingOf(chunk[index]!, dv, Date.now(), this.conn.max_value_size))]);
        });
        await new Promise<void>((resolve) => {
          group.once('initialized', () => resolve());
          group.once('err', () => resolve());
        });
        const bad: Reading[] = [];
        group.monitoredItems.forEach((mi, n) => {
          const status = (mi as unknown as { statusCode?: { value: number; name: string } }).statusCode;
          if (status && qualityOf(status) === 'bad') {
            chunk[n]!.badReason = status.name;
            bad.push({
              equipment: chunk[n]!.equipment,
              point: chunk[n]!.point.name,
              value: null,
              quality: 'bad',
              reason: status.name,
              ts: Date.now(),
            });
          }
        });
        // Deadbands differ per item: each is set on its own item once the group exists.
        for (const [n, i] of chunk.entries()) {
          if (i.point.deadband === undefined) continue;
          const filter = new DataChangeFilter({
            trigger: DataChangeTrigger.StatusValue,
            deadbandType: i.point.deadband_type === 'percent' ? DeadbandType.Percent : DeadbandType.Absolute,
            deadbandValue: i.point.deadband,
          });
          await group.monitoredItems[n]
            ?.modify({ samplingInterval: interval, filter, queueSize: 10 })
            .catch((err: Error) => this.log.warn({ point: i.point.name, err: err.message }, 'OPC UA server refused the deadband'));
        }
        this.counters.monitoredItems += chunk.length - bad.length;
        this.counters.badItems += bad.length;
        if (bad.length) this.push(bad);
      }
    }
  }

  private ladsStarted = false;

  /** LADS result sets are looked at every poll_interval, whatever the equipment's mode. */
  private startLads(): void {
    if (this.ladsStarted) return;
    this.ladsStarted = true;
    for (const { eq, reader } of this.lads) {
      this.schedules.push(
        onGrid(eq.poll_interval, () => {
          if (this.session) void reader.scan(this.session);
        }),
      );
    }
  }

  private startPolling(): void {
    // The first values came from the Read at connection; the grid starts one interval later.
    for (const eq of this.equipment) if (eq.mode === 'poll') this.schedules.push(onGrid(eq.poll_interval, () => void this.readAll(eq), 1));
  }

  private emitAllBad(reason: string): void {
    const ts = Date.now();
    this.push(this.items.map((i) => ({ equipment: i.equipment, point: i.point.name, value: null, quality: 'bad' as const, reason, ts })));
  }

  /** Notifications arrive item by item; they leave as one batch per turn of the event loop. */
  private push(readings: Reading[]): void {
    this.pending.push(...readings);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const batch = this.pending;
      this.pending = [];
      if (batch.length && !this.stopped) {
        this.ctx.sink(batch);
        // A lab analyzer whose trigger shows a new result: its result nodes are read now.
        for (const r of batch) {
          const t = this.resultTriggers.get(r.equipment);
          if (t && r.point === t.point && r.quality === 'good') void t.trigger.onValue(r.value);
        }
      }
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }
}

/** Loaded on demand by ./index.ts: node-opcua takes seconds to import, and most commands never need it. */
export function createOpcuaDriver(connection: OpcuaConnection, equipment: Equipment[], ctx: DriverContext): Driver {
  return new OpcuaDriver(connection, equipment, ctx);
}
