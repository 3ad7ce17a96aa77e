// The file-drop driver on a real folder, with an in-memory result store: when a file is taken,
// where it goes, and what it stores (each result once, a rejected file nothing).
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { LabResult } from '../../../../drivers/common/result.js';
import { createFileDropDriver, type FileProgress } from '../../../../drivers/file-drop/driver.js';
import { fileDropConnectionSchema } from '../../../../drivers/file-drop/schema.js';
import type { Driver, LabEvent } from '../../../../drivers/types.js';

const CSV = 'id,analyte,value\nS-1,GLU,5.2\nS-1,TG,1.1\nS-2,GLU,6.3\n';

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Rig {
  folder: string;
  driver: Driver;
  stored: Map<string, LabResult>;
  counters: Map<string, unknown>;
  events: LabEvent[];
  /** Store transactions made (each batch with its counter). */
  commits: Array<{ results: number; state: unknown }>;
  /** Makes the next store transaction throw after `after` more. */
  failAfter(after: number): void;
}

const rigs: Rig[] = [];
afterEach(async () => {
  while (rigs.length) await rigs.pop()!.driver.stop();
});

async function rig(
  extra: Record<string, unknown> = {},
  shared?: Pick<Rig, 'stored' | 'counters'>,
  folder?: string,
  timeZone?: string,
): Promise<Rig> {
  folder ??= mkdtempSync(join(tmpdir(), 'gw-file-drop-driver-'));
  const c = fileDropConnectionSchema.parse({
    id: 'files',
    type: 'file-drop',
    folder,
    pattern: '*.csv',
    stable_for: '300ms',
    poll_interval: '100ms',
    format: 'csv',
    mapping: { sample_id: 'id', analyte: 'analyte', value: 'value' },
    ...extra,
  });
  const stored = shared?.stored ?? new Map<string, LabResult>();
  const counters = shared?.counters ?? new Map<string, unknown>();
  const events: LabEvent[] = [];
  const commits: Rig['commits'] = [];
  let failIn = Infinity;
  const driver = createFileDropDriver(
    c,
    { id: 'LAB-1', category: 'lab_analyzer', connection: 'files', poll_interval: 1000 },
    {
      log: pino({ level: 'silent' }),
      sink: () => {},
      dataDir: folder,
      results: (results, counter) => {
        if (failIn-- <= 0) throw new Error('disk full');
        // One transaction: the results (each once, by id) and the counter together.
        for (const r of results) if (!stored.has(r.resultId)) stored.set(r.resultId, r);
        if (counter) counters.set(counter.key, counter.state);
        commits.push({ results: results.length, state: counter?.state });
      },
      labEvents: (e) => void events.push(e),
      counters: { get: (k) => counters.get(k), save: (k, s) => void counters.set(k, s) },
      ...(timeZone ? { timeZone } : {}),
    },
  );
  await driver.init();
  await driver.start();
  const r: Rig = { folder, driver, stored, counters, events, commits, failAfter: (n) => void (failIn = n) };
  rigs.push(r);
  return r;
}

type Counter = 'scans' | 'filesTaken' | 'filesRejected' | 'duplicates' | 'results' | 'resumed' | 'retries' | 'errors' | 'folderErrors';
const stats = (r: Rig) => r.driver.stats!() as Record<Counter, number>;

describe('the file-drop driver', () => {
  it('takes a complete file once: results with stable ids, archived, a file-taken event', async () => {
    const r = await rig();
    writeFileSync(join(r.folder, 'run-1.csv'), CSV);
    await until('the file taken', () => stats(r).filesTaken === 1);
    expect([...r.stored.values()].map((x) => `${x.sampleId}/${x.analyte}=${x.value}`)).toEqual([
      'S-1/GLU=5.2',
      'S-1/TG=1.1',
      'S-2/GLU=6.3',
    ]);
    const ids = [...r.stored.keys()];
    expect(ids[0]).toMatch(/^LAB-1:file:[0-9a-f]{24}:0$/);
    expect(ids.map((id) => id.split(':').at(-1))).toEqual(['0', '1', '2']);
    expect(readdirSync(join(r.folder, 'archive'))).toEqual(['run-1.csv']);
    expect(existsSync(join(r.folder, 'run-1.csv'))).toBe(false);
    expect(r.events).toEqual([{ kind: 'file-taken', instrument: 'LAB-1', file: 'run-1.csv', results: 3, ts: expect.any(Number) }]);
    const [state] = [...r.counters.values()] as FileProgress[];
    expect(state).toEqual({ records: 3, done: true, file: 'run-1.csv' });

    // The same content again, under another name and under its own (a name clash in the archive): archived, not stored again.
    writeFileSync(join(r.folder, 'copy.csv'), CSV);
    writeFileSync(join(r.folder, 'run-1.csv'), CSV);
    await until('both copies handled', () => stats(r).duplicates === 2);
    expect(r.stored.size).toBe(3);
    expect(readdirSync(join(r.folder, 'archive')).sort()).toEqual(['copy.csv', 'run-1-2.csv', 'run-1.csv']);
    expect(r.events.filter((e) => e.kind === 'file-taken')).toHaveLength(1);
  });

  it('waits until a file being written is stable, and never takes temporary names', async () => {
    // Appends 300 ms apart, taken only 1.5 s after the last: a loaded machine's late timers stay well inside.
    const r = await rig({ stable_for: '1500ms' });
    const path = join(r.folder, 'slow.csv');
    writeFileSync(join(r.folder, 'fresh.csv.tmp'), CSV);
    writeFileSync(join(r.folder, '~lock.csv'), CSV);
    writeFileSync(join(r.folder, '.hidden.csv'), CSV);
    writeFileSync(path, 'id,analyte,value\n');
    for (const row of CSV.split('\n').slice(1, 3)) {
      await new Promise((res) => setTimeout(res, 300));
      writeFileSync(path, `${readFileSync(path, 'utf8')}${row}\n`);
      expect(stats(r).filesTaken + stats(r).filesRejected).toBe(0);
    }
    await until('the file taken', () => stats(r).filesTaken === 1);
    expect(r.stored.size).toBe(2);
    renameSync(join(r.folder, 'fresh.csv.tmp'), join(r.folder, 'fresh.csv'));
    await until('the renamed file taken (its content known: a duplicate)', () => stats(r).duplicates + stats(r).filesTaken === 2);
    expect(readdirSync(r.folder).sort()).toEqual(['.hidden.csv', 'archive', '~lock.csv']);
  });

  // /dev/shm is another file system than the temporary folder on most Linux machines: a rename fails with EXDEV.
  const otherDevice = existsSync('/dev/shm') && statSync('/dev/shm').dev !== statSync(tmpdir()).dev;
  it.skipIf(!otherDevice)('archives across file systems by a copy, the original removed', async () => {
    const archive = mkdtempSync('/dev/shm/gw-file-drop-archive-');
    const r = await rig({ archive });
    writeFileSync(join(r.folder, 'a.csv'), CSV);
    await until('the file taken', () => stats(r).filesTaken === 1);
    expect(readFileSync(join(archive, 'a.csv'), 'utf8')).toBe(CSV);
    expect(readdirSync(r.folder)).toEqual([]);
    rmSync(archive, { recursive: true });
  });

  it('with a ready marker, takes a file only once its marker exists, and archives the marker with it', async () => {
    const r = await rig({ ready_marker: '.done', stable_for: '10m' });
    writeFileSync(join(r.folder, 'a.csv'), CSV);
    await new Promise((res) => setTimeout(res, 400));
    expect(stats(r).filesTaken).toBe(0);
    writeFileSync(join(r.folder, 'a.csv.done'), '');
    await until('the file taken', () => stats(r).filesTaken === 1);
    expect(readdirSync(join(r.folder, 'archive')).sort()).toEqual(['a.csv', 'a.csv.done']);
  });

  it('rejects a file that does not read: moved to rejected/ with its reason, nothing stored, a file-rejected event', async () => {
    const r = await rig();
    writeFileSync(join(r.folder, 'bad.csv'), `${CSV}S-3,GLU\n`);
    mkdirSync(join(r.folder, 'rejected'));
    writeFileSync(join(r.folder, 'rejected', 'bad.csv'), 'an older one');
    await until('the file rejected', () => stats(r).filesRejected === 1);
    expect(r.stored.size).toBe(0);
    expect(r.commits).toEqual([]);
    expect(readdirSync(join(r.folder, 'rejected')).sort()).toEqual(['bad-2.csv', 'bad-2.csv.reason', 'bad.csv']);
    expect(readFileSync(join(r.folder, 'rejected', 'bad-2.csv.reason'), 'utf8')).toBe(
      'bad.csv: line 5: 2 fields where the header has 3 (a cut or malformed row)\n',
    );
    expect(readFileSync(join(r.folder, 'rejected', 'bad.csv'), 'utf8')).toBe('an older one');
    expect(r.events).toEqual([
      {
        kind: 'file-rejected',
        instrument: 'LAB-1',
        file: 'bad.csv',
        reason: 'line 5: 2 fields where the header has 3 (a cut or malformed row)',
        ts: expect.any(Number),
      },
    ]);
  });

  it('stores in batches, each with the progress; a store that fails half-way resumes without duplicates', async () => {
    const rows = Array.from({ length: 1200 }, (_, i) => `S-${i},GLU,${(i % 90) / 10}`);
    const folder = mkdtempSync(join(tmpdir(), 'gw-file-drop-driver-'));
    const first = await rig({}, undefined, folder);
    first.failAfter(2);
    writeFileSync(join(folder, 'big.csv'), `id,analyte,value\n${rows.join('\n')}\n`);
    await until('a store failure', () => stats(first).errors >= 1);
    await first.driver.stop();
    expect(first.stored.size).toBe(1000);
    expect([...first.counters.values()]).toEqual([{ records: 1000, done: false, file: 'big.csv' }]);
    expect(existsSync(join(folder, 'big.csv'))).toBe(true);

    // A new driver on the same store (a restart): it resumes at record 1000.
    const second = await rig({}, first, folder);
    await until('the file taken', () => stats(second).filesTaken === 1);
    expect(stats(second).resumed).toBe(1);
    expect(second.commits.map((c) => c.results)).toEqual([200]);
    expect(first.stored.size).toBe(1200);
    expect(new Set([...first.stored.values()].map((x) => x.sampleId)).size).toBe(1200);
  });

  it('with archive: false, leaves each file and takes it once, even after a restart', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'gw-file-drop-driver-'));
    const first = await rig({ archive: false }, undefined, folder);
    writeFileSync(join(folder, 'a.csv'), CSV);
    await until('the file taken', () => stats(first).filesTaken === 1);
    const scans = stats(first).scans;
    await until('more scans', () => stats(first).scans >= scans + 3);
    expect(stats(first)).toMatchObject({ filesTaken: 1, duplicates: 0 });
    await first.driver.stop();
    expect(readdirSync(folder)).toEqual(['a.csv']);
    const second = await rig({ archive: false }, first, folder);
    await until('the file seen again', () => stats(second).duplicates === 1);
    expect(first.stored.size).toBe(3);
  });

  it("reads times without a zone in the site's time zone, unless the mapping names one", async () => {
    const mapping = { sample_id: 'id', analyte: 'analyte', value: 'value', time: 't' };
    const site = await rig({ mapping }, undefined, undefined, 'Asia/Shanghai');
    const own = await rig({ mapping: { ...mapping, time_zone: 'UTC' } }, undefined, undefined, 'Asia/Shanghai');
    for (const r of [site, own]) writeFileSync(join(r.folder, 'a.csv'), 'id,analyte,value,t\nS-1,GLU,5.2,2026-12-03 10:20:00\n');
    await until('both taken', () => stats(site).filesTaken === 1 && stats(own).filesTaken === 1);
    expect([...site.stored.values()][0]!.resultAt).toBe('2026-12-03T02:20:00.000Z');
    expect([...own.stored.values()][0]!.resultAt).toBe('2026-12-03T10:20:00.000Z');
  });

  it('a missing folder is reported once and watched until it exists', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'gw-file-drop-driver-'));
    const folder = join(parent, 'later');
    const r = await rig({}, undefined, folder);
    await until('a few failed scans', () => stats(r).folderErrors >= 3);
    mkdirSync(folder);
    writeFileSync(join(folder, 'a.csv'), CSV);
    await until('the file taken', () => stats(r).filesTaken === 1);
    rmSync(parent, { recursive: true });
    await until('the folder missed again', () => stats(r).folderErrors >= 4);
  });
});
