// A full disk never silences an alarm: with the data folder on a small filesystem that fills up while
// rules churn, every alarm event still reaches MQTT, the gateway says it is degraded, and once space
// is back the events of that time are committed to the outbox, in order, none lost.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { incidentOf } from '../../gateway/platform/contract.js';
import { Outbox } from '../../gateway/platform/outbox.js';
import { GatewayStore, STORE_FILE } from '../../gateway/store.js';
import type { AlarmEvent } from '../../rules/types.js';
import { subscribe, type Subscriber } from '../helpers/mqtt.js';
import { freePort } from '../helpers/processes.js';
import { testSite } from '../helpers/site.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// The simulated boiler's pressure wanders around 1.25 MPa: eight rules around it raise and clear every few polls.
const THRESHOLDS = [1.2, 1.21, 1.22, 1.23, 1.24, 1.25, 1.26, 1.27];
const RULES = [
  'rules:',
  ...THRESHOLDS.map(
    (t, k) =>
      `  - { id: p${k}, equipment: B-07, when: steam_pressure > ${t}, level: yellow, message: "Pressure above ${t}: {value} {unit}" }`,
  ),
];

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Writes until the filesystem says it is full. */
function fill(dir: string): string {
  const file = join(dir, 'filler');
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return file;
}

/**
 * A small filesystem of its own: a tmpfs mounted here when the tests run as root (as in CI);
 * otherwise the store's own size limit (SQLite max_page_count) makes it full, to the same effect.
 */
function smallFilesystem(): { dir: string; real: boolean; unmount(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'gw-full-'));
  if (process.getuid?.() === 0) {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', dir]);
      return { dir, real: true, unmount: () => execFileSync('umount', ['-l', dir]) };
    } catch {
      // A container without the right to mount: fall through.
    }
  }
  return { dir, real: false, unmount: () => undefined };
}

describe('a full disk', () => {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    while (cleanup.length) await Promise.resolve(cleanup.pop()!()).catch(() => undefined);
  });

  it('never silences an alarm: events keep reaching MQTT, the gateway says degraded, and they are committed in order once space is back', async () => {
    const fs = smallFilesystem();
    cleanup.push(() => rmSync(fs.dir, { recursive: true, force: true }));
    cleanup.push(() => fs.unmount());
    const dataDir = join(fs.dir, 'data');
    const lines: Array<Record<string, unknown>> = [];
    const log = pino(
      { level: 'info' },
      new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString()) as Record<string, unknown>), cb()) }),
    );
    const nobody = await freePort(); // the platform is unreachable: the outbox keeps every incident
    const httpPort = await freePort();
    const gw: Gateway = createGateway(
      testSite({
        port: await freePort(),
        pollInterval: '100ms',
        dataDir,
        extra: [
          ...RULES,
          'platform:',
          `  url: http://127.0.0.1:${nobody}/incidents`,
          '  secret: test-secret-0123456789',
          '  timeout: 1s',
          '  reconnect: { initial_delay: 500ms, max_delay: 2s }',
          'http:',
          `  port: ${httpPort}`,
        ],
      }),
      log,
    );
    cleanup.push(() => gw.stop());
    const events: AlarmEvent[] = [];
    gw.alarms.onEvents((e) => events.push(...e));
    await gw.start();
    const alarms: Subscriber = await subscribe(gw.mqttUrl(), 'gw/test-site/B-07/alarms');
    cleanup.push(() => alarms.close());
    const status: Subscriber = await subscribe(gw.mqttUrl(), 'gw/test-site/gateway/status');
    cleanup.push(() => status.close());
    await until('alarms churning', () => events.length >= 10);

    // Full.
    let filler: string | undefined;
    if (fs.real) filler = fill(fs.dir);
    else gw.store()!.db.pragma(`max_page_count = ${gw.store()!.db.pragma('page_count', { simple: true }) as number}`);
    await until('a commit to fail', () => !gw.alarms.storeStats().writable);
    const fullAt = events.length;
    const onMqttAtFull = alarms.messages.length;
    await sleep(4000);
    // Hazard detection went on: events were made and published while nothing could be written.
    expect(events.length - fullAt).toBeGreaterThanOrEqual(5);
    await until('them on MQTT', () => alarms.messages.length - onMqttAtFull >= 5);
    expect(gw.alarms.storeStats()).toMatchObject({ writable: false, droppedEvents: 0 });
    expect(gw.alarms.storeStats().uncommittedEvents).toBeGreaterThan(0);
    const lastStatus = () => JSON.parse(status.messages.at(-1)?.payload ?? '{}') as { state?: string; reason?: string };
    await until('the gateway status to say degraded', () => lastStatus().state === 'degraded');
    expect(lastStatus().reason).toMatch(/^store not writable: .*(full|disk)/i);
    const ready = await fetch(`http://127.0.0.1:${httpPort}/ready`);
    expect(ready.status).toBe(503);
    expect(JSON.stringify(await ready.json())).toMatch(/store not writable/);
    expect(lines.filter((l) => l.level === 50 && String(l.msg).startsWith('The store cannot write')).length).toBeGreaterThanOrEqual(1);

    // Space is back.
    if (filler) rmSync(filler);
    else gw.store()!.db.pragma('max_page_count = 1073741823');
    await until('the store to write again', () => gw.alarms.storeStats().writable, 40_000); // retries back off: 1, 2, 4, 8 s...
    await until('the gateway status to say online', () => lastStatus().state === 'online');
    expect(gw.alarms.storeStats().uncommittedEvents).toBe(0);
    await gw.stop();

    // Every incident event made, full disk or not, is in the outbox once, in the order it was made.
    const incidents = events.filter((e) => incidentOf(e, undefined, 'gw-test') !== undefined).map((e) => e.eventId);
    const store = new GatewayStore(join(dataDir, STORE_FILE));
    const outbox = new Outbox(store);
    // The outbox also holds the risk changes (gw.risk.v1) the alarms made: the incidents are what this is about.
    const committed = outbox
      .list('pending', 100_000)
      .filter((r) => (JSON.parse(r.incident) as { schema: string }).schema === 'gw.incident.v1')
      .map((r) => r.eventId);
    outbox.close();
    store.close();
    expect(committed.length).toBeGreaterThan(fullAt);
    expect(committed).toEqual(incidents);
  }, 90_000);
});
