// The dashboard in a real browser (Debian's Chromium through playwright-core) on the running demo:
// a value changes on screen, the boiler's hazard turns its card red, an operator acknowledges the
// alarm in the page, its state changes, and the platform inbox receives the acknowledgement.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { killGroup, ROOT, startCommand, type Running } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';

describe('the dashboard in a browser', () => {
  const running: Running[] = [];
  let browser: Browser | undefined;
  afterEach(async () => {
    await browser?.close();
    for (const r of running.splice(0)) killGroup(r);
  });

  it('shows live values, turns the boiler red in its hazard, and lets an operator acknowledge it', async () => {
    const httpPort = await freePort();
    const r = startCommand('npm', ['start', '--silent'], {
      GATEWAY_DATA_DIR: mkdtempSync(join(tmpdir(), 'gw-dash-')),
      MQTT_PORT: String(await freePort()),
      MODBUS_PORT: String(await freePort()),
      OPCUA_PORT: String(await freePort()),
      PLATFORM_PORT: String(await freePort()),
      ASTM_PORT: String(await freePort()),
      HTTP_PORT: String(httpPort),
      BOILER_NORMAL: '5s',
    });
    running.push(r);
    await expect
      .poll(() => r.output(), { timeout: 30_000 })
      .toContain(`Dashboard: http://127.0.0.1:${httpPort}/  (demo token: demo-operator-token)`);

    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking'],
    });
    const page = await browser.newPage({ viewport: { width: 1024, height: 768 } });
    await page.goto(`http://127.0.0.1:${httpPort}/`);
    await page.fill('#token', 'demo-operator-token');
    await page.click('#login button[type=submit]');
    const boiler = page.locator('.card[data-equipment="B-07"]');
    await boiler.waitFor({ timeout: 10_000 });

    // A value changes on screen.
    const pressure = boiler.locator('tr[data-point="steam_pressure"] td.v');
    const first = await pressure.textContent();
    await expect.poll(() => pressure.textContent(), { timeout: 10_000 }).not.toBe(first);
    expect(first).toMatch(/MPa/);
    // The lift reports on change (OPC UA subscription): an unchanged value is not marked stale.
    await page.waitForTimeout(3000);
    expect(await page.locator('.card[data-equipment="L-3"] td.v.stale').count()).toBe(0);

    // The feed-pump trip: the drum level falls below -200 mm and the card turns red.
    await expect.poll(() => boiler.getAttribute('class'), { timeout: 40_000 }).toContain('level-red');
    const alarm = page.locator('li[data-alarm="B-07/drum-level-low-low"]');
    await expect.poll(() => alarm.getAttribute('data-state'), { timeout: 5000 }).toBe('active_unacknowledged');
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'test-artifacts', 'dashboard-hazard.png') });

    // An operator acknowledges it in the page.
    await alarm.locator('button[data-action="ack"]').click();
    await expect
      .poll(() => alarm.getAttribute('data-state'), { timeout: 5000 })
      .toMatch(/^(active_acknowledged|returned_unacknowledged|normal)$/);
    await expect
      .poll(() => r.output(), { timeout: 10_000 })
      .toMatch(/Platform inbox: \S+ RED acknowledged demo-site\/B-07 drum-level-low-low: .* by demo-operator/);

    // The language switch.
    await page.click('#lang');
    await expect.poll(() => page.locator('#side h2').first().textContent()).toBe('当前报警');
    await page.screenshot({ path: join(ROOT, 'test-artifacts', 'dashboard-zh.png') });
  }, 120_000);
});
