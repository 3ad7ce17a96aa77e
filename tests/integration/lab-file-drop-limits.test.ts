// A gateway process and large result files: a 100 MB CSV is streamed (the gateway's RSS stays
// within a bound far below the file's size), and a gateway killed with -9 in the middle of a file
// resumes it after the restart: each result reaches the platform once.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createPlatformInbox } from '../../gateway/platform/inbox.js';
import { STORE_FILE } from '../../gateway/store.js';
import { CLI, ROOT } from '../helpers/cli.js';
import { subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/processes.js';

const MiB = 1024 * 1024;
const SECRET = 'lab-files-secret-0123456789';
/**
 * RSS of the gateway while it takes the 100 MB file, at most this much over its level before. A
 * reader that held the file (or its text) whole would pass it by far: 100 MB of bytes and as much
 * again of text (measured: +209 MiB). What streaming leaves is chunks and rows already read,
 * garbage until V8's next collection (measured: +20 to +35 MiB).
 */
const RSS_GROWTH_LIMIT = 80 * MiB;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (n: number) => `${Math.round(n / MiB)} MiB`;

function rss(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

async function until(what: string, check: () => boolean, timeoutMs = 30_000, every = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await sleep(every);
  }
}

function siteFile(dataDir: string, folder: string, extra: string[]): string {
  const file = join(dataDir, 'site.yaml');
  writeFileSync(
    file,
    [
      'version: 1',
      `gateway: { id: gw-files, site: files-site, data_dir: ${dataDir}, log_level: warn }`,
      ...extra,
      'connections:',
      '  - id: files',
      '    type: file-drop',
      `    folder: ${folder}`,
      "    pattern: '*.csv'",
      '    stable_for: 200ms',
      '    poll_interval: 100ms',
      '    format: csv',
      '    mapping: { sample_id: id, analyte: analyte, value: value, time: time }',
      'equipment:',
      '  - { id: LAB-1, category: lab_analyzer, connection: files }',
      '',
    ].join('\n'),
  );
  return file;
}

/** Writes a CSV under a temporary name, then renames it into the folder (as instrument software does). */
async function writeCsv(folder: string, name: string, rows: number, row: (i: number) => string): Promise<void> {
  const tmp = join(folder, `${name}.tmp`);
  const out = createWriteStream(tmp);
  const write = (s: string) => (out.write(s) ? Promise.resolve() : new Promise<void>((r) => out.once('drain', () => r())));
  await write('id,analyte,value,time,raw\n');
  for (let i = 0; i < rows; i++) await write(`${row(i)}\n`);
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  renameSync(tmp, join(folder, name));
}

describe('large result files', () => {
  const cleanup: Array<() => Promise<unknown> | unknown> = [];
  afterEach(async () => {
    while (cleanup.length) await Promise.resolve(cleanup.pop()!()).catch(() => undefined);
  });

  const start = (file: string): ChildProcess => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'run', '-c', file], { cwd: ROOT, stdio: 'ignore' });
    cleanup.push(() => child.kill('SIGKILL'));
    return child;
  };

  it('streams a 100 MB CSV: RSS stays within a bound, every result captured once', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-lab-files-big-'));
    const folder = join(dataDir, 'exports');
    mkdirSync(folder);
    const mqttPort = await freePort();
    const child = start(siteFile(dataDir, folder, [`mqtt: { port: ${mqttPort} }`]));
    // A small file first: once it is archived the gateway is up and its driver's modules are loaded.
    await writeCsv(folder, 'warm-up.csv', 1, () => 'W-1,GLU,5.0,2026-12-03T10:00:00Z,');
    await until('the warm-up file taken', () => existsSync(join(folder, 'archive', 'warm-up.csv')), 60_000);
    const sub = await subscribe(`mqtt://127.0.0.1:${mqttPort}`, 'gw/files-site/LAB-1/results');
    cleanup.push(() => sub.close());
    await sleep(500);

    // 3,200 rows of about 32 KiB each (an instrument's raw curve in the last column): 100 MiB.
    const ROWS = 3200;
    const curve = Array.from({ length: 6000 }, (_, i) => (Math.sin(i / 50) * 100).toFixed(3)).join(';');
    await writeCsv(
      folder,
      'big.csv',
      ROWS,
      (i) => `S-${i},GLU,${(4 + (i % 30) / 10).toFixed(1)},2026-12-03T10:00:00Z,"${curve.slice(0, 32 * 1024 - 60)}"`,
    );
    const size = statSync(join(folder, 'big.csv')).size;
    expect(size).toBeGreaterThan(100 * 1000 * 1000);

    const baseline = rss(child.pid!);
    let peak = baseline;
    const began = Date.now();
    await until(
      'the big file taken',
      () => {
        peak = Math.max(peak, rss(child.pid!));
        return existsSync(join(folder, 'archive', 'big.csv'));
      },
      60_000,
      20,
    );
    const ms = Date.now() - began;
    await until('every result on MQTT', () => sub.messages.length >= ROWS);
    await sleep(300);
    console.log(
      `100 MB CSV (${ROWS} results, ${(size / MiB).toFixed(0)} MiB): taken in ${ms} ms (both passes and the store); gateway RSS ${mb(baseline)} before, ${mb(peak)} at most (+${mb(peak - baseline)})`,
    );
    expect(peak - baseline, `RSS grew from ${mb(baseline)} to ${mb(peak)}`).toBeLessThan(RSS_GROWTH_LIMIT);
    const ids = sub.messages.map((m) => (JSON.parse(m.payload) as { sampleId: string }).sampleId);
    expect(ids).toHaveLength(ROWS);
    expect(new Set(ids).size).toBe(ROWS);
  }, 120_000);

  it('killed with -9 in the middle of a file: after the restart each result reaches the platform once', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-lab-files-kill-'));
    const folder = join(dataDir, 'exports');
    mkdirSync(folder);
    const inboxPort = await freePort();
    const file = siteFile(dataDir, folder, [
      `mqtt: { port: ${await freePort()} }`,
      'platform:',
      `  url: http://127.0.0.1:${inboxPort}/`,
      `  secret: ${SECRET}`,
      '  max_in_flight: 16',
      '  retry: { initial_delay: 200ms, max_delay: 1s }',
    ]);
    // Three batches of 500: the kill comes after the first is committed, the store has the rest to do.
    const ROWS = 1500;
    await writeCsv(folder, 'run.csv', ROWS, (i) => `S-${i},GLU,${(4 + (i % 30) / 10).toFixed(1)},2026-12-03T10:00:00Z,`);

    // The platform is down: results wait in the outbox. The file's progress is read from the store as the gateway writes it.
    const child = start(file);
    const progress = (): { records: number; done: boolean } | undefined => {
      if (!existsSync(join(dataDir, STORE_FILE))) return undefined;
      try {
        const db = new Database(join(dataDir, STORE_FILE), { readonly: true, fileMustExist: true });
        try {
          const row = db.prepare("SELECT state FROM counter WHERE key LIKE 'lab-files/LAB-1/%'").get() as { state: string } | undefined;
          return row ? (JSON.parse(row.state) as { records: number; done: boolean }) : undefined;
        } finally {
          db.close();
        }
      } catch {
        // The store is being created or its schema written: not yet.
        return undefined;
      }
    };
    await until('the file half stored', () => progress() !== undefined, 60_000, 5);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const atKill = progress()!;
    expect(atKill.done, `the file was stored whole (${atKill.records} records) before the kill: make it larger`).toBe(false);
    expect(atKill.records).toBeLessThan(ROWS);
    expect(existsSync(join(folder, 'run.csv'))).toBe(true);

    const inbox = createPlatformInbox({ port: inboxPort, secret: SECRET, print: () => {} });
    await inbox.start();
    cleanup.push(() => inbox.stop());
    start(file);
    await until('the file archived', () => existsSync(join(folder, 'archive', 'run.csv')), 60_000);
    await until('every result at the platform', () => inbox.results.length >= ROWS, 90_000);
    await sleep(1000);
    const samples = inbox.results.map((r) => r.sampleId);
    expect(samples).toHaveLength(ROWS);
    expect(new Set(samples).size).toBe(ROWS);
    expect(inbox.stats().duplicates).toBe(0);
    expect(progress()).toEqual({ records: ROWS, done: true, file: 'run.csv' });
    console.log(`kill -9 at record ${atKill.records} of ${ROWS}: after the restart ${ROWS} results at the platform, none twice`);
  }, 180_000);
});
