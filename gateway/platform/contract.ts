// The contract with the central warning platform (docs/platform-contract.md): bodies (incidents, lab
// results, heartbeats, risk changes and summaries, daily reports), headers and the signature. The platform is built against it: within a schema version only additions a receiver
// may ignore (a new optional member, a new incident type); anything else needs a new version.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { LEVELS, type AlarmEvent } from '../../rules/types.js';
import type { LabResult } from '../../drivers/common/result.js';

export const INCIDENT_SCHEMA = 'gw.incident.v1';
export const HEARTBEAT_SCHEMA = 'gw.heartbeat.v1';
export const RESULT_SCHEMA = 'gw.result.v1';
export const RISK_SCHEMA = 'gw.risk.v1';
export const RISK_SUMMARY_SCHEMA = 'gw.risk-summary.v1';
export const REPORT_SCHEMA = 'gw.report.daily.v1';
export const LAB_DAILY_SCHEMA = 'gw.lab-daily.v1';

/** Every incident event type, in the order an incident can meet them; `closed` is always its last. */
export const INCIDENT_TYPES = ['raised', 'escalated', 'acknowledged', 'shelved', 'cleared', 'closed'] as const;
export type IncidentType = (typeof INCIDENT_TYPES)[number];

export interface IncidentBody {
  schema: typeof INCIDENT_SCHEMA;
  eventId: string;
  incidentId: string;
  type: IncidentType;
  level: AlarmEvent['level'];
  gatewayId: string;
  site: string;
  equipment: { id: string; code?: string; category: string; name?: string };
  rule: { id: string; message: string };
  point?: string;
  value?: number | boolean | string | null;
  unit?: string;
  occurredAt: string;
  /** Who acknowledged, shelved or took the alarm out of service, and why; on `closed`, what ended the incident. */
  by?: string;
  comment?: string;
  shelvedUntil?: string;
  seq: number;
}

/** A lab result for the platform (or a LIMS behind it); Idempotency-Key: resultId. */
export interface ResultBody {
  schema: typeof RESULT_SCHEMA;
  resultId: string;
  gatewayId: string;
  site: string;
  instrument: { id: string; category: string; name?: string };
  sampleId: string;
  analyte: string;
  value: number | string | null;
  unit?: string;
  flags: string[];
  status: string;
  resultAt: string;
  operator?: string;
  method?: string;
  reference?: { lo?: number; hi?: number };
  /**
   * Quality control, when the instrument has control targets (a receiver may ignore it). A control
   * sample: its verdict (`accepted`, `warning`, `rejected`), level, the Westgard rules that fired and
   * its z-score. A patient or sample result: `pending` (its analyte's last control of some level was
   * rejected: the rule, since when; `releasedAt` when its upload waited for a passing control) or
   * `passed`.
   */
  qc?: ResultBodyQc;
  seq: number;
}

export interface ResultBodyQc {
  status: 'accepted' | 'warning' | 'rejected' | 'pending' | 'passed';
  level?: string;
  rules?: string[];
  z?: number;
  rule?: string;
  since?: string;
  releasedAt?: string;
}

export interface HeartbeatBody {
  schema: typeof HEARTBEAT_SCHEMA;
  gatewayId: string;
  site: string;
  at: string;
  lastSeq: number;
  pending: number;
  activeIncidents: number;
}

/** One factor of a risk assessment: points = min(cap, weight x value). */
export interface RiskFactorBody {
  factor: string;
  value: number;
  weight: number;
  cap: number;
  points: number;
  detail?: string;
}

/** An equipment's risk level changed (docs/risk.md); Idempotency-Key: eventId (`risk-<gatewayId>-<store epoch>-<equipment>-<change number>`). */
export interface RiskBody {
  schema: typeof RISK_SCHEMA;
  eventId: string;
  gatewayId: string;
  site: string;
  equipment: { id: string; code?: string; category: string; name?: string };
  level: AlarmEvent['level'];
  previousLevel: AlarmEvent['level'];
  /** The risk index: likelihood x consequence. */
  score: number;
  likelihood: number;
  consequence: number;
  factors: RiskFactorBody[];
  changedAt: string;
  seq: number;
}

/** The ISA-18.2 alarm figures of a site over the summary's hour. */
export interface RiskSummaryKpi {
  annunciated: number;
  perOperatorPer10Min: number;
  peakPer10Min: number;
  floodPeriodsPercent: number;
  standing: number;
  stale: number;
  chattering: number;
  fleeting: number;
  shelved: number;
  timeToAckMedianMs?: number;
  timeToAckP90Ms?: number;
}

/** The number of equipment at each level. */
export type LevelCounts = Record<AlarmEvent['level'], number>;

/**
 * A site's risk over one period (an hour by default): counts per level for every equipment, and the
 * equipment that were above blue, had near misses or lost availability in it, one by one. Idempotency-Key:
 * eventId (`risk-summary-<gatewayId>-<from>`).
 */
export interface RiskSummaryBody {
  schema: typeof RISK_SUMMARY_SCHEMA;
  eventId: string;
  gatewayId: string;
  site: string;
  from: string;
  to: string;
  /** Every equipment of the site, by its level at the end of the period. */
  levels: LevelCounts;
  /** The equipment worth a look: not blue at some time in the period, with near misses, or not online all of it. */
  equipment: Array<{
    id: string;
    category: string;
    level: AlarmEvent['level'];
    maxLevel: AlarmEvent['level'];
    score: number;
    maxScore: number;
    nearMisses: number;
    /** Share of the period the equipment was online, 0..1. */
    availability: number;
  }>;
  kpi: RiskSummaryKpi;
  seq: number;
}

/** The common members of a daily safety report; its sections are the report's own (gateway/report). */
export interface ReportBodyHead {
  schema: typeof REPORT_SCHEMA;
  /** `report-<site>-<date>`: one per site and day, also when the report is made again. */
  eventId: string;
  gatewayId: string;
  site: string;
  /** The report's calendar day, YYYY-MM-DD in `timezone`. */
  date: string;
  timezone: string;
  generatedAt: string;
}

export type ReportBody = ReportBodyHead & { seq: number; [section: string]: unknown };

/**
 * One lab instrument's day (docs/labs.md): what it captured and what of it reached the platform when
 * the summary was made, the files and messages refused, its quality-control runs and the quiet gaps.
 * Idempotency-Key: eventId (`lab-daily:<site>:<instrument>:<date>`). A type, not an interface: the
 * outbox takes it as a record of members.
 */
export type LabDailyBody = {
  schema: typeof LAB_DAILY_SCHEMA;
  eventId: string;
  gatewayId: string;
  site: string;
  instrument: { id: string; category: string; name?: string };
  /** The calendar day, YYYY-MM-DD in `timezone`, and its bounds (ISO, UTC). */
  date: string;
  timezone: string;
  from: string;
  to: string;
  generatedAt: string;
  /**
   * Results captured that day (each once) and where they stood at generatedAt: accepted by the
   * platform, waiting in the outbox, held for quality control, or refused by the platform for good.
   */
  results: { captured: number; uploaded: number; pending: number; held: number; refused: number };
  /** Distinct sample ids among them. */
  samples: number;
  firstResultAt?: string;
  lastResultAt?: string;
  files: { taken: number; rejected: number };
  messages: { refused: number };
  /** The files and messages refused that day, at most 20, oldest first (the counts above count them all). */
  refusals: Array<{ at: string; kind: 'file-rejected' | 'message-refused'; file?: string; controlId?: string; reason: string }>;
  /** Control samples judged that day (each one run), in total and per analyte. */
  qc: {
    runs: number;
    warnings: number;
    rejections: number;
    analytes: Array<{ analyte: string; runs: number; warnings: number; rejections: number }>;
  };
  /**
   * Quiet periods between two results of the day longer than `thresholdMinutes`, the longest first,
   * at most 20 listed. `offline`: the gateway saw the instrument's connection down during the gap.
   */
  gaps: {
    thresholdMinutes: number;
    total: number;
    list: Array<{ from: string; to: string; minutes: number; offline?: boolean }>;
  };
  /** What a reader should know about the figures (no platform, a bound reached). */
  notes: string[];
  seq: number;
};

/**
 * A body queued by its eventId (the Idempotency-Key), as the outbox stores it: its seq is added when
 * it is sent. Lab results are queued by their resultId, through Outbox.addResults.
 */
export type QueuedBody =
  | Omit<IncidentBody, 'seq'>
  | Omit<RiskBody, 'seq'>
  | Omit<RiskSummaryBody, 'seq'>
  | (ReportBodyHead & { [section: string]: unknown })
  | Omit<LabDailyBody, 'seq'>;

export interface EquipmentInfo {
  id: string;
  code?: string | undefined;
  category: string;
  name?: string | undefined;
}

/**
 * The incident event the platform receives for an alarm event, without its seq (the outbox gives
 * it); undefined for events that stay local (alarm health, unshelving, return to service).
 * Suppression and out of service end an open incident: the platform sees them as `cleared`, then
 * `closed`. Every incident ends with exactly one `closed` (docs/platform-contract.md).
 */
export function incidentOf(e: AlarmEvent, equipment: EquipmentInfo | undefined, gatewayId: string): Omit<IncidentBody, 'seq'> | undefined {
  const type = CONTRACT_TYPE[e.type];
  if (!type || !e.incidentId || !e.equipment) return undefined;
  return {
    schema: INCIDENT_SCHEMA,
    eventId: e.eventId,
    incidentId: e.incidentId,
    type,
    level: e.level,
    gatewayId,
    site: e.site,
    equipment: {
      id: e.equipment,
      ...(equipment?.code ? { code: equipment.code } : {}),
      category: equipment?.category ?? 'other',
      ...(equipment?.name ? { name: equipment.name } : {}),
    },
    rule: { id: e.rule, message: e.message },
    ...(e.point !== undefined ? { point: e.point } : {}),
    ...(e.value !== undefined ? { value: e.value } : {}),
    ...(e.unit !== undefined ? { unit: e.unit } : {}),
    occurredAt: new Date(e.ts).toISOString(),
    ...(e.by !== undefined ? { by: e.by } : {}),
    ...(e.comment !== undefined && e.comment !== '' ? { comment: e.comment } : {}),
    ...(e.shelvedUntil !== undefined ? { shelvedUntil: new Date(e.shelvedUntil).toISOString() } : {}),
  };
}

const CONTRACT_TYPE: Partial<Record<AlarmEvent['type'], IncidentType>> = {
  raised: 'raised',
  escalated: 'escalated',
  acknowledged: 'acknowledged',
  shelved: 'shelved',
  cleared: 'cleared',
  closed: 'closed',
  suppressed: 'cleared',
  out_of_service: 'cleared',
};

const equipmentOf = (id: string, equipment: EquipmentInfo | undefined) => ({
  id,
  ...(equipment?.code ? { code: equipment.code } : {}),
  category: equipment?.category ?? 'other',
  ...(equipment?.name ? { name: equipment.name } : {}),
});

/**
 * The id of an equipment's n-th risk change: stable across restarts, because n is persisted with the
 * risk state. The gateway's id keeps two sites' B-07 apart, and the store's epoch keeps a rebuilt data
 * folder (n from 1 again) from reusing ids the platform has taken and would drop as duplicates.
 */
export const riskEventId = (gatewayId: string, epoch: string, equipment: string, change: number) =>
  `risk-${gatewayId}-${epoch}-${equipment}-${change}`;

/** The gw.risk.v1 body of one level change, without its seq. */
export function riskBodyOf(
  change: {
    equipment: string;
    /** The change number: how many level changes this equipment has had, this one included. */
    change: number;
    from: AlarmEvent['level'];
    to: AlarmEvent['level'];
    score: number;
    likelihood: number;
    consequence: number;
    factors: readonly RiskFactorBody[];
    at: number;
  },
  equipment: EquipmentInfo | undefined,
  gatewayId: string,
  site: string,
  /** The store's epoch (GatewayStore.epoch). */
  epoch: string,
): Omit<RiskBody, 'seq'> {
  return {
    schema: RISK_SCHEMA,
    eventId: riskEventId(gatewayId, epoch, change.equipment, change.change),
    gatewayId,
    site,
    equipment: equipmentOf(change.equipment, equipment),
    level: change.to,
    previousLevel: change.from,
    score: change.score,
    likelihood: change.likelihood,
    consequence: change.consequence,
    factors: change.factors.map((f) => ({
      factor: f.factor,
      value: f.value,
      weight: f.weight,
      cap: f.cap,
      points: f.points,
      ...(f.detail !== undefined ? { detail: f.detail } : {}),
    })),
    changedAt: new Date(change.at).toISOString(),
  };
}

/**
 * The id of a gateway's summary for the period starting at `from`: one per period, also when it is
 * made again after a restart; by gateway, not by site, since two gateways of one site each send theirs.
 */
export const riskSummaryEventId = (gatewayId: string, from: number) => `risk-summary-${gatewayId}-${new Date(from).toISOString()}`;

/** The id of a site's daily report: one per calendar day. */
export const reportEventId = (site: string, date: string) => `report-${site}-${date}`;

/** The id of a lab instrument's daily summary: one per instrument and calendar day, also when it is made again. */
// Ids hold '-' but never ':' (drivers/common/primitives.ts identifier): with '-' between them, site plant-3 with LA-2 and
// site plant with 3-LA-2 had one eventId, and the platform kept one of the two summaries.
export const labDailyEventId = (site: string, instrument: string, date: string) => `lab-daily:${site}:${instrument}:${date}`;

/** The result body for the platform, without its seq. */
export function resultBodyOf(
  r: LabResult,
  instrument: EquipmentInfo | undefined,
  gatewayId: string,
  site: string,
): Omit<ResultBody, 'seq'> {
  return {
    schema: RESULT_SCHEMA,
    resultId: r.resultId,
    gatewayId,
    site,
    instrument: {
      id: r.instrument,
      category: instrument?.category ?? 'lab_analyzer',
      ...(instrument?.name ? { name: instrument.name } : {}),
    },
    sampleId: r.sampleId,
    analyte: r.analyte,
    value: r.value,
    ...(r.unit !== undefined ? { unit: r.unit } : {}),
    flags: r.flags,
    status: r.status,
    resultAt: r.resultAt,
    ...(r.operator !== undefined ? { operator: r.operator } : {}),
    ...(r.method !== undefined ? { method: r.method } : {}),
    ...(r.reference !== undefined ? { reference: r.reference } : {}),
    ...(r.qc !== undefined ? { qc: resultQcOf(r.qc) } : {}),
  };
}

function resultQcOf(qc: NonNullable<LabResult['qc']>): ResultBodyQc {
  return {
    status: qc.status,
    ...(qc.level !== undefined ? { level: qc.level } : {}),
    ...(qc.rules !== undefined ? { rules: qc.rules } : {}),
    ...(qc.z !== undefined ? { z: qc.z } : {}),
    ...(qc.rule !== undefined ? { rule: qc.rule } : {}),
    ...(qc.since !== undefined ? { since: new Date(qc.since).toISOString() } : {}),
  };
}

// What a receiver checks before it uses a body: the shapes above, member by member. Unknown members
// are allowed (a later minor version may add some); texts are bounded so a body cannot hold a novel.
const text = (max = 1000) => z.string().max(max);
const id = z.string().min(1).max(200);
const seq = z.int().min(1).max(Number.MAX_SAFE_INTEGER);
const iso = z
  .string()
  .max(40)
  .refine((s) => !Number.isNaN(Date.parse(s)), { error: 'expected an ISO 8601 time' });
const scalar = z.union([z.number(), z.boolean(), text(), z.null()]);

export const incidentBodySchema = z.looseObject({
  schema: z.literal(INCIDENT_SCHEMA),
  eventId: id,
  incidentId: id,
  type: z.enum(INCIDENT_TYPES),
  level: z.enum(LEVELS),
  gatewayId: id,
  site: id,
  equipment: z.looseObject({ id, code: text(40).optional(), category: text(100), name: text().optional() }),
  rule: z.looseObject({ id, message: text(2000) }),
  point: text(100).optional(),
  value: scalar.optional(),
  unit: text(100).optional(),
  occurredAt: iso,
  by: text(200).optional(),
  comment: text(2000).optional(),
  shelvedUntil: iso.optional(),
  seq,
});

export const resultBodySchema = z.looseObject({
  schema: z.literal(RESULT_SCHEMA),
  resultId: id,
  gatewayId: id,
  site: id,
  instrument: z.looseObject({ id, category: text(100), name: text().optional() }),
  sampleId: text(200),
  analyte: text(200),
  value: z.union([z.number(), text(), z.null()]),
  unit: text(100).optional(),
  flags: z.array(text(20)).max(50),
  status: text(100),
  resultAt: iso,
  operator: text(200).optional(),
  method: text(200).optional(),
  reference: z.looseObject({ lo: z.number().optional(), hi: z.number().optional() }).optional(),
  qc: z
    .looseObject({
      status: z.enum(['accepted', 'warning', 'rejected', 'pending', 'passed']),
      level: text(40).optional(),
      rules: z.array(text(20)).max(10).optional(),
      z: z.number().refine(Number.isFinite, { error: 'expected a finite number' }).optional(),
      rule: text(100).optional(),
      since: iso.optional(),
      releasedAt: iso.optional(),
    })
    .optional(),
  seq,
});

const level = z.enum(LEVELS);
const count = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
const finite = z.number().refine(Number.isFinite, { error: 'expected a finite number' });

export const riskBodySchema = z.looseObject({
  schema: z.literal(RISK_SCHEMA),
  eventId: id,
  gatewayId: id,
  site: id,
  equipment: z.looseObject({ id, code: text(40).optional(), category: text(100), name: text().optional() }),
  level,
  previousLevel: level,
  score: finite.min(0),
  likelihood: finite.min(0),
  consequence: finite.min(0),
  factors: z
    .array(
      z.looseObject({
        factor: text(100).min(1),
        value: finite,
        weight: finite,
        cap: finite,
        points: finite,
        detail: text(2000).optional(),
      }),
    )
    .max(100),
  changedAt: iso,
  seq,
});

export const riskSummaryBodySchema = z.looseObject({
  schema: z.literal(RISK_SUMMARY_SCHEMA),
  eventId: id,
  gatewayId: id,
  site: id,
  from: iso,
  to: iso,
  levels: z.looseObject({ blue: count, yellow: count, orange: count, red: count }),
  equipment: z
    .array(
      z.looseObject({
        id,
        category: text(100),
        level,
        maxLevel: level,
        score: finite.min(0),
        maxScore: finite.min(0),
        nearMisses: count,
        availability: finite.min(0).max(1),
      }),
    )
    .max(100_000),
  kpi: z.looseObject({
    annunciated: count,
    perOperatorPer10Min: finite.min(0),
    peakPer10Min: count,
    floodPeriodsPercent: finite.min(0).max(100),
    standing: count,
    stale: count,
    chattering: count,
    fleeting: count,
    shelved: count,
    timeToAckMedianMs: finite.min(0).optional(),
    timeToAckP90Ms: finite.min(0).optional(),
  }),
  seq,
});

/** The report's common members; its sections belong to the report (gateway/report) and are not checked here. */
export const reportBodySchema = z.looseObject({
  schema: z.literal(REPORT_SCHEMA),
  eventId: id,
  gatewayId: id,
  site: id,
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, { error: 'expected a date YYYY-MM-DD' }),
  timezone: text(100).min(1),
  generatedAt: iso,
  seq,
});

const labCounts = z.looseObject({ runs: count, warnings: count, rejections: count });

export const labDailyBodySchema = z.looseObject({
  schema: z.literal(LAB_DAILY_SCHEMA),
  eventId: id,
  gatewayId: id,
  site: id,
  instrument: z.looseObject({ id, category: text(100), name: text().optional() }),
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, { error: 'expected a date YYYY-MM-DD' }),
  timezone: text(100).min(1),
  from: iso,
  to: iso,
  generatedAt: iso,
  results: z.looseObject({ captured: count, uploaded: count, pending: count, held: count, refused: count }),
  samples: count,
  firstResultAt: iso.optional(),
  lastResultAt: iso.optional(),
  files: z.looseObject({ taken: count, rejected: count }),
  messages: z.looseObject({ refused: count }),
  refusals: z
    .array(
      z.looseObject({
        at: iso,
        kind: z.enum(['file-rejected', 'message-refused']),
        file: text(1000).optional(),
        controlId: text(200).optional(),
        reason: text(2000),
      }),
    )
    .max(100),
  qc: labCounts.extend({ analytes: z.array(labCounts.extend({ analyte: text(200) })).max(10_000) }),
  gaps: z.looseObject({
    thresholdMinutes: finite.min(0),
    total: count,
    list: z.array(z.looseObject({ from: iso, to: iso, minutes: finite.min(0), offline: z.boolean().optional() })).max(100),
  }),
  notes: z.array(text(2000)).max(100),
  seq,
});

export const heartbeatBodySchema = z.looseObject({
  schema: z.literal(HEARTBEAT_SCHEMA),
  gatewayId: id,
  site: id,
  at: iso,
  lastSeq: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  pending: z.int().min(0),
  activeIncidents: z.int().min(0),
});

export type ContractBody = IncidentBody | ResultBody | HeartbeatBody | RiskBody | RiskSummaryBody | ReportBody | LabDailyBody;

const SCHEMAS: Record<ContractBody['schema'], z.ZodType> = {
  [INCIDENT_SCHEMA]: incidentBodySchema,
  [RESULT_SCHEMA]: resultBodySchema,
  [HEARTBEAT_SCHEMA]: heartbeatBodySchema,
  [RISK_SCHEMA]: riskBodySchema,
  [RISK_SUMMARY_SCHEMA]: riskSummaryBodySchema,
  [REPORT_SCHEMA]: reportBodySchema,
  [LAB_DAILY_SCHEMA]: labDailyBodySchema,
};

/** A body as the contract has it, or the first thing wrong with it (`path: message`). */
export function checkBody(body: unknown): { ok: true; body: ContractBody } | { ok: false; problem: string } {
  const kind = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { schema?: unknown }).schema : undefined;
  const schema = typeof kind === 'string' && Object.hasOwn(SCHEMAS, kind) ? SCHEMAS[kind as ContractBody['schema']] : undefined;
  if (!schema) {
    const names = Object.keys(SCHEMAS);
    return {
      ok: false,
      problem: `schema: expected ${names.slice(0, -1).join(', ')} or ${names.at(-1)!}, got ${JSON.stringify(kind)?.slice(0, 60) ?? 'nothing'}`,
    };
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return { ok: true, body: parsed.data as ContractBody };
  const issue = parsed.error.issues[0]!;
  return { ok: false, problem: `${issue.path.join('.') || '(body)'}: ${issue.message}` };
}

/** One line saying what a stored body is (`gateway outbox list`), whatever its schema. */
export function describeBody(stored: unknown): string {
  const b = (typeof stored === 'object' && stored !== null ? stored : {}) as Record<string, unknown> & { schema?: unknown };
  switch (b.schema) {
    case RESULT_SCHEMA: {
      const r = b as unknown as ResultBody;
      return `${r.resultAt} result ${r.instrument.id} sample ${r.sampleId} ${r.analyte} = ${String(r.value)}${r.unit ? ` ${r.unit}` : ''}`;
    }
    case INCIDENT_SCHEMA: {
      const i = b as unknown as IncidentBody;
      return `${i.occurredAt} ${i.level} ${i.type} ${i.equipment.id}/${i.rule.id}: ${i.rule.message}`;
    }
    case RISK_SCHEMA: {
      const r = b as unknown as RiskBody;
      return `${r.changedAt} risk ${r.equipment.id} ${r.previousLevel} -> ${r.level} (score ${r.score})`;
    }
    case RISK_SUMMARY_SCHEMA: {
      const r = b as unknown as RiskSummaryBody;
      return `${r.from} risk summary ${r.site} until ${r.to} (${r.equipment.length} equipment)`;
    }
    case REPORT_SCHEMA: {
      const r = b as unknown as ReportBody;
      return `${r.generatedAt} daily report ${r.site} for ${r.date}`;
    }
    case LAB_DAILY_SCHEMA: {
      const r = b as unknown as LabDailyBody;
      return `${r.generatedAt} lab daily summary ${describeLabDaily(r)}`;
    }
    default:
      return `${JSON.stringify(b.schema)?.slice(0, 60) ?? 'a body without a schema'}`;
  }
}

/**
 * Outside text (a sample id, a file name, a reason) made safe to print on one line of a terminal:
 * control characters (a line break would forge a line of its own, an escape sequence would drive the
 * terminal), line and paragraph separators and bidirectional controls (which reorder what follows them
 * on the line, a value included) are written as \\uXXXX.
 */
export function printable(text: string): string {
  return text.replace(/[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** What a lab daily summary says, in one line (`gateway lab daily`, the reference inbox, `gateway outbox list`). */
export function describeLabDaily(
  b: Pick<LabDailyBody, 'site' | 'instrument' | 'date' | 'results' | 'files' | 'messages' | 'qc' | 'gaps'>,
): string {
  const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
  const r = b.results;
  const waiting = [
    r.pending > 0 ? `${r.pending} pending` : '',
    r.held > 0 ? `${r.held} held` : '',
    r.refused > 0 ? `${r.refused} refused` : '',
  ]
    .filter(Boolean)
    .join(', ');
  const parts = [`${plural(r.captured, 'result')} (${r.uploaded} uploaded${waiting ? `, ${waiting}` : ''})`];
  if (b.files.rejected > 0) parts.push(`${plural(b.files.rejected, 'file')} rejected`);
  if (b.messages.refused > 0) parts.push(`${plural(b.messages.refused, 'message')} refused`);
  parts.push(`QC ${plural(b.qc.runs, 'run')} / ${plural(b.qc.rejections, 'rejection')}`);
  if (b.gaps.total > 0) parts.push(plural(b.gaps.total, 'gap'));
  return `${b.site}/${b.instrument.id} ${b.date}: ${parts.join(', ')}`;
}

/** The exact bytes sent for a stored body (an incident, a result, a risk change, a summary or a report): the same on every attempt. */
export function incidentBody(stored: string, seq: number): string {
  // The stored body is JSON.stringify of an object without seq: appending the member gives the same
  // bytes as JSON.stringify({ ...body, seq }), without parsing it again on every attempt.
  return `${stored.slice(0, -1)},"seq":${seq}}`;
}

/** `sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>` */
export function sign(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export function verify(secret: string, timestamp: string, body: string, signature: string): boolean {
  const expected = Buffer.from(sign(secret, timestamp, body));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

export function headersFor(
  secret: string,
  gatewayId: string,
  body: string,
  idempotencyKey?: string,
  now = Date.now(),
): Record<string, string> {
  const timestamp = String(now);
  return {
    'Content-Type': 'application/json',
    ...(idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {}),
    'X-Gateway-Id': gatewayId,
    'X-Gateway-Timestamp': timestamp,
    'X-Gateway-Signature': sign(secret, timestamp, body),
  };
}
