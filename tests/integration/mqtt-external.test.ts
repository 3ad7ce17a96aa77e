// The gateway pointed at a real external Mosquitto, as on a site with its own broker.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { expectBoilerTelemetry } from '../helpers/contract.js';
import { retained, subscribe, type Subscriber } from '../helpers/mqtt.js';
import { startMosquitto, type RunningServer } from '../helpers/processes.js';
import { parseSite } from '../../config/load.js';
import { testSiteYaml } from '../helpers/site.js';
import { testSite, writeTestSite } from '../helpers/site.js';

const root = join(import.meta.dirname, '..', '..');
const silent = pino({ level: 'silent' });

describe('external broker (Mosquitto)', () => {
  const mosquitto = inject('mosquitto');
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });
  const track = <T extends Gateway | Subscriber | RunningServer>(x: T): T => {
    cleanup.push(() => ('stop' in x ? x.stop() : x.close()));
    return x;
  };

  it('publishes telemetry and status per the topic contract', async () => {
    const site = `ext-${Date.now()}`;
    const sub = track(await subscribe(mosquitto.url, `gw/${site}/#`));
    const from = Date.now();
    const gw = track(createGateway(testSite({ broker: mosquitto.url, site }), silent));
    await gw.start();

    const telemetry = await sub.waitFor((m) => m.topic === `gw/${site}/B-07/telemetry`, 10_000, 'telemetry');
    expectBoilerTelemetry(telemetry.payload, { from, to: Date.now() });
    const status = await sub.waitFor((m) => m.topic === `gw/${site}/B-07/status`);
    expect(JSON.parse(status.payload)).toMatchObject({ state: 'online' });
    const gwStatus = await sub.waitFor((m) => m.topic === `gw/${site}/gateway/status`);
    expect(JSON.parse(gwStatus.payload)).toMatchObject({ state: 'online' });

    // Polls at 200 ms: about five messages a second, in time order.
    await new Promise((r) => setTimeout(r, 1500));
    const ts = sub.messages.filter((m) => m.topic.endsWith('/telemetry')).map((m) => (JSON.parse(m.payload) as { ts: number }).ts);
    expect(ts.length).toBeGreaterThanOrEqual(6);
    expect([...ts].sort((a, b) => a - b)).toEqual(ts);
  });

  it('leaves retained statuses: online while running, offline after a clean stop', async () => {
    const site = `ret-${Date.now()}`;
    const gw = createGateway(testSite({ broker: mosquitto.url, site }), silent);
    await gw.start();
    const sub = track(await subscribe(mosquitto.url, `gw/${site}/#`));
    // The online status follows the first connection; wait for it before reading what is retained.
    await sub.waitFor((m) => m.topic === `gw/${site}/gateway/status`);
    await sub.waitFor((m) => m.topic === `gw/${site}/B-07/status`);
    expect(JSON.parse((await retained(mosquitto.url, `gw/${site}/gateway/status`))!)).toMatchObject({ state: 'online' });
    expect(JSON.parse((await retained(mosquitto.url, `gw/${site}/B-07/status`))!)).toMatchObject({ state: 'online' });
    await gw.stop();
    expect(JSON.parse((await retained(mosquitto.url, `gw/${site}/gateway/status`))!)).toMatchObject({
      state: 'offline',
      reason: 'stopped',
    });
    expect(JSON.parse((await retained(mosquitto.url, `gw/${site}/B-07/status`))!)).toMatchObject({
      state: 'offline',
      reason: 'gateway stopped',
    });
  });

  it('has the broker announce a killed gateway offline through its Last Will', async () => {
    const site = `will-${Date.now()}`;
    const file = writeTestSite({ broker: mosquitto.url, site });
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'gateway', 'cli.ts'), 'run', '-c', file], {
      cwd: root,
      stdio: 'ignore',
    });
    cleanup.push(async () => child.kill('SIGKILL'));
    const sub = track(await subscribe(mosquitto.url, `gw/${site}/gateway/status`));
    await sub.waitFor((m) => JSON.parse(m.payload).state === 'online', 15_000, 'online status');
    child.kill('SIGKILL');
    const will = await sub.waitFor((m) => JSON.parse(m.payload).state === 'offline', 10_000, 'Last Will');
    expect(JSON.parse(will.payload)).toEqual({ state: 'offline', reason: 'connection lost' });
    expect(JSON.parse((await retained(mosquitto.url, `gw/${site}/gateway/status`))!)).toEqual({
      state: 'offline',
      reason: 'connection lost',
    });
  });

  it('keeps polling while the broker is down, reconnects when it returns, and delivers what it held', async () => {
    // The broker keeps sessions on disk, so a consumer subscribed before the outage gets everything.
    const persistDir = mkdtempSync(join(tmpdir(), 'gw-mosquitto-db-'));
    chmodSync(persistDir, 0o777); // mosquitto drops root for its own user
    cleanup.push(async () => rmSync(persistDir, { recursive: true, force: true }));
    const own = await startMosquitto({ persistDir });
    cleanup.push(() => own.stop());
    const consumer = track(await subscribe(own.url, 'gw/test-site/#', { clientId: `consumer-${Date.now()}`, clean: false }));
    const gw = track(createGateway(testSite({ broker: own.url }), silent));
    await gw.start();
    await consumer.waitFor((m) => m.topic.endsWith('/telemetry'));

    await own.stop();
    const down = Date.now();
    const readingsBefore = gw.pipeline.stats().readings;
    await new Promise((r) => setTimeout(r, 1500));
    // Hazard detection never waits on the network: the driver kept reading.
    expect(gw.pipeline.stats().readings - readingsBefore).toBeGreaterThanOrEqual(8 * 5);
    expect(gw.link.stats().connected).toBe(false);
    // Held on disk, not in memory.
    expect(gw.link.stats().queued).toBeGreaterThanOrEqual(5);

    const again = await startMosquitto({ port: own.port, persistDir });
    cleanup.push(() => again.stop());
    const tsOf = (payload: string) => (JSON.parse(payload) as { ts: number }).ts;
    // Telemetry read while the broker was away arrives after it returns (QoS 1, from the outgoing queue).
    const outage = await consumer.waitFor(
      (m) => m.topic.endsWith('/telemetry') && tsOf(m.payload) > down + 200 && tsOf(m.payload) < down + 1200,
      15_000,
      'telemetry from the outage',
    );
    expect(outage.at).toBeGreaterThan(down + 1500);
    await consumer.waitFor(
      (m) => m.topic.endsWith('/gateway/status') && m.at > down && JSON.parse(m.payload).state === 'online',
      10_000,
      'online again',
    );
    await vi.waitFor(() => expect(gw.link.stats()).toMatchObject({ pending: 0, queued: 0 }), { timeout: 5000 });
    expect(gw.link.stats().dropped).toBe(0);
    // Every poll of the outage arrived: the 200 ms grid has no hole.
    const ts = [...new Set(consumer.messages.filter((m) => m.topic.endsWith('/telemetry')).map((m) => tsOf(m.payload)))].sort(
      (a, b) => a - b,
    );
    const gaps = ts.slice(1).map((t, i) => t - ts[i]!);
    expect(Math.max(...gaps)).toBeLessThan(400);
  });

  it('keeps telemetry on disk across a broker outage and a gateway restart, and delivers every message in order when the broker returns', async () => {
    const persistDir = mkdtempSync(join(tmpdir(), 'gw-mosquitto-db-'));
    chmodSync(persistDir, 0o777);
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-data-'));
    cleanup.push(async () => rmSync(persistDir, { recursive: true, force: true }));
    cleanup.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const own = await startMosquitto({ persistDir });
    cleanup.push(() => own.stop());
    const consumer = track(await subscribe(own.url, 'gw/test-site/+/telemetry', { clientId: `consumer-${Date.now()}`, clean: false }));
    // What the gateway made, seen before it is published: the message's ts is its newest reading's.
    const made: number[] = [];
    const run = async () => {
      const gw = createGateway(testSite({ broker: own.url, dataDir }), silent);
      gw.pipeline.onBatch((batch) => void made.push(Math.max(...batch.filter((r) => r.equipment === 'B-07').map((r) => r.ts))));
      await gw.start();
      return gw;
    };

    const first = await run();
    await consumer.waitFor(() => true, 10_000, 'telemetry');
    await own.stop();
    await new Promise((r) => setTimeout(r, 1500));
    const heldByFirst = first.link.stats().queued;
    expect(heldByFirst).toBeGreaterThanOrEqual(5);
    await first.stop();

    // A new gateway process on the same data folder, still without a broker: it finds the queue and adds to it.
    const second = await run();
    cleanup.push(() => second.stop());
    expect(second.link.stats().queued).toBeGreaterThanOrEqual(heldByFirst);
    await new Promise((r) => setTimeout(r, 1000));
    expect(second.link.stats().connected).toBe(false);
    expect(second.link.stats().queued).toBeGreaterThan(heldByFirst);

    const again = await startMosquitto({ port: own.port, persistDir });
    cleanup.push(() => again.stop());
    // What was made when the queue was seen empty has all been acknowledged by the broker. (A poll
    // between that moment and the stop below is queued on disk for the next start: not part of this check.)
    let drainedAt: number[] = [];
    await vi.waitFor(
      () => {
        expect(second.link.stats()).toMatchObject({ connected: true, pending: 0, queued: 0 });
        drainedAt = [...made];
      },
      { timeout: 15_000 },
    );
    await second.stop();
    const tsOf = (payload: string) => (JSON.parse(payload) as { ts: number }).ts;
    const expected = [...new Set(drainedAt)];
    await vi.waitFor(() => expect(new Set(consumer.messages.map((m) => tsOf(m.payload))).size).toBeGreaterThanOrEqual(expected.length), {
      timeout: 10_000,
    });
    // Every message of both runs arrived; the first arrival of each is in the order they were made.
    // (A message in flight when the broker went away may arrive twice: at least once, never lost.)
    const firstArrivals = [...new Set(consumer.messages.map((m) => tsOf(m.payload)))];
    expect(firstArrivals.slice(0, expected.length)).toEqual(expected);
    expect(second.link.stats().dropped).toBe(0);
  });

  it('connects over TLS with a CA file, a user and a password; refuses an unverified broker and keeps reading', async () => {
    const secure = await startMosquitto({ tls: true, users: { gateway: 'gw-pass', reader: 'rd-pass' } });
    cleanup.push(() => secure.stop());
    const site = (extra: string[]) => parseSite(testSiteYaml({ broker: secure.url, mqttExtra: extra }), { env: {} });
    const reader = track(
      await subscribe(secure.url, 'gw/test-site/#', { ca: readFileSync(secure.caFile!), username: 'reader', password: 'rd-pass' }),
    );

    const good = track(createGateway(site([`ca: ${secure.caFile}`, 'username: gateway', 'password: gw-pass']), silent));
    await good.start();
    await reader.waitFor((m) => m.topic === 'gw/test-site/B-07/telemetry', 10_000, 'telemetry over TLS');
    await good.stop();

    // Without the CA the broker's certificate does not verify; with a wrong password the broker says no.
    // Either way the gateway starts and reads: it never waits on the network.
    for (const extra of [
      ['username: gateway', 'password: gw-pass'],
      [`ca: ${secure.caFile}`, 'username: gateway', 'password: wrong'],
    ]) {
      const refused = track(createGateway(site(extra), silent));
      await refused.start();
      await new Promise((r) => setTimeout(r, 1000));
      expect(refused.link.stats().connected).toBe(false);
      expect(refused.pipeline.stats().readings).toBeGreaterThan(8 * 3);
      await refused.stop();
    }
  });
});
