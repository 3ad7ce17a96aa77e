// A peer that misbehaves fast must not also fill the log: each source may write a few lines a
// minute, and the lines it was denied are counted and told with the next one it writes. What a
// line reports is counted elsewhere, every time.

export class LogBudget {
  private windowStart = Number.NEGATIVE_INFINITY;
  private used = 0;
  private skippedLines = 0;

  constructor(
    private readonly lines: number,
    private readonly windowMs = 60_000,
  ) {}

  /** Undefined: do not log this one. Otherwise how many lines were skipped since the last one logged. */
  take(now: number): number | undefined {
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used >= this.lines) {
      this.skippedLines++;
      return undefined;
    }
    this.used++;
    const skipped = this.skippedLines;
    this.skippedLines = 0;
    return skipped;
  }

  /** Lines skipped and not yet told. */
  get skipped(): number {
    return this.skippedLines;
  }
}

/** One line per interval at most: the first at once, then one per interval saying how many were not logged. */
export function rateLimited(intervalMs = 60_000): (log: (notLogged: number) => void, now?: number) => void {
  const budget = new LogBudget(1, intervalMs);
  return (log, now = Date.now()) => {
    const skipped = budget.take(now);
    if (skipped !== undefined) log(skipped);
  };
}
