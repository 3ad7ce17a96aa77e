// Instruments that write result files into a folder. Each complete file is read twice: first whole,
// to hash and validate it (a file that does not read is rejected before anything of it is stored),
// then to store its results in batches, each batch committed with the file's progress (its content
// hash -> records done) in the same transaction. A gateway killed half-way through a file resumes
// where the store says; a file whose hash is known as done (copied in again) is not stored twice;
// and the result ids (instrument + content hash + record index) make a repeat a duplicate anyway.
import { constants } from 'node:fs';
import { access, copyFile, mkdir, realpath, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { LabResult } from '../common/result.js';
import { LogBudget } from '../common/log-budget.js';
import type { Driver, DriverContext, EquipmentBase } from '../types.js';
import { FileProblem } from './decode.js';
import { FileChanged, fileRecords, maxFileSize, type FileDigest, type FileRecord } from './reader.js';
import type { FileDropConnection } from './schema.js';
import { FolderWatcher, type FileState } from './watcher.js';

/** Results per store transaction, about: a batch ends at the end of a record. */
export const BATCH_RESULTS = 500;

/** A file's progress in the counter store, under `lab-files/<instrument>/<content hash>`. */
export interface FileProgress {
  /** Records stored, counted from the start of the file. */
  records: number;
  /** Every record is stored. */
  done: boolean;
  /** The name it had when it was taken (for people reading the store). */
  file: string;
}

/** Errors of the file system that mean "not now" rather than "never": tried again next scan. */
const BUSY = new Set(['EBUSY', 'EACCES', 'EPERM', 'EAGAIN', 'ETXTBSY', 'EMFILE', 'ENFILE']);

class Stopped extends Error {}

class FileDropDriver implements Driver {
  private readonly watcher: FolderWatcher;
  private readonly archive: string | false;
  private readonly rejected: string;
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private stopped = false;
  /** The folder could not be listed at the last scan: said once, and once more when it comes back. */
  private folderDown = false;
  private readonly warnings = new LogBudget(10);
  /** With archive: false, the files already handled (name -> size and time), so they are not read each scan. */
  private readonly handled = new Map<string, string>();
  /**
   * Files that failed for a reason other than their content (the store failing, a lock): when each
   * may be tried again (monotonic ms), the wait doubling from poll_interval to a minute. Without it
   * a 1 GB file was read twice every poll_interval for as long as the store was full.
   */
  private readonly backoff = new Map<string, { state: string; tries: number; at: number }>();
  private readonly counters = {
    scans: 0,
    filesTaken: 0,
    filesRejected: 0,
    duplicates: 0,
    results: 0,
    resumed: 0,
    retries: 0,
    errors: 0,
    folderErrors: 0,
  };

  constructor(
    private readonly c: FileDropConnection,
    private readonly instrument: EquipmentBase,
    private readonly ctx: DriverContext,
  ) {
    const folder = resolve(c.folder);
    this.watcher = new FolderWatcher({
      folder,
      pattern: c.pattern,
      ignore: c.ignore,
      stableForMs: c.stable_for,
      readyMarker: c.ready_marker,
    });
    this.archive = c.archive === false ? false : resolve(c.archive ?? join(folder, 'archive'));
    this.rejected = resolve(c.rejected ?? join(folder, 'rejected'));
  }

  async init(): Promise<void> {
    if (!this.ctx.results || !this.ctx.counters) throw new Error('The file-drop driver needs a result sink and a counter store');
  }

  async start(): Promise<void> {
    this.ctx.log.info(
      {
        folder: resolve(this.c.folder),
        pattern: this.c.pattern,
        instrument: this.instrument.id,
        archive: this.archive,
        rejected: this.rejected,
      },
      'Watching folder for result files',
    );
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.scanning;
  }

  stats(): Record<string, number> {
    return { ...this.counters };
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.scanning = this.scan().finally(() => {
        this.scanning = undefined;
        this.schedule(this.c.poll_interval);
      });
    }, ms);
  }

  private warn(fields: Record<string, unknown>, msg: string, level: 'warn' | 'error' = 'warn'): void {
    const skipped = this.warnings.take(performance.now());
    if (skipped !== undefined) this.ctx.log[level](skipped > 0 ? { ...fields, skippedWarnings: skipped } : fields, msg);
  }

  private async scan(): Promise<void> {
    this.counters.scans++;
    let ready: FileState[];
    try {
      // A monotonic clock for stable_for: a clock set back an hour would hold every file an hour.
      ready = await this.watcher.ready(performance.now(), {
        notFile: (name) => this.warn({ file: name }, 'Not a regular file (a symbolic link, FIFO or device): not taken'),
        neverStable: (name, ms) =>
          this.warn(
            { file: name, changingFor: `${Math.round(ms / 60_000)} min` },
            'Result file still changing at every scan: not taken until it has not changed for stable_for',
          ),
      });
    } catch (err) {
      this.counters.folderErrors++;
      if (!this.folderDown)
        this.ctx.log.warn(
          { folder: resolve(this.c.folder), err: (err as Error).message },
          'Cannot read the result folder; trying again every poll_interval',
        );
      this.folderDown = true;
      return;
    }
    if (this.folderDown) this.ctx.log.info({ folder: resolve(this.c.folder) }, 'Result folder readable again');
    this.folderDown = false;
    // Files gone from the folder need not be remembered (their content still is, in the store).
    for (const name of this.handled.keys()) if (!this.watcher.has(name)) this.handled.delete(name);
    for (const name of this.backoff.keys()) if (!this.watcher.has(name)) this.backoff.delete(name);
    const now = performance.now();
    const waiting = (f: FileState) => {
      const b = this.backoff.get(f.name);
      return b !== undefined && b.state === `${f.size}/${f.mtimeMs}` && now < b.at;
    };
    const todo = ready
      .filter((f) => this.handled.get(f.name) !== `${f.size}/${f.mtimeMs}` && !waiting(f))
      .slice(0, this.c.max_files_per_scan);
    for (const file of todo) {
      if (this.stopped) return;
      try {
        await this.take(file);
        this.backoff.delete(file.name);
      } catch (err) {
        if (err instanceof Stopped) return;
        this.failed(file, err);
      }
    }
  }

  /** Something other than the file's content went wrong: the file stays, and is tried again next scan. */
  private failed(file: FileState, err: unknown): void {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      // Moved away by someone else while we read it: nothing to do.
      this.watcher.unsettle(file.name);
      return;
    }
    if (err instanceof FileChanged) {
      this.counters.retries++;
      this.watcher.unsettle(file.name);
      this.warn({ file: file.name }, 'Result file changed while it was read; taken once it is stable again');
      return;
    }
    const state = `${file.size}/${file.mtimeMs}`;
    const before = this.backoff.get(file.name);
    const tries = before?.state === state ? before.tries + 1 : 1;
    const waitMs = Math.min(this.c.poll_interval * 2 ** (tries - 1), 60_000);
    this.backoff.set(file.name, { state, tries, at: performance.now() + waitMs });
    const again = `tried again in ${Math.round(waitMs / 100) / 10} s`;
    if (code !== undefined && BUSY.has(code)) {
      this.counters.retries++;
      this.warn({ file: file.name, code }, `Result file cannot be read now (locked or in use); ${again}`);
      return;
    }
    this.counters.errors++;
    this.warn({ file: file.name, err: (err as Error).message }, `Result file not taken; ${again}`, 'error');
  }

  private async take(file: FileState): Promise<void> {
    const max = maxFileSize(this.c);
    if (file.size > max) return this.reject(file, new FileProblem('', `larger than max_file_size (${file.size} bytes, at most ${max})`));
    // First pass: the hash, and every record read and mapped, storing nothing.
    let digest: FileDigest | undefined;
    let problem: FileProblem | undefined;
    try {
      digest = await this.pass(file, undefined, () => undefined);
    } catch (err) {
      if (!(err instanceof FileProblem)) throw err;
      problem = err;
    }
    // Written to again while it was read (a writer that paused longer than stable_for): what was
    // read is not the file, neither to reject nor to store. It is taken once stable again.
    const now = await stat(file.path);
    if (now.size !== file.size || now.mtimeMs !== file.mtimeMs) throw new FileChanged();
    if (problem) return this.reject(file, problem);
    if (!digest) return;
    const key = `lab-files/${this.instrument.id}/${digest.hash}`;
    const saved = this.ctx.counters!.get(key);
    const progress = isProgress(saved) ? saved : undefined;
    if (progress?.done) {
      this.ctx.log.info(
        { file: file.name, hash: digest.hash, takenAs: progress.file },
        'Result file already taken (the same content came before); its results are not stored again',
      );
      await this.done(file);
      this.counters.duplicates++;
      return;
    }
    if (progress) {
      this.counters.resumed++;
      this.ctx.log.info({ file: file.name, records: progress.records, of: digest.records }, 'Resuming a result file taken in part before');
    }
    // Second pass: stored in batches, each with the file's progress.
    const from = progress?.records ?? 0;
    const hash24 = digest.hash.slice(0, 24);
    const wide = this.c.mapping.analytes !== undefined;
    let batch: LabResult[] = [];
    let stored = 0;
    let records = from;
    const commit = (done: boolean) => {
      const state: FileProgress = { records, done, file: file.name };
      this.ctx.results!(batch, { key, state });
      stored += batch.length;
      batch = [];
    };
    await this.pass(file, digest.chunks, (records_) => {
      for (const r of records_) {
        if (r.index < from) continue;
        for (const d of r.results) {
          const resultId = `${this.instrument.id}:file:${hash24}:${r.index}${wide ? `:${d.analyte}` : ''}`;
          batch.push({ resultId, ...d });
        }
        records = r.index + 1;
        if (batch.length >= BATCH_RESULTS) commit(false);
      }
    });
    commit(true);
    this.counters.results += stored;
    this.ctx.log.info({ file: file.name, results: stored, records: digest.records, hash: digest.hash }, 'Result file taken');
    // Written to again after the second pass read it: archiving it would take away what was added
    // unread. Left where it is, said loudly, not read again while it stays so.
    const after = await stat(file.path).catch(() => undefined);
    if (after && (after.size !== file.size || after.mtimeMs !== file.mtimeMs)) {
      this.handled.set(file.name, `${after.size}/${after.mtimeMs}`);
      this.ctx.log.error(
        { file: file.name, results: stored },
        'Result file written to again after its results were stored; what was added is not taken: left in place, not archived',
      );
    } else await this.done(file);
    this.counters.filesTaken++;
    this.ctx.labEvents?.({ kind: 'file-taken', instrument: this.instrument.id, file: file.name, results: stored, ts: Date.now() });
  }

  /** One pass over the file; `expect`: the first pass's chunk CRCs. Checks between chunks whether the driver is stopping. */
  private async pass(file: FileState, expect: readonly number[] | undefined, onRecords: (r: FileRecord[]) => void): Promise<FileDigest> {
    const it = fileRecords(file.path, this.c, {
      instrument: this.instrument.id,
      fileTime: file.mtimeMs,
      timeZone: this.ctx.timeZone,
      ...(expect ? { expect } : {}),
    });
    for (;;) {
      if (this.stopped) {
        await it.return(undefined as never);
        throw new Stopped();
      }
      const step = await it.next();
      if (step.done) return step.value;
      onRecords(step.value);
      // Storing (the second pass): the gateway publishes and uploads what was stored before the next chunk.
      if (expect) await this.ctx.resultRoom?.();
    }
  }

  /** A file whose results are all stored: archived, or left and remembered. */
  private async done(file: FileState): Promise<void> {
    if (this.archive === false) {
      this.handled.set(file.name, `${file.size}/${file.mtimeMs}`);
      return;
    }
    try {
      await this.moveWithMarker(file, this.archive);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      // Its results are stored; left where it is, and not read again while it stays the same.
      this.handled.set(file.name, `${file.size}/${file.mtimeMs}`);
      this.warn({ file: file.name, err: (err as Error).message }, 'Result file taken but could not be archived; left in place', 'error');
    }
  }

  private async reject(file: FileState, problem: FileProblem): Promise<void> {
    const reason = problem.reason;
    this.ctx.log.warn({ file: file.name, reason, rejected: this.rejected }, 'Result file rejected: nothing of it is stored');
    let moved: string | undefined;
    try {
      moved = await this.moveWithMarker(file, this.rejected);
      await writeFile(`${moved}.reason`, `${file.name}: ${reason}\n`);
    } catch (err) {
      if (moved !== undefined)
        this.warn(
          { file: file.name, moved, err: (err as Error).message },
          'Rejected result file moved, but its reason could not be written',
          'error',
        );
      else {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        // Not moved: left where it is, and not read again while it stays the same.
        this.handled.set(file.name, `${file.size}/${file.mtimeMs}`);
        this.warn({ file: file.name, err: (err as Error).message }, 'Rejected result file could not be moved; left in place', 'error');
      }
    }
    this.counters.filesRejected++;
    this.ctx.labEvents?.({ kind: 'file-rejected', instrument: this.instrument.id, file: file.name, reason, ts: Date.now() });
  }

  /** Moves the file (and its ready marker) into `folder` under a name not taken there; returns the new path. */
  private async moveWithMarker(file: FileState, folder: string): Promise<string> {
    await mkdir(folder, { recursive: true });
    // The schema refuses the watched folder by name; a link to it (or a mount of it) is seen here:
    // moved into it, each file would be taken again under a new name, forever.
    if ((await realpath(folder)) === (await realpath(dirname(file.path))))
      throw new Error(`"${folder}" is the watched folder itself (a link to it?): the file cannot go there`);
    const target = await freeName(folder, file.name);
    await move(file.path, target);
    this.watcher.unsettle(file.name);
    if (this.c.ready_marker) await move(file.path + this.c.ready_marker, target + this.c.ready_marker).catch(() => undefined);
    return target;
  }
}

function isProgress(v: unknown): v is FileProgress {
  return (
    typeof v === 'object' && v !== null && typeof (v as FileProgress).records === 'number' && typeof (v as FileProgress).done === 'boolean'
  );
}

/** `name`, else `name-2.ext`, `name-3.ext`...: never over a file already there. */
async function freeName(folder: string, name: string): Promise<string> {
  const ext = extname(name);
  const stem = basename(name, ext);
  for (let n = 1; ; n++) {
    const candidate = join(folder, n === 1 ? name : `${stem}-${n}${ext}`);
    const taken = await access(candidate, constants.F_OK).then(
      () => true,
      () => false,
    );
    if (!taken) return candidate;
  }
}

/** A rename; across file systems (a share to a local archive) a copy, then the original removed. */
async function move(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    try {
      await copyFile(from, to, constants.COPYFILE_EXCL);
    } catch (copyErr) {
      // A full or failing archive disk: no half copy left behind (a later try takes another name).
      if ((copyErr as NodeJS.ErrnoException).code !== 'EEXIST') await unlink(to).catch(() => undefined);
      throw copyErr;
    }
    await unlink(from);
  }
}

export function createFileDropDriver(connection: FileDropConnection, instrument: EquipmentBase, ctx: DriverContext): Driver {
  return new FileDropDriver(connection, instrument, ctx);
}
