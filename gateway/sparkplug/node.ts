// The gateway as a Sparkplug B edge node (docs/sparkplug.md): a connection of its own whose Last Will
// is the NDEATH with this connection's bdSeq; NBIRTH, then a DBIRTH per equipment that is not
// offline, then DDATA; a DDEATH when an equipment goes offline and a DBIRTH when it is back; a
// rebirth on NCMD `Node Control/Rebirth`; while the broker or the primary host is away, readings wait
// in a bounded queue on disk and follow the births as historical DDATA.
import type { MqttClient } from 'mqtt';
import { Counter, Gauge } from 'prom-client';
import type { MqttSection } from '../../config/schema.js';
import type { Quality, Reading } from '../../drivers/types.js';
import { pointTime } from '../../drivers/common/reading-time.js';
import { rateLimited } from '../../drivers/common/log-budget.js';
import type { ActiveAlarm, AlarmEvent } from '../../rules/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { Connection, STOP_FLUSH_MS, endClient } from '../mqtt/connection.js';
import { knownPoints, noteQuality, statusOf, type KnownPoints } from '../pipeline.js';
import {
  DataType,
  QUALITY_CODE,
  dataTypeOf,
  decodeCommand,
  encodePayload,
  fits,
  type DataTypeCode,
  type Metric,
  type PropertyValue,
} from './payload.js';
import { ReadingQueue, type NewReading, type StoredReading } from './queue.js';

const NAMESPACE = 'spBv1.0';
const REBIRTH_METRIC = 'Node Control/Rebirth';
/** Data published this long before a connection is seen lost may not have reached the broker (QoS 0). */
const UNCONFIRMED_MS = 1000;
/** Metrics in one historical DDATA message, at most, and about this many bytes of values (long strings). */
const HISTORICAL_CHUNK = 500;
const HISTORICAL_BYTES = 256 * 1024;

export interface EdgeNodeOptions {
  groupId: string;
  edgeNodeId: string;
  primaryHostId?: string | undefined;
  url: string;
  /** The MQTT settings the connection uses (credentials, TLS files, keepalive, backoff, packet bound). */
  mqtt: MqttSection;
  clientId: string;
  equipment: ReadonlyArray<{ id: string; points: ReadonlyArray<{ name: string; unit?: string | undefined }> }>;
  /** Active alarms when the node starts: their metrics are in the first births. */
  activeAlarms: () => readonly ActiveAlarm[];
  bdSeq: { load(): number; save(next: number): void };
  queueFile: string;
  maxStored: number;
  rebirthInterval: number;
  /** Node metrics of the NBIRTH besides bdSeq and the rebirth control (the site, the gateway's id). */
  info: Record<string, string>;
  log: Logger;
  metrics: Metrics;
}

interface MetricState {
  alias: number;
  datatype: DataTypeCode | undefined;
  /** The data type the host was told in the device's last birth; undefined: not in it yet. */
  declared?: DataTypeCode | undefined;
  unit?: string | undefined;
  value: number | boolean | string | null;
  quality: Quality;
  ts: number;
  /** The quality last told the host (in a birth or data), to send the property only when it changes. */
  toldQuality: Quality | undefined;
}

interface Device {
  id: string;
  metrics: Map<string, MetricState>;
  known: KnownPoints;
  /** Any reading yet: a device is born with values. */
  seen: boolean;
  offline: boolean;
  /** DBIRTH sent in this session (and no DDEATH since). */
  born: boolean;
  /** A metric was added or changed its data type: the next message is a DBIRTH (at most one per rebirth interval). */
  rebirth: boolean;
  /** When its last birth went out, on the monotonic clock (a wall-clock step must not hold a birth back). */
  lastBirth: number;
}

export interface EdgeNode {
  start(): Promise<void>;
  stop(): Promise<void>;
  readings(batch: readonly Reading[]): void;
  alarmEvents(events: readonly AlarmEvent[]): void;
  /** Asks for a rebirth (as an NCMD does): at most one per rebirth interval. */
  rebirth(): void;
  /**
   * A reload changed these equipment's points (docs/reload.md): their metrics follow (a new point
   * gets a new alias, a removed one leaves, a changed unit is told) in a DBIRTH at the next reading.
   */
  pointsChanged(equipment: EdgeNodeOptions['equipment']): void;
  /** A reload's equipment, all of it: a removed device's DDEATH is sent and it is forgotten; an added one is born at its first reading. */
  equipmentChanged(equipment: EdgeNodeOptions['equipment']): void;
  health(): { ok: boolean; detail: Record<string, unknown> };
  stats(): { state: string; bdSeq: number; seq: number; stored: number; dropped: number; sent: number };
}

type SessionState = 'connecting' | 'waiting for primary host' | 'online';

export function createEdgeNode(o: EdgeNodeOptions): EdgeNode {
  const { log } = o;
  const topic = (type: string, device?: string) =>
    `${NAMESPACE}/${o.groupId}/${type}/${o.edgeNodeId}${device === undefined ? '' : `/${device}`}`;
  const stateTopic = o.primaryHostId === undefined ? undefined : `${NAMESPACE}/STATE/${o.primaryHostId}`;
  const devices = new Map<string, Device>();
  let nextAlias = 2; // 0 and 1: bdSeq and the rebirth control
  const info = Object.entries(o.info).map(([name, value]) => ({ name: `Node Info/${name}`, alias: nextAlias++, value }));
  /** A device not born yet, without metrics. */
  const newDevice = (id: string): Device => ({
    id,
    metrics: new Map(),
    known: knownPoints(),
    seen: false,
    offline: false,
    born: false,
    rebirth: false,
    lastBirth: -Infinity,
  });
  /** A point's metric under the next free alias, with no value yet. */
  const newMetric = (unit: string | undefined): MetricState => ({
    alias: nextAlias++,
    datatype: undefined,
    unit,
    value: null,
    quality: 'bad',
    ts: 0,
    toldQuality: undefined,
  });
  for (const e of o.equipment) {
    const d = newDevice(e.id);
    for (const p of e.points) d.metrics.set(p.name, newMetric(p.unit));
    devices.set(e.id, d);
  }
  for (const a of o.activeAlarms()) setAlarm(devices.get(a.equipment), a.rule, a.state, a.level, a.message, a.raisedAt);

  const sent = new Counter({
    name: 'gateway_sparkplug_messages_total',
    help: 'Sparkplug messages published, by type (NBIRTH, DBIRTH, DDATA, DDEATH, NDEATH)',
    labelNames: ['type'],
    registers: [o.metrics],
  });
  const droppedTotal = new Counter({
    name: 'gateway_sparkplug_dropped_total',
    help: 'Readings the Sparkplug node could not deliver, by reason (queue_full, device_offline, type_changed)',
    labelNames: ['reason'],
    registers: [o.metrics],
  });
  new Gauge({
    name: 'gateway_sparkplug_stored',
    help: 'Readings waiting in the Sparkplug store-and-forward queue',
    registers: [o.metrics],
    collect() {
      this.set(queue?.size ?? 0);
    },
  });
  const unconfirmedTotal = new Counter({
    name: 'gateway_sparkplug_unconfirmed_total',
    help: 'Metrics of DDATA published (QoS 0) within 1 s before the connection was seen lost: they may not have reached the broker',
    registers: [o.metrics],
  });
  /** When recent data went out (the monotonic clock: a wall-clock step must not hide it) and how many metrics, over the last UNCONFIRMED_MS. */
  const recent: Array<[number, number]> = [];
  const counts = { dropped: 0, sent: 0 };
  const dropLog = rateLimited();
  const drop = (reason: string, n: number, what: string) => {
    counts.dropped += n;
    droppedTotal.inc({ reason }, n);
    dropLog((notLogged) => log.warn({ reason, readings: n, dropped: counts.dropped, ...(notLogged ? { notLogged } : {}) }, what));
  };

  let queue: ReadingQueue | undefined;
  let connection: Connection | undefined;
  let client: MqttClient | undefined;
  let state: SessionState = 'connecting';
  let bdSeq = 0;
  let seq = 0;
  let stopping = false;
  let draining = false;
  let hostOnline = stateTopic === undefined;
  let hostStateTs = 0;
  /** The monotonic clock (performance.now): the rebirth bound does not follow the wall clock's steps. */
  let lastRebirth = -Infinity;
  let rebirthTimer: NodeJS.Timeout | undefined;

  function setAlarm(d: Device | undefined, rule: string, alarmState: string, level: string, message: string, ts: number): void {
    if (!d) return;
    const values: Record<string, string> = { State: alarmState, Level: level, Message: message };
    for (const [k, v] of Object.entries(values)) {
      const name = `Alarms/${rule}/${k}`;
      const m = d.metrics.get(name);
      if (m) {
        m.value = v;
        m.ts = ts;
      } else {
        d.metrics.set(name, alarmMetric(v, ts));
        d.rebirth = true;
      }
    }
  }

  /** An alarm's metric (State, Level, Message): a string, always good. */
  function alarmMetric(value: string, ts: number): MetricState {
    return { alias: nextAlias++, datatype: DataType.String, value, quality: 'good', ts, toldQuality: 'good' };
  }

  const nextSeq = () => {
    const s = seq;
    seq = (seq + 1) % 256;
    return s;
  };

  const ndeath = () => ({
    topic: topic('NDEATH'),
    payload: Buffer.from(
      encodePayload({ timestamp: Date.now(), metrics: [{ name: 'bdSeq', alias: 0, datatype: DataType.Int64, value: bdSeq }] }),
    ),
    qos: 1 as const,
    retain: false,
  });

  /** Publishes one node message; `failed` is called when it did not go out (no connection). */
  const publish = (type: string, device: string | undefined, metrics: Metric[], failed?: () => void) => {
    const c = client;
    if (!c || state !== 'online') return failed?.();
    const payload = Buffer.from(encodePayload({ timestamp: Date.now(), seq: nextSeq(), metrics }));
    sent.inc({ type });
    counts.sent++;
    if (type === 'DDATA') noteSent(metrics.length);
    c.publish(topic(type, device), payload, { qos: 0 }, (err) => {
      if (err) failed?.();
    });
  };

  function noteSent(n: number): void {
    const now = performance.now();
    while (recent.length > 0 && recent[0]![0] < now - UNCONFIRMED_MS) recent.shift();
    recent.push([now, n]);
  }

  const properties = (m: MetricState, birth: boolean): Record<string, PropertyValue> | undefined => {
    const props: Record<string, PropertyValue> = {};
    if (birth && m.unit) props.engUnit = { type: DataType.String, value: m.unit };
    if (birth || m.toldQuality !== m.quality) props.Quality = { type: DataType.Int32, value: QUALITY_CODE[m.quality] };
    m.toldQuality = m.quality;
    return Object.keys(props).length > 0 ? props : undefined;
  };

  const birthMetric = (name: string, m: MetricState): Metric => {
    const props = properties(m, true);
    m.declared = m.datatype ?? DataType.Double;
    return {
      name,
      alias: m.alias,
      timestamp: m.ts || Date.now(),
      datatype: m.declared,
      value: m.value,
      ...(props ? { properties: props } : {}),
    };
  };

  const dbirth = (d: Device) => {
    d.born = true;
    d.rebirth = false;
    d.lastBirth = performance.now();
    publish(
      'DBIRTH',
      d.id,
      [...d.metrics].map(([name, m]) => birthMetric(name, m)),
    );
  };

  const births = () => {
    seq = 0;
    lastRebirth = performance.now();
    publish('NBIRTH', undefined, [
      { name: 'bdSeq', alias: 0, timestamp: Date.now(), datatype: DataType.Int64, value: bdSeq },
      { name: REBIRTH_METRIC, alias: 1, timestamp: Date.now(), datatype: DataType.Boolean, value: false },
      ...info.map((m) => ({ ...m, timestamp: Date.now(), datatype: DataType.String })),
    ]);
    for (const d of devices.values()) {
      d.born = false;
      if (d.seen && !d.offline) dbirth(d);
    }
  };

  const goOnline = () => {
    if (state === 'online' || !hostOnline || !client?.connected) return;
    state = 'online';
    log.info({ bdSeq, stored: queue?.size ?? 0 }, 'Sparkplug edge node online: births sent');
    births();
    void drain();
  };

  /**
   * An equipment with stored readings to send must be born first. One not read since the gateway
   * started (the queue is from before a restart) is born with its last stored values, at their times.
   */
  const seeded = new Set<Device>();
  function bornForStored(d: Device | undefined): void {
    if (!d || d.born || !queue) return;
    // Once per equipment: the lookup reads its rows, and a queue of 1,000,000 is read in 2,000 chunks.
    if (!d.seen && !seeded.has(d)) {
      seeded.add(d);
      for (const r of queue.latest(d.id)) {
        // An alarm's stored changes (one that ended before the restart) need its metrics.
        if (r.metric.startsWith('Alarms/') && typeof r.value === 'string' && !d.metrics.has(r.metric))
          d.metrics.set(r.metric, alarmMetric(r.value, r.ts));
        const m = d.metrics.get(r.metric);
        if (!m || r.metric.startsWith('Alarms/')) continue;
        if (r.value !== null && (m.datatype === undefined || !fits(m.datatype, r.value))) m.datatype = dataTypeOf(r.value);
        m.value = r.quality === 'bad' ? null : r.value;
        // A value from before the restart is no current reading: born as stale (500), never good.
        m.quality = r.quality === 'good' ? 'uncertain' : r.quality;
        m.ts = r.ts;
        noteQuality(d.known, { equipment: d.id, point: r.metric, value: m.value, quality: r.quality, ts: r.ts });
        d.seen = true;
      }
      d.offline = d.seen && statusOf(d.known, 0).state === 'offline';
    }
    if (d.seen && !d.offline) dbirth(d);
  }

  const drainLog = rateLimited();

  /** Sends what waits in the queue as DDATA (historical where taken while not online), in time order. */
  async function drain(): Promise<void> {
    if (draining || !queue) return;
    draining = true;
    try {
      while (state === 'online' && queue.size > 0) {
        const rows = queue.take(HISTORICAL_CHUNK);
        if (rows.length === 0) break;
        for (const id of new Set(rows.map((r) => r.device))) bornForStored(devices.get(id));
        const c = client!;
        let run: StoredReading[] = [];
        const pending: Array<Promise<boolean>> = [];
        const flush = () => {
          if (run.length === 0) return;
          const d = devices.get(run[0]!.device);
          const metrics: Metric[] = [];
          for (const r of run) {
            const m = d?.metrics.get(r.metric);
            if (!d || !m || !d.born) drop('device_offline', 1, 'Stored Sparkplug readings of an equipment that is offline now dropped');
            else if (m.declared === undefined || !fits(m.declared, r.value))
              drop('type_changed', 1, 'Stored Sparkplug readings of a metric whose data type changed dropped');
            else
              metrics.push({
                alias: m.alias,
                timestamp: r.ts,
                datatype: m.declared,
                value: r.quality === 'bad' ? null : r.value,
                ...(r.historical ? { isHistorical: true } : {}),
                properties: { Quality: { type: DataType.Int32, value: QUALITY_CODE[r.quality] } },
              });
          }
          if (metrics.length > 0 && state === 'online') {
            const payload = Buffer.from(encodePayload({ timestamp: Date.now(), seq: nextSeq(), metrics }));
            sent.inc({ type: 'DDATA' });
            counts.sent++;
            noteSent(metrics.length);
            pending.push(new Promise((resolve) => c.publish(topic('DDATA', d!.id), payload, { qos: 0 }, (err) => resolve(!err))));
          }
          run = [];
        };
        let bytes = 0;
        for (const r of rows) {
          if (run.length > 0 && (run[0]!.device !== r.device || bytes > HISTORICAL_BYTES)) {
            flush();
            bytes = 0;
          }
          run.push(r);
          bytes += 32 + (typeof r.value === 'string' ? Buffer.byteLength(r.value) : 8);
        }
        flush();
        const ok = (await Promise.all(pending)).every(Boolean);
        if (!ok || state !== 'online') break;
        queue.remove(rows.map((r) => r.id));
      }
    } catch (err) {
      // Tried again at the next batch of readings (a full disk may have room by then).
      drainLog((notLogged) => log.error({ err, ...(notLogged ? { notLogged } : {}) }, 'Sparkplug store and forward failed'));
    } finally {
      draining = false;
    }
  }

  const store = (readings: NewReading[]) => {
    if (!queue || readings.length === 0) return;
    try {
      queue.append(readings);
    } catch (err) {
      drop('store_failed', readings.length, 'Sparkplug readings could not be stored');
      log.error({ err }, 'Sparkplug store-and-forward queue write failed');
    }
  };

  const dataMetric = (m: MetricState, value: Reading['value'], ts: number): Metric => {
    const props = properties(m, false);
    // The data type again, though the birth had it: decoders that keep no births (Tahu's) need it to read the value.
    return { alias: m.alias, timestamp: ts, datatype: m.declared, value, ...(props ? { properties: props } : {}) };
  };

  /** Not born, or a metric changed and the device's last birth is a rebirth interval old. */
  const birthDue = (d: Device) => !d.born || (d.rebirth && performance.now() - d.lastBirth >= o.rebirthInterval);

  /** A reading as the queue keeps it. */
  const toRow = (d: Device, r: Reading, historical: boolean): NewReading => ({
    device: d.id,
    metric: r.point,
    value: valueOf(r),
    quality: r.quality,
    ts: pointTime(r),
    historical,
  });

  function readings(batch: readonly Reading[]): void {
    const byDevice = new Map<Device, Reading[]>();
    for (const r of batch) {
      const d = devices.get(r.equipment);
      const m = d?.metrics.get(r.point);
      if (!d || !m) continue;
      const value = valueOf(r);
      if (value !== null) {
        if (m.datatype === undefined || !fits(m.datatype, value)) m.datatype = dataTypeOf(value);
        // Born as Double before its first value, a point that turns out Boolean or String needs a new birth.
        if (d.born && m.declared !== m.datatype) d.rebirth = true;
      }
      m.value = value;
      m.quality = r.quality;
      m.ts = pointTime(r);
      noteQuality(d.known, r);
      d.seen = true;
      let list = byDevice.get(d);
      if (!list) byDevice.set(d, (list = []));
      list.push(r);
    }
    const live = state === 'online' && queue?.size === 0 && !draining;
    const toStore: NewReading[] = [];
    for (const [d, list] of byDevice) {
      d.offline = statusOf(d.known, 0).state === 'offline';
      if (d.offline) {
        // An offline equipment's readings are all bad: its DDEATH says so, no data follows.
        if (d.born && state === 'online') {
          d.born = false;
          publish('DDEATH', d.id, []);
          log.info({ device: d.id }, 'Sparkplug DDEATH: equipment offline');
        }
        continue;
      }
      if (!live) {
        for (const r of list) toStore.push(toRow(d, r, state !== 'online'));
        continue;
      }
      // A birth carries every metric's current value, these included.
      if (birthDue(d)) {
        dbirth(d);
        continue;
      }
      // Until the next birth, a value that does not fit its metric's declared type cannot be sent.
      const fitting: Reading[] = [];
      const metrics: Metric[] = [];
      for (const r of list) {
        const m = d.metrics.get(r.point)!;
        const value = valueOf(r);
        if (m.declared === undefined || !fits(m.declared, value)) continue;
        fitting.push(r);
        metrics.push(dataMetric(m, value, pointTime(r)));
      }
      if (fitting.length < list.length)
        drop('type_changed', list.length - fitting.length, 'Sparkplug values of a point whose data type changed dropped until its DBIRTH');
      if (fitting.length > 0)
        publish(
          'DDATA',
          d.id,
          metrics,
          // What did not go out (the connection just died) waits with the rest, in time order.
          () => store(fitting.map((r) => toRow(d, r, true))),
        );
    }
    store(toStore);
    // A forward that failed (a queue write on a full disk) starts again: what waits is not left there.
    if (state === 'online' && !draining && (queue?.size ?? 0) > 0) void drain();
  }

  function alarmEvents(events: readonly AlarmEvent[]): void {
    const changed = new Set<Device>();
    const rows: NewReading[] = [];
    for (const e of events) {
      const d = devices.get(e.equipment);
      if (!d) continue;
      setAlarm(d, e.rule, e.state, e.level, e.message, e.ts);
      changed.add(d);
      for (const [k, v] of [
        ['State', e.state],
        ['Level', e.level],
        ['Message', e.message],
      ] as const)
        rows.push({ device: d.id, metric: `Alarms/${e.rule}/${k}`, value: v, quality: 'good', ts: e.ts, historical: state !== 'online' });
    }
    const live = state === 'online' && queue?.size === 0 && !draining;
    if (!live) return store(rows.filter((r) => !devices.get(r.device)!.offline));
    for (const d of changed) {
      if (d.offline || !d.seen) continue;
      if (birthDue(d)) {
        dbirth(d);
        continue;
      }
      // A new alarm's metrics wait for the device's next birth, which carries their values.
      const mine = rows.filter((r) => r.device === d.id && d.metrics.get(r.metric)!.declared !== undefined);
      if (mine.length === 0) continue;
      publish(
        'DDATA',
        d.id,
        mine.map((r) => ({ alias: d.metrics.get(r.metric)!.alias, timestamp: r.ts, datatype: DataType.String, value: r.value })),
        () => store(mine.map((r) => ({ ...r, historical: true }))),
      );
    }
  }

  function equipmentChanged(equipment: EdgeNodeOptions['equipment']): void {
    const ids = new Set(equipment.map((e) => e.id));
    for (const d of [...devices.values()]) {
      if (ids.has(d.id)) continue;
      if (d.born && state === 'online') publish('DDEATH', d.id, []);
      devices.delete(d.id);
      log.info({ device: d.id }, 'Sparkplug device removed from the site file: DDEATH');
    }
    const added = equipment.filter((e) => !devices.has(e.id));
    for (const e of added) devices.set(e.id, newDevice(e.id));
    pointsChanged(added);
  }

  function pointsChanged(equipment: EdgeNodeOptions['equipment']): void {
    for (const e of equipment) {
      const d = devices.get(e.id);
      if (!d) continue;
      const names = new Set(e.points.map((p) => p.name));
      for (const name of [...d.metrics.keys()]) if (!name.startsWith('Alarms/') && !names.has(name)) d.metrics.delete(name);
      for (const p of e.points) {
        const m = d.metrics.get(p.name);
        if (m) m.unit = p.unit;
        else d.metrics.set(p.name, newMetric(p.unit));
      }
      d.known = knownPoints();
      // An operator's reload: the birth is not held back by the rebirth interval.
      d.rebirth = true;
      d.lastBirth = -Infinity;
    }
  }

  function rebirth(): void {
    if (state !== 'online' || rebirthTimer) return;
    const wait = lastRebirth + o.rebirthInterval - performance.now();
    if (wait <= 0) {
      log.info('Sparkplug rebirth');
      births();
      return;
    }
    rebirthTimer = setTimeout(() => {
      rebirthTimer = undefined;
      rebirth();
    }, wait);
  }

  const commandLog = rateLimited();
  const onMessage = (t: string, payload: Buffer) => {
    if (t === stateTopic) return hostState(payload);
    if (t === topic('NCMD')) {
      let metrics;
      try {
        metrics = decodeCommand(payload).metrics;
      } catch (err) {
        return commandLog(() =>
          log.warn({ topic: t, err: (err as Error).message }, 'Sparkplug NCMD is not a Sparkplug B payload; ignored'),
        );
      }
      for (const m of metrics) {
        if ((m.name === REBIRTH_METRIC || (m.name === undefined && m.alias === 1)) && m.value === true) rebirth();
        else commandLog(() => log.warn({ metric: m.name ?? m.alias }, 'Sparkplug NCMD metric not supported; ignored'));
      }
      return;
    }
    // DCMD: the gateway writes nothing to equipment (no write path).
    commandLog(() => log.warn({ topic: t }, 'Sparkplug DCMD ignored: the gateway does not write to equipment'));
  };

  /**
   * Sparkplug 3.0: JSON `{ online, timestamp }`, both required. One without a timestamp (or Sparkplug
   * 2.2's text) could not be ordered, and an older one than the last is stale: both are ignored.
   */
  function hostState(payload: Buffer): void {
    let online: boolean | undefined;
    let ts = Number.NaN;
    try {
      const s = JSON.parse(payload.toString('utf8')) as { online?: unknown; timestamp?: unknown };
      if (typeof s.online === 'boolean') online = s.online;
      if (typeof s.timestamp === 'number') ts = s.timestamp;
    } catch {
      // refused below
    }
    if (online === undefined || !Number.isFinite(ts))
      return commandLog(() => log.warn({ topic: stateTopic }, 'Sparkplug STATE message is not {"online":..., "timestamp":...}; ignored'));
    if (ts < hostStateTs) return;
    hostStateTs = ts;
    if (online === hostOnline) return;
    hostOnline = online;
    log.info({ host: o.primaryHostId }, online ? 'Sparkplug primary host online' : 'Sparkplug primary host offline: storing readings');
    if (online) goOnline();
    else if (state === 'online') void newSession();
  }

  const bumpBdSeq = () => {
    bdSeq = (bdSeq + 1) % 256;
    try {
      o.bdSeq.save(bdSeq);
    } catch (err) {
      log.error({ err }, 'Sparkplug bdSeq could not be saved');
    }
  };

  function open(): void {
    connection = new Connection({
      config: o.mqtt,
      clientId: o.clientId,
      persistent: false,
      will: ndeath(),
      log,
      connected: () => {
        const c = client!;
        const filters = [topic('NCMD'), topic('DCMD', '+'), ...(stateTopic ? [stateTopic] : [])];
        c.subscribe(filters, { qos: 1 }, (err) => {
          if (err) log.warn({ err: err.message }, 'Sparkplug subscriptions refused by the broker');
          if (stateTopic === undefined) goOnline();
        });
        // Each connection hears the host's STATE afresh (the retained one comes with the subscription).
        if (stateTopic !== undefined) {
          state = 'waiting for primary host';
          hostOnline = false;
        }
      },
      lost: () => {
        const now = performance.now();
        const unconfirmed = recent.filter(([at]) => at >= now - UNCONFIRMED_MS).reduce((sum, [, n]) => sum + n, 0);
        recent.length = 0;
        if (state === 'online' && unconfirmed > 0) {
          unconfirmedTotal.inc(unconfirmed);
          log.warn(
            { metrics: unconfirmed },
            'Sparkplug connection lost: DDATA sent in the second before it may not have reached the broker (QoS 0)',
          );
        }
        state = 'connecting';
        if (stateTopic !== undefined) hostOnline = false;
        // The next CONNECT carries a new bdSeq in its Will.
        bumpBdSeq();
        if (client) client.options.will = ndeath();
      },
    });
    client = connection.open(o.url);
    // A QoS 0 message published while the connection is down fails (and waits in the queue) instead of
    // going out before the births of the next session.
    client.queueQoSZero = false;
    client.on('message', onMessage);
  }

  /** Publishes the NDEATH before a clean end; waits for its acknowledgement 500 ms at most (a broker may never send it). */
  async function sayDeath(c: MqttClient): Promise<void> {
    const will = ndeath();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, STOP_FLUSH_MS);
      c.publish(will.topic, will.payload, { qos: 1 }, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    sent.inc({ type: 'NDEATH' });
  }

  /** The primary host went away: NDEATH, a clean end, and a new connection with the next bdSeq. */
  async function newSession(): Promise<void> {
    const c = client;
    state = 'connecting';
    // Nothing is born on the connection being ended (a STATE online may come while it ends).
    client = undefined;
    if (c) {
      await sayDeath(c);
      await connection!.end(c);
    }
    if (stopping) return;
    bumpBdSeq();
    open();
  }

  return {
    async start() {
      queue = new ReadingQueue(o.queueFile, o.maxStored, (n) =>
        drop('queue_full', n, 'Sparkplug store-and-forward queue full (sparkplug.max_stored): oldest readings dropped'),
      );
      // The bdSeq of this connection: one more than the last one used, across restarts.
      bdSeq = o.bdSeq.load();
      bumpBdSeq();
      if (queue.size > 0) log.info({ stored: queue.size }, 'Sparkplug readings stored before the restart will be forwarded');
      open();
    },
    async stop() {
      stopping = true;
      clearTimeout(rebirthTimer);
      const c = client;
      if (c && state === 'online') {
        // A clean disconnect sends no Will: the node says its death itself.
        state = 'connecting';
        await sayDeath(c);
      }
      state = 'connecting';
      if (c) await (connection ? connection.end(c) : endClient(c));
      queue?.close();
      queue = undefined;
    },
    readings,
    alarmEvents,
    rebirth,
    pointsChanged,
    equipmentChanged,
    health: () => ({
      // Not ok while the SCADA gets nothing from the node (readings wait in the queue), as the MQTT link is while its broker is away.
      ok: state === 'online',
      detail: { state, bdSeq, stored: queue?.size ?? 0, ...(o.primaryHostId ? { primaryHost: hostOnline ? 'online' : 'offline' } : {}) },
    }),
    stats: () => ({ state, bdSeq, seq, stored: queue?.size ?? 0, dropped: counts.dropped, sent: counts.sent }),
  };
}

/** What a reading's value is in a Sparkplug metric: a bad reading has none. */
function valueOf(r: Reading): Reading['value'] | null {
  return r.quality === 'bad' ? null : r.value;
}
