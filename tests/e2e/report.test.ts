// `gateway report daily` as a user runs it, against a store a gateway holds open: the page it writes
// opens in a real browser (Debian's Chromium through playwright-core) with its title and sections;
// the store is read, never changed; a wrong date or a missing store is one line, never a stack.
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayStore, SCHEMA_VERSION, STORE_FILE } from '../../gateway/store.js';
import { runCli } from '../../gateway/commands/program.js';
import { gatewayAsync } from '../helpers/cli.js';
import { writeTestSite } from '../helpers/site.js';
import { fillDay } from '../unit/gateway/report/fixture.js';

/** The command line in this process (as cli-usage.test.ts runs it): the checks that need no process of their own. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { out: (t) => (stdout += t), err: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe('gateway report daily', () => {
  let browser: Browser | undefined;
  let store: GatewayStore;
  let siteFile: string;
  let dataDir: string;

  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'gw-report-e2e-'));
    siteFile = writeTestSite({ dataDir });
    // Held open for the whole test, as a running gateway holds it.
    store = new GatewayStore(join(dataDir, STORE_FILE));
    fillDay(store);
  });
  afterAll(async () => {
    await browser?.close();
    store?.close();
  });

  it('writes a page that opens in a browser, and prints where', async () => {
    const file = join(dataDir, STORE_FILE);
    const before = statSync(file).mtimeMs;
    // As a user runs it, in a process of its own; the JSON body in this one.
    const page = await gatewayAsync(['report', 'daily', '-c', siteFile, '--date', '2026-03-08']);
    const json = await cli(['report', 'daily', siteFile, '--date', '2026-03-08', '--json', '--out', '-']);
    expect(page, page.stderr).toMatchObject({ code: 0, stderr: '' });
    const html = join(dataDir, 'reports', 'daily-2026-03-08.html');
    expect(page.stdout).toBe(`${html}\n`);
    expect(statSync(html).mode & 0o777).toBe(0o600);
    expect(json, json.stderr).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(json.stdout)).toMatchObject({
      schema: 'gw.report.daily.v1',
      eventId: 'report-test-site-2026-03-08',
      date: '2026-03-08',
    });
    // Read, not written: neither migrated nor touched.
    expect(statSync(file).mtimeMs).toBe(before);
    expect(store.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);

    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking'],
    });
    const tab = await browser.newPage();
    await tab.goto(pathToFileURL(html).href);
    expect(await tab.title()).toBe('Daily safety report 安全日报 — test-site — 2026-03-08');
    expect(await tab.locator('#alarms h2').textContent()).toBe('Alarms and their handling 报警与处置');
    // The alarm message that carries a script is shown as its text, and nothing ran.
    await expect.poll(() => tab.locator('#alarms').textContent()).toContain('Steam pressure <script>alert("msg")</script>');
    expect(await tab.locator('script').count()).toBe(0);
  }, 60_000);

  it('--out writes the file named; a wrong date or a missing store is one line and no stack', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'gw-report-out-')), 'r.html');
    const empty = writeTestSite({ dataDir: mkdtempSync(join(tmpdir(), 'gw-report-empty-')) });
    const written = await cli(['report', 'daily', '-c', siteFile, '--date', '2026-03-08', '--out', out]);
    const badDate = await cli(['report', 'daily', '-c', siteFile, '--date', '2026-02-30']);
    const future = await cli(['report', 'daily', '-c', siteFile, '--date', '2999-01-01']);
    const missing = await cli(['report', 'daily', '-c', empty]);
    expect(written, written.stderr).toMatchObject({ code: 0, stdout: `${out}\n` });
    expect(readFileSync(out, 'utf8')).toContain('<section id="lab">');
    expect(badDate.code).toBe(2);
    expect(badDate.stderr).toBe(
      'gateway report daily: --date takes a calendar date written YYYY-MM-DD, such as 2026-03-08, not "2026-02-30" (GW_ERR_USAGE)\nSee `gateway report daily --help` for its options and examples.\n',
    );
    expect(future.code).toBe(2);
    expect(future.stderr).toMatch(
      /^gateway report daily: --date 2999-01-01 is after today \(\d{4}-\d{2}-\d{2} in .+\): a report covers a day that has begun \(GW_ERR_USAGE\)\n/,
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^.*gateway\.db: there is no store to report from .* \(GW_ERR_STORE\)\n$/);
    for (const r of [badDate, future, missing]) expect(r.stderr).not.toMatch(/^ {4}at /m);
  }, 60_000);

  it('reports from the store of an earlier gateway (no journal yet) without migrating it, and says what is missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-report-v1-'));
    const old = new GatewayStore(join(dir, STORE_FILE));
    old.db.exec('DROP TABLE journal; DROP TABLE risk; PRAGMA user_version = 1');
    old.close();
    const r = await cli(['report', 'daily', '-c', writeTestSite({ dataDir: dir }), '--date', '2026-03-08', '--json', '--out', '-']);
    expect(r, r.stderr).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout).notes).toEqual([expect.stringMatching(/^The store has no journal yet/)]);
    const after = new Database(join(dir, STORE_FILE), { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(1);
    after.close();
  });
});
