import type { Driver, DriverContext, DriverDefinition, EquipmentBase, Reading } from '../types.js';
import { MODELS, simConnectionSchema, simEquipmentSchema, simPointSchema, type SimConnection, type SimEquipment } from './schema.js';
import { steamBoilerAt } from './steam-boiler.js';

type Equipment = EquipmentBase & SimEquipment;

/** Polls each simulated equipment on its own drift-free schedule. */
class SimDriver implements Driver {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private started = false;

  constructor(
    private readonly connection: SimConnection,
    private readonly equipment: Equipment[],
    private readonly ctx: DriverContext,
  ) {}

  async init(): Promise<void> {}

  async start(): Promise<void> {
    this.started = true;
    const origin = Date.now();
    for (const eq of this.equipment) this.schedule(eq, origin, 0);
    this.ctx.log.info({ equipment: this.equipment.map((e) => e.id) }, 'Simulation started');
  }

  async stop(): Promise<void> {
    this.started = false;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** Polls at origin + n * interval; an overrun skips ahead instead of queueing polls up. */
  private schedule(eq: Equipment, origin: number, n: number): void {
    if (!this.started) return;
    const due = origin + n * eq.poll_interval;
    const timer = setTimeout(() => {
      this.poll(eq, origin);
      const next = Math.max(n + 1, Math.floor((Date.now() - origin) / eq.poll_interval) + 1);
      this.schedule(eq, origin, next);
    }, Math.max(0, due - Date.now()));
    this.timers.set(eq.id, timer);
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

export const simDriver: DriverDefinition = {
  type: 'sim',
  summary: `Simulated equipment (${Object.keys(MODELS).join(', ')}) following a scripted scenario; used by the demo and the tests.`,
  connectionSchema: simConnectionSchema,
  equipmentSchema: simEquipmentSchema,
  pointSchema: simPointSchema,
  // The site loader parsed both with the schemas above.
  create: (connection, equipment, ctx) => new SimDriver(connection as SimConnection, equipment as unknown as Equipment[], ctx),
};
