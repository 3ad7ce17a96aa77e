// Readings from the drivers go through here: checked, turned into the telemetry and status messages
// of the MQTT contract, and handed to in-process listeners (the rule engine) before any network I/O.
import type { Reading } from '../drivers/types.js';
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
}

export function createPipeline(opts: { link: MqttLink; topics: Topics; equipment: readonly string[]; log: Logger }): Pipeline {
  const { link, topics, log } = opts;
  const listeners: BatchListener[] = [];
  const statuses = new Map<string, StatusMessage>();
  const counters = { readings: 0, batches: 0, listenerErrors: 0 };
  const equipmentLogs = new Map(opts.equipment.map((id) => [id, log.child({ equipment: id })]));

  const setStatus = (equipment: string, next: StatusMessage) => {
    const prev = statuses.get(equipment);
    if (prev && prev.state === next.state && prev.reason === next.reason) return;
    statuses.set(equipment, next);
    if (prev?.state !== next.state) (equipmentLogs.get(equipment) ?? log).info({ state: next.state, reason: next.reason }, 'Equipment status changed');
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
        const message = telemetryOf(readings);
        link.publishTelemetry(equipment, message);
        setStatus(equipment, statusOf(readings, message.ts));
      }
    },
    onBatch(listener) {
      listeners.push(listener);
    },
    async stop() {
      for (const equipment of opts.equipment) setStatus(equipment, { state: 'offline', reason: 'gateway stopped', ts: Date.now() });
    },
    status: (equipment) => statuses.get(equipment),
    stats: () => ({ ...counters }),
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

export function telemetryOf(readings: readonly Reading[]): TelemetryMessage {
  const message: TelemetryMessage = { ts: 0, values: {}, quality: {} };
  for (const r of readings) {
    message.ts = Math.max(message.ts, r.ts);
    message.values[r.point] = r.value;
    message.quality[r.point] = r.quality;
    if (r.quality !== 'good' && r.reason) (message.reasons ??= {})[r.point] = r.reason;
  }
  return message;
}

/** online: every point good; offline: none readable; degraded: in between. */
export function statusOf(readings: readonly Reading[], ts: number): StatusMessage {
  const notGood = readings.filter((r) => r.quality !== 'good');
  if (notGood.length === 0) return { state: 'online', ts };
  const reasons = [...new Set(notGood.map((r) => r.reason ?? r.quality))];
  const allBad = notGood.length === readings.length && notGood.every((r) => r.quality === 'bad');
  if (allBad) return { state: 'offline', reason: reasons.join('; '), ts };
  return { state: 'degraded', reason: notGood.map((r) => `${r.point}: ${r.reason ?? r.quality}`).join('; '), ts };
}
