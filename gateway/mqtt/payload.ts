// Payloads the gateway takes from MQTT are checked before anything is derived from them: size, UTF-8,
// JSON, then the shape of a telemetry message field by field. A payload that fails says why.
import { RESERVED_POINT_NAMES } from '../../drivers/common/primitives.js';
import type { TelemetryMessage } from './topics.js';

export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Point names as the site file allows them (drivers/common/primitives.ts): they become InfluxDB field keys. */
const POINT_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const POINT = { test: (name: string) => POINT_NAME.test(name) && !RESERVED_POINT_NAMES.includes(name) };
const QUALITIES = new Set(['good', 'uncertain', 'bad']);
/** InfluxDB keeps nanoseconds in a signed 64-bit integer: the last millisecond it can hold (year 2262). */
const MAX_TS_MS = 9_223_372_036_854;
const MAX_REASON = 1000;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The payload as JSON, if it is at most `maxBytes` of UTF-8 JSON. */
export function parseJson(payload: Buffer | string, maxBytes: number): Checked<unknown> {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (size > maxBytes) return { ok: false, reason: `payload of ${size} bytes, at most ${maxBytes}` };
  let text: string;
  try {
    text = typeof payload === 'string' ? payload : utf8.decode(payload);
  } catch {
    return { ok: false, reason: 'payload is not UTF-8' };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, reason: `payload is not JSON (${(err as Error).message.slice(0, 100)})` };
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A telemetry message (gateway/mqtt/topics.ts) checked member by member; nothing is taken on trust. */
export function parseTelemetry(payload: Buffer | string, maxBytes: number): Checked<TelemetryMessage> {
  const json = parseJson(payload, maxBytes);
  if (!json.ok) return json;
  const m = json.value;
  if (!isRecord(m)) return { ok: false, reason: 'expected a JSON object' };
  if (typeof m.ts !== 'number' || !Number.isFinite(m.ts) || m.ts < 0 || m.ts > MAX_TS_MS)
    return { ok: false, reason: 'ts: expected milliseconds since 1970 (up to the year 2262)' };
  if (!isRecord(m.values)) return { ok: false, reason: 'values: expected an object of point values' };
  if (!isRecord(m.quality)) return { ok: false, reason: 'quality: expected an object of point qualities' };
  if (m.reasons !== undefined && !isRecord(m.reasons)) return { ok: false, reason: 'reasons: expected an object of texts' };
  for (const [point, v] of Object.entries(m.values)) {
    if (!POINT.test(point)) return { ok: false, reason: `values: ${JSON.stringify(point.slice(0, 70))} is not a point name` };
    if (v !== null && typeof v !== 'number' && typeof v !== 'boolean' && typeof v !== 'string')
      return { ok: false, reason: `values.${point}: expected a number, boolean, text or null` };
    // The gateway's own messages give every point its quality; a value without one is not taken as good.
    if (!Object.hasOwn(m.quality, point)) return { ok: false, reason: `quality.${point}: missing` };
  }
  for (const [point, q] of Object.entries(m.quality)) {
    if (!POINT.test(point)) return { ok: false, reason: `quality: ${JSON.stringify(point.slice(0, 70))} is not a point name` };
    if (typeof q !== 'string' || !QUALITIES.has(q)) return { ok: false, reason: `quality.${point}: expected good, uncertain or bad` };
  }
  for (const [point, r] of Object.entries(m.reasons ?? {})) {
    if (!POINT.test(point)) return { ok: false, reason: `reasons: ${JSON.stringify(point.slice(0, 70))} is not a point name` };
    if (typeof r !== 'string' || r.length > MAX_REASON)
      return { ok: false, reason: `reasons.${point}: expected a text of at most ${MAX_REASON} characters` };
  }
  return { ok: true, value: m as unknown as TelemetryMessage };
}
