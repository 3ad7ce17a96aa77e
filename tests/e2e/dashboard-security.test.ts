// The dashboard in a real browser (Debian's Chromium through playwright-core) against a running
// gateway with its simulated boiler: a page of another origin that frames it gets an empty frame
// (clickjacking acknowledge and shelve), and the signed-in dashboard keeps its token out of
// localStorage and works under its Content-Security-Policy without a single violation.
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { freePort } from '../helpers/processes.js';
import { httpSiteLines, testSite } from '../helpers/site.js';

const TOKEN = 'operator-token-0123456789abcdef';

describe('the dashboard against framing and token theft', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  const startGateway = async (): Promise<{ gw: Gateway; url: string }> => {
    const port = await freePort();
    const gw = createGateway(
      testSite({
        port: await freePort(),
        dataDir: mkdtempSync(join(tmpdir(), 'gw-dash-sec-')),
        extra: httpSiteLines(port, { operator: TOKEN }),
      }),
      pino({ level: 'silent' }),
    );
    cleanup.push(() => gw.stop());
    await gw.start();
    return { gw, url: `http://127.0.0.1:${port}/` };
  };

  const launch = async (): Promise<Browser> => {
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking'],
    });
    cleanup.push(() => browser.close());
    return browser;
  };

  /** Every CSP violation the page reports, from the console and from the DOM's own event. */
  const watchViolations = async (page: Page): Promise<() => Promise<string[]>> => {
    const consoleLines: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) consoleLines.push(m.text());
    });
    // Scripts given as text: they run in the browser, which this file's types do not describe.
    await page.addInitScript(
      `window.violations = []; document.addEventListener('securitypolicyviolation', (e) => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));`,
    );
    return async () => [...consoleLines, ...((await page.evaluate('window.violations')) as string[])];
  };

  it('refuses to be framed by a page of another origin', async () => {
    const { url } = await startGateway();
    // The attacker's page, on another port of the same machine: another origin.
    const attackerPort = await freePort();
    const attacker: Server = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(
        `<!doctype html><html><body><p>win a prize</p><iframe id="victim" src="${url}" width="800" height="600"></iframe></body></html>`,
      );
    });
    await new Promise<void>((resolve) => attacker.listen(attackerPort, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => attacker.close(resolve)));

    const browser = await launch();
    const page = await browser.newPage();
    const refusals: string[] = [];
    page.on('console', (m) => {
      if (/frame-ancestors|X-Frame-Options/i.test(m.text())) refusals.push(m.text());
    });
    // The dashboard's own answer comes, and the browser refuses to show it in the frame.
    const answered = page.waitForResponse((r) => r.url() === url, { timeout: 15_000 });
    await page.goto(`http://127.0.0.1:${attackerPort}/`);
    expect((await answered).status()).toBe(200);
    await expect.poll(() => refusals.length, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(refusals.join('\n')).toMatch(/frame-ancestors 'none'/);
    const frame = page.frames().find((f) => f !== page.mainFrame());
    expect(frame).toBeDefined();
    // Chromium puts its error page in a refused frame: no dashboard, no sign-in form in it.
    expect(frame!.url()).not.toBe(url);
    expect(
      await frame!
        .locator('#login')
        .count()
        .catch(() => 0),
    ).toBe(0);
  }, 60_000);

  it('keeps the token out of localStorage, and works under its CSP: alarms listed, live values arriving, no violation', async () => {
    const { url } = await startGateway();
    const browser = await launch();
    const page = await browser.newPage({ viewport: { width: 1024, height: 768 } });
    const violations = await watchViolations(page);

    // A token that an earlier version left in localStorage is removed when the page loads.
    await page.goto(url);
    await page.evaluate(`localStorage.setItem('gw-token', 'left-by-an-older-dashboard')`);
    await page.reload();
    await page.locator('#login').waitFor({ state: 'visible', timeout: 10_000 });
    expect(await page.evaluate(`localStorage.getItem('gw-token')`)).toBeNull();

    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    const alarm = page.locator('li[data-alarm="B-07/pressure-present"]');
    await expect.poll(() => alarm.getAttribute('data-state'), { timeout: 15_000 }).toBe('active_unacknowledged');
    const pressure = page.locator('.card[data-equipment="B-07"] tr[data-point="steam_pressure"] td.v');
    const first = await pressure.textContent();
    await expect.poll(() => pressure.textContent(), { timeout: 10_000 }).not.toBe(first);
    await expect.poll(() => page.locator('#conn').getAttribute('data-state'), { timeout: 5000 }).toBe('on');
    // The operator acts in the page; the state changes.
    await alarm.locator('button[data-action="ack"]').click();
    await expect.poll(() => alarm.getAttribute('data-state'), { timeout: 10_000 }).toBe('active_acknowledged');

    const stored = (await page.evaluate('({ local: Object.entries(localStorage), session: Object.entries(sessionStorage) })')) as {
      local: string[][];
      session: string[][];
    };
    expect(JSON.stringify(stored.local)).not.toContain(TOKEN);
    expect(stored.session).toContainEqual(['gw-token', TOKEN]);
    expect(await violations()).toEqual([]);

    // Signing out forgets it in this tab too.
    await page.click('#logout');
    expect(await page.evaluate(`sessionStorage.getItem('gw-token')`)).toBeNull();
  }, 60_000);
});
