// The daily report's schedule: at `report.at` (site time) the previous day's report is built, written
// to the data folder, journaled and queued for the platform, once per date. "Once" holds across
// restarts because the journal entry and the outbox body are committed in one store transaction and
// the journal is what is checked: a gateway down at report time writes the report when it starts, and
// one killed while writing the files writes them again (the platform keeps one by its eventId).
//
// Only a day the gateway watched is reported: the store keeps when the gateway first ran on it, and a
// date that ended before that is not reported. A new site's first start after report time would else
// write and send an empty report of a day nobody was watching.
//
// The report is built in a worker thread (gateway/report/job.ts): the rules evaluate on this event
// loop, and a busy day takes seconds to build. This thread only commits what the worker made.
import { resolve } from 'node:path';
import type { SiteConfig } from '../../config/schema.js';
import type { Logger } from '../log.js';
import type { Service } from '../services/service.js';
import type { GatewayStore, JournalKind } from '../store.js';
import { pruneDailyReports, readDailyReport } from './files.js';
import { type ReportJob, type ReportJobResult, type ReportWorkerOptions, runReportJobInWorker } from './job.js';
import { addDays, dayBounds, instantOf, localDate, siteTimeZone } from './time.js';
import type { DailyReport } from './types.js';

/** The platform outbox as the report needs it: bodies committed by their eventId, once (gateway/platform/outbox.ts). */
export interface ReportOutbox {
  add(bodies: readonly DailyReport[], now?: number): unknown;
}

export interface ReportServiceOptions {
  config: SiteConfig;
  log: Logger;
  /** The data folder (default: the site file's gateway.data_dir, resolved from the working directory). */
  dataDir?: string | undefined;
  /** The open store; undefined (or a throw) while it is not open, and the check waits. */
  store: () => GatewayStore | undefined;
  /** The platform outbox when the site has a platform; a site without one keeps its reports local. */
  outbox?: (() => ReportOutbox | undefined) | undefined;
  /** Called after a report is queued: wakes the forwarder. */
  notify?: (() => void) | undefined;
  /** Tests give a clock; the gateway's is Date.now. */
  now?: () => number;
  /**
   * Builds and writes the report of a date: by default in a worker thread. Tests on a fake clock give
   * `runReportJob` (the same job in this thread), since a worker does not follow fake timers.
   */
  build?: ((job: ReportJob, opts: ReportWorkerOptions & { signal: AbortSignal }) => Promise<ReportJobResult>) | undefined;
  /** The worker's bounds (REPORT_WORKER_DEFAULTS). */
  worker?: ReportWorkerOptions | undefined;
}

export interface ReportService extends Service {
  /**
   * Checks whether a report is due and writes it; resolves with the date written, if any, and never
   * rejects (a failure is logged and tried again after RETRY_AFTER_MS). Runs on its own every minute;
   * a call while a report is being built gets that build's outcome.
   */
  check(): Promise<string | undefined>;
  /** The page kept for `date` (YYYY-MM-DD), for the HTTP API; undefined when there is none. */
  report(date: string): { html: string } | undefined;
}

/** How often the schedule looks at the clock: a report is at most this late, and a changed clock is followed. */
export const CHECK_EVERY_MS = 60_000;
/** After a failure (disk full, store busy), the next try: not every minute, with an error line each time. */
export const RETRY_AFTER_MS = 10 * 60_000;
const DAY_MS = 86_400_000;
/** The store's record of when the gateway first ran on it (epoch ms), in its table of small durable states. */
export const WATCHING_SINCE_KEY = 'report/watching-since';
const JOURNAL_KINDS: readonly JournalKind[] = ['alarm', 'near_miss', 'risk', 'risk_summary', 'report'];

/** The site file's `report:` section, read without relying on its type (it comes with issue 19's schema). */
export function reportSettings(config: SiteConfig): { enabled: boolean; at: string; keepMs: number } {
  const r = (config as { report?: { enabled?: unknown; at?: unknown; keep?: unknown } }).report ?? {};
  return {
    enabled: r.enabled !== false,
    at: typeof r.at === 'string' && /^\d{2}:\d{2}$/.test(r.at) ? r.at : '06:00',
    keepMs: typeof r.keep === 'number' && r.keep > 0 ? r.keep : 400 * DAY_MS,
  };
}

/** Whether the journal holds the report of `date` (written after that day ended). */
export function reported(store: GatewayStore, date: string, timeZone: string, now: number): boolean {
  const { to } = dayBounds(date, timeZone);
  return store.readJournal('report', to, Math.max(to, now) + DAY_MS).some((e) => (e.body as { date?: unknown } | null)?.date === date);
}

/**
 * Since when the gateway has watched with this store (epoch ms), recorded the first time it is asked.
 * A store used before the record existed watched since its oldest journal entry or lab result; a new
 * store since `now`.
 */
export function watchingSince(store: GatewayStore, now: number): number {
  const saved = store.counter(WATCHING_SINCE_KEY);
  if (typeof saved === 'number' && Number.isFinite(saved)) return saved;
  // Per kind, so that each reads the (kind, ts) index; once per store.
  const oldest = [
    ...JOURNAL_KINDS.map((kind) => store.db.prepare('SELECT min(ts) AS t FROM journal WHERE kind = ?').get(kind) as { t: number | null }),
    store.db.prepare('SELECT min(captured_at) AS t FROM result').get() as { t: number | null },
  ]
    .map((r) => r.t)
    .filter((t): t is number => typeof t === 'number');
  const since = Math.min(now, ...oldest);
  store.saveCounter(WATCHING_SINCE_KEY, since);
  return since;
}

/** The daily report's schedule as a service; undefined when the site file turns the report off. */
export function createReportService(o: ReportServiceOptions): ReportService | undefined {
  const settings = reportSettings(o.config);
  if (!settings.enabled) return undefined;
  const log = o.log.child({ component: 'report' });
  const dataDir = resolve(o.dataDir ?? o.config.gateway.data_dir);
  const timeZone = siteTimeZone(o.config);
  const now = o.now ?? Date.now;
  const build = o.build ?? runReportJobInWorker;
  let timer: NodeJS.Timeout | undefined;
  let retryAt = 0;
  let lastError: string | undefined;
  let lastDate: string | undefined;
  let since: number | undefined;
  let running: Promise<string | undefined> | undefined;
  // Aborted by stop(): the worker is terminated and nothing is committed (the next start writes it again).
  let stopping = new AbortController();

  const openStore = (): GatewayStore | undefined => {
    try {
      return o.store();
    } catch {
      // Not open yet (or stopping): the next check tries again.
      return undefined;
    }
  };

  const attempt = async (): Promise<string | undefined> => {
    const t = now();
    if (t < retryAt) return undefined;
    let date: string | undefined;
    try {
      if (since === undefined) {
        const store = openStore();
        if (!store) return undefined;
        since = watchingSince(store, t);
      }
      const today = localDate(t, timeZone);
      if (t < instantOf(today, settings.at, timeZone)) return undefined;
      date = addDays(today, -1);
      if (date === lastDate) return undefined;
      // A day that ended before the gateway first ran here was not watched: there is nothing to report.
      if (since >= dayBounds(date, timeZone).to) {
        lastDate = date;
        log.debug({ date, since: new Date(since).toISOString() }, `No daily report of ${date}: the gateway first ran after that day`);
        return undefined;
      }
      const store = openStore();
      if (!store) return undefined;
      if (reported(store, date, timeZone, t)) {
        lastDate = date;
        return undefined;
      }
      const { signal } = stopping;
      const { report, files } = await build({ storeFile: store.file, dataDir, config: o.config, date, now: t }, { ...o.worker, signal });
      if (signal.aborted) return undefined;
      // The store that is open now: it may have been reopened while the worker ran.
      const current = openStore();
      if (!current) throw new Error('the store closed while the report was being built');
      const outbox = o.outbox?.();
      current.transaction(() => {
        current.appendJournal([{ ts: t, kind: 'report', body: { date, eventId: report.eventId, html: files.html, json: files.json } }]);
        outbox?.add([report], t);
      });
      if (outbox) o.notify?.();
      lastDate = date;
      retryAt = 0;
      lastError = undefined;
      const pruned = pruneDailyReports(dataDir, localDate(t - settings.keepMs, timeZone));
      log.info(
        {
          date,
          file: files.html,
          platform: outbox !== undefined,
          alarms: report.alarms.raised,
          nearMisses: report.nearMisses.total,
          pruned,
        },
        `Daily report of ${date} written to "${files.html}"${outbox ? ' and queued for the platform' : ''}`,
      );
      return date;
    } catch (err) {
      if (stopping.signal.aborted) return undefined;
      retryAt = t + RETRY_AFTER_MS;
      const message = (err as Error).message;
      const what = date === undefined ? 'The daily report' : `Daily report of ${date}`;
      // The same failure again is logged at debug: one error line per cause, not one per try.
      if (message === lastError) log.debug({ date, err }, 'Daily report still cannot be written');
      else log.error({ date, err, retryInMinutes: RETRY_AFTER_MS / 60_000 }, `${what} cannot be written: ${message}`);
      lastError = message;
      return undefined;
    }
  };

  const check = (): Promise<string | undefined> => {
    running ??= attempt().finally(() => {
      running = undefined;
    });
    return running;
  };

  return {
    id: 'report',
    name: 'daily report',
    check,
    report: (date) => readDailyReport(dataDir, date),
    async start() {
      stopping = new AbortController();
      // At start too: a gateway that was down at report time writes the report it missed. Not awaited:
      // the worker takes seconds, and the gateway's other services need not wait for it.
      void check();
      timer = setInterval(() => void check(), CHECK_EVERY_MS);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      stopping.abort();
      await running;
    },
    health: () => ({ ok: true, detail: { at: settings.at, timeZone, lastDate, ...(lastError ? { lastError } : {}) } }),
  };
}
