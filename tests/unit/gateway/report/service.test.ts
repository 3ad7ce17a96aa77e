// The daily report's schedule on a given clock: at report.at (site time) the previous day's report,
// once per date also across restarts, its files private, journaled and queued for the platform in
// one transaction.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SiteConfig } from '../../../../config/schema.js';
import { CHECK_EVERY_MS, createReportService, type ReportOutbox, RETRY_AFTER_MS } from '../../../../gateway/report/service.js';
import type { DailyReport } from '../../../../gateway/report/types.js';
import type { GatewayStore } from '../../../../gateway/store.js';
import { fillDay, newStore, sh, site } from './fixture.js';

const log = pino({ level: 'silent' });
const open: GatewayStore[] = [];
afterEach(() => {
  vi.useRealTimers();
  for (const s of open.splice(0)) s.close();
});

function setup(config: SiteConfig = site()) {
  const s = newStore();
  open.push(s.store);
  fillDay(s.store);
  const queued: DailyReport[] = [];
  const outbox: ReportOutbox = { add: (bodies) => queued.push(...bodies) };
  let now = sh('05:59:59', '2026-03-09');
  const notify = vi.fn();
  const make = (box: ReportOutbox | undefined = outbox) =>
    createReportService({ config, log, dataDir: s.dataDir, store: () => s.store, outbox: () => box, notify, now: () => now })!;
  return { ...s, queued, notify, make, setNow: (t: number) => (now = t) };
}

describe('the daily report service', () => {
  it("writes the previous day's report at report.at, once, journaled and queued for the platform", () => {
    const t = setup();
    const service = t.make();
    // 05:59:59 in Shanghai: not yet.
    expect(service.check()).toBeUndefined();
    t.setNow(sh('06:00:00', '2026-03-09'));
    expect(service.check()).toBe('2026-03-08');
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
    expect(service.check()).toBeUndefined();
    expect(t.make().check()).toBeUndefined();
    expect(t.queued).toHaveLength(1);
    // The next day's at 06:00: the 9th.
    t.setNow(sh('06:00:00', '2026-03-10'));
    expect(t.make().check()).toBe('2026-03-09');
    expect(t.queued.map((b) => b.date)).toEqual(['2026-03-08', '2026-03-09']);
  });

  it('a gateway started after report time writes the report it missed; a site without platform keeps it local', () => {
    const t = setup();
    t.setNow(sh('14:00:00', '2026-03-09'));
    const service = createReportService({
      config: site(),
      log,
      dataDir: t.dataDir,
      store: () => t.store,
      now: () => sh('14:00:00', '2026-03-09'),
    })!;
    expect(service.check()).toBe('2026-03-08');
    expect(existsSync(join(t.dataDir, 'reports', 'daily-2026-03-08.html'))).toBe(true);
    expect(t.queued).toEqual([]);
  });

  it('a failure to queue leaves no journal entry: the report is written again at the next try', () => {
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
    expect(service.check()).toBeUndefined();
    expect(t.store.readJournal('report', 0, Date.parse('2027-01-01'))).toEqual([]);
    expect(service.health!().detail).toMatchObject({ lastError: 'database is locked' });
    fail = false;
    // Not every minute: after RETRY_AFTER_MS.
    t.setNow(sh('06:00:00', '2026-03-09') + CHECK_EVERY_MS);
    expect(service.check()).toBeUndefined();
    t.setNow(sh('06:00:00', '2026-03-09') + RETRY_AFTER_MS);
    expect(service.check()).toBe('2026-03-08');
    expect(t.queued).toHaveLength(1);
  });

  it('runs on its own every minute once started, and report.enabled: false leaves it out', async () => {
    vi.useFakeTimers();
    const t = setup();
    const service = t.make();
    await service.start();
    expect(t.queued).toEqual([]);
    t.setNow(sh('06:00:30', '2026-03-09'));
    vi.advanceTimersByTime(CHECK_EVERY_MS);
    expect(t.queued).toHaveLength(1);
    await service.stop();
    const off = { ...site(), report: { enabled: false, at: '06:00', keep: 400 * 86_400_000 } } as SiteConfig;
    expect(createReportService({ config: off, log, dataDir: t.dataDir, store: () => t.store })).toBeUndefined();
  });

  it('keeps report files for report.keep: older ones go when a report is written', () => {
    const config = { ...site(), report: { enabled: true, at: '06:00', keep: 1 * 86_400_000 } } as SiteConfig;
    const t = setup(config);
    t.setNow(sh('06:00:00', '2026-03-09'));
    t.make().check();
    t.setNow(sh('06:00:00', '2026-03-11'));
    expect(t.make().check()).toBe('2026-03-10');
    // Kept: a day back from 2026-03-11 06:00 is 2026-03-10; the 8th's files are gone.
    expect(existsSync(join(t.dataDir, 'reports', 'daily-2026-03-08.html'))).toBe(false);
    expect(existsSync(join(t.dataDir, 'reports', 'daily-2026-03-10.json'))).toBe(true);
  });
});
