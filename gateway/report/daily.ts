// The daily safety report (日报): what one calendar day in the site's time zone held, for the people
// who answer for the equipment and for the central platform (`gw.report.daily.v1`). Everything comes
// from the store (the journal of alarm events, near misses, risk changes and hourly summaries; the
// lab results captured) and the site file (administrative dates). It is bounded whatever the day
// held: every figure counts all of it, but incidents, near misses and results are listed one by one
// only up to LISTED each, the rest named as a count.
import type { SiteConfig } from '../../config/schema.js';
import { LEVELS, type AlarmEvent, type Level } from '../../rules/types.js';
import type { JournalEntry, JournalKind } from '../store.js';
import type { ReportSource } from './source.js';
import { addDays, dayBounds, daysBetween, siteTimeZone } from './time.js';

import { DAILY_REPORT_SCHEMA, type Counts, type DailyReport, type Durations, type IncidentLine, type IncidentList } from './types.js';

export { renderDailyReport } from './html.js';
export * from './types.js';

/** Incidents, near misses and flagged results listed one by one, at most, per list; the rest are counted. */
export const LISTED = 200;
/** The most frequent alarms named in `alarms.top`. */
export const TOP_ALARMS = 10;
/** Journal entries read per query: memory stays flat however busy the day was. */
const PAGE = 5000;
/** Incidents followed at once for their handling times; a day beyond it is counted, and the report says so. */
const MAX_TRACKED_INCIDENTS = 200_000;

const zero = (): Counts => ({ blue: 0, yellow: 0, orange: 0, red: 0 });
const rank = (l: Level) => LEVELS.indexOf(l);
const isLevel = (v: unknown): v is Level => typeof v === 'string' && (LEVELS as readonly string[]).includes(v);
const iso = (ms: number) => new Date(ms).toISOString();
const str = (v: unknown, fallback = '') => (typeof v === 'string' ? v : fallback);
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const record = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** The journal of one kind over [from, to), page by page, each entry once. */
function* entries(source: ReportSource, kind: JournalKind, from: number, to: number, notes: string[]): Generator<JournalEntry> {
  let at = from;
  let lastId = -Infinity;
  for (;;) {
    const page = source.readJournal(kind, at, to, { limit: PAGE });
    let fresh = 0;
    for (const e of page) {
      // A page starts at the last time read: the entries of that millisecond already read are skipped.
      if (e.ts === at && e.id <= lastId) continue;
      fresh++;
      at = e.ts;
      lastId = e.id;
      yield e;
    }
    if (page.length < PAGE) return;
    if (fresh === 0) {
      notes.push(`More than ${PAGE} ${kind} entries share the time ${iso(at)}: the rest of that millisecond is not counted.`);
      at += 1;
      lastId = -Infinity;
    }
  }
}

/** The median, 90th percentile and maximum of durations (nearest rank). */
function durations(values: number[]): Durations {
  if (values.length === 0) return { count: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return { count: sorted.length, medianMs: at(0.5), p90Ms: at(0.9), maxMs: sorted.at(-1)! };
}

interface Tracked {
  line: IncidentLine;
  raised?: number;
  acked?: number;
  cleared?: number;
  /** Time of its first event that day: the listing order. */
  first: number;
}

/** Alarm events of the day, grouped by incident and by where they come from. */
class Incidents {
  readonly byId = new Map<string, Tracked>();
  raised = 0;
  byLevel = zero();
  untracked = 0;

  add(e: AlarmEvent): Tracked | undefined {
    let t = this.byId.get(e.incidentId);
    if (!t) {
      if (this.byId.size >= MAX_TRACKED_INCIDENTS) {
        this.untracked++;
        return undefined;
      }
      t = {
        line: {
          incidentId: e.incidentId,
          equipment: e.equipment,
          rule: e.rule,
          level: e.level,
          message: e.message,
          ...(e.origin ? { origin: e.origin } : {}),
          carriedOver: e.type !== 'raised',
        },
        first: e.ts,
      };
      this.byId.set(e.incidentId, t);
    }
    const line = t.line;
    if (isLevel(e.level) && rank(e.level) > rank(line.level)) line.level = e.level;
    if (e.type === 'raised' && t.raised === undefined) {
      t.raised = e.ts;
      line.raisedAt = iso(e.ts);
      line.message = e.message;
      this.raised++;
      if (isLevel(e.level)) this.byLevel[e.level]++;
    } else if (e.type === 'acknowledged' && t.acked === undefined) {
      t.acked = e.ts;
      line.acknowledgedAt = iso(e.ts);
      if (e.by) line.acknowledgedBy = e.by;
      if (t.raised !== undefined) line.timeToAckMs = e.ts - t.raised;
    } else if (e.type === 'cleared' && t.cleared === undefined) {
      t.cleared = e.ts;
      line.clearedAt = iso(e.ts);
      if (t.raised !== undefined) line.timeToClearMs = e.ts - t.raised;
    } else if (e.type === 'closed') {
      line.closedAt = iso(e.ts);
    }
    return t;
  }

  list(): IncidentList {
    const all = [...this.byId.values()];
    const listed = all
      .sort((a, b) => rank(b.line.level) - rank(a.line.level) || a.first - b.first)
      .slice(0, LISTED)
      .map((t) => t.line);
    return { raised: this.raised, byLevel: this.byLevel, total: this.byId.size + this.untracked, incidents: listed };
  }
}

/** The equipment's administrative dates (the site file's inspection, maintenance and certificate keys), as of `date`. */
function administrativeDates(config: SiteConfig, date: string): DailyReport['administrative']['dates'] {
  const out: DailyReport['administrative']['dates'] = [];
  const DAY = 86_400_000;
  for (const eq of config.equipment) {
    // Read without relying on their types: the site file gains these keys with issue 19's schema.
    const e = eq as unknown as Record<string, unknown>;
    const inspection = record(e.inspection);
    const maintenance = record(e.maintenance);
    const certificate = record(e.certificate);
    const interval = num(maintenance.interval);
    const last = str(maintenance.last);
    const dueDates: Array<[DailyReport['administrative']['dates'][number]['kind'], string, number]> = [
      ['inspection', str(inspection.next), num(inspection.warn_before) ?? 30 * DAY],
      [
        'maintenance',
        str(maintenance.next) || (last && interval !== undefined ? addDays(last, Math.round(interval / DAY)) : ''),
        num(maintenance.warn_before) ?? 3 * DAY,
      ],
      ['certificate', str(certificate.valid_until), num(certificate.warn_before) ?? 30 * DAY],
    ];
    for (const [kind, due, warn] of dueDates) {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(due)) continue;
      // A date is due at the end of that day: overdue from the next day on.
      const days = daysBetween(date, due);
      out.push({ equipment: eq.id, kind, due, days, status: days < 0 ? 'overdue' : days * DAY <= warn ? 'due' : 'ok' });
    }
  }
  return out.sort((a, b) => a.days - b.days || a.equipment.localeCompare(b.equipment));
}

/**
 * The report of `date` (YYYY-MM-DD, a calendar day in the site's time zone) from what `source`
 * holds; `now` is the generation time.
 */
export function buildDailyReport(source: ReportSource, config: SiteConfig, date: string, now: number): DailyReport {
  const timezone = siteTimeZone(config);
  const { from, to } = dayBounds(date, timezone);
  const notes: string[] = [];
  if (!source.hasJournal) {
    notes.push(
      'The store has no journal yet (it was written by an earlier gateway version): alarms, near misses and risk are not in this report.',
    );
  }

  // Alarms, by where they come from: hazards seen in the readings, pre-warnings, administrative dates.
  const hazards = new Incidents();
  const predicted = new Incidents();
  const administrative = new Incidents();
  let events = 0;
  let acknowledged = 0;
  let cleared = 0;
  const perEquipment = new Map<string, { raised: number; byLevel: Counts }>();
  const perRule = new Map<string, { equipment: string; rule: string; level: Level; message: string; count: number }>();
  for (const entry of entries(source, 'alarm', from, to, notes)) {
    const e = entry.body as AlarmEvent;
    if (typeof e !== 'object' || e === null || typeof e.incidentId !== 'string' || !isLevel(e.level)) continue;
    events++;
    const group = e.origin === 'predicted' ? predicted : e.origin === 'administrative' ? administrative : hazards;
    const t = group.add(e);
    if (group !== hazards) continue;
    if (e.type === 'acknowledged' && t?.acked === e.ts) acknowledged++;
    if (e.type === 'cleared' && t?.cleared === e.ts) cleared++;
    if (e.type === 'raised') {
      const q = perEquipment.get(e.equipment) ?? { raised: 0, byLevel: zero() };
      q.raised++;
      q.byLevel[e.level]++;
      perEquipment.set(e.equipment, q);
      const key = `${e.equipment}\u0000${e.rule}`;
      const r = perRule.get(key) ?? { equipment: e.equipment, rule: e.rule, level: e.level, message: e.message, count: 0 };
      r.count++;
      if (rank(e.level) > rank(r.level)) r.level = e.level;
      perRule.set(key, r);
    }
  }
  for (const [name, g] of [
    ['alarm', hazards],
    ['predicted warning', predicted],
    ['administrative', administrative],
  ] as const) {
    if (g.untracked > 0)
      notes.push(
        `${g.untracked} ${name} events of incidents beyond the first ${MAX_TRACKED_INCIDENTS} are counted without handling times.`,
      );
  }
  const handled = [...hazards.byId.values()];
  const timeToAck = durations(handled.flatMap((t) => (t.line.timeToAckMs !== undefined ? [t.line.timeToAckMs] : [])));
  const timeToClear = durations(handled.flatMap((t) => (t.line.timeToClearMs !== undefined ? [t.line.timeToClearMs] : [])));

  // Risk: the level each equipment started the day with (its last change before), and the day's changes.
  const startLevel = new Map<string, Level>();
  for (const entry of source.lastBefore('risk', from)) {
    const b = record(entry.body);
    const eq = str(b.equipment, entry.equipment ?? '');
    if (eq && isLevel(b.level)) startLevel.set(eq, b.level);
  }
  const riskChanges: DailyReport['risk']['changes'] = [];
  let changesTotal = 0;
  const riskOf = new Map<string, { endLevel?: Level; maxLevel?: Level; changes: number }>();
  for (const entry of entries(source, 'risk', from, to, notes)) {
    const b = record(entry.body);
    const eq = str(b.equipment, entry.equipment ?? '');
    if (!eq || !isLevel(b.level)) continue;
    changesTotal++;
    const r = riskOf.get(eq) ?? { changes: 0 };
    r.changes++;
    r.endLevel = b.level;
    const start = startLevel.get(eq);
    const before = isLevel(b.previousLevel) ? b.previousLevel : undefined;
    for (const l of [b.level, before, r.changes === 1 ? start : undefined])
      if (l && (!r.maxLevel || rank(l) > rank(r.maxLevel))) r.maxLevel = l;
    riskOf.set(eq, r);
    if (riskChanges.length < LISTED) {
      const score = num(b.score);
      riskChanges.push({
        at: iso(entry.ts),
        equipment: eq,
        ...(before ? { from: before } : {}),
        to: b.level,
        ...(score !== undefined ? { score } : {}),
      });
    }
  }
  const riskEquipment = [...new Set([...config.equipment.map((e) => e.id), ...riskOf.keys()])].map((id) => {
    const r = riskOf.get(id);
    const start = startLevel.get(id);
    const end = r?.endLevel ?? start;
    const max = r?.maxLevel ?? start;
    return {
      id,
      ...(start ? { startLevel: start } : {}),
      ...(end ? { endLevel: end } : {}),
      ...(max ? { maxLevel: max } : {}),
      changes: r?.changes ?? 0,
    };
  });

  // Near misses.
  let nearTotal = 0;
  const nearPer = new Map<string, number>();
  const nearList: DailyReport['nearMisses']['list'] = [];
  for (const entry of entries(source, 'near_miss', from, to, notes)) {
    const b = record(entry.body);
    const eq = str(b.equipment, entry.equipment ?? '');
    nearTotal++;
    nearPer.set(eq, (nearPer.get(eq) ?? 0) + 1);
    if (nearList.length < LISTED) {
      nearList.push({
        at: iso(entry.ts),
        equipment: eq,
        point: str(b.point),
        rule: str(b.rule),
        limit: num(b.limit) ?? NaN,
        direction: str(b.direction),
        closest: num(b.closest) ?? NaN,
        ...(isLevel(b.level) ? { level: b.level } : {}),
      });
    }
  }

  // Communication availability: the mean of the hourly summaries' figures (gw.risk-summary.v1: a fraction from 0 to 1).
  const avail = new Map<string, { sum: number; hours: number }>();
  const addAvailability = (eq: string, v: unknown) => {
    const n = num(v);
    if (!eq || n === undefined) return;
    const a = avail.get(eq) ?? { sum: 0, hours: 0 };
    a.sum += n * 100;
    a.hours++;
    avail.set(eq, a);
  };
  for (const entry of entries(source, 'risk_summary', from, to, notes)) {
    const b = record(entry.body);
    if (Array.isArray(b.equipment)) for (const item of b.equipment) addAvailability(str(record(item).id), record(item).availability);
    else addAvailability(str(b.equipment, entry.equipment ?? ''), b.availability);
  }

  // Lab results captured that day, read in pages like the journal.
  let labTotal = 0;
  let flaggedTotal = 0;
  const flagged: DailyReport['lab']['flagged'] = [];
  const labs = new Map<string, { results: number; analytes: Map<string, DailyReport['lab']['instruments'][number]['analytes'][number]> }>();
  for (let at = from, skip = 0; ;) {
    const page = source.readResults(at, to, PAGE + skip);
    const fresh = page.slice(skip);
    for (const r of fresh) {
      const b = record(r.body);
      labTotal++;
      const inst = labs.get(r.instrument) ?? { results: 0, analytes: new Map() };
      inst.results++;
      const analyte = str(b.analyte, '?');
      const a = inst.analytes.get(analyte) ?? { analyte, ...(typeof b.unit === 'string' ? { unit: b.unit } : {}), count: 0, flagged: 0 };
      a.count++;
      const flags = Array.isArray(b.flags) ? b.flags.filter((f): f is string => typeof f === 'string') : [];
      // `N` is the instruments' "normal" flag: not an abnormal result.
      const abnormal = flags.some((f) => f !== '' && f !== 'N');
      if (abnormal) {
        a.flagged++;
        flaggedTotal++;
        if (flagged.length < LISTED) {
          const value = typeof b.value === 'number' || typeof b.value === 'string' ? b.value : null;
          flagged.push({
            at: iso(r.capturedAt),
            instrument: r.instrument,
            sampleId: str(b.sampleId),
            analyte,
            value,
            ...(a.unit ? { unit: a.unit } : {}),
            flags,
          });
        }
      }
      const v = num(b.value);
      if (v !== undefined) {
        a.min = a.min === undefined ? v : Math.min(a.min, v);
        a.max = a.max === undefined ? v : Math.max(a.max, v);
      }
      inst.analytes.set(analyte, a);
      labs.set(r.instrument, inst);
    }
    if (page.length < PAGE + skip) break;
    // The next page starts at the last capture time; the results of that millisecond already read are skipped.
    const last = page.at(-1)!.capturedAt;
    skip = last === at ? skip + fresh.length : page.filter((r) => r.capturedAt === last).length;
    at = last;
  }

  return {
    schema: DAILY_REPORT_SCHEMA,
    eventId: `report-${config.gateway.site}-${date}`,
    gatewayId: config.gateway.id,
    site: config.gateway.site,
    date,
    timezone,
    generatedAt: iso(now),
    from: iso(from),
    to: iso(to),
    notes,
    equipment: config.equipment.map((e) => ({
      id: e.id,
      ...(e.name ? { name: e.name } : {}),
      category: e.category,
      ...(e.code ? { code: e.code } : {}),
    })),
    risk: { equipment: riskEquipment, changesTotal, changes: riskChanges },
    alarms: {
      ...hazards.list(),
      events,
      acknowledged,
      cleared,
      byEquipment: [...perEquipment]
        .map(([equipment, q]) => ({ equipment, ...q }))
        .sort((a, b) => b.raised - a.raised || a.equipment.localeCompare(b.equipment)),
      timeToAck,
      timeToClear,
      top: [...perRule.values()].sort((a, b) => b.count - a.count || rank(b.level) - rank(a.level)).slice(0, TOP_ALARMS),
    },
    predicted: predicted.list(),
    administrative: { ...administrative.list(), dates: administrativeDates(config, date) },
    nearMisses: {
      total: nearTotal,
      byEquipment: [...nearPer]
        .map(([equipment, count]) => ({ equipment, count }))
        .sort((a, b) => b.count - a.count || a.equipment.localeCompare(b.equipment)),
      list: nearList,
    },
    availability: [...avail]
      .map(([equipment, a]) => ({ equipment, percent: Math.round((a.sum / a.hours) * 10) / 10, hours: a.hours }))
      .sort((a, b) => a.percent - b.percent),
    lab: {
      total: labTotal,
      instruments: [...labs].map(([instrument, i]) => ({ instrument, results: i.results, analytes: [...i.analytes.values()] })),
      flaggedTotal,
      flagged,
    },
  };
}
