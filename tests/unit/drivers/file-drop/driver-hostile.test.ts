// The file-drop driver against a hostile folder: links out of it, FIFOs, a clock set back, a file
// written to after its results were stored, a rejected folder that takes the file but not its
// reason. Real folders, an in-memory store, the log captured.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync, appendFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { LabResult } from '../../../../drivers/common/result.js';
import { createFileDropDriver } from '../../../../drivers/file-drop/driver.js';
import { FileChanged, fileRecords } from '../../../../drivers/file-drop/reader.js';
import { fileDropConnectionSchema } from '../../../../drivers/file-drop/schema.js';
import { FolderWatcher, NEVER_STABLE_MS } from '../../../../drivers/file-drop/watcher.js';
import type { Driver, LabEvent } from '../../../../drivers/types.js';
import { connection } from './helpers.js';

const CSV = 'id,analyte,value\nS-1,GLU,5.2\nS-2,GLU,6.3\n';

/** Waits on the monotonic clock (a test below sets Date.now back). */
async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Rig {
  folder: string;
  driver: Driver;
  stored: Map<string, LabResult>;
  events: LabEvent[];
  logs: Array<{ level: number; msg: string; [k: string]: unknown }>;
}

const rigs: Rig[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  while (rigs.length) await rigs.pop()!.driver.stop();
});

async function rig(extra: Record<string, unknown> = {}, onCommit?: (done: boolean) => void, storeFails = false): Promise<Rig> {
  const folder = mkdtempSync(join(tmpdir(), 'gw-file-drop-hostile-'));
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
  const stored = new Map<string, LabResult>();
  const counters = new Map<string, unknown>();
  const events: LabEvent[] = [];
  const logs: Rig['logs'] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const driver = createFileDropDriver(
    c,
    { id: 'LAB-1', category: 'lab_analyzer', connection: 'files', poll_interval: 1000 },
    {
      log,
      sink: () => {},
      dataDir: folder,
      results: (results, counter) => {
        if (storeFails) throw new Error('disk full');
        for (const r of results) if (!stored.has(r.resultId)) stored.set(r.resultId, r);
        if (counter) counters.set(counter.key, counter.state);
        onCommit?.((counter?.state as { done: boolean } | undefined)?.done ?? false);
      },
      labEvents: (e) => void events.push(e),
      counters: { get: (k) => counters.get(k), save: (k, s) => void counters.set(k, s) },
    },
  );
  await driver.init();
  await driver.start();
  const r: Rig = { folder, driver, stored, events, logs };
  rigs.push(r);
  return r;
}

type Counter = 'scans' | 'filesTaken' | 'filesRejected' | 'duplicates' | 'results' | 'resumed' | 'retries' | 'errors' | 'folderErrors';
const stats = (r: Rig) => r.driver.stats!() as Record<Counter, number>;

describe('the file-drop driver in a hostile folder', () => {
  it('does not follow a link out of the folder: the target is never read nor quoted, the link left, said once', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'gw-file-drop-secret-'));
    writeFileSync(join(outside, 'secret'), 'root:$6$secret-hash:19000:0:99999:7:::\n');
    const r = await rig();
    symlinkSync(join(outside, 'secret'), join(r.folder, 'shadow.csv'));
    writeFileSync(join(r.folder, 'real.csv'), CSV);
    await until('the real file taken', () => stats(r).filesTaken === 1);
    const scans = stats(r).scans;
    await until('more scans', () => stats(r).scans >= scans + 5);
    expect(stats(r)).toMatchObject({ filesRejected: 0, errors: 0, retries: 0 });
    expect(JSON.stringify(r.logs)).not.toContain('secret-hash');
    expect(r.events.map((e) => e.kind)).toEqual(['file-taken']);
    expect(readdirSync(r.folder).sort()).toEqual(['archive', 'shadow.csv']);
    expect(r.logs.filter((l) => l.msg.startsWith('Not a regular file'))).toEqual([
      expect.objectContaining({ file: 'shadow.csv', msg: 'Not a regular file (a symbolic link, FIFO or device): not taken' }),
    ]);
  });

  it("skips a FIFO in the folder, and a FIFO put in a file's place is not waited on", async () => {
    const r = await rig();
    execFileSync('mkfifo', [join(r.folder, 'pipe.csv')]);
    writeFileSync(join(r.folder, 'real.csv'), CSV);
    await until('the real file taken', () => stats(r).filesTaken === 1);
    expect(existsSync(join(r.folder, 'pipe.csv'))).toBe(true);
    // The reader itself, handed a FIFO (it replaced the file after the scan): no open that waits for a writer.
    const c = connection({ format: 'csv', mapping: { sample_id: 'id', analyte: 'analyte', value: 'value' } });
    const it = fileRecords(join(r.folder, 'pipe.csv'), c, { instrument: 'LAB-1', fileTime: 0 });
    await expect(it.next()).rejects.toBeInstanceOf(FileChanged);
    // And a link in its place is not followed.
    const link = join(r.folder, 'link.txt');
    symlinkSync(join(r.folder, 'archive', 'real.csv'), link);
    await expect(fileRecords(link, c, { instrument: 'LAB-1', fileTime: 0 }).next()).rejects.toBeInstanceOf(FileChanged);
  });

  it('a clock set back an hour does not hold a complete file for an hour (stable_for is measured on a monotonic clock)', async () => {
    const r = await rig({ stable_for: '1500ms' });
    writeFileSync(join(r.folder, 'a.csv'), CSV);
    await until('the file seen', () => stats(r).scans >= 2);
    expect(stats(r).filesTaken).toBe(0);
    const now = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => now() - 3_600_000);
    await until('the file taken', () => stats(r).filesTaken === 1, 5000);
  });

  it('a file written to after its results were stored is not archived with what was added unread', async () => {
    let folder = '';
    const r = await rig({}, (done) => {
      if (done) appendFileSync(join(folder, 'grow.csv'), 'S-3,GLU,7.1\n');
    });
    folder = r.folder;
    writeFileSync(join(folder, 'grow.csv'), CSV);
    await until('the results stored', () => r.stored.size === 2);
    const scans = stats(r).scans;
    await until('more scans', () => stats(r).scans >= scans + 5);
    expect(existsSync(join(folder, 'grow.csv'))).toBe(true);
    expect(existsSync(join(folder, 'archive', 'grow.csv'))).toBe(false);
    expect(r.logs.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([
      'Result file written to again after its results were stored; what was added is not taken: left in place, not archived',
    ]);
  });

  it('a store that keeps failing: the file is tried again less and less often, not read twice every scan', async () => {
    const r = await rig({}, undefined, true);
    writeFileSync(join(r.folder, 'a.csv'), CSV);
    await until('25 scans', () => stats(r).scans >= 25, 30_000);
    expect(stats(r).errors).toBeGreaterThanOrEqual(2);
    expect(stats(r).errors).toBeLessThanOrEqual(10);
    expect(r.logs.find((l) => l.level >= 50)?.msg).toBe('Result file not taken; tried again in 0.1 s');
    expect(existsSync(join(r.folder, 'a.csv'))).toBe(true);
  });

  it('an archive folder that is a link to the watched folder: the file is left in place once, not taken again and again', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'gw-file-drop-loop-'));
    const watched = join(parent, 'in');
    mkdirSync(watched);
    symlinkSync(watched, join(parent, 'archive-link'));
    const r = await rig({ folder: watched, archive: join(parent, 'archive-link') });
    writeFileSync(join(watched, 'a.csv'), CSV);
    await until('the file taken', () => stats(r).filesTaken === 1);
    const scans = stats(r).scans;
    await until('more scans', () => stats(r).scans >= scans + 8);
    expect(readdirSync(watched)).toEqual(['a.csv']);
    expect(stats(r)).toMatchObject({ filesTaken: 1, duplicates: 0 });
    expect(r.logs.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual(['Result file taken but could not be archived; left in place']);
  });

  it('a rejected file moved whose reason cannot be written is said so, not "left in place"', async () => {
    const r = await rig();
    mkdirSync(join(r.folder, 'rejected', 'bad.csv.reason'), { recursive: true });
    writeFileSync(join(r.folder, 'bad.csv'), 'id,analyte,value\nS-1,GLU\n');
    await until('the file rejected', () => stats(r).filesRejected === 1);
    expect(readdirSync(join(r.folder, 'rejected')).sort()).toEqual(['bad.csv', 'bad.csv.reason']);
    expect(existsSync(join(r.folder, 'bad.csv'))).toBe(false);
    expect(r.logs.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([
      'Rejected result file moved, but its reason could not be written',
    ]);
  });
});

describe('the folder watcher', () => {
  it('says once that a file has changed at every scan for ten minutes (a writer that never stops), and still does not take it', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'gw-file-drop-growing-'));
    const w = new FolderWatcher({ folder, pattern: ['*.csv'], ignore: [], stableForMs: 2000, readyMarker: undefined });
    const said: Array<[string, number]> = [];
    const notices = { neverStable: (name: string, ms: number) => void said.push([name, ms]) };
    const path = join(folder, 'endless.csv');
    writeFileSync(path, 'id,analyte,value\n');
    for (let t = 0; t <= 15 * 60_000; t += 1000) {
      appendFileSync(path, 'S-1,GLU,5.2\n');
      expect(await w.ready(t, notices)).toEqual([]);
    }
    expect(said).toEqual([['endless.csv', NEVER_STABLE_MS]]);
  });
});

describe('the connection schema', () => {
  it('refuses an archive or rejected folder that is the watched folder spelled another way', () => {
    const base = { id: 'f', type: 'file-drop', pattern: '*.csv', format: 'csv', mapping: { sample_id: 'id', analyte: 'a', value: 'v' } };
    for (const [folder, other] of [
      ['./lab', 'lab'],
      ['/srv/lab', '/srv/lab/.'],
      ['/srv/lab', '/srv/x/../lab/'],
      ['lab', join(process.cwd(), 'lab')],
    ] as const) {
      const archive = fileDropConnectionSchema.safeParse({ ...base, folder, archive: other });
      expect(archive.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
        ['archive', 'must be another folder than the one watched'],
      ]);
      const rejected = fileDropConnectionSchema.safeParse({ ...base, folder, rejected: other });
      expect(rejected.error?.issues.map((i) => i.path.join('.'))).toEqual(['rejected']);
    }
  });
});
