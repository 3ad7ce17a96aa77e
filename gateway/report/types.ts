// The daily report's shape: the JSON body the platform receives (`gw.report.daily.v1`) and what the
// page is rendered from.
import type { AlarmOrigin, Level } from '../../rules/types.js';

export const DAILY_REPORT_SCHEMA = 'gw.report.daily.v1';

export type Counts = Record<Level, number>;

/** Time statistics of one handling step over the incidents raised that day (ms). */
export interface Durations {
  count: number;
  medianMs?: number;
  p90Ms?: number;
  maxMs?: number;
}

export interface IncidentLine {
  incidentId: string;
  equipment: string;
  rule: string;
  /** The highest level it reached that day. */
  level: Level;
  message: string;
  origin?: AlarmOrigin;
  /** ISO times; absent when it did not happen that day. */
  raisedAt?: string;
  acknowledgedAt?: string;
  acknowledgedBy?: string;
  clearedAt?: string;
  closedAt?: string;
  timeToAckMs?: number;
  timeToClearMs?: number;
  /** Raised before the day began (still open, or handled that day): no handling times. */
  carriedOver: boolean;
}

export interface IncidentList {
  /** Incidents raised that day. */
  raised: number;
  byLevel: Counts;
  /** Incidents with any event that day (raised that day or carried over). */
  total: number;
  /** At most LISTED: the highest level first, then in time order. */
  incidents: IncidentLine[];
}

/** A type, not an interface: it is a platform body, which the outbox takes as a record of members. */
export type DailyReport = {
  schema: typeof DAILY_REPORT_SCHEMA;
  /** `report-<site>-<date>`: the platform's idempotency key. */
  eventId: string;
  gatewayId: string;
  site: string;
  /** The calendar date reported, `YYYY-MM-DD`, in `timezone`. */
  date: string;
  timezone: string;
  generatedAt: string;
  /** The day's bounds (ISO, UTC): 23 or 25 hours apart on a daylight saving change. */
  from: string;
  to: string;
  /** What a reader should know about the figures (a store without journal, a bound reached). */
  notes: string[];
  equipment: Array<{ id: string; name?: string; category: string; code?: string }>;
  risk: {
    equipment: Array<{ id: string; startLevel?: Level; endLevel?: Level; maxLevel?: Level; changes: number }>;
    changesTotal: number;
    changes: Array<{ at: string; equipment: string; from?: Level; to: Level; score?: number }>;
  };
  alarms: IncidentList & {
    /** Alarm events journaled that day, of every kind. */
    events: number;
    acknowledged: number;
    cleared: number;
    byEquipment: Array<{ equipment: string; raised: number; byLevel: Counts }>;
    timeToAck: Durations;
    timeToClear: Durations;
    top: Array<{ equipment: string; rule: string; level: Level; message: string; count: number }>;
  };
  predicted: IncidentList;
  administrative: IncidentList & {
    dates: Array<{
      equipment: string;
      kind: 'inspection' | 'maintenance' | 'certificate';
      due: string;
      days: number;
      status: 'overdue' | 'due' | 'ok';
    }>;
  };
  nearMisses: {
    total: number;
    byEquipment: Array<{ equipment: string; count: number }>;
    list: Array<{
      at: string;
      equipment: string;
      point: string;
      rule: string;
      limit: number;
      direction: string;
      closest: number;
      level?: Level;
    }>;
  };
  availability: Array<{ equipment: string; percent: number; hours: number }>;
  lab: {
    total: number;
    instruments: Array<{
      instrument: string;
      results: number;
      analytes: Array<{ analyte: string; unit?: string; count: number; flagged: number; min?: number; max?: number }>;
    }>;
    flaggedTotal: number;
    /** Results with an abnormal flag, at most LISTED. */
    flagged: Array<{
      at: string;
      instrument: string;
      sampleId: string;
      analyte: string;
      value: number | string | null;
      unit?: string;
      flags: string[];
    }>;
  };
};
