// A lab analyzer on Modbus: its result block (sample id as text, one value per analyte) read through
// the connection when its trigger point shows a new result (../common/result-trigger.ts).
import type { Logger } from 'pino';
import { ResultTrigger } from '../common/result-trigger.js';
import type { CounterStore, Reading, ResultSink } from '../types.js';
import type { ModbusLink } from './link.js';
import { planRequests } from './planner.js';
import type { ModbusEquipment } from './schema.js';
import { compilePoint, pointValue, type CompiledPoint } from './points.js';

type Results = NonNullable<ModbusEquipment['results']>;

export class ResultBlockReader {
  readonly trigger: ResultTrigger;

  constructor(
    equipment: { id: string; unit_id: number; byte_order: ModbusEquipment['byte_order']; points: ModbusEquipment['points'] },
    private readonly cfg: Results,
    link: ModbusLink,
    sink: ResultSink,
    log: Logger,
    counters: CounterStore,
    limits: { maxGap: number; maxRegisters: number },
  ) {
    const sample = compilePoint(
      {
        name: 'sample_id',
        address: cfg.sample_id.address,
        type: 'string',
        length: cfg.sample_id.length,
        byte_order: cfg.sample_id.byte_order,
      },
      equipment.byte_order,
    );
    const analytes = cfg.analytes.map((a) => compilePoint(a, equipment.byte_order));
    const trigger = compilePoint(
      equipment.points.find((p) => p.name === cfg.trigger)!,
      equipment.byte_order,
    );
    const points: CompiledPoint[] = [sample, ...analytes, trigger];
    const requests = planRequests(
      points.map((p) => ({ unit: equipment.unit_id, area: p.area, offset: p.offset, count: p.count })),
      { maxGap: limits.maxGap, maxRegisters: limits.maxRegisters },
    );
    this.trigger = new ResultTrigger({
      equipment: equipment.id,
      kind: cfg.kind,
      analytes: cfg.analytes,
      sink,
      log,
      counters,
      read: async () => {
        const values = new Map<CompiledPoint, Reading['value']>();
        for (const req of requests) {
          const words = await link.read(equipment.unit_id, req.area, req.start, req.count);
          for (const i of req.points) {
            const p = points[i]!;
            const { value, bad } = pointValue(p, words, req.start);
            if (bad) throw new Error(`${p.name}: ${bad}`);
            values.set(p, value);
          }
        }
        return {
          sampleId: values.get(sample) ?? null,
          values: new Map(analytes.map((a) => [a.name, values.get(a) ?? null])),
          trigger: values.get(trigger) ?? null,
        };
      },
    });
  }

  /** Called with each poll's readings. */
  async onReadings(readings: readonly Reading[]): Promise<void> {
    const t = readings.find((r) => r.point === this.cfg.trigger);
    if (t && t.quality === 'good') await this.trigger.onValue(t.value);
  }

  get stats() {
    return this.trigger.stats;
  }
}
