// Administrative alarms: the periodic inspection, the maintenance and the certificate of use of each
// equipment, from the dates in the site file. They are rules with an external condition (the engine
// raises and clears them like any other, acknowledged and sent to the platform the same way); what
// sets the conditions is here: calendar dates in the site's time zone, a date being due at the end
// of its day, whatever the clock's time zone or a daylight-saving change.
import type { AdministrativeDates } from '../config/risk-schema.js';
import type { Level, RuleSpec } from './types.js';

const DAY_MS = 86_400_000;

export type AdminKind = 'inspection' | 'maintenance' | 'certificate';

/** The three rules of each kind: due soon (blue), overdue (yellow), overdue while in use (orange). */
const STAGES: Record<AdminKind, readonly [string, string, string]> = {
  inspection: ['due-soon', 'overdue', 'overdue-in-use'],
  maintenance: ['due-soon', 'overdue', 'overdue-in-use'],
  certificate: ['expires-soon', 'expired', 'expired-in-use'],
};
const STAGE_LEVELS: readonly [Level, Level, Level] = ['blue', 'yellow', 'orange'];

const WHAT: Record<AdminKind, string> = {
  inspection: 'Periodic inspection',
  maintenance: 'Maintenance',
  certificate: 'Certificate of use',
};

export interface AdminEquipment extends AdministrativeDates {
  id: string;
  name?: string | undefined;
}

interface Due {
  kind: AdminKind;
  /** The last day it may be done on (the certificate: the last day it is valid), YYYY-MM-DD. */
  date: string;
  /** Whole days before the date from which it is "due soon". */
  warnDays: number;
}

/** Day number (days since 1970-01-01) of a YYYY-MM-DD date: calendar arithmetic without clocks. */
export function dayNumber(date: string): number {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  return Math.round(Date.UTC(y, m - 1, d) / DAY_MS);
}

export function dateOfDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The calendar date (YYYY-MM-DD) that instant `now` falls on in `timeZone`. */
export function localDate(now: number, timeZone: string): string {
  let f = formatters.get(timeZone);
  if (!f) {
    // en-CA writes dates as YYYY-MM-DD.
    f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    formatters.set(timeZone, f);
  }
  return f.format(now);
}

function duesOf(e: AdminEquipment): Due[] {
  const out: Due[] = [];
  const warnDays = (ms: number) => Math.ceil(ms / DAY_MS);
  if (e.inspection) out.push({ kind: 'inspection', date: e.inspection.next, warnDays: warnDays(e.inspection.warn_before) });
  const m = e.maintenance;
  if (m) {
    // The schema asks for next, or last and interval.
    const date = m.next ?? dateOfDay(dayNumber(m.last!) + Math.round(m.interval! / DAY_MS));
    out.push({ kind: 'maintenance', date, warnDays: warnDays(m.warn_before) });
  }
  if (e.certificate) out.push({ kind: 'certificate', date: e.certificate.valid_until, warnDays: warnDays(e.certificate.warn_before) });
  return out;
}

function ruleId(kind: AdminKind, stage: 0 | 1 | 2): string {
  return `${kind}.${STAGES[kind][stage]}`;
}

function message(kind: AdminKind, stage: 0 | 1 | 2, date: string): string {
  const what = WHAT[kind];
  const texts =
    kind === 'certificate'
      ? ([`${what} expires on ${date}`, `${what} expired on ${date}`, `${what} expired on ${date} and the equipment is in use`] as const)
      : ([`${what} due on ${date}`, `${what} overdue since ${date}`, `${what} overdue since ${date} and the equipment is in use`] as const);
  return texts[stage];
}

/** The administrative rules of one equipment: three per kind of date it has. */
export function adminSpecsOf(e: AdminEquipment): RuleSpec[] {
  return duesOf(e).flatMap((due) =>
    ([0, 1, 2] as const).map((stage): RuleSpec => ({
      id: ruleId(due.kind, stage),
      equipment: e.id,
      level: STAGE_LEVELS[stage],
      message: message(due.kind, stage, due.date),
      condition: { kind: 'external' },
      origin: 'administrative',
      onDelayMs: 0,
      offDelayMs: 0,
      deadband: 0,
      latch: false,
      ...(e.name !== undefined ? { equipmentName: e.name } : {}),
    })),
  );
}

export interface AdminCondition {
  /** `<equipment>/<rule id>`, the engine's alarm key. */
  key: string;
  value: boolean;
}

/**
 * The conditions of `adminSpecsOf`'s rules at `now`: for each kind, exactly one of its three true
 * (or none when it is not yet due soon). Overdue means the local date is after the due date.
 */
export function adminConditions(e: AdminEquipment, now: number, timeZone: string, inUse: (id: string) => boolean): AdminCondition[] {
  const today = dayNumber(localDate(now, timeZone));
  let used: boolean | undefined;
  return duesOf(e).flatMap((due) => {
    const day = dayNumber(due.date);
    let stage: 0 | 1 | 2 | undefined;
    if (today > day) {
      used ??= inUse(e.id);
      stage = used ? 2 : 1;
    } else if (today >= day - due.warnDays) stage = 0;
    return ([0, 1, 2] as const).map((s) => ({ key: `${e.id}/${ruleId(due.kind, s)}`, value: s === stage }));
  });
}

/** The kind of an administrative rule id (`inspection.overdue` -> inspection), for the risk factors. */
export function adminKindOf(rule: string): AdminKind | undefined {
  const kind = rule.slice(0, rule.indexOf('.'));
  return kind === 'inspection' || kind === 'maintenance' || kind === 'certificate' ? kind : undefined;
}
