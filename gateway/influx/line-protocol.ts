// Telemetry messages as InfluxDB line protocol, per the schema in README.md ("Into InfluxDB"): measurement =
// category; tags site, equipment, code; one field per point; timestamps in nanoseconds, exact.
import { LEVELS, type AlarmEvent } from '../../rules/types.js';
import type { LabResult } from '../../drivers/common/result.js';
import type { TelemetryMessage } from '../mqtt/topics.js';

export interface EquipmentTags {
  measurement: string;
  site: string;
  equipment: string;
  code?: string | undefined;
}

/** Fields that InfluxDB refused for their type: left out of later lines instead of failing them all. */
export type Quarantine = ReadonlyMap<string, ReadonlySet<string>>;

export interface Encoded {
  lines: string[];
  /** Values left out: not finite numbers, or quarantined fields. */
  skipped: number;
}

const escapeKey = (s: string) => s.replace(/[,= \\]/g, (c) => `\\${c}`);
const escapeMeasurement = (s: string) => s.replace(/[, \\]/g, (c) => `\\${c}`);
const escapeString = (s: string) => s.replace(/["\\]/g, (c) => `\\${c}`).replace(/\n/g, '\\n');

export function seriesKey(tags: EquipmentTags): string {
  let key = `${escapeMeasurement(tags.measurement)},site=${escapeKey(tags.site)},equipment=${escapeKey(tags.equipment)}`;
  if (tags.code) key += `,code=${escapeKey(tags.code)}`;
  return key;
}

/**
 * One line with every value of the message, and one line per point that is not good: that line
 * carries the extra tag `point` and the fields `quality` and `reason`, never a made-up value. A point
 * with its own time (`times`) is written at that time: the values of each time share a line.
 * Numbers are always written as floats, so an integral reading cannot turn a float field into an
 * integer one (a type conflict InfluxDB would refuse for good).
 */
export function encodeTelemetry(
  message: TelemetryMessage,
  tags: EquipmentTags,
  quarantine?: Quarantine,
  series = seriesKey(tags),
): Encoded {
  const ts = nanoseconds(message.ts);
  const times = message.times;
  const banned = quarantine?.get(tags.measurement);
  /** Fields by their time in ns: one line each, the message's own time first. */
  const fields = new Map<string, string[]>([[ts, []]]);
  const lines: string[] = [];
  let skipped = 0;
  for (const [point, value] of Object.entries(message.values)) {
    // Own members only: `constructor` or `__proto__` must not find Object.prototype's.
    const quality = Object.hasOwn(message.quality, point) ? message.quality[point] : 'good';
    const time = times && Object.hasOwn(times, point) ? nanoseconds(times[point]!) : ts;
    if (quality !== 'good') {
      const reason = message.reasons && Object.hasOwn(message.reasons, point) ? message.reasons[point] : undefined;
      lines.push(`${series},point=${escapeKey(point)} quality="${quality}"${reason ? `,reason="${escapeString(reason)}"` : ''} ${time}`);
    }
    if (value === null || quality === 'bad') continue;
    if (banned?.has(point)) {
      skipped++;
      continue;
    }
    const field = fieldValue(value);
    if (field === undefined) {
      skipped++;
      continue;
    }
    const line = fields.get(time);
    if (line) line.push(`${escapeKey(point)}=${field}`);
    else fields.set(time, [`${escapeKey(point)}=${field}`]);
  }
  const valueLines: string[] = [];
  for (const [time, f] of fields) if (f.length > 0) valueLines.push(`${series} ${f.join(',')} ${time}`);
  return { lines: valueLines.length > 0 ? [...valueLines, ...lines] : lines, skipped };
}

/** Milliseconds to nanoseconds by appending digits: no float rounding on the way. */
const nanoseconds = (ms: number) => `${Math.trunc(ms)}000000`;

/**
 * Alarm events as measurement `alarm`: tags site, equipment, rule, level; fields state, type, value,
 * incident_id, message. Events of one batch that share a millisecond get consecutive nanoseconds, so
 * none overwrites another.
 */
export function encodeAlarms(events: readonly AlarmEvent[]): string[] {
  let lastMs = -1;
  let k = 0;
  return events.map((e) => {
    k = e.ts === lastMs ? k + 1 : 0;
    lastMs = e.ts;
    let line = `alarm,site=${escapeKey(e.site)}`;
    if (e.equipment) line += `,equipment=${escapeKey(e.equipment)}`;
    line += `,rule=${escapeKey(e.rule)},level=${e.level} state="${e.state}",type="${e.type}"`;
    const value = typeof e.value === 'boolean' ? Number(e.value) : e.value;
    if (typeof value === 'number' && Number.isFinite(value)) line += `,value=${value}`;
    if (e.incidentId) line += `,incident_id="${escapeString(e.incidentId)}"`;
    line += `,message="${escapeString(e.message)}"`;
    return `${line} ${Math.trunc(e.ts) * 1_000_000 + k}`;
  });
}

/** What encodeRisk writes of an equipment's risk assessment (rules/risk.ts RiskAssessment has these members). */
export interface RiskPoint {
  equipment: string;
  level: AlarmEvent['level'];
  score: number;
  likelihood: number;
  consequence: number;
  points: number;
  factors: ReadonlyArray<{ factor: string; points: number }>;
  computedAt: number;
}

/**
 * Risk assessments as measurement `risk`: tags site, equipment; fields level (its name) and
 * level_code (0 blue .. 3 red, to graph and compare), score, likelihood, consequence, points and one
 * field per factor that gave points, named after it (`alarm_red`, `near_misses`: a factor that gave
 * none is left out, so a query reads a missing field as 0). The level is a field, not a tag, so an
 * equipment's score stays one series across its level changes. Time: when the assessment was computed.
 */
export function encodeRisk(assessments: readonly RiskPoint[], site: string): string[] {
  return assessments.map((a) => {
    const fields: string[] = [];
    const add = (name: string, n: number) => {
      // Line protocol reads a plain number as a float, also a whole one; NaN and infinities it cannot store.
      if (Number.isFinite(n)) fields.push(`${escapeKey(name)}=${n}`);
    };
    fields.push(`level="${a.level}"`);
    add('level_code', LEVELS.indexOf(a.level));
    add('score', a.score);
    add('likelihood', a.likelihood);
    add('consequence', a.consequence);
    add('points', a.points);
    for (const f of a.factors) if (f.points !== 0) add(f.factor, f.points);
    return `risk,site=${escapeKey(site)},equipment=${escapeKey(a.equipment)} ${fields.join(',')} ${nanoseconds(a.computedAt)}`;
  });
}

/**
 * Lab results as measurement `lab_result`: tags site, instrument, analyte; the sample id is a field,
 * never a tag (its values are unbounded). Time: when the instrument completed the result.
 */
export function encodeResults(results: readonly LabResult[], site: string): string[] {
  return results.map((r) => {
    const value =
      typeof r.value === 'number' && Number.isFinite(r.value) ? `value=${r.value}` : `text="${escapeString(String(r.value ?? ''))}"`;
    const fields = [
      value,
      `sample_id="${escapeString(r.sampleId)}"`,
      ...(r.unit ? [`unit="${escapeString(r.unit)}"`] : []),
      `flags="${escapeString(r.flags.join(','))}"`,
      `status="${escapeString(r.status)}"`,
      `result_id="${escapeString(r.resultId)}"`,
    ];
    // Results of one analyte completed in the same millisecond (an analyzer stamps a whole run with
    // one time) would overwrite each other: the sub-millisecond digits come from the result id, so
    // they differ between results and the same result written again lands on itself.
    const ns = String(fnv1a(r.resultId) % 1_000_000).padStart(6, '0');
    return `lab_result,site=${escapeKey(site)},instrument=${escapeKey(r.instrument)},analyte=${escapeKey(r.analyte)} ${fields.join(',')} ${Date.parse(r.resultAt)}${ns}`;
  });
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function fieldValue(value: number | boolean | string): string | undefined {
  if (typeof value === 'number') {
    // Line protocol reads `1e+21` and `-0.5` as floats; NaN and infinities it cannot store.
    return Number.isFinite(value) ? `${value}` : undefined;
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return `"${escapeString(value)}"`;
}

/**
 * A line without one field; undefined when nothing else is left. Used to send a refused batch again
 * without the field InfluxDB refused. Knows the lines this module writes: quoted strings may hold
 * commas, spaces and escaped quotes.
 */
export function withoutField(line: string, measurement: string, field: string): string | undefined {
  const keyEnd = unescapedIndex(line, ' ', 0);
  if (keyEnd < 0) return line;
  const series = line.slice(0, keyEnd);
  const name = series.slice(0, unescapedIndex(series + ',', ',', 0));
  if (name !== escapeMeasurement(measurement)) return line;
  const tsStart = line.lastIndexOf(' ');
  const fieldSet = line.slice(keyEnd + 1, tsStart);
  const parts: string[] = [];
  let start = 0;
  let inString = false;
  for (let k = 0; k < fieldSet.length; k++) {
    const c = fieldSet[k];
    if (c === '\\') k++;
    else if (c === '"') inString = !inString;
    else if (c === ',' && !inString) {
      parts.push(fieldSet.slice(start, k));
      start = k + 1;
    }
  }
  parts.push(fieldSet.slice(start));
  const escaped = escapeKey(field);
  const kept = parts.filter((p) => p.slice(0, unescapedIndex(p, '=', 0)) !== escaped);
  if (kept.length === parts.length) return line;
  if (kept.length === 0) return undefined;
  return `${series} ${kept.join(',')}${line.slice(tsStart)}`;
}

function unescapedIndex(s: string, ch: string, from: number): number {
  for (let k = from; k < s.length; k++) {
    if (s[k] === '\\') k++;
    else if (s[k] === ch) return k;
  }
  return -1;
}
