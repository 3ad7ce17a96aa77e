// Lines are gathered in memory briefly and committed to the spool together: a commit per line would
// cost a SQLite transaction each, and a line is safe only once committed.

/** Lines are committed at least this often, and in chunks of at most COMMIT_LINES. */
export const COMMIT_MS = 100;
export const COMMIT_LINES = 1000;

export interface StagerOptions {
  /** flush_interval: a shorter one commits sooner than COMMIT_MS. */
  flushIntervalMs: number;
  /** Whether there is a spool to commit to (lines stay staged until there is). */
  open(): boolean;
  /** Commits lines, in chunks of at most COMMIT_LINES. */
  commit(chunk: string[]): void;
  /** Called once after a commit. */
  committed(): void;
}

export class Stager {
  private staged: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: StagerOptions) {}

  stage(lines: readonly string[]): void {
    if (lines.length === 0) return;
    for (const line of lines) this.staged.push(line);
    if (this.staged.length >= COMMIT_LINES) this.commit();
    else if (!this.timer && !this.stopped) this.timer = setTimeout(() => this.commit(), Math.min(COMMIT_MS, this.opts.flushIntervalMs));
  }

  /** Commits what is staged now. */
  commit(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.staged.length === 0 || !this.opts.open()) return;
    const lines = this.staged;
    this.staged = [];
    for (let k = 0; k < lines.length; k += COMMIT_LINES) this.opts.commit(lines.slice(k, k + COMMIT_LINES));
    this.opts.committed();
  }

  /** No more timed commits: what is staged from now on waits for commit(). */
  stop(): void {
    this.stopped = true;
  }

  get lines(): number {
    return this.staged.length;
  }

  /** Characters held in memory. */
  get chars(): number {
    return this.staged.reduce((n, line) => n + line.length, 0);
  }
}
