// Checking a site file that someone sent (the HTTP API's POST /api/config/check), off the event loop.
//
// Contract of checkSiteText(text, opts):
// - The text is parsed and validated as `gateway check` does, in a worker thread with a capped heap
//   (opts.maxMemoryMb, default 192) and stack, and a time limit (opts.timeoutMs, default 10 s,
//   counted from when the worker is ready). The defaults take a 1.3 MB site file of 1,000 equipment
//   with 20 points each (about 4 s once the worker is up, 128 MB was not enough); real ones are
//   a few hundred kB. A worker over either is terminated and the answer is a problem at
//   `(yaml)`: `took longer than N s to check`, `needs more than N MB to check`.
// - The worker gets an empty environment: `${VAR}` is never expanded from this process's
//   environment. Each placeholder comes back as a note (`takes its value from ${VAR} when the
//   gateway starts; not checked here`), and no message repeats a value of the file (`got a text
//   that is not one of them`); ids and names the file refers to are still quoted.
// - At most MAX_CHECKS (2) checks run at once; another call answers `{ busy: true, retryAfterS }`
//   at once, for a 503 with Retry-After. Nothing is queued: a queue would only hold the next stall.
// - It never throws for any text, and never rejects: a failure of the worker itself is a problem.
// - Answers: `{ ok: true, notes }` (valid as far as it can be checked without the environment),
//   `{ ok: false, problems, notes }` or `{ busy: true, retryAfterS }`; problems and notes are
//   `{ path, message, line? }`.
import type { Worker } from 'node:worker_threads';
import { startSiblingWorker } from '../drivers/common/worker.js';
import type { CheckReply } from './check-worker.js';
import type { ConfigProblem } from './errors.js';

export type SiteCheckResult =
  | { ok: true; notes: ConfigProblem[] }
  | { ok: false; problems: ConfigProblem[]; notes: ConfigProblem[] }
  | { busy: true; retryAfterS: number };

export interface SiteCheckOptions {
  /** Time the check may take once the worker is ready. */
  timeoutMs?: number;
  /** The worker's old-generation heap. */
  maxMemoryMb?: number;
}

/** Checks at once; each is one worker with its own heap, on a gateway box with little memory. */
export const MAX_CHECKS = 2;
const DEFAULTS = { timeoutMs: 10_000, maxMemoryMb: 192 } as const;
/** Loading the checker (zod, yaml, the driver schemas; from .ts through tsx) on a slow, busy box. */
const STARTUP_MS = 30_000;

let running = 0;
/** Checks refused because MAX_CHECKS were running, and checks ended by a limit: for metrics and tests. */
export const checkCounters = { busy: 0, timedOut: 0, outOfMemory: 0 };

export async function checkSiteText(text: string, opts: SiteCheckOptions = {}): Promise<SiteCheckResult> {
  if (running >= MAX_CHECKS) {
    checkCounters.busy++;
    return { busy: true, retryAfterS: Math.ceil((opts.timeoutMs ?? DEFAULTS.timeoutMs) / 1000) };
  }
  running++;
  try {
    return await runWorker(text, { ...DEFAULTS, ...opts });
  } finally {
    running--;
  }
}

function runWorker(text: string, opts: Required<SiteCheckOptions>): Promise<SiteCheckResult> {
  const problem = (message: string): SiteCheckResult => ({ ok: false, problems: [{ path: '(yaml)', message }], notes: [] });
  return new Promise((resolve) => {
    let worker: Worker;
    try {
      worker = startSiblingWorker(import.meta.url, 'check-worker', opts.maxMemoryMb);
    } catch (err) {
      resolve(problem(`cannot be checked: the checker did not start (${(err as Error).message.split('\n')[0]})`));
      return;
    }
    // Whatever the checker prints is dropped: a text must not reach the gateway's log through it.
    worker.stdout.resume();
    worker.stderr.resume();
    let done = false;
    const finish = (r: SiteCheckResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
      void worker.terminate();
    };
    let timer = setTimeout(() => finish(problem(`cannot be checked: the checker did not start within ${STARTUP_MS / 1000} s`)), STARTUP_MS);
    worker.on('message', (m: 'ready' | CheckReply) => {
      if (m === 'ready') {
        clearTimeout(timer);
        timer = setTimeout(() => {
          checkCounters.timedOut++;
          finish(problem(`took longer than ${formatSeconds(opts.timeoutMs)} s to check`));
        }, opts.timeoutMs);
        worker.postMessage({ text });
        return;
      }
      finish(m);
    });
    worker.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        checkCounters.outOfMemory++;
        finish(problem(`needs more than ${opts.maxMemoryMb} MB to check`));
      } else if (err instanceof RangeError) {
        finish(problem('nested too deeply to check'));
      } else {
        finish(problem(`cannot be checked: ${err.name}`));
      }
    });
    worker.on('exit', (code) => finish(problem(`cannot be checked: the checker stopped (exit code ${code})`)));
  });
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? String(ms / 1000) : (ms / 1000).toFixed(1);
}
