// The daily upload summary of each lab instrument (`gw.lab-daily.v1`, docs/labs.md): what one
// calendar day in the site's time zone brought from the instrument and where it stands. Results
// captured that day (by capture time, the gateway's clock) and, at the time the summary is made, how
// many the platform has accepted, how many still wait in the outbox, are held for quality control or
// were refused for good; the files and messages the drivers refused; the control samples judged; and
// the gaps, quiet periods between two results longer than `lab.daily_summary.gap`.
//
// Everything comes from the store: the result table (with the outbox's event table beside it: a
// result's event leaves the table when the platform accepts it), the journal's `lab` entries (the
// drivers' LabEvents), its `qc` entries (one per control judged) and its hourly risk summaries (an
// instrument's share of an hour online, which says whether a gap came with its connection down).
// It is read in pages, the event loop given back between them: a day of a million results is
// summarised without holding the rules up, and memory stays bounded whatever the day held.
import type Database from 'better-sqlite3';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { SiteConfig } from '../../config/schema.js';
import type { Logger } from '../log.js';
import { LAB_DAILY_SCHEMA, labDailyEventId, type LabDailyBody } from '../platform/contract.js';
import { CHECK_EVERY_MS, RETRY_AFTER_MS, watchingSince } from '../report/service.js';
import { addDays, dayBounds, instantOf, isDate, localDate, siteTimeZone } from '../report/time.js';
import type { Service } from '../services/service.js';
import type { GatewayStore } from '../store.js';

export type LabDaily = Omit<LabDailyBody, 'seq'>;

/** Refusals and gaps listed one by one, at most, per instrument; the rest are counted. */
export const LISTED = 20;
/** Rows read per query. */
const PAGE = 5000;
/** Distinct sample ids remembered per instrument to count them; a day with more says so in its notes. */
const MAX_SAMPLES = 200_000;
/** The gap threshold when the site file has none (the schema's default). */
const DEFAULT_GAP_MS = 2 * 3_600_000;
const DAY_MS = 86_400_000;

const iso = (ms: number) => new Date(ms).toISOString();
const record = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** The site file's `lab.daily_summary`, read without relying on the section being there (a config built by hand in a test). */
export function labDailySettings(config: SiteConfig): { enabled: boolean; at: string; gapMs: number } {
  const d = (config as { lab?: { daily_summary?: { enabled?: unknown; at?: unknown; gap?: unknown } } }).lab?.daily_summary ?? {};
  return {
    enabled: d.enabled !== false,
    at: typeof d.at === 'string' && /^\d{2}:\d{2}$/.test(d.at) ? d.at : '00:30',
    gapMs: typeof d.gap === 'number' && d.gap > 0 ? d.gap : DEFAULT_GAP_MS,
  };
}

/**
 * The lab instruments of the site: equipment of category `lab_analyzer`, or with a result block
 * (`results:`, Modbus/OPC UA) or quality-control targets (`qc:`). Others with results captured on the
 * day are summarised too (see instrumentsOfDay).
 */
export function labInstruments(config: SiteConfig): SiteConfig['equipment'] {
  return config.equipment.filter(isLabInstrument);
}

/** Whether an equipment entry is a lab instrument (see labInstruments). */
export function isLabInstrument(e: SiteConfig['equipment'][number]): boolean {
  return e.category === 'lab_analyzer' || e.results !== undefined || e.qc !== undefined;
}

interface Tables {
  journal: boolean;
  /** The result table's `held` column (store version 3: results held for quality control). */
  held: boolean;
}

function tablesOf(db: Database.Database): Tables {
  const journal = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal'").get() !== undefined;
  const held = (db.pragma('table_info(result)') as Array<{ name: string }>).some((c) => c.name === 'held');
  return { journal, held };
}

/** The journal of one kind over [from, to), page by page, each entry once (body parsed; a broken one is skipped). */
async function* journal(
  db: Database.Database,
  t: Tables,
  kind: string,
  from: number,
  to: number,
): AsyncGenerator<{ ts: number; body: unknown }> {
  if (!t.journal) return;
  const firstPage = db.prepare('SELECT id, ts, body FROM journal WHERE kind = ? AND ts >= ? AND ts < ? ORDER BY ts, id LIMIT ?');
  const nextPage = db.prepare(
    'SELECT id, ts, body FROM journal WHERE kind = ? AND ts < ? AND (ts > ? OR (ts = ? AND id > ?)) ORDER BY ts, id LIMIT ?',
  );
  let at = from;
  let lastId = -1;
  for (let first = true; ; first = false) {
    const rows = (first ? firstPage.all(kind, from, to, PAGE) : nextPage.all(kind, to, at, at, lastId, PAGE)) as Array<{
      id: number;
      ts: number;
      body: string;
    }>;
    for (const r of rows) {
      at = r.ts;
      lastId = r.id;
      let body: unknown;
      try {
        body = JSON.parse(r.body);
      } catch {
        // A broken entry says nothing countable; the store's own checks report it.
        continue;
      }
      yield { ts: r.ts, body };
    }
    if (rows.length < PAGE) return;
    await yieldToLoop();
  }
}

/** Per instrument, the periods (from, to) in which the hourly risk summaries saw it less than fully online. */
async function offlinePeriods(db: Database.Database, t: Tables, from: number, to: number): Promise<Map<string, Array<[number, number]>>> {
  const out = new Map<string, Array<[number, number]>>();
  // A summary is journaled at the start of its period, which is at most a day long.
  for await (const e of journal(db, t, 'risk_summary', from - DAY_MS, to)) {
    const b = record(e.body);
    const pFrom = Date.parse(str(b.from) ?? '');
    const pTo = Date.parse(str(b.to) ?? '');
    if (!(pTo > from) || !(pFrom < to) || !Array.isArray(b.equipment)) continue;
    for (const item of b.equipment) {
      const { id, availability } = record(item);
      if (typeof id !== 'string' || typeof availability !== 'number' || availability >= 1) continue;
      const list = out.get(id) ?? [];
      list.push([pFrom, pTo]);
      out.set(id, list);
    }
  }
  return out;
}

interface Tally {
  captured: number;
  uploaded: number;
  pending: number;
  held: number;
  refused: number;
  samples: Set<string>;
  samplesCapped: boolean;
  first?: number;
  last?: number;
  gaps: Array<{ from: number; to: number }>;
  gapsTotal: number;
}

/**
 * The results one instrument captured in [from, to), in capture order, page by page. Where each
 * stands: its outbox event gone (accepted by the platform, or never queued on a site without one),
 * posted (accepted, the central broker still to take it), pending, dead (refused for good), or the
 * result held for quality control (no event queued yet).
 */
async function tallyResults(
  db: Database.Database,
  t: Tables,
  instrument: string,
  from: number,
  to: number,
  gapMs: number,
  platform: boolean,
): Promise<Tally> {
  const columns = `r.rowid AS id, r.captured_at AS at, json_extract(r.body, '$.sampleId') AS sample, ${t.held ? 'r.held IS NOT NULL' : '0'} AS held,
    (SELECT CASE WHEN e.posted = 1 THEN 'posted' ELSE e.state END FROM event e WHERE e.event_id = r.result_id) AS event`;
  // The (instrument, captured_at) index (store version 3) walks one instrument's day; its rowid order breaks ties.
  const firstPage = db.prepare(
    `SELECT ${columns} FROM result r WHERE r.instrument = ? AND r.captured_at >= ? AND r.captured_at < ? ORDER BY r.captured_at, r.rowid LIMIT ?`,
  );
  const nextPage = db.prepare(
    `SELECT ${columns} FROM result r WHERE r.instrument = ? AND r.captured_at < ? AND (r.captured_at > ? OR (r.captured_at = ? AND r.rowid > ?)) ORDER BY r.captured_at, r.rowid LIMIT ?`,
  );
  const tally: Tally = {
    captured: 0,
    uploaded: 0,
    pending: 0,
    held: 0,
    refused: 0,
    samples: new Set(),
    samplesCapped: false,
    gaps: [],
    gapsTotal: 0,
  };
  let at = from;
  let lastId = -1;
  for (let first = true; ; first = false) {
    const rows = (first ? firstPage.all(instrument, from, to, PAGE) : nextPage.all(instrument, to, at, at, lastId, PAGE)) as Array<{
      id: number;
      at: number;
      sample: unknown;
      held: number;
      event: string | null;
    }>;
    for (const r of rows) {
      tally.captured++;
      if (r.held) tally.held++;
      else if (r.event === 'pending') tally.pending++;
      else if (r.event === 'dead') tally.refused++;
      // No event: the platform took it, or (a site without one) none was ever queued, and then it was not uploaded.
      else if (platform || r.event === 'posted') tally.uploaded++;
      if (typeof r.sample === 'string' || typeof r.sample === 'number') {
        if (tally.samples.size < MAX_SAMPLES) tally.samples.add(String(r.sample));
        else if (!tally.samples.has(String(r.sample))) tally.samplesCapped = true;
      }
      if (tally.last !== undefined && r.at - tally.last > gapMs) {
        tally.gapsTotal++;
        tally.gaps.push({ from: tally.last, to: r.at });
        // The longest are kept: the list is what a lab manager reads first.
        if (tally.gaps.length > LISTED * 4) keepLongest(tally.gaps);
      }
      tally.first ??= r.at;
      tally.last = r.at;
      at = r.at;
      lastId = r.id;
    }
    if (rows.length < PAGE) break;
    await yieldToLoop();
  }
  keepLongest(tally.gaps);
  return tally;
}

function keepLongest(gaps: Array<{ from: number; to: number }>): void {
  gaps.sort((a, b) => b.to - b.from - (a.to - a.from) || a.from - b.from);
  gaps.length = Math.min(gaps.length, LISTED);
}

/** An instrument summarised: as the site file has it, or as its results were stored when the site file no longer names it. */
interface Summarised {
  id: string;
  category: string;
  name?: string | undefined;
  /** Not in the site file (removed, or renamed since): what the summary says of it comes from the store. */
  gone?: true;
}

/**
 * The instruments to summarise for a day: the site's lab instruments, any other equipment with a
 * result captured that day, and any instrument with a result captured that day that the site file
 * no longer names (removed or renamed after the results came): those results were captured and
 * uploaded, and a summary without them would say the day brought less than it did.
 */
function instrumentsOfDay(db: Database.Database, config: SiteConfig, from: number, to: number): Summarised[] {
  const lab = new Set(labInstruments(config).map((e) => e.id));
  const any = db.prepare('SELECT 1 FROM result WHERE instrument = ? AND captured_at >= ? AND captured_at < ? LIMIT 1');
  const out: Summarised[] = config.equipment
    .filter((e) => lab.has(e.id) || any.get(e.id, from, to) !== undefined)
    .map((e) => ({ id: e.id, category: e.category, name: e.name }));
  const named = new Set(config.equipment.map((e) => e.id));
  // The instruments in the store one by one, each a seek on the (instrument, captured_at) index, not
  // a scan of every result ever kept.
  const next = db.prepare('SELECT instrument FROM result WHERE instrument > ? ORDER BY instrument LIMIT 1');
  const gone: Summarised[] = [];
  for (let row = next.get('') as { instrument: string } | undefined; row; row = next.get(row.instrument) as typeof row) {
    if (named.has(row.instrument) || any.get(row.instrument, from, to) === undefined) continue;
    // The stored results do not keep the category; a result of an instrument the site file does not name is sent as lab_analyzer too (resultBodyOf).
    gone.push({ id: row.instrument, category: 'lab_analyzer', gone: true });
  }
  return [...out, ...gone];
}

/**
 * The summaries of `date` (YYYY-MM-DD, site time) for every instrument of the site (see
 * instrumentsOfDay), each a `gw.lab-daily.v1` body without its seq, made at `now`. `db` is the
 * store's database: the running gateway's connection, or a read-only one (`gateway lab daily`).
 */
export async function buildLabDaily(db: Database.Database, config: SiteConfig, date: string, now: number): Promise<LabDaily[]> {
  const timeZone = siteTimeZone(config);
  const { from, to } = dayBounds(date, timeZone);
  const { gapMs } = labDailySettings(config);
  const t = tablesOf(db);
  const instruments = instrumentsOfDay(db, config, from, to);
  const ids = new Set(instruments.map((e) => e.id));
  const notes: string[] = [];
  if (!config.platform) notes.push('The site has no platform: results are kept in the store and none is uploaded.');
  if (!t.journal) notes.push('The store has no journal (written by an earlier gateway): files, messages and QC runs are not counted.');

  // The drivers' events of the day, per instrument.
  const events = new Map<string, { taken: number; rejected: number; refused: number; list: LabDaily['refusals'] }>();
  for await (const e of journal(db, t, 'lab', from, to)) {
    const b = record(e.body);
    const instrument = str(b.instrument);
    if (!instrument || !ids.has(instrument)) continue;
    const tally = events.get(instrument) ?? { taken: 0, rejected: 0, refused: 0, list: [] };
    events.set(instrument, tally);
    if (b.kind === 'file-taken') tally.taken++;
    else if (b.kind === 'file-rejected' || b.kind === 'message-refused') {
      if (b.kind === 'file-rejected') tally.rejected++;
      else tally.refused++;
      if (tally.list.length < LISTED) {
        const file = str(b.file);
        const controlId = str(b.controlId);
        tally.list.push({
          at: iso(e.ts),
          kind: b.kind,
          ...(file !== undefined ? { file: file.slice(0, 1000) } : {}),
          ...(controlId !== undefined ? { controlId: controlId.slice(0, 200) } : {}),
          reason: (str(b.reason) ?? '').slice(0, 2000),
        });
      }
    }
  }

  // The control samples judged that day, per instrument and analyte.
  const qc = new Map<string, Map<string, { runs: number; warnings: number; rejections: number }>>();
  for await (const e of journal(db, t, 'qc', from, to)) {
    const b = record(e.body);
    const instrument = str(b.instrument);
    if (!instrument || !ids.has(instrument)) continue;
    const analytes = qc.get(instrument) ?? new Map();
    qc.set(instrument, analytes);
    const analyte = str(b.analyte) ?? '?';
    const a = analytes.get(analyte) ?? { runs: 0, warnings: 0, rejections: 0 };
    analytes.set(analyte, a);
    a.runs++;
    if (b.status === 'warning') a.warnings++;
    else if (b.status === 'rejected') a.rejections++;
  }

  const offline = await offlinePeriods(db, t, from, to);
  const out: LabDaily[] = [];
  for (const e of instruments) {
    const r = await tallyResults(db, t, e.id, from, to, gapMs, config.platform !== undefined);
    const ev = events.get(e.id) ?? { taken: 0, rejected: 0, refused: 0, list: [] };
    const analytes = [...(qc.get(e.id) ?? new Map<string, { runs: number; warnings: number; rejections: number }>())]
      .map(([analyte, a]) => ({ analyte, ...a }))
      .sort((a, b) => (a.analyte < b.analyte ? -1 : a.analyte > b.analyte ? 1 : 0));
    const down = offline.get(e.id) ?? [];
    const own: string[] = [];
    if (r.samplesCapped) own.push(`More than ${MAX_SAMPLES} distinct sample ids: samples counts the first ${MAX_SAMPLES}.`);
    if (ev.rejected + ev.refused > LISTED)
      own.push(`${ev.rejected + ev.refused} files and messages refused: the first ${LISTED} are listed.`);
    if (r.gapsTotal > LISTED) own.push(`${r.gapsTotal} gaps: the ${LISTED} longest are listed.`);
    if (e.gone) own.push(`${e.id} is not in the site file any more: its results of the day are summarised as they were stored.`);
    out.push({
      schema: LAB_DAILY_SCHEMA,
      eventId: labDailyEventId(config.gateway.site, e.id, date),
      gatewayId: config.gateway.id,
      site: config.gateway.site,
      instrument: { id: e.id, category: e.category, ...(e.name ? { name: e.name } : {}) },
      date,
      timezone: timeZone,
      from: iso(from),
      to: iso(to),
      generatedAt: iso(now),
      results: { captured: r.captured, uploaded: r.uploaded, pending: r.pending, held: r.held, refused: r.refused },
      samples: r.samples.size,
      ...(r.first !== undefined ? { firstResultAt: iso(r.first) } : {}),
      ...(r.last !== undefined ? { lastResultAt: iso(r.last) } : {}),
      files: { taken: ev.taken, rejected: ev.rejected },
      messages: { refused: ev.refused },
      refusals: ev.list,
      qc: {
        runs: analytes.reduce((n, a) => n + a.runs, 0),
        warnings: analytes.reduce((n, a) => n + a.warnings, 0),
        rejections: analytes.reduce((n, a) => n + a.rejections, 0),
        analytes,
      },
      gaps: {
        thresholdMinutes: Math.round((gapMs / 60_000) * 100) / 100,
        total: r.gapsTotal,
        list: r.gaps.map((g) => ({
          from: iso(g.from),
          to: iso(g.to),
          minutes: Math.round((g.to - g.from) / 60_000),
          ...(down.some(([a, b]) => a < g.to && b > g.from) ? { offline: true } : {}),
        })),
      },
      notes: [...notes, ...own],
    });
  }
  return out;
}

/** The platform outbox as the summary needs it: bodies committed by their eventId, once (gateway/platform/outbox.ts). */
export interface LabDailyOutbox {
  add(bodies: readonly LabDaily[], now?: number): unknown;
}

export interface LabDailyServiceOptions {
  config: SiteConfig;
  log: Logger;
  /** The open store; undefined (or a throw) while it is not open, and the check waits. */
  store: () => GatewayStore | undefined;
  /** The platform's outbox; undefined while it is not open. */
  outbox: () => LabDailyOutbox | undefined;
  /** Called after summaries are queued: wakes the forwarder. */
  notify?: (() => void) | undefined;
  /** Tests give a clock; the gateway's is Date.now. */
  now?: () => number;
}

export interface LabDailyService extends Service {
  /**
   * Sends the summaries that are due; resolves with the dates sent and never rejects (a failure is
   * logged and tried again after RETRY_AFTER_MS). Runs on its own every minute; a call while one
   * runs gets that run's outcome.
   */
  check(): Promise<string[]>;
}

/** The store's record of the last date whose summaries were queued, in its table of small durable states. */
export const LAST_SENT_KEY = 'lab-daily/last-date';
/** After a gateway was down for days, the summaries of at most this many days before today are sent. */
export const CATCH_UP_DAYS = 7;

/**
 * The daily summaries' schedule: at `lab.daily_summary.at` (site time) the previous day's summary of
 * each lab instrument is queued for the platform, once per date. "Once" holds across restarts because
 * the bodies and the date they cover are committed in one store transaction, and that date is what is
 * checked; the platform keeps one body per eventId besides. A gateway that was down at that time sends
 * the missed days when it starts (at most CATCH_UP_DAYS back), and only days it watched: a day that
 * ended before the gateway first ran on this store (as the daily report counts it) is not summarised.
 * Undefined on a site without a platform, without lab instruments, or with the summary turned off.
 */
export function createLabDailyService(o: LabDailyServiceOptions): LabDailyService | undefined {
  const settings = labDailySettings(o.config);
  if (!settings.enabled || !o.config.platform || labInstruments(o.config).length === 0) return undefined;
  const log = o.log.child({ component: 'lab-daily' });
  const timeZone = siteTimeZone(o.config);
  const now = o.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let retryAt = 0;
  let lastError: string | undefined;
  /** The last day checked: nothing more is due until the next one. */
  let lastDay: string | undefined;
  let since: number | undefined;
  let running: Promise<string[]> | undefined;
  let stopping = false;

  const openStore = (): GatewayStore | undefined => {
    try {
      return o.store();
    } catch {
      // Not open yet (or stopping): the next check tries again.
      return undefined;
    }
  };

  /** The dates due on `yesterday`: each after the last one sent, at most CATCH_UP_DAYS; only yesterday on a store that never sent one. */
  const datesDue = (store: GatewayStore, yesterday: string): string[] => {
    const last = store.counter(LAST_SENT_KEY);
    if (typeof last !== 'string' || !isDate(last)) return [yesterday];
    if (last > yesterday) {
      // Sent while the clock was ahead (an RTC years off, set right by NTP later): waiting for that date
      // would send nothing for as long. Yesterday is sent again (the platform keeps one body per eventId).
      log.warn(
        { last, yesterday },
        `Lab daily summaries were last sent for ${last}, after yesterday (${yesterday}): the clock was ahead then`,
      );
      return [yesterday];
    }
    const dates: string[] = [];
    for (let d = addDays(last, 1); d <= yesterday; d = addDays(d, 1)) dates.push(d);
    if (dates.length > CATCH_UP_DAYS) {
      log.warn(
        { from: dates[0], to: dates.at(-CATCH_UP_DAYS - 1) },
        `No lab daily summaries of ${dates[0]} to ${dates.at(-CATCH_UP_DAYS - 1)}: the gateway was down longer than ${CATCH_UP_DAYS} days; \`gateway lab daily\` prints them`,
      );
      return dates.slice(-CATCH_UP_DAYS);
    }
    return dates;
  };

  const attempt = async (): Promise<string[]> => {
    const t = now();
    const sent: string[] = [];
    if (t < retryAt) return sent;
    let date: string | undefined;
    try {
      const today = localDate(t, timeZone);
      if (t < instantOf(today, settings.at, timeZone)) return sent;
      const yesterday = addDays(today, -1);
      if (yesterday === lastDay) return sent;
      const store = openStore();
      if (!store) return sent;
      since ??= watchingSince(store, t);
      for (date of datesDue(store, yesterday)) {
        // A day that ended before the gateway first ran here was not watched: there is nothing to summarise.
        if (since >= dayBounds(date, timeZone).to) continue;
        const bodies = await buildLabDaily(store.db, o.config, date, t);
        if (stopping) return sent;
        // The store and outbox open now: they may have been reopened while the summary was read.
        const current = openStore();
        const outbox = o.outbox();
        if (!current || !outbox) throw new Error('the store or the platform outbox closed while the summary was being made');
        const day = date;
        current.transaction(() => {
          outbox.add(bodies, t);
          current.saveCounter(LAST_SENT_KEY, day);
        });
        o.notify?.();
        sent.push(date);
        log.info(
          { date, instruments: bodies.length, results: bodies.reduce((n, b) => n + b.results.captured, 0) },
          `Lab daily summaries of ${date} queued for the platform (${bodies.length} instrument${bodies.length === 1 ? '' : 's'})`,
        );
      }
      lastDay = yesterday;
      retryAt = 0;
      lastError = undefined;
      return sent;
    } catch (err) {
      if (stopping) return sent;
      retryAt = t + RETRY_AFTER_MS;
      const message = (err as Error).message;
      const what = date === undefined ? 'The lab daily summaries' : `Lab daily summaries of ${date}`;
      // The same failure again is logged at debug: one error line per cause, not one per try.
      if (message === lastError) log.debug({ date, err }, 'Lab daily summaries still cannot be made');
      else log.error({ date, err, retryInMinutes: RETRY_AFTER_MS / 60_000 }, `${what} cannot be made: ${message}`);
      lastError = message;
      return sent;
    }
  };

  const check = (): Promise<string[]> => {
    running ??= attempt().finally(() => {
      running = undefined;
    });
    return running;
  };

  return {
    id: 'lab-daily',
    name: 'lab daily summary',
    check,
    async start() {
      stopping = false;
      // At start too: a gateway that was down at that time sends what it missed.
      void check();
      timer = setInterval(() => void check(), CHECK_EVERY_MS);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      stopping = true;
      await running;
    },
    health: () => ({ ok: true, detail: { at: settings.at, timeZone, lastDay, ...(lastError ? { lastError } : {}) } }),
  };
}
