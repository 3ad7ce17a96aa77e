// The daily report's schedule on a given clock: at report.at (site time) the previous day's report,
// once per date also across restarts, its files private, journaled and queued for the platform in
// one transaction; only for a day the gateway watched. These tests build in this thread (a worker
// does not follow a fake clock); the last ones go through the real worker thread.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SiteConfig } from '../../../../config/schema.js';
import { runReportJob } from '../../../../gateway/report/job.js';
import {
  CHECK_EVERY_MS,
  createReportService,
  type ReportOutbox,
  type ReportServiceOptions,
  RETRY_AFTER_MS,
  WATCHING_SINCE_KEY,
} from '../../../../gateway/report/service.js';
import type { DailyReport } from '../../../../gateway/report/types.js';
import type { GatewayStore } from '../../../../gateway/store.js';
import { fillDay, newStore, sh, site } from './fixture.js';

const log = pino({ level: 'silent' });
const open: GatewayStore[] = [];
afterEach(() => {
  vi.useRealTimers();
  for (const s of open.splice(0)) s.close();
});

/** The same job as the worker's, in this thread. */
const inThread: ReportServiceOptions['build'] = (job) => Promise.resolve(runReportJob(job));

function setup(config: SiteConfig = site(), o: { fill?: boolean } = {}) {
  const s = newStore();
  open.push(s.store);
  if (o.fill !== false) fillDay(s.store);
  const queued: DailyReport[] = [];
  const outbox: ReportOutbox = { add: (bodies) => queued.push(...bodies) };
  let now = sh('05:59:59', '2026-03-09');
  const notify = vi.fn();
  const make = (box: ReportOutbox | undefined = outbox) =>
    createReportService({
      config,
      log,
      dataDir: s.dataDir,
      store: () => s.store,
      outbox: () => box,
      notify,
      now: () => now,
      build: inThread,
    })!;
  return { ...s, queued, notify, make, setNow: (t: number) => (now = t) };
}

describe('the daily report service', () => {
  it("writes the previous day's report at report.at, once, journaled and queued for the platform", async () => {
    const t = setup();
    const service = t.make();
    // 05:59:59 in Shanghai: not yet.
    expect(await service.check()).toBeUndefined();
    t.setNow(sh('06:00:00', '2026-03-09'));
    expect(await service.check()).toBe('2026-03-08');
    const html = join(t.dataDir, 'reports', 'daily-2026-03-08.html');
    const json = join(t.dataDir, 'reports', 'daily-2026-03-08.json');
    expect(readFileSync(html, 'utf8')).toContain('<title>Daily safety report 安全日报 — test-site — 2026-03-08</title>');
    expect(JSON.parse(readFileSync(json, 'utf8'))).toMatchObject({ eventId: 'report-test-site-2026-03-08', alarms: { raised: 4 } });
    // The gateway user's alone.
    expect(statSync(join(t.dataDir, 'reports')).mode & 0o777).toBe(0o700);
    expect(statSync(html).mode & 0o777).toBe(0o600);
    expect(statSync(json).mode & 0o777).toBe(0o600);
    expect(t.queued.map((b) => b.eventId)).toEqual(['report-test-site-2026-03-08']);
    expect(t.notify).toHaveBeenCalledTimes(1);
    // What the HTTP API serves; a date that is not one names no file.
    expect(service.report('2026-03-08')?.html).toBe(readFileSync(html, 'utf8'));
    expect(service.report('2026-03-07')).toBeUndefined();
    expect(service.report('../gateway.db')).toBeUndefined();
    expect(t.store.readJournal('report', 0, Date.parse('2027-01-01')).map((e) => (e.body as { date: string }).date)).toEqual([
      '2026-03-08',
    ]);

    // Later the same day, and after a restart (a new service on the same store): nothing again.
    t.setNow(sh('18:00:00', '2026-03-09'));
    expect(await service.check()).toBeUndefined();
    expect(await t.make().check()).toBeUndefined();
    expect(t.queued).toHaveLength(1);
    // The next day's at 06:00: the 9th.
    t.setNow(sh('06:00:00', '2026-03-10'));
    expect(await t.make().check()).toBe('2026-03-09');
    expect(t.queued.map((b) => b.date)).toEqual(['2026-03-08', '2026-03-09']);
  });

  it('a gateway started after report time writes the report it missed; a site without platform keeps it local', async () => {
    const t = setup();
    t.setNow(sh('14:00:00', '2026-03-09'));
    const service = createReportService({
      config: site(),
      log,
      dataDir: t.dataDir,
      store: () => t.store,
      now: () => sh('14:00:00', '2026-03-09'),
      build: inThread,
    })!;
    expect(await service.check()).toBe('2026-03-08');
    expect(existsSync(join(t.dataDir, 'reports', 'daily-2026-03-08.html'))).toBe(true);
    expect(t.queued).toEqual([]);
  });

  it('a failure to queue leaves no journal entry: the report is written again at the next try', async () => {
    const t = setup();
    t.setNow(sh('06:00:00', '2026-03-09'));
    let fail = true;
    const box: ReportOutbox = {
      add: (bodies) => {
        if (fail) throw new Error('database is locked');
        t.queued.push(...bodies);
      },
    };
    const service = t.make(box);
    expect(await service.check()).toBeUndefined();
    expect(t.store.readJournal('report', 0, Date.parse('2027-01-01'))).toEqual([]);
    expect(service.health!().detail).toMatchObject({ lastError: 'database is locked' });
    fail = false;
    // Not every minute: after RETRY_AFTER_MS.
    t.setNow(sh('06:00:00', '2026-03-09') + CHECK_EVERY_MS);
    expect(await service.check()).toBeUndefined();
    t.setNow(sh('06:00:00', '2026-03-09') + RETRY_AFTER_MS);
    expect(await service.check()).toBe('2026-03-08');
    expect(t.queued).toHaveLength(1);
  });

  it('runs on its own every minute once started, and report.enabled: false leaves it out', async () => {
    vi.useFakeTimers();
    const t = setup();
    const service = t.make();
    await service.start();
    expect(t.queued).toEqual([]);
    t.setNow(sh('06:00:30', '2026-03-09'));
    await vi.advanceTimersByTimeAsync(CHECK_EVERY_MS);
    expect(t.queued).toHaveLength(1);
    await service.stop();
    const off = { ...site(), report: { enabled: false, at: '06:00', keep: 400 * 86_400_000 } } as SiteConfig;
    expect(createReportService({ config: off, log, dataDir: t.dataDir, store: () => t.store })).toBeUndefined();
  });

  it('keeps report files for report.keep: older ones go when a report is written', async () => {
    const config = { ...site(), report: { enabled: true, at: '06:00', keep: 1 * 86_400_000 } } as SiteConfig;
    const t = setup(config);
    t.setNow(sh('06:00:00', '2026-03-09'));
    await t.make().check();
    t.setNow(sh('06:00:00', '2026-03-11'));
    expect(await t.make().check()).toBe('2026-03-10');
    // Kept: a day back from 2026-03-11 06:00 is 2026-03-10; the 8th's files are gone.
    expect(existsSync(join(t.dataDir, 'reports', 'daily-2026-03-08.html'))).toBe(false);
    expect(existsSync(join(t.dataDir, 'reports', 'daily-2026-03-10.json'))).toBe(true);
  });

  it('a new store started after report time writes no report of a day it did not watch; the next day it reports the day it watched', async () => {
    const t = setup(site(), { fill: false });
    t.setNow(sh('07:00:00', '2026-03-09'));
    expect(await t.make().check()).toBeUndefined();
    expect(t.store.counter(WATCHING_SINCE_KEY)).toBe(sh('07:00:00', '2026-03-09'));
    // A restart the same day keeps its first start.
    t.setNow(sh('09:00:00', '2026-03-09'));
    expect(await t.make().check()).toBeUndefined();
    expect(t.store.counter(WATCHING_SINCE_KEY)).toBe(sh('07:00:00', '2026-03-09'));
    expect(existsSync(join(t.dataDir, 'reports'))).toBe(false);
    expect(t.store.readJournal('report', 0, Date.parse('2027-01-01'))).toEqual([]);
    expect(t.queued).toEqual([]);
    t.setNow(sh('06:00:00', '2026-03-10'));
    expect(await t.make().check()).toBe('2026-03-09');
    expect(t.queued.map((b) => b.date)).toEqual(['2026-03-09']);
  });

  it('a store first started the day before reports that day, even with nothing in it; a store of an earlier gateway watched since its oldest entry', async () => {
    const t = setup(site(), { fill: false });
    t.store.saveCounter(WATCHING_SINCE_KEY, sh('23:59:00', '2026-03-08'));
    t.setNow(sh('07:00:00', '2026-03-09'));
    expect(await t.make().check()).toBe('2026-03-08');
    expect(t.queued).toMatchObject([{ date: '2026-03-08', alarms: { raised: 0 } }]);

    // No record, but a journal from before: the gateway ran then.
    const old = setup();
    old.setNow(sh('07:00:00', '2026-03-09'));
    expect(await old.make().check()).toBe('2026-03-08');
    expect(old.store.counter(WATCHING_SINCE_KEY)).toBeLessThan(sh('00:00:00', '2026-03-08'));
  });
});

describe('the daily report service through its worker thread', () => {
  /** A logger whose lines the test reads. */
  function capture() {
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as { level: number; msg: string }) });
    return { logger, errors: () => lines.filter((l) => l.level >= 50).map((l) => l.msg) };
  }

  function workerSetup(worker?: ReportServiceOptions['worker']) {
    const s = newStore();
    open.push(s.store);
    fillDay(s.store);
    const queued: DailyReport[] = [];
    const { logger, errors } = capture();
    const service = createReportService({
      config: site(),
      log: logger,
      dataDir: s.dataDir,
      store: () => s.store,
      outbox: () => ({ add: (bodies) => queued.push(...bodies) }),
      now: () => sh('06:00:00', '2026-03-09'),
      worker,
    })!;
    return { ...s, service, queued, errors };
  }

  it('builds and writes the report in the worker, reading the store file read-only, and commits it here', async () => {
    const t = workerSetup();
    expect(await t.service.check()).toBe('2026-03-08');
    const json = JSON.parse(readFileSync(join(t.dataDir, 'reports', 'daily-2026-03-08.json'), 'utf8')) as DailyReport;
    expect(json).toMatchObject({ eventId: 'report-test-site-2026-03-08', alarms: { raised: 4 } });
    // The body queued is the one the worker built and wrote.
    expect(t.queued).toEqual([json]);
    expect(t.store.readJournal('report', 0, Date.parse('2027-01-01')).map((e) => (e.body as { date: string }).date)).toEqual([
      '2026-03-08',
    ]);
    expect(t.errors()).toEqual([]);
  }, 60_000);

  it("a worker's failure is one error line with the system's message, and no journal entry", async () => {
    const t = workerSetup();
    // A file where the reports folder goes: the worker cannot write there.
    writeFileSync(join(t.dataDir, 'reports'), '');
    expect(await t.service.check()).toBeUndefined();
    expect(t.errors()).toHaveLength(1);
    expect(t.errors()[0]).toMatch(/^Daily report of 2026-03-08 cannot be written: EEXIST: .*reports/);
    expect(t.service.health!().detail).toMatchObject({ lastError: expect.stringMatching(/^EEXIST/) });
    expect(t.store.readJournal('report', 0, Date.parse('2027-01-01'))).toEqual([]);
    expect(t.queued).toEqual([]);
  }, 60_000);

  it('a worker over its time is stopped and logged; one stopped with the gateway commits nothing and logs no error', async () => {
    const slow = workerSetup({ timeoutMs: 1 });
    expect(await slow.service.check()).toBeUndefined();
    expect(slow.errors()).toEqual([
      'Daily report of 2026-03-08 cannot be written: the report took longer than 0.001 s to build; the worker was stopped',
    ]);
    expect(slow.store.readJournal('report', 0, Date.parse('2027-01-01'))).toEqual([]);

    const t = workerSetup();
    await t.service.start();
    await t.service.stop();
    // Terminated while it started: it wrote nothing either.
    expect(existsSync(join(t.dataDir, 'reports'))).toBe(false);
    expect(t.errors()).toEqual([]);
    expect(t.store.readJournal('report', 0, Date.parse('2027-01-01'))).toEqual([]);
    expect(t.queued).toEqual([]);
  }, 60_000);
});
