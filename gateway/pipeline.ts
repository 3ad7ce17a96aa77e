// Readings from the drivers go through here: checked, turned into the telemetry and status messages
// of the MQTT contract, and handed to in-process listeners (the rule engine) before any network I/O.
import type { Quality, Reading } from '../drivers/types.js';
import { inTimeOrder, pointTime } from '../drivers/common/reading-time.js';
import type { Logger } from './log.js';
import type { MqttLink } from './mqtt/link.js';
import type { StatusMessage, TelemetryMessage, Topics } from './mqtt/topics.js';

export type BatchListener = (batch: readonly Reading[]) => void;

export interface Pipeline {
  /** The sink every driver writes into. */
  push(batch: Reading[]): void;
  /** Listeners run synchronously on every batch, before it is published. */
  onBatch(listener: BatchListener): void;
  /** Publishes `offline` for every equipment: the gateway no longer reads it. */
  stop(): Promise<void>;
  /** Last status published per equipment. */
  status(equipment: string): StatusMessage | undefined;
  stats(): { readings: number; batches: number; listenerErrors: number };
  /**
   * A reload changed the points of these equipment (docs/reload.md): what is known of their points'
   * quality is forgotten, so that their status is judged from the points they have now.
   */
  pointsChanged(equipment: readonly string[]): void;
  /**
   * A reload left these equipment (docs/reload.md): one removed is forgotten and its retained status
   * cleared (its driver stopped first); one added gets its status from its first readings.
   */
  equipmentChanged(equipment: readonly string[]): void;
}

export function createPipeline(opts: { link: MqttLink; topics: Topics; equipment: readonly string[]; log: Logger }): Pipeline {
  const { link, topics, log } = opts;
  const listeners: BatchListener[] = [];
  const statuses = new Map<string, StatusMessage>();
  const known = new Map<string, KnownPoints>();
  const counters = { readings: 0, batches: 0, listenerErrors: 0 };
  let ids = [...opts.equipment];
  /** Equipment a reload removed: no status of theirs is published again. */
  const removed = new Set<string>();
  const equipmentLogs = new Map(ids.map((id) => [id, log.child({ equipment: id })]));

  const setStatus = (equipment: string, next: StatusMessage) => {
    const prev = statuses.get(equipment);
    if (prev && prev.state === next.state && prev.reason === next.reason) return;
    statuses.set(equipment, next);
    if (prev?.state !== next.state)
      (equipmentLogs.get(equipment) ?? log).info({ state: next.state, reason: next.reason }, 'Equipment status changed');
    link.publishStatus(topics.equipmentStatus(equipment), next);
  };

  return {
    push(batch) {
      counters.batches++;
      counters.readings += batch.length;
      for (const r of batch) {
        // A reading of bad quality carries no value, whatever a driver put there.
        if (r.quality === 'bad' && r.value !== null) r.value = null;
      }
      for (const listener of listeners) {
        try {
          listener(batch);
        } catch (err) {
          counters.listenerErrors++;
          log.error({ err }, 'Reading listener failed');
        }
      }
      for (const [equipment, readings] of groupByEquipment(batch)) {
        const ordered = inTimeOrder(readings);
        for (const message of messagesOf(ordered)) link.publishTelemetry(equipment, message);
        let points = known.get(equipment);
        if (!points) known.set(equipment, (points = knownPoints()));
        let ts = 0;
        for (const r of ordered) {
          noteQuality(points, r);
          if (r.ts > ts) ts = r.ts;
        }
        // A removed equipment's last readings (taken before its driver stopped) leave no status behind.
        if (!removed.has(equipment)) setStatus(equipment, statusOf(points, ts));
      }
    },
    onBatch(listener) {
      listeners.push(listener);
    },
    async stop() {
      for (const id of ids) setStatus(id, { state: 'offline', reason: 'gateway stopped', ts: Date.now() });
    },
    status: (equipment) => statuses.get(equipment),
    stats: () => ({ ...counters }),
    pointsChanged(changed) {
      for (const id of changed) known.delete(id);
    },
    equipmentChanged(next) {
      for (const id of ids) {
        if (next.includes(id)) continue;
        statuses.delete(id);
        known.delete(id);
        equipmentLogs.delete(id);
        removed.add(id);
        link.clearRetained(topics.equipmentStatus(id));
      }
      for (const id of next) {
        removed.delete(id);
        if (!equipmentLogs.has(id)) equipmentLogs.set(id, log.child({ equipment: id }));
      }
      ids = [...next];
    },
  };
}

function groupByEquipment(batch: readonly Reading[]): Map<string, Reading[]> {
  const groups = new Map<string, Reading[]>();
  for (const r of batch) {
    const list = groups.get(r.equipment);
    if (list) list.push(r);
    else groups.set(r.equipment, [r]);
  }
  return groups;
}

/**
 * The telemetry of one equipment's readings: one message, or several when the readings hold more
 * than one value of a point (an OPC UA publish can): the n-th value of each point in time goes into
 * the n-th message, so no value is lost and no message has a point twice. `ts` is when the gateway
 * received the newest reading, as it always was; `times` has each point whose own time is not that.
 */
export function telemetryOf(readings: readonly Reading[]): TelemetryMessage[] {
  return messagesOf(inTimeOrder(readings));
}

function messagesOf(ordered: readonly Reading[]): TelemetryMessage[] {
  let ts = 0;
  for (const r of ordered) if (r.ts > ts) ts = r.ts;
  const messages: TelemetryMessage[] = [];
  for (const r of ordered) {
    let k = 0;
    while (k < messages.length && Object.hasOwn(messages[k]!.quality, r.point)) k++;
    const message = (messages[k] ??= { ts, values: {}, quality: {} });
    message.values[r.point] = r.value;
    message.quality[r.point] = r.quality;
    if (r.quality !== 'good' && r.reason) (message.reasons ??= {})[r.point] = r.reason;
    const time = pointTime(r);
    if (time !== ts) (message.times ??= {})[r.point] = time;
  }
  return messages;
}

/** What is known of an equipment's points: the last quality of each, whichever batch brought it. */
export interface KnownPoints {
  quality: Map<string, Quality>;
  /** Points that are not good and why, in the order they stopped being good. */
  notGood: Map<string, string>;
  /** How many known points are bad. */
  bad: number;
}

export const knownPoints = (): KnownPoints => ({ quality: new Map(), notGood: new Map(), bad: 0 });

export function noteQuality(known: KnownPoints, r: Reading): void {
  const before = known.quality.get(r.point);
  if (before === 'good' && r.quality === 'good') return;
  if (before === 'bad') known.bad--;
  if (r.quality === 'bad') known.bad++;
  known.quality.set(r.point, r.quality);
  if (r.quality === 'good') known.notGood.delete(r.point);
  else known.notGood.set(r.point, r.reason ?? r.quality);
}

/** Reasons listed in a status, at most: an equipment of thousands of points would make it huge. */
const LISTED = 20;

/**
 * From every known point, not from the last batch alone (an OPC UA notification holds only the
 * points that changed): online when all are good, offline when none can be read (all bad: a
 * connection that is down makes every point bad), degraded in between.
 */
export function statusOf(known: KnownPoints, ts: number): StatusMessage {
  if (known.notGood.size === 0) return { state: 'online', ts };
  if (known.bad === known.quality.size) return { state: 'offline', reason: listed(new Set(known.notGood.values())), ts };
  const notGood: string[] = [];
  for (const [point, why] of known.notGood) {
    if (notGood.length === LISTED) break;
    notGood.push(`${point}: ${why}`);
  }
  return { state: 'degraded', reason: listed(notGood, known.notGood.size), ts };
}

function listed(items: Iterable<string>, count?: number): string {
  const all = [...items];
  const total = count ?? all.length;
  const shown = all.slice(0, LISTED);
  return total > shown.length ? `${shown.join('; ')}; and ${total - shown.length} more` : shown.join('; ');
}
