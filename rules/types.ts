// Types shared by the rule engine and the code that wires it (no I/O here).
import type { Compiled } from './expression.js';

/** The four warning levels of the quality-safety supervision system, lowest first. */
export const LEVELS = ['blue', 'yellow', 'orange', 'red'] as const;
export type Level = (typeof LEVELS)[number];

/** ISA-18.2 alarm states, as one word each. */
export type AlarmState =
  'normal' | 'active_unacknowledged' | 'active_acknowledged' | 'returned_unacknowledged' | 'shelved' | 'suppressed' | 'out_of_service';

export type AlarmEventType =
  // The incident: what the central platform receives.
  | 'raised'
  | 'escalated'
  | 'acknowledged'
  | 'shelved'
  | 'cleared'
  /** The incident is over (cleared and acknowledged, suppressed, out of service, rule removed). */
  | 'closed'
  // Local lifecycle.
  | 'unshelved'
  | 'suppressed'
  | 'out_of_service'
  | 'in_service'
  // Alarm health.
  | 'chattering'
  | 'chattering_ended'
  | 'flood'
  | 'flood_ended';

export interface AlarmEvent {
  /** Unique per event. */
  eventId: string;
  /** The same for every event of one incident (raise to return to normal). */
  incidentId: string;
  type: AlarmEventType;
  /** The alarm's state after this event. */
  state: AlarmState;
  level: Level;
  site: string;
  equipment: string;
  rule: string;
  message: string;
  point?: string;
  value?: number | boolean | string | null;
  unit?: string;
  /** Time of the transition (ms): when a delay expired, not when it was noticed. */
  ts: number;
  by?: string;
  comment?: string;
  shelvedUntil?: number;
  /** Where the alarm comes from when it is not a hazard seen in the readings (RuleSpec.origin). */
  origin?: AlarmOrigin;
}

/**
 * `predicted`: a pre-warning that a limit will be crossed within the rule's horizon (a trend, not a
 * reading beyond the limit); `administrative`: an inspection, maintenance or certificate date; `lab`:
 * the lab-results path (a quality-control rejection, a result file that could not be read).
 */
export type AlarmOrigin = 'predicted' | 'administrative' | 'lab';

/**
 * A rule part that compares one point with a constant limit (a `limits` part, or a `when` that is
 * `point <op> constant`): what predictions and near misses follow.
 */
export interface Threshold {
  point: string;
  limit: number;
  /** `above`: the alarm is at or above the limit (hi, hihi); `below`: at or below (lo, lolo). */
  direction: 'above' | 'below';
  /** Near misses on this limit: the normal value and the margin (absolute, in the point's unit), or undefined when off. */
  nearMiss?: { normal: number; margin: number } | undefined;
}

/** One rule applied to one equipment: what the engine evaluates. */
export interface RuleSpec {
  /** Rule id; a shorthand rule's parts have their own (`steam-pressure.hihi`). */
  id: string;
  equipment: string;
  level: Level;
  /** `{value}`, `{unit}`, `{equipment}`, `{name}`, `{level}`, `{rule}` are filled in. */
  message: string;
  condition:
    | { kind: 'expression'; expr: Compiled }
    | { kind: 'rate'; point: string; windowMs: number; perMs: number; above?: number; below?: number }
    | { kind: 'stale'; afterMs: number }
    /** A pre-warning: the trend of `point` (robust fit over `windowMs`) crosses `limit` within `horizonMs`. */
    | {
        kind: 'predict';
        point: string;
        limit: number;
        direction: 'above' | 'below';
        windowMs: number;
        horizonMs: number;
        minReadings: number;
      }
    /** Set from outside the readings (administrative dates): RuleEngine.setExternal. */
    | { kind: 'external' };
  /** A limit-like part: the limit it compares with (predictions and near misses follow it). */
  threshold?: Threshold;
  /** A predicted warning names the rule part whose limit it foresees; an administrative alarm says so. */
  origin?: AlarmOrigin;
  /** For a predicted warning: the id of the rule part it foresees (`drum-level-low-low`). */
  predicts?: string;
  /** While true, the alarm is suppressed by design (a boiler that is not firing). */
  suppressWhen?: Compiled;
  onDelayMs: number;
  offDelayMs: number;
  deadband: number;
  latch: boolean;
  escalateAfterMs?: number;
  /** Longest a shelve of this alarm lasts. */
  maxShelveMs?: number;
  /** Unit of the point the message's {value} shows. */
  unit?: string;
  /** Name of the equipment, for messages. */
  equipmentName?: string;
}

/** What survives a restart, per rule and equipment. */
export interface PersistedAlarm {
  active: boolean;
  acked: boolean;
  level: Level;
  incidentId?: string;
  /** The incident the platform has open (raised, not yet closed). */
  openIncident?: string | undefined;
  raisedAt?: number;
  lastEscalationAt?: number;
  shelvedUntil?: number;
  outOfService?: boolean;
  suppressed?: boolean;
  pendingSince?: number;
  clearingSince?: number;
  point?: string;
  value?: number | boolean | string | null;
  message?: string;
}

/** Where the engine's alarm states come from at start; the gateway gives it its durable store. */
export interface AlarmStore {
  load(): Map<string, PersistedAlarm>;
}

export interface ActiveAlarm {
  key: string;
  equipment: string;
  rule: string;
  state: AlarmState;
  level: Level;
  incidentId: string;
  message: string;
  point?: string;
  value?: number | boolean | string | null;
  raisedAt: number;
  shelvedUntil?: number;
  /** The alarm's condition cannot be evaluated now (a point it reads has no good value). */
  uncertain: boolean;
  origin?: AlarmOrigin;
}
