// Telemetry into real databases: InfluxDB 1.x (api v1) and VictoriaMetrics' /api/v2/write (api v2,
// the official client), across outages, a killed gateway, a full spool and bad settings.
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { pino, type Logger } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { Reading } from '../../drivers/types.js';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { hashToken } from '../../gateway/http/server.js';
import { CLI, ROOT, killGroup, startCommand, type Running } from '../helpers/cli.js';
import { subscribe, type Subscriber } from '../helpers/mqtt.js';
import { freePort, startInfluxDb, startVictoriaMetrics, type RunningServer } from '../helpers/processes.js';
import { testSite, writeTestSite } from '../helpers/site.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const silent = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Telemetry {
  ts: number;
  values: Record<string, number | boolean | string | null>;
}

function capturingLogger(): { log: Logger; entries: Array<Record<string, unknown>> } {
  const entries: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) entries.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), entries };
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`Timed out waiting for ${what}`);
}

async function influxQuery(url: string, db: string, q: string): Promise<Array<{ columns: string[]; values: unknown[][] }>> {
  const res = await fetch(`${url}/query?db=${encodeURIComponent(db)}&epoch=ns&q=${encodeURIComponent(q)}`);
  const json = (await res.json()) as { results: Array<{ series?: Array<{ columns: string[]; values: unknown[][] }>; error?: string }> };
  if (json.results[0]?.error) throw new Error(json.results[0].error);
  return json.results[0]?.series ?? [];
}

async function createDatabase(url: string, db: string, auth?: string): Promise<void> {
  const headers: Record<string, string> = auth ? { Authorization: auth } : {};
  const res = await fetch(`${url}/query?q=${encodeURIComponent(`CREATE DATABASE "${db}"`)}`, { method: 'POST', headers });
  expect(res.status).toBe(200);
  expect(JSON.stringify(await res.json())).not.toContain('"error"');
  // InfluxDB 1.6 answers 200 before a loaded machine's write path sees the new database (a write
  // right after it got 404 "database not found" once in CI): wait until SHOW DATABASES lists it.
  await until(`database ${db} to be listed`, async () => {
    const shown = await fetch(`${url}/query?q=${encodeURIComponent('SHOW DATABASES')}`, { headers });
    return JSON.stringify(await shown.json()).includes(`"${db}"`);
  });
}

/** Rows of measurement boiler as objects keyed by column, by time in ns. */
async function boilerRows(url: string, db: string, site: string): Promise<Map<string, Record<string, unknown>>> {
  const series = await influxQuery(url, db, `SELECT * FROM boiler WHERE site = '${site}'`);
  const rows = new Map<string, Record<string, unknown>>();
  for (const s of series) for (const v of s.values) rows.set(String(v[0]), Object.fromEntries(s.columns.map((c, k) => [c, v[k]])));
  return rows;
}

interface ParsedLine {
  text: string;
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, number | boolean | string>;
  /** Nanoseconds, as written. */
  ns: string;
}

/** Splits at `sep` outside quotes and backslash escapes. */
function splitUnescaped(s: string, sep: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let k = 0; k < s.length; k++) {
    if (s[k] === '\\') k++;
    else if (s[k] === '"') quoted = !quoted;
    else if (s[k] === sep && !quoted) {
      parts.push(s.slice(start, k));
      start = k + 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

const unescapeKey = (s: string) => s.replace(/\\(.)/g, '$1');

/** A line of the line protocol this gateway writes (float, boolean and string fields; ns time). */
function parseLine(text: string): ParsedLine {
  const [key, fieldSet, ns] = splitUnescaped(text, ' ') as [string, string, string];
  const [measurement, ...tagPairs] = splitUnescaped(key, ',');
  const tags = Object.fromEntries(tagPairs.map((p) => splitUnescaped(p, '=').map(unescapeKey) as [string, string]));
  const fields: ParsedLine['fields'] = {};
  for (const pair of splitUnescaped(fieldSet, ',')) {
    const eq = pair.indexOf('=');
    const raw = pair.slice(eq + 1);
    fields[unescapeKey(pair.slice(0, eq))] =
      raw === 'true'
        ? true
        : raw === 'false'
          ? false
          : raw.startsWith('"')
            ? raw
                .slice(1, -1)
                .replace(/\\n/g, '\n')
                .replace(/\\(["\\])/g, '$1')
            : Number(raw);
  }
  return { text, measurement: unescapeKey(measurement!), tags, fields, ns };
}

const rowKey = (measurement: string, tags: Record<string, string>, ns: string) =>
  `${measurement} ${JSON.stringify(
    Object.entries(tags)
      .filter(([, v]) => v !== '')
      .sort(([a], [b]) => a.localeCompare(b)),
  )} ${ns}`;

/** Every row of these measurements, by measurement, tags and exact time in ns (read as text: it is past 2^53). */
async function seriesRows(url: string, db: string, measurements: readonly string[]): Promise<Map<string, Record<string, unknown>>> {
  const rows = new Map<string, Record<string, unknown>>();
  for (const m of measurements) {
    const res = await fetch(
      `${url}/query?db=${encodeURIComponent(db)}&epoch=ns&q=${encodeURIComponent(`SELECT * FROM "${m}" GROUP BY *`)}`,
    );
    const text = (await res.text()).replace(/\[(\d{16,}),/g, '["$1",');
    const json = JSON.parse(text) as {
      results: Array<{
        series?: Array<{ name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }>;
        error?: string;
      }>;
    };
    if (json.results[0]?.error) throw new Error(json.results[0].error);
    for (const s of json.results[0]?.series ?? []) {
      for (const v of s.values)
        rows.set(rowKey(s.name, s.tags ?? {}, String(v[0])), Object.fromEntries(s.columns.map((c, k) => [c, v[k]])));
    }
  }
  return rows;
}

const telemetryOf = (sub: Subscriber) =>
  sub.messages.filter((m) => m.topic.endsWith('/telemetry')).map((m) => JSON.parse(m.payload) as Telemetry);

/** Starts the gateway, records its telemetry for 2 s, and waits until the writer has written all of it. */
async function publishedAndWritten(gw: Gateway, site: string): Promise<Telemetry[]> {
  await gw.start();
  const sub = await subscribe(gw.mqttUrl(), `gw/${site}/+/telemetry`);
  await sleep(2000);
  await sub.close();
  // Polling goes on: wait until what was made by now is written (one request stream while healthy, in order).
  const made = gw.influx!.stats().received;
  await until('the writer to catch up', () => gw.influx!.stats().written >= made);
  return telemetryOf(sub);
}

describe('InfluxDB writer', () => {
  const influxdb = inject('influxdb');
  const victoria = inject('victoriametrics');
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });
  const track = <T extends Gateway | Subscriber | RunningServer>(x: T): T => {
    cleanup.push(() => ('stop' in x ? x.stop() : x.close()));
    return x;
  };

  it('api v1: writes every reading to InfluxDB 1.x with its exact timestamp and value', async () => {
    const db = `v1_${Date.now()}`;
    await createDatabase(influxdb.url, db);
    const site = 'v1-site';
    const gw = track(
      createGateway(
        testSite({
          site,
          port: await freePort(),
          extra: ['influx:', '  api: v1', `  url: ${influxdb.url}`, `  database: ${db}`, '  flush_interval: 200ms'],
        }),
        silent,
      ),
    );
    const sent = await publishedAndWritten(gw, site);
    expect(sent.length).toBeGreaterThanOrEqual(8);
    await until('InfluxDB to hold every message', async () => {
      const rows = await boilerRows(influxdb.url, db, site);
      return sent.every((t) => rows.has(`${t.ts}000000`));
    });
    const rows = await boilerRows(influxdb.url, db, site);
    for (const t of sent) {
      const row = rows.get(`${t.ts}000000`)!;
      expect(row).toMatchObject({ site, equipment: 'B-07', code: '10003101012019000117' });
      for (const [point, value] of Object.entries(t.values)) expect(row[point], `${point} at ${t.ts}`).toBe(value);
    }
  });

  it('api v1: writes each point at its own time: every value of a notification, at its source time', async () => {
    const db = `times_${Date.now()}`;
    await createDatabase(influxdb.url, db);
    const site = 'times-site';
    const gw = track(
      createGateway(
        testSite({
          site,
          port: await freePort(),
          pollInterval: '1h',
          extra: ['influx:', '  api: v1', `  url: ${influxdb.url}`, `  database: ${db}`, '  flush_interval: 200ms'],
        }),
        silent,
      ),
    );
    await gw.start();
    const sub = track(await subscribe(gw.mqttUrl(), `gw/${site}/+/telemetry`));
    // A minute back, where the simulator's own polls (at start, then hourly) write nothing.
    const ts = Date.now() - 60_000;
    const at = (point: string, value: number | boolean, sourceTs?: number): Reading => ({
      equipment: 'B-07',
      point,
      value,
      quality: 'good',
      ts,
      ...(sourceTs === undefined ? {} : { sourceTs }),
    });
    // One OPC UA-like notification: three values of drum_level, a flame change, a point without a source time.
    gw.pipeline.push([
      at('drum_level', -150, ts - 3000),
      at('drum_level', -250, ts - 2500),
      at('flame', true, ts - 2000),
      at('drum_level', -140, ts - 1000),
      at('steam_pressure', 1.25),
    ]);
    await until(
      'the telemetry of the notification',
      () => sub.messages.filter((m) => (JSON.parse(m.payload) as Telemetry).ts === ts).length === 3,
    );
    const sent = sub.messages
      .map((m) => JSON.parse(m.payload) as Telemetry & { times?: Record<string, number> })
      .filter((m) => m.ts === ts);
    expect(sent.map((m) => [m.values, m.times])).toEqual([
      [
        { drum_level: -150, flame: true, steam_pressure: 1.25 },
        { drum_level: ts - 3000, flame: ts - 2000 },
      ],
      [{ drum_level: -250 }, { drum_level: ts - 2500 }],
      [{ drum_level: -140 }, { drum_level: ts - 1000 }],
    ]);
    const expected = new Map<number, Record<string, number | boolean>>([
      [ts - 3000, { drum_level: -150 }],
      [ts - 2500, { drum_level: -250 }],
      [ts - 2000, { flame: true }],
      [ts - 1000, { drum_level: -140 }],
      [ts, { steam_pressure: 1.25 }],
    ]);
    let rows = new Map<string, Record<string, unknown>>();
    await until('InfluxDB to hold a row at each time', async () => {
      rows = await boilerRows(influxdb.url, db, site);
      return [...expected.keys()].every((t) => rows.has(`${t}000000`));
    });
    for (const [t, fields] of expected) {
      const row = rows.get(`${t}000000`)!;
      // Only the points of that time: the others are null in this row.
      for (const point of ['drum_level', 'flame', 'steam_pressure'])
        expect(row[point], `${point} at ${t - ts} ms`).toBe(fields[point] ?? null);
    }
    expect(gw.influx!.stats().badMessages).toBe(0);
  });

  it('api v2: writes through the official client to /api/v2/write (VictoriaMetrics), values and timestamps exact', async () => {
    const site = `v2-${Date.now()}`;
    const gw = track(
      createGateway(
        testSite({
          site,
          port: await freePort(),
          extra: [
            'influx:',
            '  api: v2',
            `  url: ${victoria.url}`,
            '  token: secret',
            '  org: site',
            '  bucket: telemetry',
            '  flush_interval: 200ms',
          ],
        }),
        silent,
      ),
    );
    const sent = await publishedAndWritten(gw, site);
    expect(gw.influx!.stats().written).toBeGreaterThan(0);
    expect(sent.length).toBeGreaterThanOrEqual(8);
    const series = new Map<string, Map<number, number>>();
    const exported = async () => {
      await fetch(`${victoria.url}/internal/force_flush`);
      const res = await fetch(`${victoria.url}/api/v1/export?match[]=${encodeURIComponent(`{__name__=~"boiler_.+",site="${site}"}`)}`);
      series.clear();
      for (const line of (await res.text()).split('\n').filter(Boolean)) {
        const s = JSON.parse(line) as { metric: Record<string, string>; values: number[]; timestamps: number[] };
        expect(s.metric).toMatchObject({ equipment: 'B-07', code: '10003101012019000117' });
        series.set(s.metric.__name__!, new Map(s.timestamps.map((t, k) => [t, s.values[k]!])));
      }
      return sent.every((t) => Object.keys(t.values).every((p) => series.get(`boiler_${p}`)?.has(t.ts)));
    };
    // VictoriaMetrics makes fresh samples searchable within a second or so.
    await until('VictoriaMetrics to hold every message', exported);
    for (const t of sent) {
      for (const [point, value] of Object.entries(t.values)) {
        const expected = typeof value === 'boolean' ? Number(value) : value;
        expect(series.get(`boiler_${point}`)?.get(t.ts), `${point} at ${t.ts}`).toBe(expected);
      }
    }
  });

  it('the trend reads further back than memory holds from InfluxDB (api v1), and says so when InfluxDB cannot answer', async () => {
    const influx = track(await startInfluxDb());
    const db = 'trend';
    await createDatabase(influx.url, db);
    const httpPort = await freePort();
    const mqttPort = await freePort();
    const token = 'viewer-token-0123456789abcdef';
    const site = (url: string) =>
      testSite({
        port: mqttPort,
        extra: [
          'influx:',
          '  api: v1',
          `  url: ${url}`,
          `  database: ${db}`,
          '  flush_interval: 200ms',
          'http:',
          `  port: ${httpPort}`,
          '  history: { keep: 5 }',
          `  tokens: [{ name: v, role: viewer, hash: "${hashToken(token)}" }]`,
        ],
      });
    const started = Date.now();
    const gw = track(createGateway(site(influx.url), silent));
    await gw.start();
    const telemetry = track(await subscribe(gw.mqttUrl(), 'gw/test-site/B-07/telemetry'));
    await until('20 polls written to InfluxDB', () => gw.influx!.stats().written >= 20, 20_000);
    const app = gw.http!.app;
    const get = async (query: string) =>
      app.inject({ url: `/api/equipment/B-07/history?point=steam_pressure${query}`, headers: { authorization: `Bearer ${token}` } });

    // Memory holds the last 5; asked from the start, the rest comes from InfluxDB, in order, none twice.
    const recent = await get('');
    expect(recent.headers['x-history-source']).toBe('memory');
    expect((recent.json() as unknown[]).length).toBe(5);
    const all = await get(`&since=${started - 60_000}`);
    expect(all.headers['x-history-source']).toBe('influxdb+memory');
    const samples = all.json() as Array<{ ts: number; value: number; quality: string }>;
    expect(samples.length).toBeGreaterThanOrEqual(20);
    const ts = samples.map((s) => s.ts);
    expect([...ts].sort((a, b) => a - b)).toEqual(ts);
    expect(new Set(ts).size).toBe(ts.length);
    // The values are the ones published on MQTT at those times.
    const published = new Map(telemetryOf(telemetry).map((t) => [t.ts, t.values.steam_pressure]));
    const compared = samples.filter((s) => published.has(s.ts));
    expect(compared.length).toBeGreaterThanOrEqual(15);
    for (const s of compared) expect(s.value).toBe(published.get(s.ts));
    // A limit takes the newest.
    const limited = ((await get(`&since=${started - 60_000}&limit=8`)).json() as Array<{ ts: number }>).map((s) => s.ts);
    expect(limited).toHaveLength(8);
    expect([...limited].sort((a, b) => a - b)).toEqual(limited);
    expect(limited.at(-1)!).toBeGreaterThanOrEqual(ts.at(-1)!);
    await gw.stop();

    // InfluxDB away: what memory holds, and a header that says the rest is missing.
    const alone = track(createGateway(site(`http://127.0.0.1:${await freePort()}`), silent));
    await alone.start();
    await until('a few polls', () => alone.pipeline.stats().readings > 8 * 3, 10_000);
    const partial = await alone.http!.app.inject({
      url: `/api/equipment/B-07/history?point=steam_pressure&since=${started}`,
      headers: { authorization: `Bearer ${token}` },
    });
    expect(partial.statusCode).toBe(200);
    expect(partial.headers['x-history-source']).toBe('memory');
    expect(partial.headers['x-history-incomplete']).toMatch(/^memory holds from \d+; InfluxDB unreachable$/);
    expect((partial.json() as unknown[]).length).toBeGreaterThan(0);
  }, 60_000);

  it('keeps writing through a 30 s database outage under load: every reading arrives, the backlog in order, none twice', async () => {
    const influx = track(await startInfluxDb());
    const db = 'outage';
    await createDatabase(influx.url, db);
    const site = 'outage-site';
    const { log, entries } = capturingLogger();
    const gw = track(
      createGateway(
        testSite({
          site,
          port: await freePort(),
          pollInterval: '50ms',
          extra: [
            'influx:',
            '  api: v1',
            `  url: ${influx.url}`,
            `  database: ${db}`,
            '  flush_interval: 200ms',
            '  timeout: 2s',
            '  reconnect: { initial_delay: 200ms, max_delay: 2s }',
          ],
        }),
        log,
      ),
    );
    const writes: Array<{ lane: string; ids: number[] }> = [];
    await gw.start();
    gw.influx!.onWritten((lane, ids) => writes.push({ lane, ids }));
    const sub = track(await subscribe(gw.mqttUrl(), `gw/${site}/+/telemetry`));
    await sleep(1500);
    await influx.halt();
    const down = Date.now();
    await sleep(30_000);
    const during = gw.influx!.stats();
    expect(during.healthy).toBe(false);
    expect(during.spoolLines).toBeGreaterThan(400); // 30 s at 20 polls/s
    await influx.restart();
    await until('the backlog to drain', () => gw.influx!.stats().spoolLines === 0, 30_000);
    await sub.close();
    await sleep(500);
    await gw.stop();

    const sent = telemetryOf(sub);
    const rows = await boilerRows(influx.url, db, site);
    const missing = sent.filter((t) => !rows.has(`${t.ts}000000`));
    expect(missing).toEqual([]);
    expect(sent.filter((t) => t.ts > down && t.ts < down + 30_000).length).toBeGreaterThan(400);
    const stats = gw.influx!.stats();
    // None twice: every line the writer made was accepted once, or is still spooled for the next start.
    expect(stats.written + stats.spoolLines).toBe(stats.received);
    expect(stats.spoolLines).toBeLessThan(20);
    const ids = writes.flatMap((w) => w.ids);
    expect(new Set(ids).size).toBe(ids.length);
    const drained = writes.filter((w) => w.lane === 'drain').flatMap((w) => w.ids);
    expect(drained.length).toBeGreaterThan(0);
    expect([...drained].sort((a, b) => a - b)).toEqual(drained);
    expect(entries.filter((e) => e.msg === 'InfluxDB write failed; telemetry waits in the spool and is retried with backoff')).toHaveLength(
      1,
    );
    expect(entries.some((e) => e.msg === 'InfluxDB accepts writes again')).toBe(true);
  }, 90_000);

  it('loses nothing the spool acknowledged when the gateway is killed with -9, and drains it after the restart', async () => {
    const influx = track(await startInfluxDb());
    const db = 'killed';
    await createDatabase(influx.url, db);
    await influx.halt();
    const site = 'kill-site';
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-kill-'));
    const port = await freePort();
    const extra = [
      'influx:',
      '  api: v1',
      `  url: ${influx.url}`,
      `  database: ${db}`,
      '  flush_interval: 200ms',
      '  reconnect: { initial_delay: 200ms, max_delay: 1s }',
    ];
    const file = writeTestSite({ site, port, pollInterval: '50ms', dataDir, extra });
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'gateway', 'cli.ts'), 'run', '-c', file], {
      cwd: ROOT,
      stdio: 'ignore',
    });
    cleanup.push(async () => void child.kill('SIGKILL'));
    const spoolFile = join(dataDir, 'influx-spool.db');
    const spooled = () => {
      try {
        const d = new Database(spoolFile, { readonly: true, fileMustExist: true });
        try {
          return (d.prepare('SELECT coalesce(sum(lines), 0) AS n FROM chunk').get() as { n: number }).n;
        } finally {
          d.close();
        }
      } catch {
        return 0;
      }
    };
    await until('the spool to hold data', () => spooled() > 60, 30_000);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const held = spooled();
    expect(held).toBeGreaterThan(60);
    // The readings themselves, as the killed gateway committed them: what the restart must deliver.
    const spool = new Database(spoolFile, { readonly: true, fileMustExist: true });
    const heldLines = (spool.prepare('SELECT text FROM chunk ORDER BY id').all() as Array<{ text: string }>)
      .flatMap((c) => c.text.split('\n'))
      .map(parseLine);
    spool.close();
    expect(heldLines).toHaveLength(held);

    await influx.restart();
    const gw = track(createGateway(testSite({ site, port: await freePort(), pollInterval: '1s', dataDir, extra }), silent));
    const writes: number[] = [];
    await gw.start();
    gw.influx!.onWritten((_lane, ids) => writes.push(...ids));
    await until('the spool to drain', () => gw.influx!.stats().spoolLines === 0, 20_000);
    await gw.stop();
    // Every reading the killed gateway had committed is in InfluxDB, at its own time, with its own
    // values; rows the restarted gateway wrote itself have later times and cannot stand in for them.
    const stored = await seriesRows(influx.url, db, [...new Set(heldLines.map((l) => l.measurement))]);
    const missing = heldLines.filter((l) => {
      const row = stored.get(rowKey(l.measurement, l.tags, l.ns));
      return !row || Object.entries(l.fields).some(([field, value]) => row[field] !== value);
    });
    expect(missing.map((l) => l.text)).toEqual([]);
    expect(new Set(writes).size).toBe(writes.length);
  }, 90_000);

  it('gateway influx-writer: two writers on an external broker split one stream through $share, and write every line once', async () => {
    const mosquitto = inject('mosquitto');
    const db = `scale_${Date.now()}`;
    await createDatabase(influxdb.url, db);
    const site = `scale-${Date.now()}`;
    const extra = ['influx:', '  api: v1', `  url: ${influxdb.url}`, `  database: ${db}`, '  flush_interval: 200ms'];
    const file = writeTestSite({ site, broker: mosquitto.url, extra });
    const logLines = (r: Running) =>
      r
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const writers = ['a', 'b'].map((w) =>
      startCommand(process.execPath, ['--import', 'tsx', CLI, 'influx-writer', '-c', file, '--client-id', `${site}-${w}`]),
    );
    for (const w of writers) cleanup.push(async () => killGroup(w));
    for (const w of writers)
      await until('the writer to subscribe', () => logLines(w).some((l) => l.msg === 'InfluxDB writer subscribed to telemetry'), 20_000);

    // The gateway itself runs without a writer here: it only publishes, at 20 polls a second.
    const made: number[] = [];
    const gw = createGateway(testSite({ site, broker: mosquitto.url, pollInterval: '50ms' }), silent);
    cleanup.push(() => gw.stop());
    gw.pipeline.onBatch((batch) => void made.push(Math.max(...batch.map((r) => r.ts))));
    await gw.start();
    await sleep(3000);
    await gw.stop();
    expect(gw.link.stats()).toMatchObject({ pending: 0, queued: 0 });
    await until('InfluxDB to hold every message', async () => (await boilerRows(influxdb.url, db, site)).size >= made.length, 20_000);

    const rows = await boilerRows(influxdb.url, db, site);
    expect([...rows.keys()].sort()).toEqual(made.map((t) => `${t}000000`).sort());
    const finals = [];
    for (const w of writers) {
      expect((await w.interrupt('SIGTERM')).code).toBe(0);
      finals.push(logLines(w).find((l) => l.msg === 'InfluxDB writer stopped') as { received: number; written: number });
    }
    // Each writer took a share; together they received every message exactly once and wrote it.
    for (const f of finals) expect(f.received).toBeGreaterThan(made.length / 10);
    expect(finals[0]!.received + finals[1]!.received).toBe(made.length);
    expect(finals[0]!.written + finals[1]!.written).toBe(made.length);
  }, 90_000);

  it('drops the oldest telemetry when the spool is full, and counts exactly what it dropped', async () => {
    const closed = await freePort(); // nothing listens: every write fails
    const { log, entries } = capturingLogger();
    const gw = track(
      createGateway(
        testSite({
          site: 'full-site',
          port: await freePort(),
          pollInterval: '20ms',
          extra: [
            'influx:',
            '  api: v1',
            `  url: http://127.0.0.1:${closed}`,
            '  database: x',
            '  flush_interval: 100ms',
            '  max_spool_size: 40KB',
          ],
        }),
        log,
      ),
    );
    await gw.start();
    const firstTs = Date.now();
    await until('drops', () => gw.influx!.stats().droppedLines > 100, 30_000);
    await gw.stop();
    const s = gw.influx!.stats();
    expect(s.written).toBe(0);
    // Nothing vanished uncounted: every line made is either still spooled or counted as dropped.
    expect(s.spoolLines + s.droppedLines + s.staged).toBe(s.received);
    expect(s.spoolBytes).toBeLessThanOrEqual(40_000);
    const metrics = await gw.metrics.getSingleMetricAsString('gateway_influx_spool_dropped_lines_total');
    expect(metrics).toContain(`gateway_influx_spool_dropped_lines_total ${s.droppedLines}`);
    expect(entries.filter((e) => e.msg === 'Spool is full: dropping the oldest telemetry until InfluxDB takes data again')).toHaveLength(1);
    // The oldest went: what is left is from the end of the run.
    const spool = new Database(join(gw.config.gateway.data_dir, 'influx-spool.db'), { readonly: true });
    const oldest = spool.prepare('SELECT text FROM chunk ORDER BY id LIMIT 1').get() as { text: string };
    spool.close();
    const firstLineTs = Number(oldest.text.split('\n')[0]!.split(' ').pop()!.slice(0, -6));
    expect(firstLineTs).toBeGreaterThan(firstTs + 500);
  }, 60_000);

  describe('bad settings and bad data', () => {
    it("a wrong password, an unknown database: InfluxDB's own message, and the telemetry waits in the spool", async () => {
      const influx = track(await startInfluxDb({ auth: true }));
      const res = await fetch(
        `${influx.url}/query?q=${encodeURIComponent("CREATE USER admin WITH PASSWORD 'right' WITH ALL PRIVILEGES")}`,
        { method: 'POST' },
      );
      expect(res.status).toBe(200);
      await createDatabase(influx.url, 'plant', `Basic ${Buffer.from('admin:right').toString('base64')}`);
      for (const [settings, expected] of [
        [['  database: plant', '  username: admin', '  password: wrong'], /authorization failed/],
        [['  database: nope', '  username: admin', '  password: right'], /database not found/],
      ] as const) {
        const { log, entries } = capturingLogger();
        const gw = createGateway(
          testSite({
            port: await freePort(),
            extra: [
              'influx:',
              '  api: v1',
              `  url: ${influx.url}`,
              ...settings,
              '  flush_interval: 100ms',
              '  reconnect: { initial_delay: 200ms, max_delay: 1s }',
            ],
          }),
          log,
        );
        await gw.start();
        await until('the error', () => entries.some((e) => e.level === 50 && String(e.msg).startsWith('InfluxDB refuses every write')));
        await sleep(1500);
        await gw.stop();
        const errors = entries.filter((e) => e.level === 50 && String(e.msg).startsWith('InfluxDB refuses every write'));
        expect(errors).toHaveLength(1); // once, not at every retry
        expect(String(errors[0]!.influx)).toMatch(expected);
        expect(gw.influx!.stats().spoolLines).toBeGreaterThan(5);
        expect(gw.influx!.stats().written).toBe(0);
      }
    }, 60_000);

    it("a wrong token on /api/v2/write is reported with the server's answer", async () => {
      const vm = track(await startVictoriaMetrics({ username: 'gw', password: 'right' }));
      const { log, entries } = capturingLogger();
      const gw = track(
        createGateway(
          testSite({
            port: await freePort(),
            extra: ['influx:', '  api: v2', `  url: ${vm.url}`, '  token: wrong', '  org: o', '  bucket: b', '  flush_interval: 100ms'],
          }),
          log,
        ),
      );
      await gw.start();
      await until('the error', () => entries.some((e) => e.level === 50 && String(e.msg).startsWith('InfluxDB refuses every write')));
      const error = entries.find((e) => e.level === 50)!;
      expect(error.status).toBe(401);
      expect(gw.influx!.stats().spoolLines).toBeGreaterThan(0);
    }, 30_000);

    it('a point whose type changed: the error names the point, and the other points keep flowing', async () => {
      const db = `conflict_${Date.now()}`;
      await createDatabase(influxdb.url, db);
      const site = 'conflict-site';
      // drum_level was written as a string a minute ago (an earlier site file had it as a string
      // point); InfluxDB 1.x keeps field types per shard, so it has to be in the current one.
      const pre = await fetch(`${influxdb.url}/write?db=${db}`, {
        method: 'POST',
        body: `boiler,site=${site},equipment=B-07,code=10003101012019000117 drum_level="n/a" ${Date.now() - 60_000}000000`,
      });
      expect(pre.status).toBe(204);
      const { log, entries } = capturingLogger();
      const gw = track(
        createGateway(
          testSite({
            site,
            port: await freePort(),
            extra: ['influx:', '  api: v1', `  url: ${influxdb.url}`, `  database: ${db}`, '  flush_interval: 200ms'],
          }),
          log,
        ),
      );
      const started = Date.now();
      await gw.start();
      await until('the error naming the point', () => entries.some((e) => e.point === 'drum_level'));
      await sleep(1500);
      const error = entries.find((e) => e.point === 'drum_level')!;
      expect(error).toMatchObject({ level: 50, measurement: 'boiler', type: 'float', existing: 'string' });
      expect(String(error.msg)).toContain('drum_level');
      expect(entries.filter((e) => e.point === 'drum_level')).toHaveLength(1);
      const rows = [...(await boilerRows(influxdb.url, db, site)).values()].filter((r) => Number(String(r.time).slice(0, -6)) >= started);
      expect(rows.length).toBeGreaterThanOrEqual(5);
      for (const r of rows) {
        expect(typeof r.steam_pressure).toBe('number');
        expect(r.drum_level).toBeNull();
      }
      expect(gw.influx!.stats().skippedValues).toBeGreaterThan(0);
      expect(gw.influx!.stats().spoolLines).toBeLessThan(20);
    }, 30_000);
  });
});
