// Upgrades: this release started, as its own process, on the data folder release 0.1.0 left behind
// (tests/fixtures/previous-release, with its version 1 site file unchanged), with the servers that
// were down then now up: everything the old folder held reaches them once, the alarm states go on
// where they were, the files are marked with this release's formats. And a data folder from a newer
// gateway is refused at start with one line.
import Database from 'better-sqlite3';
import { chmodSync, copyFileSync, cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createPlatformInbox, type PlatformInbox } from '../../gateway/platform/inbox.js';
import { loadSiteFile } from '../../config/load.js';
import { SPOOL_FORMAT } from '../../gateway/spool.js';
import { SCHEMA_VERSION, STORE_FILE } from '../../gateway/store.js';
import { CLI, gatewayAsync, killGroup, ROOT, startCommand, type Running } from '../helpers/cli.js';
import { subscribe, type Subscriber } from '../helpers/mqtt.js';
import { freePort } from '../helpers/processes.js';

const FIXTURE = join(ROOT, 'tests', 'fixtures', 'previous-release');
const SECRET = 'upgrade-fixture-secret-0123456789';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A copy of the fixture: its site file and its data folder (the fixture itself is never written). */
function copyFixture(): { dir: string; site: string; data: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gw-upgrade-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const data = join(dir, 'data');
  cpSync(join(FIXTURE, 'data'), data, { recursive: true });
  // Git does not keep modes: the folder as the old gateway left it (the new one would tighten it anyway).
  chmodSync(data, 0o700);
  const site = join(dir, 'site.yaml');
  copyFileSync(join(FIXTURE, 'site.yaml'), site);
  return { dir, site, data };
}

function read<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function influxQuery(url: string, q: string): Promise<Array<{ name: string; values: unknown[][] }>> {
  const res = await fetch(`${url}/query?db=upgrade&q=${encodeURIComponent(q)}`, { method: 'POST' });
  const body = (await res.json()) as { results: Array<{ series?: Array<{ name: string; values: unknown[][] }> }> };
  return body.results[0]?.series ?? [];
}

describe('upgrade from release 0.1.0', () => {
  it('runs on the old data folder and version 1 site file: the store and queues are carried forward, nothing is lost or sent twice', async () => {
    const { site, data } = copyFixture();
    const startedAt = Date.now();
    // What the old folder holds, read before this release touches it.
    const old = read(join(data, STORE_FILE), (db) => ({
      version: db.pragma('user_version', { simple: true }) as number,
      events: db.prepare("SELECT event_id AS id, incident FROM event WHERE state = 'pending' ORDER BY seq").all() as Array<{
        id: string;
        incident: string;
      }>,
      alarms: new Map(
        (db.prepare('SELECT key, state FROM alarm').all() as Array<{ key: string; state: string }>).map((r) => [
          r.key,
          JSON.parse(r.state) as { incidentId: string; acked: boolean },
        ]),
      ),
      results: (db.prepare('SELECT result_id AS id FROM result').all() as Array<{ id: string }>).map((r) => r.id),
    }));
    const queued = read(join(data, 'mqtt-queue.db'), (db) => db.prepare('SELECT count(*) AS n FROM chunk').get() as { n: number }).n;
    expect(old.version).toBeLessThanOrEqual(SCHEMA_VERSION);
    expect(old.events.length).toBe(8);
    expect([...old.alarms.keys()].sort()).toEqual(['B-1/low-water', 'B-1/low-water.predicted']);
    expect(old.results).toHaveLength(3);
    expect(queued).toBeGreaterThan(0);

    // The servers that were down while the old release ran.
    const mosquitto = inject('mosquitto');
    const influxdb = inject('influxdb');
    await fetch(`${influxdb.url}/query?q=${encodeURIComponent('CREATE DATABASE upgrade')}`, { method: 'POST' });
    const platformPort = await freePort();
    const inbox: PlatformInbox = createPlatformInbox({ port: platformPort, secret: SECRET, print: () => {} });
    await inbox.start();
    cleanups.push(() => inbox.stop());
    const telemetry: Subscriber = await subscribe(mosquitto.url, 'gw/upgrade-site/B-1/telemetry');
    cleanups.push(() => telemetry.client.endAsync());

    const httpPort = await freePort();
    const gateway: Running = startCommand(process.execPath, ['--import', 'tsx', CLI, 'run', '-c', site], {
      GATEWAY_DATA_DIR: data,
      MQTT_PORT: String(mosquitto.port),
      INFLUX_PORT: String(influxdb.port),
      PLATFORM_PORT: String(platformPort),
      HTTP_PORT: String(httpPort),
      LOG_LEVEL: 'info',
    });
    cleanups.push(() => killGroup(gateway));
    await until('the gateway to start', () => gateway.output().includes('"msg":"Gateway started"') || gateway.child.exitCode !== null);
    expect(gateway.child.exitCode, gateway.output()).toBeNull();
    // The version 1 site file loads, with one note saying what its version 2 reading changed.
    const notes = gateway
      .output()
      .split('\n')
      .filter((l) => l.includes(': note: '));
    expect(notes).toEqual([
      expect.stringMatching(
        /^.*site\.yaml: note: version: site-file version 1, read as version 2 \(platform\.retry is named platform\.reconnect/,
      ),
    ]);

    // Every pending event of the old outbox reaches the platform, once, in the old order.
    const ids = old.events.map((e) => e.id);
    const arrived = () => [
      ...inbox.incidents.map((b) => b.eventId),
      ...inbox.results.map((b) => b.resultId),
      ...inbox.risks.map((b) => b.eventId),
    ];
    await until('the old outbox at the platform', () => ids.every((id) => arrived().includes(id)));
    // The alarm states were kept: the boiler is normal again after the restart (the simulation starts
    // over), and the red alarm raised and acknowledged under the old release clears as the same
    // incident. A gateway that had lost the states would send nothing for it.
    const red = old.alarms.get('B-1/low-water')!;
    expect(red.acked).toBe(true);
    await until('the old red incident to clear', () =>
      inbox.incidents.some((b) => b.incidentId === red.incidentId && b.type === 'cleared'),
    );
    const predicted = old.alarms.get('B-1/low-water.predicted')!;
    // Not raised again: the only raised events of those incidents are the ones the old release queued.
    for (const incident of [red.incidentId, predicted.incidentId])
      expect(inbox.incidents.filter((b) => b.incidentId === incident && b.type === 'raised')).toHaveLength(1);
    expect(inbox.results.map((r) => r.resultId).sort()).toEqual([...old.results].sort());

    // The telemetry queued for the broker that was down arrives (stamped before this test began),
    // and so do the lines spooled for InfluxDB.
    await telemetry.waitFor((m) => (JSON.parse(m.payload) as { ts: number }).ts < startedAt, 20_000, 'queued telemetry');
    await until(
      'the spooled lines in InfluxDB',
      async () => (await influxQuery(influxdb.url, `SELECT count(score) FROM risk WHERE time < ${startedAt}ms`)).length > 0,
    );

    expect((await gateway.interrupt('SIGTERM')).code).toBe(0);
    expect(inbox.stats().duplicates).toBe(0);
    expect(
      read(join(data, STORE_FILE), (db) => ({
        version: db.pragma('user_version', { simple: true }),
        pending: (db.prepare("SELECT count(*) AS n FROM event WHERE state = 'pending' AND seq <= 8").get() as { n: number }).n,
      })),
    ).toEqual({ version: SCHEMA_VERSION, pending: 0 });
    for (const queue of readdirSync(data).filter((f) => /^(mqtt-queue|influx-spool.*)\.db$/.test(f)))
      expect(
        read(join(data, queue), (db) => db.pragma('user_version', { simple: true })),
        queue,
      ).toBe(SPOOL_FORMAT);
    // The old audit journal (one acknowledgement) still verifies.
    const verify = await gatewayAsync(['audit', 'verify', '-c', site], { GATEWAY_DATA_DIR: data });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  }, 60_000);

  it('migrates the version 1 site file to one that loads the same way', async () => {
    const { site, data } = copyFixture();
    const env = { GATEWAY_DATA_DIR: data };
    const migrated = await gatewayAsync(['config', 'migrate', '-c', site, '--write'], env);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stdout).toContain('platform.retry: renamed platform.reconnect');
    // It loads as the current version, without a note, to the same site.
    const notes: unknown[] = [];
    const now = loadSiteFile(site, env, (n) => notes.push(n));
    expect(notes).toEqual([]);
    expect(now.platform?.reconnect).toEqual({ initial_delay: 200, max_delay: 1000, jitter: 0.2 });
  }, 30_000);
});

describe('downgrade', () => {
  it.each([
    [STORE_FILE, SCHEMA_VERSION + 1, 'schema version'],
    ['mqtt-queue.db', SPOOL_FORMAT + 1, 'format'],
  ])(
    'a data folder whose %s is from a newer gateway is refused at start, with one line',
    async (name, version, what) => {
      const { site, data } = copyFixture();
      const db = new Database(join(data, name));
      db.pragma(`user_version = ${version}`);
      db.close();
      const r = await gatewayAsync(['run', '-c', site], {
        GATEWAY_DATA_DIR: data,
        MQTT_PORT: String(await freePort()),
        HTTP_PORT: String(await freePort()),
      });
      expect(r.code).toBe(1);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines.at(-1)).toMatch(
        new RegExp(
          `^Gateway cannot start: .*${name.replace('.', '\\.')}: ${what} ${version} was written by a newer gateway .*\\(GW_ERR_STORE\\)$`,
        ),
      );
      expect(r.stderr).not.toMatch(/^\s+at /m);
      // Refused before any component opened its files: InfluxDB's writer never started on its spool.
      expect(r.stdout).not.toContain('"component":"influx"');
      // Left as it was, for the newer gateway.
      expect(read(join(data, name), (d) => d.pragma('user_version', { simple: true }))).toBe(version);
    },
    30_000,
  );
});
