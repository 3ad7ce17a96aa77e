// A lab analyzer on Modbus: when its trigger point shows a new result (a counter that changed, a
// flag that turned true), its result block is read (sample id as text, one value per analyte) and
// handed to the result sink. The counter, and a series number that grows each time the analyzer
// resets its counter, are kept in the data folder, so a result keeps its id across restarts and a
// counter reset never makes a new result look like an old one.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { resultIdFromContent, resultIdFromSequence, type LabResult } from '../common/result.js';
import type { Reading, ResultSink } from '../types.js';
import type { ModbusLink } from './link.js';
import { planRequests } from './planner.js';
import type { ModbusEquipment } from './schema.js';
import { compilePoint, pointValue, type CompiledPoint } from './index.js';

type Results = NonNullable<ModbusEquipment['results']>;

interface State {
  /** Series of counter values: grows when the analyzer resets its counter. */
  series: number;
  last: number | boolean | undefined;
}

export interface ResultBlockStats {
  results: number;
  gaps: number;
  missed: number;
  resets: number;
  blockErrors: number;
}

export class ResultBlockReader {
  private readonly sample: CompiledPoint;
  private readonly analytes: Array<CompiledPoint & { unit?: string; reference?: { lo?: number; hi?: number } }>;
  private readonly file: string;
  private state: State;
  private reading = false;
  private lastError: string | undefined;
  readonly stats: ResultBlockStats = { results: 0, gaps: 0, missed: 0, resets: 0, blockErrors: 0 };

  private readonly trigger: CompiledPoint;

  constructor(
    private readonly equipment: { id: string; unit_id: number; byte_order: ModbusEquipment['byte_order']; points: ModbusEquipment['points'] },
    private readonly cfg: Results,
    private readonly link: ModbusLink,
    private readonly sink: ResultSink,
    private readonly log: Logger,
    dataDir: string,
    private readonly limits: { maxGap: number; maxRegisters: number },
  ) {
    this.sample = compilePoint({ name: 'sample_id', address: cfg.sample_id.address, type: 'string', length: cfg.sample_id.length, byte_order: cfg.sample_id.byte_order }, equipment.byte_order);
    this.analytes = cfg.analytes.map((a) => ({ ...compilePoint(a, equipment.byte_order), ...(a.unit ? { unit: a.unit } : {}), ...(a.reference ? { reference: a.reference } : {}) }));
    this.trigger = compilePoint(equipment.points.find((p) => p.name === cfg.trigger)!, equipment.byte_order);
    this.file = join(dataDir, `lab-results-${equipment.id}.json`);
    this.state = this.load();
  }

  /** Called with each poll's readings; reads the block when the trigger shows a new result. */
  async onReadings(readings: readonly Reading[]): Promise<void> {
    const trigger = readings.find((r) => r.point === this.cfg.trigger);
    if (!trigger || trigger.quality !== 'good' || this.reading) return;
    const value = trigger.value;
    this.reading = true;
    try {
      if (this.cfg.kind === 'flag') {
        const ready = value === true || (typeof value === 'number' && value !== 0);
        if (ready && this.state.last !== true) {
          if (await this.capture(undefined)) this.save({ ...this.state, last: true });
        } else if (!ready && this.state.last !== false) {
          this.save({ ...this.state, last: false });
        }
        return;
      }
      if (typeof value !== 'number' || !Number.isInteger(value)) return;
      const last = typeof this.state.last === 'number' ? this.state.last : undefined;
      if (value === last) return;
      if (last !== undefined && value < last) {
        // The analyzer started counting again (a restart, a reset): a new series, so ids stay unique.
        this.stats.resets++;
        this.log.warn({ equipment: this.equipment.id, from: last, to: value, series: this.state.series + 1 }, 'Result counter went back: the analyzer reset it; counting a new series');
        this.save({ series: this.state.series + 1, last: value });
        if (value === 0) return;
      } else if (value === 0) {
        // Nothing measured yet.
        this.save({ ...this.state, last: 0 });
        return;
      } else if (last !== undefined && value > last + 1) {
        this.stats.gaps++;
        this.stats.missed += value - last - 1;
        this.log.warn({ equipment: this.equipment.id, from: last, to: value, missed: value - last - 1 }, 'Result counter jumped: results in between were not read (the analyzer holds only its latest result)');
      }
      if (await this.capture(value)) this.save({ ...this.state, last: value });
    } finally {
      this.reading = false;
    }
  }

  /** Reads the block and stores its results; false (and a log line) when it cannot, to try again. */
  private async capture(counter: number | undefined): Promise<boolean> {
    // The trigger is read again with the block: if it moved meanwhile, the block may be the next result's.
    const points = [this.sample, ...this.analytes, this.trigger];
    const requests = planRequests(
      points.map((p) => ({ unit: this.equipment.unit_id, area: p.area, offset: p.offset, count: p.count })),
      { maxGap: this.limits.maxGap, maxRegisters: this.limits.maxRegisters },
    );
    const values = new Map<CompiledPoint, Reading['value']>();
    try {
      for (const req of requests) {
        const words = await this.link.read(this.equipment.unit_id, req.area, req.start, req.count);
        for (const i of req.points) {
          const p = points[i]!;
          const { value, bad } = pointValue(p, words, req.start);
          if (bad) throw new Error(`${p.name}: ${bad}`);
          values.set(p, value);
        }
      }
    } catch (err) {
      return this.failed(`the result block could not be read: ${(err as Error).message}`);
    }
    const now = values.get(this.trigger);
    if (counter !== undefined && now !== counter) return this.failed(`the result counter moved from ${counter} to ${String(now)} while the block was read`, false);
    const sampleId = String(values.get(this.sample) ?? '').replace(/[\0 ]+$/, '');
    if (!/^[\x21-\x7e][\x20-\x7e]{0,63}$/.test(sampleId)) return this.failed(`the sample id registers hold no printable text (${JSON.stringify(sampleId)})`);
    const resultAt = new Date().toISOString();
    const results: LabResult[] = this.analytes.map((a) => {
      const value = values.get(a) as number | string | null;
      const flags = typeof value === 'number' && a.reference ? [a.reference.lo !== undefined && value < a.reference.lo ? 'L' : a.reference.hi !== undefined && value > a.reference.hi ? 'H' : 'N'] : [];
      const base = { instrument: this.equipment.id, sampleId, analyte: a.name, value, ...(a.unit ? { unit: a.unit } : {}), flags, status: 'final', resultAt, ...(a.reference ? { reference: a.reference } : {}) };
      const resultId = counter === undefined ? resultIdFromContent(base) : resultIdFromSequence(this.equipment.id, `${this.state.series}.${counter}`, a.name);
      return { resultId, ...base };
    });
    try {
      this.sink(results);
    } catch (err) {
      return this.failed(`the results could not be stored: ${(err as Error).message}`);
    }
    this.stats.results += results.length;
    this.lastError = undefined;
    return true;
  }

  private failed(reason: string, error = true): boolean {
    if (!error) return false;
    this.stats.blockErrors++;
    // Once per reason: the block is read again at the next poll.
    if (reason !== this.lastError) this.log.error({ equipment: this.equipment.id, reason }, 'Lab result not taken; trying again at the next poll');
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
