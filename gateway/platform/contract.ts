// The contract with the central warning platform (docs/platform-contract.md): bodies, headers and the
// signature. The platform is built against it; change it only with a new schema version.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AlarmEvent } from '../../rules/types.js';
import type { LabResult } from '../../drivers/common/result.js';

export const INCIDENT_SCHEMA = 'gw.incident.v1';
export const HEARTBEAT_SCHEMA = 'gw.heartbeat.v1';
export const RESULT_SCHEMA = 'gw.result.v1';

export type IncidentType = 'raised' | 'escalated' | 'acknowledged' | 'shelved' | 'cleared';

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
  /** Who acknowledged or shelved, and why. */
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
  seq: number;
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

export interface EquipmentInfo {
  id: string;
  code?: string | undefined;
  category: string;
  name?: string | undefined;
}

/**
 * The incident event the platform receives for an alarm event, without its seq (the outbox gives
 * it); undefined for events that stay local (alarm health, unshelving). Suppression and out of
 * service end an open incident: the platform sees them as `cleared`.
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
  suppressed: 'cleared',
  out_of_service: 'cleared',
};

/** The result body for the platform, without its seq. */
export function resultBodyOf(r: LabResult, instrument: EquipmentInfo | undefined, gatewayId: string, site: string): Omit<ResultBody, 'seq'> {
  return {
    schema: RESULT_SCHEMA,
    resultId: r.resultId,
    gatewayId,
    site,
    instrument: { id: r.instrument, category: instrument?.category ?? 'lab_analyzer', ...(instrument?.name ? { name: instrument.name } : {}) },
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
  };
}

/** The exact bytes sent for a stored body (an incident or a result): the same on every attempt. */
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

export function headersFor(secret: string, gatewayId: string, body: string, idempotencyKey?: string, now = Date.now()): Record<string, string> {
  const timestamp = String(now);
  return {
    'Content-Type': 'application/json',
    ...(idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {}),
    'X-Gateway-Id': gatewayId,
    'X-Gateway-Timestamp': timestamp,
    'X-Gateway-Signature': sign(secret, timestamp, body),
  };
}
