// A lab analyzer that shows its latest result in a block (Modbus registers, OPC UA nodes): when its
// trigger (a result counter that changed, a ready flag that turned true) shows a new result, the
// block is read and its results handed to the sink. The counter, and a series number that grows each
// time the analyzer resets its counter, are kept in the gateway's store and committed in the same
// transaction as the results they count, so a result keeps its id across restarts and a counter reset
// never makes a new result look like an old one.
import type { Logger } from 'pino';
import { rateLimited } from './log-budget.js';
import { resultIdFromContent, resultIdFromSequence, type LabResult } from './result.js';
import type { CounterStore, Reading, ResultSink } from '../types.js';

export interface Analyte {
  name: string;
  unit?: string | undefined;
  reference?: { lo?: number | undefined; hi?: number | undefined } | undefined;
}

/** What one read of the block gave: the sample id, a value per analyte, and the trigger read again. */
export interface Block {
  sampleId: Reading['value'];
  values: ReadonlyMap<string, Reading['value']>;
  trigger: Reading['value'];
}

interface State {
  series: number;
  last: number | boolean | undefined;
}

function isState(v: unknown): v is State {
  if (typeof v !== 'object' || v === null) return false;
  const { series, last } = v as Record<string, unknown>;
  return (
    Number.isSafeInteger(series) &&
    (series as number) >= 0 &&
    (last === undefined || typeof last === 'boolean' || Number.isSafeInteger(last))
  );
}

export interface ResultTriggerStats {
  results: number;
  gaps: number;
  missed: number;
  resets: number;
  blockErrors: number;
}

export class ResultTrigger {
  private state: State | undefined;
  private busy = false;
  /** A trigger value that came while the block was being read: handled right after. */
  private queued: { value: Reading['value'] } | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastError: string | undefined;
  private readonly key: string;
  /** A counter state the store could not take yet (disk full): written with the next one. */
  private unsaved = false;
  private readonly saveFailedLog = rateLimited(60_000);
  readonly stats: ResultTriggerStats = { results: 0, gaps: 0, missed: 0, resets: 0, blockErrors: 0 };

  constructor(
    private readonly opts: {
      equipment: string;
      kind: 'counter' | 'flag';
      analytes: readonly Analyte[];
      /**
       * Try a failed block again after this long, without waiting for another trigger reading
       * (subscriptions report the trigger only when it changes).
       */
      retryMs?: number;
      /** Reads the block; throws with the reason when it cannot. */
      read: () => Promise<Block>;
      sink: ResultSink;
      log: Logger;
      counters: CounterStore;
    },
  ) {
    this.key = `lab-results/${opts.equipment}`;
  }

  /** Reads the counter state from the store; a state that does not read is an error, never a reset. */
  init(): void {
    if (this.state) return;
    const saved = this.opts.counters.get(this.key);
    if (saved !== undefined && !isState(saved))
      throw new Error(
        `The result counter state of ${this.opts.equipment} in the store does not read (${JSON.stringify(saved).slice(0, 100)}); without it new results could reuse old ids and be discarded as duplicates`,
      );
    this.state = saved ?? { series: 0, last: undefined };
  }

  /** A good reading of the trigger point. */
  async onValue(value: Reading['value']): Promise<void> {
    if (this.stopped) return;
    this.init();
    if (this.busy) {
      this.queued = { value };
      return;
    }
    clearTimeout(this.retry);
    this.busy = true;
    let current: { value: Reading['value'] } | undefined = { value };
    try {
      while (current && !this.stopped) {
        const ok = await this.handle(current.value);
        const failedValue = current.value;
        current = this.queued;
        this.queued = undefined;
        if (!ok && !current && this.opts.retryMs !== undefined && !this.stopped)
          this.retry = setTimeout(() => void this.onValue(failedValue), this.opts.retryMs);
      }
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
  }

  /** false when a result is there but could not be taken (to try again). */
  private async handle(value: Reading['value']): Promise<boolean> {
    const { log, equipment } = this.opts;
    const state = this.state!;
    if (this.opts.kind === 'flag') {
      const ready = value === true || (typeof value === 'number' && value !== 0);
      if (ready && state.last !== true) return this.capture(undefined, { ...state, last: true });
      if (!ready && state.last !== false) this.save({ ...state, last: false });
      return true;
    }
    if (typeof value !== 'number' || !Number.isInteger(value)) return true;
    const last = typeof state.last === 'number' ? state.last : undefined;
    if (value === last) return true;
    let series = state.series;
    if (last !== undefined && value < last) {
      // The analyzer started counting again (a restart, a reset): a new series, so ids stay unique.
      this.stats.resets++;
      series++;
      log.warn({ equipment, from: last, to: value, series }, 'Result counter went back: the analyzer reset it; counting a new series');
      // Nothing to take at 0; otherwise the new series is kept only with the result it counts, so a
      // capture that fails is tried again at the next reading instead of seen as taken.
      if (value === 0) {
        this.save({ series, last: 0 });
        return true;
      }
    } else if (value === 0) {
      // Nothing measured yet.
      this.save({ ...state, last: 0 });
      return true;
    } else if (last !== undefined && value > last + 1) {
      this.stats.gaps++;
      this.stats.missed += value - last - 1;
      log.warn(
        { equipment, from: last, to: value, missed: value - last - 1 },
        'Result counter jumped: results in between were not read (the analyzer holds only its latest result)',
      );
    }
    return this.capture(value, { series, last: value });
  }

  /**
   * Reads the block and stores its results with the counter state `next`, in one transaction; false
   * (and a log line) when it cannot, to try again.
   */
  private async capture(counter: number | undefined, next: State): Promise<boolean> {
    let block: Block;
    try {
      block = await this.opts.read();
    } catch (err) {
      return this.failed(`the result block could not be read: ${(err as Error).message}`);
    }
    // The trigger, read again with the block: if it moved meanwhile, the block may be the next result's.
    if (counter !== undefined && block.trigger !== counter) return false;
    const sampleId = String(block.sampleId ?? '').replace(/[\0 ]+$/, '');
    if (!/^[\x21-\x7e][\x20-\x7e]{0,63}$/.test(sampleId))
      return this.failed(`the sample id holds no printable text (${JSON.stringify(sampleId)})`);
    const resultAt = new Date().toISOString();
    const results: LabResult[] = [];
    for (const a of this.opts.analytes) {
      const raw = block.values.get(a.name);
      const value = typeof raw === 'boolean' ? Number(raw) : (raw ?? null);
      const flags =
        typeof value === 'number' && a.reference
          ? [
              a.reference.lo !== undefined && value < a.reference.lo
                ? 'L'
                : a.reference.hi !== undefined && value > a.reference.hi
                  ? 'H'
                  : 'N',
            ]
          : [];
      const reference = a.reference
        ? {
            ...(a.reference.lo !== undefined ? { lo: a.reference.lo } : {}),
            ...(a.reference.hi !== undefined ? { hi: a.reference.hi } : {}),
          }
        : undefined;
      const base = {
        instrument: this.opts.equipment,
        sampleId,
        analyte: a.name,
        value,
        ...(a.unit ? { unit: a.unit } : {}),
        flags,
        status: 'final',
        resultAt,
        ...(reference ? { reference } : {}),
      };
      const resultId =
        counter === undefined ? resultIdFromContent(base) : resultIdFromSequence(this.opts.equipment, `${next.series}.${counter}`, a.name);
      results.push({ resultId, ...base });
    }
    try {
      this.opts.sink(results, { key: this.key, state: next });
    } catch (err) {
      return this.failed(`the results could not be stored: ${(err as Error).message}`);
    }
    this.state = next;
    this.unsaved = false;
    this.stats.results += results.length;
    this.lastError = undefined;
    return true;
  }

  private failed(reason: string): boolean {
    this.stats.blockErrors++;
    // Once per reason: the block is read again at the next trigger reading.
    if (reason !== this.lastError)
      this.opts.log.error({ equipment: this.opts.equipment, reason }, 'Lab result not taken; trying again at the next reading');
    this.lastError = reason;
    return false;
  }

  /**
   * Keeps a counter state that comes with no result. A store that cannot write now (disk full) does
   * not stop the gateway: the state is kept in memory and written with the next one; the worst a
   * crash meanwhile does is count the same reset once more (a new series: ids stay unique).
   */
  private save(state: State): void {
    this.state = state;
    try {
      this.opts.counters.save(this.key, state);
      this.unsaved = false;
    } catch (err) {
      this.unsaved = true;
      this.saveFailedLog((notLogged) =>
        this.opts.log.error(
          { equipment: this.opts.equipment, err, ...(notLogged ? { notLogged } : {}) },
          'Result counter state not written to the store; kept in memory and written with the next one',
        ),
      );
    }
  }

  /** True while a counter state waits to be written (for tests and metrics). */
  get pendingSave(): boolean {
    return this.unsaved;
  }
}
