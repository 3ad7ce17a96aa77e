// Devices that publish JSON (or plain text) to an MQTT broker: one client per connection, one
// subscription per topic filter, each message checked (topic, size, JSON, types) before any of it
// becomes a reading. A message that does not fit turns its points bad with the reason; it never
// throws and never yields a good value.
import { readFileSync } from 'node:fs';
import type { IClientOptions, ISubscriptionGrant, MqttClient } from 'mqtt';
import { connectBounded } from '../common/mqtt-packet-limit.js';
import { backoffDelay } from '../common/backoff.js';
import { rateLimited } from '../common/log-budget.js';
import type { Driver, DriverContext, EquipmentBase, Quality, Reading } from '../types.js';
import { evaluatePath, type PathStep } from './path.js';
import { timedPattern, type PatternResult } from './pattern.js';
import { MAX_PATTERN_INPUT, type MqttInConnection, type MqttInEquipment } from './schema.js';
import { isTopicName, topicMatches } from './topic.js';
import { convertTimestamp, convertValue, mapQuality, type QualityMap, type TimestampFormat, type ValueType } from './values.js';

type Equipment = EquipmentBase & MqttInEquipment;

/** Room in a packet besides the payload (fixed header, topic, MQTT 5 properties) when the broker is told the largest one. */
const PACKET_OVERHEAD = 64 * 1024;
const STOP_WAIT_MS = 1000;
/**
 * How recent the source time of a retained message must be for its readings to be good, when the
 * point has no stale_after: the broker sends retained messages again on every subscription, long
 * after the device published them.
 */
export const RETAINED_FRESH_MS = 5 * 60 * 1000;
const RETAINED_UNKNOWN_AGE = 'retained by the broker: of unknown age';

/** One point as the driver reads it: where from, how to convert, and when it last had a value. */
interface PointPlan {
  equipment: string;
  point: string;
  filter: string;
  path: PathStep[] | undefined;
  pattern: ((input: string) => PatternResult) | undefined;
  type: ValueType;
  scale: number;
  offset: number;
  timestamp: { path: PathStep[]; format: TimestampFormat } | undefined;
  quality: ({ path: PathStep[] } & QualityMap) | undefined;
  staleAfter: number | undefined;
  /** When it last had a reading from a message (or the driver started). */
  last: number;
  /** Already reported bad for silence or a lost connection: not reported again until a message comes. */
  silent: boolean;
  /** The last value read (good or uncertain), which a device status of uncertain without a value qualifies. */
  lastValue: number | boolean | string | null;
}

/** The URL without the credentials it may carry, for logs. */
const redact = (url: string) => url.replace(/\/\/[^@/]*@/, '//***@');

export function createMqttInDriver(connection: MqttInConnection, equipment: Equipment[], ctx: DriverContext): Driver {
  return new MqttInDriver(connection, equipment, ctx);
}

class MqttInDriver implements Driver {
  private readonly plans: PointPlan[];
  private client: MqttClient | undefined;
  private staleTimer: NodeJS.Timeout | undefined;
  private tls: Pick<IClientOptions, 'ca' | 'cert' | 'key'> = {};
  private attempt = 0;
  private wasConnected = false;
  private lostReported = false;
  private stopping = false;
  private readonly counters = {
    messages: 0,
    readings: 0,
    /** Messages over max_payload_size, or on a topic name with wildcards. */
    refused: 0,
    parseErrors: 0,
    /** Values that were not of their point's type (or a timestamp or status that could not be read). */
    typeErrors: 0,
    /** Messages on a topic that no point subscribed to. */
    unmatched: 0,
    /** Points reported bad for staying silent longer than stale_after. */
    stale: 0,
    /** Topic filters the broker refused to subscribe (permissions): their points are bad. */
    subscribeRefused: 0,
    /** Pattern matches stopped for taking longer than the time limit. */
    patternTimeouts: 0,
    /** Retained messages the broker sent again on subscribing (readings uncertain unless their source time is recent). */
    retained: 0,
    reconnects: 0,
    /** Messages whose handling failed unexpectedly (a defect: logged with the reason). */
    errors: 0,
  };
  private readonly refusedLog = rateLimited();
  private readonly parseLog = rateLimited();
  private readonly typeLog = rateLimited();
  private readonly errorLog = rateLimited();
  private readonly patternLog = rateLimited();

  constructor(
    private readonly conn: MqttInConnection,
    equipment: Equipment[],
    private readonly ctx: DriverContext,
  ) {
    this.plans = equipment.flatMap((eq) =>
      eq.points.map((p) => {
        const quality = p.quality ?? eq.quality;
        return {
          equipment: eq.id,
          point: p.name,
          filter: p.topic ?? eq.topic,
          // A point with neither a path nor a pattern reads the key of its own name.
          path: p.pattern === undefined ? (p.path ?? [p.name]) : undefined,
          pattern: p.pattern === undefined ? undefined : timedPattern(p.pattern),
          type: p.type,
          scale: p.scale,
          offset: p.offset,
          timestamp: p.timestamp ?? eq.timestamp,
          quality: quality && { path: quality.path, good: quality.good, uncertain: quality.uncertain, bad: quality.bad },
          staleAfter: p.stale_after ?? eq.stale_after,
          last: 0,
          silent: false,
          lastValue: null,
        };
      }),
    );
  }

  async init(): Promise<void> {
    // Read once, before connecting: a missing file is a configuration error told now, with its role.
    const read = (file: string | undefined, what: string) => {
      if (file === undefined) return undefined;
      try {
        return readFileSync(file);
      } catch (err) {
        throw new Error(`Cannot read the ${what} file "${file}" of mqtt-in connection ${this.conn.id}: ${(err as Error).message}`, {
          cause: err,
        });
      }
    };
    const ca = read(this.conn.ca, 'CA');
    const cert = read(this.conn.cert, 'client certificate');
    const key = read(this.conn.key, 'client key');
    this.tls = { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
  }

  async start(): Promise<void> {
    const conn = this.conn;
    const now = Date.now();
    for (const p of this.plans) p.last = now;
    const options: IClientOptions = {
      ...(conn.client_id ? { clientId: conn.client_id } : {}),
      ...(conn.username !== undefined ? { username: conn.username } : {}),
      ...(conn.password !== undefined ? { password: conn.password } : {}),
      keepalive: Math.round(conn.keepalive / 1000),
      clean: conn.clean,
      protocolVersion: conn.protocol_version,
      // MQTT 5: the broker must not send a packet bigger than this (it drops the message instead).
      ...(conn.protocol_version === 5 ? { properties: { maximumPacketSize: conn.max_payload_size + PACKET_OVERHEAD } } : {}),
      rejectUnauthorized: conn.reject_unauthorized,
      ...this.tls,
      reconnectPeriod: Math.max(1, backoffDelay(this.attempt++, conn.reconnect)),
      connectTimeout: 10_000,
      // Subscriptions are made on each connection (see 'connect').
      resubscribe: false,
    };
    let lastError: string | undefined;
    // On MQTT 3.1.1 the client would buffer a packet of any announced size (up to 256 MiB) before
    // max_payload_size could be checked: the bounded stream closes the connection as soon as a
    // packet's header announces more (counted as refused; the points go bad as not connected, and
    // the connection is made again).
    const c = connectBounded(conn.url, options, conn.max_payload_size + PACKET_OVERHEAD, (err) => {
      this.counters.refused++;
      lastError = err.message;
    });
    this.client = c;
    let reported: string | undefined;
    c.on('connect', (connack) => {
      this.attempt = 0;
      c.options.reconnectPeriod = Math.max(1, backoffDelay(this.attempt++, conn.reconnect));
      if (this.wasConnected) this.counters.reconnects++;
      this.ctx.log.info(
        { url: redact(conn.url), sessionPresent: connack.sessionPresent },
        this.wasConnected ? 'MQTT connection restored' : 'MQTT connected',
      );
      this.wasConnected = true;
      this.lostReported = false;
      reported = undefined;
      // Also with a session the broker kept: the site file's filters may have changed since it was made.
      this.subscribe(c);
    });
    c.on('message', (topic, payload, packet) => {
      // The checks below turn every bad message into readings; this is the last guard, so that a
      // message no check foresaw costs its readings, never the gateway.
      try {
        this.onMessage(topic, payload, packet.retain);
      } catch (err) {
        this.counters.errors++;
        this.errorLog((notLogged) =>
          this.ctx.log.error(
            { topic, err: (err as Error).message, errors: this.counters.errors, ...(notLogged ? { notLogged } : {}) },
            'MQTT message could not be handled; dropped (counted)',
          ),
        );
      }
    });
    c.on('error', (err) => {
      lastError = err.message;
    });
    c.on('close', () => {
      if (this.stopping) return;
      const reason = lastError ?? 'connection closed';
      lastError = undefined;
      if (reason !== reported) {
        this.ctx.log.warn(
          { url: redact(conn.url), reason },
          this.wasConnected && !this.lostReported
            ? 'MQTT connection lost; reconnecting with backoff'
            : 'MQTT broker not reachable; retrying with backoff',
        );
        reported = reason;
      }
      // Values arrive only when devices publish: without the broker nothing says they are still true.
      if (!this.lostReported) {
        this.lostReported = true;
        this.emitBad(this.plans, `not connected to the broker: ${reason}`, true);
      }
      c.options.reconnectPeriod = Math.max(1, backoffDelay(this.attempt++, conn.reconnect));
    });

    // Nothing says when such equipment's values stop being true: a dead sensor would stay good forever.
    for (const id of new Set(this.plans.map((p) => p.equipment)))
      if (this.plans.every((p) => p.equipment !== id || p.staleAfter === undefined))
        this.ctx.log.warn(
          { equipment: id },
          'mqtt-in equipment has no stale_after: its values stay good however long the device is silent (set stale_after)',
        );
    const withStale = this.plans.filter((p) => p.staleAfter !== undefined);
    if (withStale.length > 0) {
      const shortest = Math.min(...withStale.map((p) => p.staleAfter!));
      this.staleTimer = setInterval(() => this.checkStale(withStale), Math.min(5000, Math.max(100, shortest / 5)));
      this.staleTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.staleTimer);
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => c.end(true, () => resolve()), STOP_WAIT_MS);
      c.end(false, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  stats(): Record<string, number> {
    return { ...this.counters, connected: this.client?.connected ? 1 : 0 };
  }

  private subscribe(c: MqttClient): void {
    const filters = [...new Set(this.plans.map((p) => p.filter))];
    c.subscribe(filters, { qos: this.conn.qos }, (err, subs, packet) => {
      if (!err) return;
      // mqtt.js turns a SUBACK with a failure code (0x80 and up) into an error that carries the SUBACK;
      // without one the connection closed meanwhile, and the next connection subscribes again.
      const codes = packet?.cmd === 'suback' ? packet.granted : undefined;
      if (!codes) {
        this.ctx.log.warn({ filters, err: err.message }, 'MQTT subscription failed; subscribing again on the next connection');
        return;
      }
      // One SUBACK answers the whole list, its codes in the order of the filters.
      (subs ?? ([] as ISubscriptionGrant[])).forEach((sub, i) => {
        const code = codes[i];
        if (typeof code !== 'number' || (code & 0x80) === 0) return;
        this.counters.subscribeRefused++;
        this.ctx.log.error(
          { topic: sub.topic, code },
          "MQTT broker refused the subscription (check the user's permissions); its points are bad",
        );
        this.emitBad(
          this.plans.filter((p) => p.filter === sub.topic),
          `subscription refused by the broker (code 0x${code.toString(16)})`,
          true,
        );
      });
    });
  }

  private onMessage(topic: string, payload: Buffer, retained: boolean): void {
    this.counters.messages++;
    if (!isTopicName(topic)) {
      this.counters.refused++;
      this.refusedLog((notLogged) =>
        this.ctx.log.warn(
          { topic, refused: this.counters.refused, ...(notLogged ? { notLogged } : {}) },
          'MQTT message on a topic with wildcards; refused',
        ),
      );
      return;
    }
    const targets = this.plans.filter((p) => topicMatches(p.filter, topic));
    if (targets.length === 0) {
      this.counters.unmatched++;
      return;
    }
    const ts = Date.now();
    if (retained) this.counters.retained++;
    if (payload.length > this.conn.max_payload_size) {
      this.counters.refused++;
      this.refusedLog((notLogged) =>
        this.ctx.log.warn(
          {
            topic,
            size: payload.length,
            max_payload_size: this.conn.max_payload_size,
            refused: this.counters.refused,
            ...(notLogged ? { notLogged } : {}),
          },
          'MQTT payload bigger than max_payload_size; refused (counted)',
        ),
      );
      this.emitBad(targets, `payload too large (${payload.length} bytes, at most ${this.conn.max_payload_size})`, false, ts);
      return;
    }
    const text = payload.toString('utf8');
    // Parsed once for every point that reads JSON, only when one does.
    let doc: { ok: true; value: unknown } | { ok: false; reason: string } | undefined;
    const json = () => {
      if (doc) return doc;
      try {
        doc = { ok: true, value: JSON.parse(text) };
      } catch (err) {
        this.counters.parseErrors++;
        const reason = (err as Error).message.slice(0, 80);
        this.parseLog((notLogged) =>
          this.ctx.log.warn(
            { topic, reason, parseErrors: this.counters.parseErrors, ...(notLogged ? { notLogged } : {}) },
            'MQTT payload is not JSON',
          ),
        );
        doc = { ok: false, reason: `payload is not JSON: ${reason}` };
      }
      return doc;
    };
    const batch: Reading[] = [];
    for (const p of targets) {
      const r = this.read(p, text, payload.length, json, ts, retained);
      if (!r) continue;
      p.last = ts;
      p.silent = false;
      p.lastValue = r.value;
      batch.push(r);
    }
    if (batch.length === 0) return;
    this.counters.readings += batch.length;
    this.ctx.sink(batch);
  }

  /** The point's reading from one message; undefined when the message does not carry it. */
  private read(
    p: PointPlan,
    text: string,
    bytes: number,
    json: () => { ok: true; value: unknown } | { ok: false; reason: string },
    ts: number,
    retained: boolean,
  ): Reading | undefined {
    const base = { equipment: p.equipment, point: p.point, ts };
    const bad = (reason: string): Reading => ({ ...base, value: null, quality: 'bad', reason });
    const needsJson = p.path !== undefined || p.timestamp !== undefined || p.quality !== undefined;
    const doc = needsJson ? json() : undefined;
    if (doc && !doc.ok) return bad(doc.reason);
    const root = doc?.value;

    // The device's status, when it states one: it counts also in a message without the value.
    let status: { quality: Quality; reason?: string | undefined } | undefined;
    if (p.quality) {
      const found = evaluatePath(root, p.quality.path);
      if (found.found) status = mapQuality(found.value, p.quality);
    }

    let raw: unknown;
    let carried: boolean;
    if (p.path) {
      const found = evaluatePath(root, p.path);
      carried = found.found;
      if (found.found) raw = found.value;
    } else {
      // The bound keeps a regular expression's time small whatever the peer sends; the time limit makes sure of it.
      if (bytes > MAX_PATTERN_INPUT) return bad(`payload longer than ${MAX_PATTERN_INPUT} bytes for a pattern`);
      const m = p.pattern!(text);
      if (!m.ok) return this.patternTimeout(p, m.reason, bad);
      carried = m.value !== null;
      raw = m.value;
    }
    if (!carried) {
      // A device reporting a fault without a value: the last value is no longer true (bad) or no longer sure (uncertain).
      if (status?.quality === 'bad') return bad(status.reason!);
      if (status?.quality === 'uncertain' && p.lastValue !== null)
        return { ...base, value: p.lastValue, quality: 'uncertain', reason: status.reason! };
      return undefined;
    }

    const converted = convertValue(raw, p.type, p.scale, p.offset);
    if (!converted.ok) return this.typeError(p, converted.reason, bad);
    let quality: Quality = 'good';
    let reason: string | undefined;
    if (p.quality) {
      const mapped = status ?? { quality: 'bad' as const, reason: 'no device status in the message' };
      if (mapped.quality === 'bad') return bad(mapped.reason!);
      [quality, reason] = [mapped.quality, mapped.reason];
    }
    const reading: Reading = { ...base, value: converted.value, quality };
    const because = (why: string) => {
      reading.quality = 'uncertain';
      reason = reason ? `${reason}; ${why}` : why;
    };
    if (p.timestamp) {
      const at = evaluatePath(root, p.timestamp.path);
      const time = at.found ? convertTimestamp(at.value, p.timestamp.format, ts) : { ok: false as const, reason: 'no time in the message' };
      if (time.ok) reading.sourceTs = time.value;
      else {
        this.typeError(p, time.reason, bad);
        because(time.reason);
      }
    }
    if (retained) {
      // The broker sends a retained message again on every subscription (after every reconnect), however
      // old it is: only a recent source time says it is still true.
      const window = p.staleAfter ?? RETAINED_FRESH_MS;
      if (reading.sourceTs === undefined) because(RETAINED_UNKNOWN_AGE);
      else if (ts - reading.sourceTs > window) {
        because(`retained by the broker: source time ${Math.round((ts - reading.sourceTs) / 1000)} s old`);
        delete reading.sourceTs;
      }
    }
    if (reason !== undefined) reading.reason = reason;
    return reading;
  }

  private patternTimeout(p: PointPlan, reason: string, bad: (reason: string) => Reading): Reading {
    this.counters.patternTimeouts++;
    this.patternLog((notLogged) =>
      this.ctx.log.warn(
        {
          equipment: p.equipment,
          point: p.point,
          reason,
          patternTimeouts: this.counters.patternTimeouts,
          ...(notLogged ? { notLogged } : {}),
        },
        "MQTT payload took the point's pattern too long; refused (counted)",
      ),
    );
    return bad(reason);
  }

  private typeError(p: PointPlan, reason: string, bad: (reason: string) => Reading): Reading {
    this.counters.typeErrors++;
    this.typeLog((notLogged) =>
      this.ctx.log.warn(
        { equipment: p.equipment, point: p.point, reason, typeErrors: this.counters.typeErrors, ...(notLogged ? { notLogged } : {}) },
        'MQTT value does not fit its point',
      ),
    );
    return bad(reason);
  }

  /** Bad readings for these points; `silence` when they are bad until a message comes again. */
  private emitBad(plans: PointPlan[], reason: string, silence: boolean, ts = Date.now()): void {
    if (plans.length === 0) return;
    for (const p of plans) {
      p.lastValue = null;
      if (silence) p.silent = true;
      else {
        p.last = ts;
        p.silent = false;
      }
    }
    this.counters.readings += plans.length;
    this.ctx.sink(plans.map((p) => ({ equipment: p.equipment, point: p.point, value: null, quality: 'bad', reason, ts })));
  }

  private checkStale(plans: PointPlan[]): void {
    const now = Date.now();
    const stale = plans.filter((p) => !p.silent && now - p.last >= p.staleAfter!);
    if (stale.length === 0) return;
    this.counters.stale += stale.length;
    this.emitBad(stale, 'stale', true, now);
  }
}
