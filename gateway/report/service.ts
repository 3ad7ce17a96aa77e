// The daily report's schedule: at `report.at` (site time) the previous day's report is built, written
// to the data folder, journaled and queued for the platform, once per date. "Once" holds across
// restarts because the journal entry and the outbox body are committed in one store transaction and
// the journal is what is checked: a gateway down at report time writes the report when it starts, and
// one killed while writing the files writes them again (the platform keeps one by its eventId).
import { resolve } from 'node:path';
import type { SiteConfig } from '../../config/schema.js';
import type { Logger } from '../log.js';
import type { Service } from '../services/service.js';
import type { GatewayStore } from '../store.js';
import { buildDailyReport } from './daily.js';
import { pruneDailyReports, readDailyReport, writeDailyReport } from './files.js';
import { storeSource } from './source.js';
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
}

export interface ReportService extends Service {
  /** Checks whether a report is due and writes it; resolves with the date written, if any. Runs on its own every minute. */
  check(): string | undefined;
  /** The page kept for `date` (YYYY-MM-DD), for the HTTP API; undefined when there is none. */
  report(date: string): { html: string } | undefined;
}

/** How often the schedule looks at the clock: a report is at most this late, and a changed clock is followed. */
export const CHECK_EVERY_MS = 60_000;
/** After a failure (disk full, store busy), the next try: not every minute, with an error line each time. */
export const RETRY_AFTER_MS = 10 * 60_000;
const DAY_MS = 86_400_000;

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

/** The daily report's schedule as a service; undefined when the site file turns the report off. */
export function createReportService(o: ReportServiceOptions): ReportService | undefined {
  const settings = reportSettings(o.config);
  if (!settings.enabled) return undefined;
  const log = o.log.child({ component: 'report' });
  const dataDir = resolve(o.dataDir ?? o.config.gateway.data_dir);
  const timeZone = siteTimeZone(o.config);
  const now = o.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let retryAt = 0;
  let lastError: string | undefined;
  let lastDate: string | undefined;

  const openStore = (): GatewayStore | undefined => {
    try {
      return o.store();
    } catch {
      // Not open yet (or stopping): the next check tries again.
      return undefined;
    }
  };

  const check = (): string | undefined => {
    const t = now();
    if (t < retryAt) return undefined;
    const today = localDate(t, timeZone);
    if (t < instantOf(today, settings.at, timeZone)) return undefined;
    const date = addDays(today, -1);
    if (date === lastDate) return undefined;
    const store = openStore();
    if (!store) return undefined;
    try {
      if (reported(store, date, timeZone, t)) {
        lastDate = date;
        return undefined;
      }
      const report = buildDailyReport(storeSource(store), o.config, date, t);
      const files = writeDailyReport(dataDir, report);
      const outbox = o.outbox?.();
      store.transaction(() => {
        store.appendJournal([{ ts: t, kind: 'report', body: { date, eventId: report.eventId, html: files.html, json: files.json } }]);
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
      retryAt = t + RETRY_AFTER_MS;
      const message = (err as Error).message;
      // The same failure again is logged at debug: one error line per cause, not one per try.
      if (message === lastError) log.debug({ date, err }, 'Daily report still cannot be written');
      else log.error({ date, err, retryInMinutes: RETRY_AFTER_MS / 60_000 }, `Daily report of ${date} cannot be written: ${message}`);
      lastError = message;
      return undefined;
    }
  };

  return {
    id: 'report',
    name: 'daily report',
    check,
    report: (date) => readDailyReport(dataDir, date),
    async start() {
      // At start too: a gateway that was down at report time writes the report it missed.
      check();
      timer = setInterval(check, CHECK_EVERY_MS);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
    },
    health: () => ({ ok: true, detail: { at: settings.at, timeZone, lastDate, ...(lastError ? { lastError } : {}) } }),
  };
}
