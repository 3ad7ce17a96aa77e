// Lab results from a file-exporting instrument (issue 20): a CSV of a million rows dropped into a
// `file-drop` folder, read by a gateway at default settings (createGateway, the site file's defaults:
// stable_for 2 s, batches of 500 results per transaction, synchronous=FULL, platform.max_in_flight 1),
// each row a result stored once in the durable store, published on MQTT (the embedded broker) and
// uploaded to the platform: the reference receiver (`gateway platform-inbox`) in a process of its
// own on loopback. Figures: results per second into the store and out to the platform, and the
// bench process's heap and RSS sampled through the run (peak over the baseline, and the slope over
// the second half: flat means the file is streamed, not held). Then the lab daily summary of that
// day (a million results) is made once, timed, from a read-only connection as `gateway lab daily` does.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { parseSite } from '../config/load.js';
import { buildLabDaily } from '../gateway/lab/daily.js';
import { localDate } from '../gateway/report/time.js';
import { createGateway } from '../gateway/runtime.js';
import { STORE_FILE } from '../gateway/store.js';
import { CLI, ROOT } from '../tests/helpers/cli.js';
import { freePort } from '../tests/helpers/processes.js';

/** Rows of the CSV, one result each; `npm run bench -- lab` takes LAB_ROWS from the environment for a shorter run. */
const ROWS = Number(process.env.LAB_ROWS ?? 1_000_000);
const SECRET = 'bench-secret-0123456789';
const SAMPLE_EVERY_MS = 250;
/** A run that takes longer than this has failed: 1,000,000 results at the platform's slowest measured rate take about half of it. */
const TIMEOUT_MS = 60 * 60_000;
const ANALYTES = [
  ['GLU', 'mmol/L'],
  ['CHOL', 'mmol/L'],
  ['TG', 'mmol/L'],
  ['HDL', 'mmol/L'],
] as const;
const MB = 2 ** 20;

/** The reference receiver in a process of its own; what it prints (a line per result) is read only until it listens, then dropped. */
async function startInbox(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'platform-inbox', '--port', String(port), '--secret', SECRET], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let head = '';
  const listening = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the platform inbox did not start: ${head}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`the platform inbox stopped (exit code ${code}): ${head}`)));
    child.stdout!.on('data', (d: Buffer) => {
      if (head.includes('Platform inbox listening')) return;
      head = (head + d.toString()).slice(-2000);
      if (head.includes('Platform inbox listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  child.stderr!.resume();
  await listening;
  return child;
}

/** The CSV an analyzer's software exports: a header, then one result per row, four analytes per sample. */
async function writeCsv(file: string, rows: number): Promise<number> {
  const out = createWriteStream(file);
  out.write('sample_id,analyte,value,unit,time\n');
  const t0 = Date.UTC(2026, 11, 2, 0, 0, 0);
  let chunk = '';
  for (let i = 0; i < rows; i++) {
    const [analyte, unit] = ANALYTES[i % ANALYTES.length]!;
    chunk += `S${String(Math.floor(i / ANALYTES.length)).padStart(7, '0')},${analyte},${(3 + (i % 97) / 10).toFixed(2)},${unit},${new Date(t0 + i * 50).toISOString()}\n`;
    if (chunk.length > 1 << 16) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
  return out.bytesWritten;
}

interface Sample {
  t: number;
  heap: number;
  rss: number;
}

/** Least-squares slope of y over t, in y units per minute. */
function slopePerMinute(points: Array<{ t: number; y: number }>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mt = points.reduce((s, p) => s + p.t, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const num = points.reduce((s, p) => s + (p.t - mt) * (p.y - my), 0);
  const den = points.reduce((s, p) => s + (p.t - mt) ** 2, 0);
  return den === 0 ? 0 : (num / den) * 60_000;
}

const until = async (what: string, cond: () => boolean, deadline: number) => {
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`lab bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

export async function labFileDrop(log: Logger, rows = ROWS): Promise<{ name: string; lines: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-lab-'));
  const dataDir = join(dir, 'data');
  const drop = join(dir, 'drop');
  mkdirSync(drop);
  const staged = join(dir, 'export.csv');
  const bytes = await writeCsv(staged, rows);
  const inboxPort = await freePort();
  const inbox = await startInbox(inboxPort);
  const config = parseSite(
    [
      'version: 1',
      `gateway: { id: gw-bench, site: bench, data_dir: ${dataDir}, timezone: UTC }`,
      `mqtt: { port: ${await freePort()} }`,
      'platform:',
      `  url: http://127.0.0.1:${inboxPort}/`,
      `  secret: ${SECRET}`,
      'connections:',
      `  - id: lab-files`,
      `    type: file-drop`,
      `    folder: ${drop}`,
      `    pattern: '*.csv'`,
      `    format: csv`,
      `    mapping: { sample_id: sample_id, analyte: analyte, value: value, unit: unit, time: time }`,
      'equipment:',
      '  - { id: LA-2, name: Chemistry analyzer, category: lab_analyzer, connection: lab-files }',
      '',
    ].join('\n'),
    { env: {} },
  );
  const gw = createGateway(config, log);
  const samples: Sample[] = [];
  const sample = () => {
    const m = process.memoryUsage();
    samples.push({ t: performance.now(), heap: m.heapUsed, rss: m.rss });
  };
  let sampler: NodeJS.Timeout | undefined;
  let reader: Database.Database | undefined;
  try {
    await gw.start();
    let stored = 0;
    gw.results.onResults((r) => (stored += r.length));
    reader = new Database(join(dataDir, STORE_FILE), { readonly: true });
    const pendingEvents = reader.prepare('SELECT count(*) AS n FROM event');
    // The baseline: the gateway started and idle, after a collection when the bench runs with --expose-gc.
    await new Promise((r) => setTimeout(r, 2000));
    (globalThis as { gc?: () => void }).gc?.();
    const base: Sample[] = [];
    for (let k = 0; k < 5; k++) {
      const m = process.memoryUsage();
      base.push({ t: 0, heap: m.heapUsed, rss: m.rss });
      await new Promise((r) => setTimeout(r, 100));
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const baseHeap = median(base.map((s) => s.heap));
    const baseRss = median(base.map((s) => s.rss));

    sampler = setInterval(sample, SAMPLE_EVERY_MS);
    const t0 = performance.now();
    const deadline = Date.now() + TIMEOUT_MS;
    // Into place in one rename, as an instrument's software that writes under a temporary name does.
    renameSync(staged, join(drop, 'export.csv'));
    await until('every result stored', () => stored >= rows, deadline);
    const tStored = performance.now();
    let left = Number.POSITIVE_INFINITY;
    await until(
      'every result at the platform',
      () => {
        left = (pendingEvents.get() as { n: number }).n;
        return left === 0;
      },
      deadline,
    );
    const tDelivered = performance.now();
    clearInterval(sampler);
    sampler = undefined;
    sample();

    const storedS = (tStored - t0) / 1000;
    const deliveredS = (tDelivered - t0) / 1000;
    const peakHeap = Math.max(...samples.map((s) => s.heap));
    const peakRss = Math.max(...samples.map((s) => s.rss));
    const half = samples.filter((s) => s.t >= t0 + (tDelivered - t0) / 2);
    const heapSlope = slopePerMinute(half.map((s) => ({ t: s.t, y: s.heap / MB })));
    const rssSlope = slopePerMinute(half.map((s) => ({ t: s.t, y: s.rss / MB })));
    const storeHalf = samples.filter((s) => s.t >= t0 + (tStored - t0) / 2 && s.t <= tStored);
    const storeHeapSlope = slopePerMinute(storeHalf.map((s) => ({ t: s.t, y: s.heap / MB })));

    // The day's summary of a million results, as `gateway lab daily` makes it beside the running gateway.
    const s0 = performance.now();
    const [summary] = await buildLabDaily(reader, config, localDate(Date.now(), 'UTC'), Date.now());
    const summaryS = (performance.now() - s0) / 1000;
    const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
    const lines = [
      `${fmt(rows)} rows, ${(bytes / MB).toFixed(1)} MiB of CSV (UTF-8, 5 columns), one file, default settings (stable_for 2 s, 500 results per transaction, platform.max_in_flight 1)`,
      `into the store (hashing pass, then stored; the 2 s stable_for wait included): ${storedS.toFixed(1)} s = ${fmt(rows / storedS)} results/s`,
      `out to the platform (every result accepted by the receiver in its own process): ${deliveredS.toFixed(1)} s = ${fmt(rows / deliveredS)} results/s`,
      `bench process memory over the idle gateway (heap ${(baseHeap / MB).toFixed(0)} MiB, RSS ${(baseRss / MB).toFixed(0)} MiB): peak heap +${((peakHeap - baseHeap) / MB).toFixed(0)} MiB, peak RSS +${((peakRss - baseRss) / MB).toFixed(0)} MiB`,
      `slope over the second half of the run: heap ${heapSlope.toFixed(2)} MiB/min, RSS ${rssSlope.toFixed(2)} MiB/min; over the second half of storing: heap ${storeHeapSlope.toFixed(2)} MiB/min (${samples.length} samples every ${SAMPLE_EVERY_MS} ms)`,
      `lab daily summary of that day (${fmt(summary?.results.captured ?? 0)} results, ${fmt(summary?.results.uploaded ?? 0)} uploaded, ${fmt(summary?.samples ?? 0)} samples), read-only beside the gateway: ${summaryS.toFixed(1)} s`,
    ];
    return { name: `Lab results from a ${fmt(rows)}-row CSV (file-drop, durable store, platform)`, lines };
  } finally {
    if (sampler) clearInterval(sampler);
    reader?.close();
    await gw.stop();
    try {
      process.kill(-inbox.pid!, 'SIGTERM');
    } catch {
      // Already gone.
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
