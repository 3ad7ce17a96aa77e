// From a telemetry message to line protocol: which equipment the topic names, whether the payload is
// a sound telemetry message of that equipment, and the lines it makes. Anyone may publish on a
// telemetry topic, so a message is either lines or a reason it was refused.
import type { TelemetryMessage } from '../mqtt/topics.js';
import { parseTelemetry } from '../mqtt/payload.js';
import { encodeTelemetry, seriesKey, type EquipmentTags, type Quarantine } from './line-protocol.js';

export interface IntakeOptions {
  site: string;
  topicPrefix: string;
  equipment: ReadonlyArray<{ id: string; category: string; code?: string | undefined }>;
  /** Bigger payloads are refused unread. */
  maxPayloadBytes: number;
  /** Fields InfluxDB refused for good, by measurement: their values are left out of every line. */
  quarantine: Quarantine;
}

export type Intake = { ok: true; lines: string[]; skipped: number } | { ok: false; reason: string };

/** InfluxDB keeps nanoseconds in a signed 64-bit integer: the last millisecond it can hold (year 2262). */
const MAX_TS_MS = 9_223_372_036_854;

export class TelemetryIntake {
  private readonly levels: number;
  private readonly byEquipment = new Map<string, { tags: EquipmentTags; series: string }>();

  constructor(private readonly opts: IntakeOptions) {
    this.levels = opts.topicPrefix.split('/').length;
    this.setEquipment(opts.equipment);
  }

  /** The site's equipment (a reload may add or remove some): the telemetry of others is refused. */
  setEquipment(equipment: IntakeOptions['equipment']): void {
    this.byEquipment.clear();
    for (const e of equipment) {
      const tags: EquipmentTags = { measurement: e.category, site: this.opts.site, equipment: e.id, code: e.code };
      this.byEquipment.set(e.id, { tags, series: seriesKey(tags) });
    }
  }

  /** The lines of a message as it arrived on `<prefix>/<site>/<equipment>/telemetry`, or why it was refused. */
  take(topic: string, payload: Buffer | string): Intake {
    const equipment = this.equipmentOf(topic);
    const known = equipment === undefined ? undefined : this.byEquipment.get(equipment);
    if (!known) {
      const reason =
        equipment === undefined
          ? 'not a telemetry topic of this site'
          : `no equipment ${JSON.stringify(equipment.slice(0, 70))} on this site`;
      return { ok: false, reason };
    }
    const message = parseTelemetry(payload, this.opts.maxPayloadBytes);
    if (!message.ok) return { ok: false, reason: message.reason };
    const badTimes = timesProblem(message.value);
    if (badTimes) return { ok: false, reason: badTimes };
    const encoded = encodeTelemetry(message.value, known.tags, this.opts.quarantine, known.series);
    return { ok: true, lines: encoded.lines, skipped: encoded.skipped };
  }

  /** The site's equipment whose lines go to this measurement (for a log line about it). */
  equipmentIn(measurement: string): string[] {
    return [...this.byEquipment.values()].filter((t) => t.tags.measurement === measurement).map((t) => t.tags.equipment);
  }

  private equipmentOf(topic: string): string | undefined {
    const { levels, opts } = this;
    const parts = topic.split('/');
    return parts.length === levels + 3 && topic.startsWith(`${opts.topicPrefix}/${opts.site}/`) && parts[levels + 2] === 'telemetry'
      ? parts[levels + 1]
      : undefined;
  }
}

/**
 * What is wrong with a telemetry message's per-point times, if anything (parseTelemetry checked the
 * rest and passes `times` through unread): an object of milliseconds within InfluxDB's range, each
 * for a point of the message, so there are never more of them than values.
 */
export function timesProblem(message: TelemetryMessage): string | undefined {
  const times: unknown = message.times;
  if (times === undefined) return undefined;
  if (typeof times !== 'object' || times === null || Array.isArray(times)) return 'times: expected an object of point times';
  for (const [point, t] of Object.entries(times)) {
    if (!Object.hasOwn(message.values, point)) return `times: ${JSON.stringify(point.slice(0, 70))} is not a point of the message`;
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0 || t > MAX_TS_MS)
      return `times.${point}: expected milliseconds since 1970 (up to the year 2262)`;
  }
  return undefined;
}
