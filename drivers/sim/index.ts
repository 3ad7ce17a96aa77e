import { defineDriver, type Driver, type DriverContext, type EquipmentBase, type Reading } from '../types.js';
import { MODELS, simConnectionSchema, simEquipmentSchema, simPointSchema, type SimConnection, type SimEquipment } from './schema.js';
import { steamBoilerAt } from './steam-boiler.js';
import { onGrid } from '../common/schedule.js';

type Equipment = EquipmentBase & SimEquipment;

/** Polls each simulated equipment on its own grid. */
class SimDriver implements Driver {
  private readonly schedules: Array<{ stop(): void }> = [];

  constructor(
    private readonly connection: SimConnection,
    private readonly equipment: Equipment[],
    private readonly ctx: DriverContext,
  ) {}

  async init(): Promise<void> {}

  async start(): Promise<void> {
    const origin = Date.now();
    for (const eq of this.equipment) this.schedules.push(onGrid(eq.poll_interval, () => this.poll(eq, origin)));
    this.ctx.log.info({ equipment: this.equipment.map((e) => e.id) }, 'Simulation started');
  }

  async stop(): Promise<void> {
    for (const s of this.schedules.splice(0)) s.stop();
  }

  private poll(eq: Equipment, origin: number): void {
    const ts = Date.now();
    const state: Record<string, number | boolean> = steamBoilerAt(ts - origin, eq.scenario, this.connection.seed);
    const batch: Reading[] = eq.points.map((p) => ({
      equipment: eq.id,
      point: p.name,
      value: state[p.signal ?? p.name] ?? null,
      quality: 'good',
      ts,
    }));
    this.ctx.sink(batch);
  }
}

export const simDriver = defineDriver({
  type: 'sim',
  summary: `Simulated equipment (${Object.keys(MODELS).join(', ')}) following a scripted scenario; used by the demo and the tests.`,
  connectionSchema: simConnectionSchema,
  equipmentSchema: simEquipmentSchema,
  pointSchema: simPointSchema,
  capabilities: { reportsOnChange: false, labResults: false, writes: false },
  create: (connection, equipment, ctx) => new SimDriver(connection, equipment, ctx),
});
