// A lab analyzer that shows its latest result in a block (Modbus registers, OPC UA nodes): when its
// trigger (a result counter that changed, a ready flag that turned true) shows a new result, the
// block is read and its results handed to the sink. The counter, and a series number that grows each
// time the analyzer resets its counter, are kept in the data folder, so a result keeps its id across
// restarts and a counter reset never makes a new result look like an old one.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { resultIdFromContent, resultIdFromSequence, type LabResult } from './result.js';
import type { Reading, ResultSink } from '../types.js';

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

export interface ResultTriggerStats {
  results: number;
  gaps: number;
  missed: number;
  resets: number;
  blockErrors: number;
}

export class ResultTrigger {
  private state: State;
  private busy = false;
  /** A trigger value that came while the block was being read: handled right after. */
  private queued: { value: Reading['value'] } | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastError: string | undefined;
  private readonly file: string;
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
      dataDir: string;
    },
  ) {
    this.file = join(opts.dataDir, `lab-results-${opts.equipment}.json`);
    this.state = this.load();
  }

  /** A good reading of the trigger point. */
  async onValue(value: Reading['value']): Promise<void> {
    if (this.stopped) return;
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
        if (!ok && !current && this.opts.retryMs !== undefined && !this.stopped) this.retry = setTimeout(() => void this.onValue(failedValue), this.opts.retryMs);
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
    if (this.opts.kind === 'flag') {
      const ready = value === true || (typeof value === 'number' && value !== 0);
      if (ready && this.state.last !== true) {
        if (!(await this.capture(undefined))) return false;
        this.save({ ...this.state, last: true });
      } else if (!ready && this.state.last !== false) {
        this.save({ ...this.state, last: false });
      }
      return true;
    }
    if (typeof value !== 'number' || !Number.isInteger(value)) return true;
    const last = typeof this.state.last === 'number' ? this.state.last : undefined;
    if (value === last) return true;
    if (last !== undefined && value < last) {
      // The analyzer started counting again (a restart, a reset): a new series, so ids stay unique.
      this.stats.resets++;
      log.warn({ equipment, from: last, to: value, series: this.state.series + 1 }, 'Result counter went back: the analyzer reset it; counting a new series');
      this.save({ series: this.state.series + 1, last: value });
      if (value === 0) return true;
    } else if (value === 0) {
      // Nothing measured yet.
      this.save({ ...this.state, last: 0 });
      return true;
    } else if (last !== undefined && value > last + 1) {
      this.stats.gaps++;
      this.stats.missed += value - last - 1;
      log.warn({ equipment, from: last, to: value, missed: value - last - 1 }, 'Result counter jumped: results in between were not read (the analyzer holds only its latest result)');
    }
    if (!(await this.capture(value))) return false;
    this.save({ ...this.state, last: value });
    return true;
  }

  /** Reads the block and stores its results; false (and a log line) when it cannot, to try again. */
  private async capture(counter: number | undefined): Promise<boolean> {
    let block: Block;
    try {
      block = await this.opts.read();
    } catch (err) {
      return this.failed(`the result block could not be read: ${(err as Error).message}`);
    }
    // The trigger, read again with the block: if it moved meanwhile, the block may be the next result's.
    if (counter !== undefined && block.trigger !== counter) return false;
    const sampleId = String(block.sampleId ?? '').replace(/[\0 ]+$/, '');
    if (!/^[\x21-\x7e][\x20-\x7e]{0,63}$/.test(sampleId)) return this.failed(`the sample id holds no printable text (${JSON.stringify(sampleId)})`);
    const resultAt = new Date().toISOString();
    const results: LabResult[] = [];
    for (const a of this.opts.analytes) {
      const raw = block.values.get(a.name);
      const value = typeof raw === 'boolean' ? Number(raw) : (raw ?? null);
      const flags = typeof value === 'number' && a.reference ? [a.reference.lo !== undefined && value < a.reference.lo ? 'L' : a.reference.hi !== undefined && value > a.reference.hi ? 'H' : 'N'] : [];
      const reference = a.reference ? { ...(a.reference.lo !== undefined ? { lo: a.reference.lo } : {}), ...(a.reference.hi !== undefined ? { hi: a.reference.hi } : {}) } : undefined;
      const base = { instrument: this.opts.equipment, sampleId, analyte: a.name, value, ...(a.unit ? { unit: a.unit } : {}), flags, status: 'final', resultAt, ...(reference ? { reference } : {}) };
      const resultId = counter === undefined ? resultIdFromContent(base) : resultIdFromSequence(this.opts.equipment, `${this.state.series}.${counter}`, a.name);
      results.push({ resultId, ...base });
    }
    try {
      this.opts.sink(results);
    } catch (err) {
      return this.failed(`the results could not be stored: ${(err as Error).message}`);
    }
    this.stats.results += results.length;
    this.lastError = undefined;
    return true;
  }

  private failed(reason: string): boolean {
    this.stats.blockErrors++;
    // Once per reason: the block is read again at the next trigger reading.
    if (reason !== this.lastError) this.opts.log.error({ equipment: this.opts.equipment, reason }, 'Lab result not taken; trying again at the next reading');
    this.lastError = reason;
    return false;
  }

  private load(): State {
    try {
      return JSON.parse(readFileSync(this.file, 'utf8')) as State;
    } catch {
      return { series: 0, last: undefined };
    }
  }

  /** Written atomically (temporary file, rename). */
  private save(state: State): void {
    this.state = state;
    writeFileSync(`${this.file}.tmp`, JSON.stringify(state));
    renameSync(`${this.file}.tmp`, this.file);
  }
}
