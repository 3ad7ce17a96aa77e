// Building one scheduled report off the gateway's event loop. The rules evaluate on that loop, and
// building and rendering a busy day takes seconds (docs/reports.md): a stall that long would delay
// hazard detection. So the schedule hands the job to a worker thread, which opens the store file
// read-only (as `gateway report daily` does beside a running gateway), builds the report, writes its
// files and posts back what the main thread then commits: the journal entry and the outbox body.
//
// The worker is bounded: a capped heap and stack, and a time limit after which it is terminated. It
// gets an empty environment, and what it prints is dropped. Every failure (it did not start, ran out
// of memory or time, threw, stopped) rejects with an Error whose message says which, once.
import type { Worker } from 'node:worker_threads';
import { startSiblingWorker } from '../../drivers/common/worker.js';
import type { SiteConfig } from '../../config/schema.js';
import { buildDailyReport } from './daily.js';
import { writeDailyReport } from './files.js';
import { openStoreReadOnly } from './source.js';
import type { DailyReport } from './types.js';

export interface ReportJob {
  /** The store file, opened read-only. */
  storeFile: string;
  dataDir: string;
  config: SiteConfig;
  /** YYYY-MM-DD in the site's time zone. */
  date: string;
  /** The generation time. */
  now: number;
}

export interface ReportJobResult {
  report: DailyReport;
  files: { html: string; json: string };
}

/** What the worker posts: its result, or the message of what it threw (an Error does not cross as itself). */
export type ReportJobReply = { ok: true; result: ReportJobResult } | { ok: false; message: string; code?: string };

export interface ReportWorkerOptions {
  /** Time the job may take once the worker is ready. */
  timeoutMs?: number;
  /** The worker's old-generation heap. */
  maxMemoryMb?: number;
}

/**
 * A day of 100,000 alarm events builds in 1.4 to 3.2 s and tracks at most 200,000 incidents (docs/reports.md);
 * two minutes and 256 MB leave room for a slow, busy box without letting a runaway job hold it.
 */
export const REPORT_WORKER_DEFAULTS = { timeoutMs: 120_000, maxMemoryMb: 256 } as const;
/** Loading the builder (from .ts through tsx) on a slow, busy box. */
const STARTUP_MS = 30_000;

/** Builds and writes the report of `job.date` in this thread: what the worker runs, and the test's way on a fake clock. */
export function runReportJob(job: ReportJob): ReportJobResult {
  const source = openStoreReadOnly(job.storeFile);
  try {
    const report = buildDailyReport(source, job.config, job.date, job.now);
    return { report, files: writeDailyReport(job.dataDir, report) };
  } finally {
    source.close();
  }
}

/** Runs `job` in a worker thread; rejects with an Error that says what failed. */
export function runReportJobInWorker(job: ReportJob, opts: ReportWorkerOptions & { signal?: AbortSignal } = {}): Promise<ReportJobResult> {
  const { timeoutMs, maxMemoryMb } = { ...REPORT_WORKER_DEFAULTS, ...opts };
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(new Error('the report was stopped with the gateway'));
      return;
    }
    let worker: Worker;
    try {
      worker = startSiblingWorker(import.meta.url, 'job-worker', maxMemoryMb);
    } catch (err) {
      reject(new Error(`the report worker did not start (${firstLine(err)})`, { cause: err }));
      return;
    }
    // The builder logs nothing; whatever a library prints must not end up on the gateway's stdout.
    worker.stdout.resume();
    worker.stderr.resume();
    let done = false;
    const finish = (outcome: ReportJobResult | Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
      // Terminating a worker that has already stopped resolves at once; there is nothing to report from it.
      void worker.terminate();
    };
    let timer = setTimeout(() => finish(new Error(`the report worker did not start within ${STARTUP_MS / 1000} s`)), STARTUP_MS);
    worker.on('message', (m: 'ready' | ReportJobReply) => {
      if (m === 'ready') {
        clearTimeout(timer);
        timer = setTimeout(
          () => finish(new Error(`the report took longer than ${timeoutMs / 1000} s to build; the worker was stopped`)),
          timeoutMs,
        );
        try {
          worker.postMessage(job);
        } catch (err) {
          // A config is plain data; should anything else get in, it fails this job, not the gateway from an event handler.
          finish(new Error(`the report job cannot be handed to its worker (${firstLine(err)})`, { cause: err }));
        }
        return;
      }
      if (m.ok) finish(m.result);
      else finish(Object.assign(new Error(m.message), m.code === undefined ? {} : { code: m.code }));
    });
    worker.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'ERR_WORKER_OUT_OF_MEMORY')
        finish(new Error(`the report needs more than ${maxMemoryMb} MB to build; the worker was stopped`));
      else finish(new Error(`the report worker failed (${firstLine(err)})`, { cause: err }));
    });
    // The gateway stops: the worker goes with it, and the next start builds the report again.
    opts.signal?.addEventListener('abort', () => finish(new Error('the report was stopped with the gateway')), { once: true });
    worker.on('exit', (code) => finish(new Error(`the report worker stopped before it answered (exit code ${code})`)));
  });
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}
