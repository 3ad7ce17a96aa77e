// The Modbus driver: polls each equipment's points on their intervals through one link per
// connection, backs off units that keep failing, and reads lab results blocks.
import type { Logger } from 'pino';
import type { Driver, DriverContext, EquipmentBase, Reading } from '../types.js';
import { compilePoint, pointValue, type CompiledPoint } from './points.js';
import { createModbusLink, type ModbusFailure, type ModbusLink, type ModbusLinkStats, toFailure } from './link.js';
import { planRequests, type Request } from './planner.js';
import { onGrid } from '../common/schedule.js';
import { ResultBlockReader } from './results.js';
import type { ModbusConnection, ModbusEquipment } from './schema.js';

export type Equipment = EquipmentBase & ModbusEquipment;

interface Group {
  eq: Equipment;
  interval: number;
  points: CompiledPoint[];
  requests: Request[];
  running: boolean;
  overruns: number;
}

interface UnitHealth {
  failures: number;
  reason: string;
  lastTry: number;
}

export type ModbusDriverStats = ModbusLinkStats & {
  requests: number;
  failures: number;
  overruns: number;
  backedOffUnits: number;
  connects: number;
  results?: number;
  resultGaps?: number;
  resultsMissed?: number;
  counterResets?: number;
  resultBlockErrors?: number;
};

class ModbusDriver implements Driver {
  private readonly link: ModbusLink;
  private readonly groups: Group[] = [];
  private readonly health = new Map<number, UnitHealth>();
  private readonly schedules: Array<{ stop(): void }> = [];
  private readonly counters = { requests: 0, failures: 0, overruns: 0 };
  private readonly log: Logger;
  private readonly resultReaders = new Map<string, ResultBlockReader>();

  constructor(
    private readonly conn: ModbusConnection,
    private readonly equipment: Equipment[],
    private readonly ctx: DriverContext,
  ) {
    this.log = ctx.log;
    this.link = createModbusLink(conn, ctx.log);
    for (const eq of equipment) {
      if (!eq.results) continue;
      if (!ctx.results || !ctx.counters) throw new Error(`Equipment ${eq.id} has a results block, and this gateway takes no lab results`);
      this.resultReaders.set(
        eq.id,
        new ResultBlockReader(eq, eq.results, this.link, ctx.results, ctx.log, ctx.counters, {
          maxGap: conn.max_gap,
          maxRegisters: conn.max_registers_per_read,
        }),
      );
    }
  }

  async init(): Promise<void> {
    for (const reader of this.resultReaders.values()) reader.trigger.init();
    for (const eq of this.equipment) {
      const byInterval = new Map<number, CompiledPoint[]>();
      for (const p of eq.points) {
        const interval = p.poll_interval ?? eq.poll_interval;
        const list = byInterval.get(interval) ?? [];
        list.push(compilePoint(p, eq.byte_order));
        byInterval.set(interval, list);
      }
      for (const [interval, points] of byInterval) {
        const requests = planRequests(
          points.map((p) => ({ unit: eq.unit_id, area: p.area, offset: p.offset, count: p.count })),
          { maxGap: this.conn.max_gap, maxRegisters: this.conn.max_registers_per_read },
        );
        this.groups.push({ eq, interval, points, requests, running: false, overruns: 0 });
      }
    }
    const requests = this.groups.reduce((n, g) => n + g.requests.length, 0);
    const points = this.groups.reduce((n, g) => n + g.points.length, 0);
    this.log.info({ points, requests }, 'Modbus poll plan ready');
  }

  async start(): Promise<void> {
    // The first poll waits for the first attempt to connect (at most one timeout), so a reachable
    // device is never reported offline at start.
    await Promise.race([this.link.start(), new Promise((r) => setTimeout(r, this.conn.timeout))]);
    for (const g of this.groups) this.schedules.push(onGrid(g.interval, () => void this.poll(g)));
  }

  async stop(): Promise<void> {
    for (const s of this.schedules.splice(0)) s.stop();
    await this.link.stop();
  }

  stats(): ModbusDriverStats {
    const threshold = this.conn.failures_before_backoff;
    const results = { results: 0, resultGaps: 0, resultsMissed: 0, counterResets: 0, resultBlockErrors: 0 };
    for (const r of this.resultReaders.values()) {
      results.results += r.stats.results;
      results.resultGaps += r.stats.gaps;
      results.resultsMissed += r.stats.missed;
      results.counterResets += r.stats.resets;
      results.resultBlockErrors += r.stats.blockErrors;
    }
    return {
      ...this.counters,
      ...this.link.stats,
      backedOffUnits: [...this.health.values()].filter((h) => h.failures >= threshold).length,
      connects: this.link.connects,
      ...(this.resultReaders.size > 0 ? results : {}),
    };
  }

  private async poll(g: Group): Promise<void> {
    if (g.running) {
      // The previous poll still waits for answers: count it, and do not stack another behind it.
      if (g.overruns++ === 0)
        this.log.warn({ equipment: g.eq.id, interval: g.interval }, 'Poll overran its interval; skipping polls until it completes');
      this.counters.overruns++;
      return;
    }
    g.running = true;
    try {
      const readings = await this.read(g);
      this.ctx.sink(readings);
      // A lab analyzer: a new result shown by its trigger point is read now.
      await this.resultReaders.get(g.eq.id)?.onReadings(readings);
    } catch (err) {
      this.log.error({ err, equipment: g.eq.id }, 'Modbus poll failed unexpectedly');
    } finally {
      g.running = false;
    }
  }

  private async read(g: Group): Promise<Reading[]> {
    const ts = Date.now();
    const unit = g.eq.unit_id;
    const health = this.health.get(unit) ?? { failures: 0, reason: '', lastTry: 0 };
    this.health.set(unit, health);
    const backedOff = health.failures >= this.conn.failures_before_backoff;
    if (!this.link.connected) return this.allBad(g, ts, `not connected: ${this.link.downReason}`);
    if (backedOff && ts - health.lastTry < this.conn.backoff_poll_interval) return this.allBad(g, ts, health.reason);
    health.lastTry = ts;

    const readings: Reading[] = [];
    let deviceFailure: ModbusFailure | undefined;
    /** A refused answer when no request of the poll got a good one: the unit is backed off for it too. */
    let refused: ModbusFailure | undefined;
    let answered = false;
    for (const req of g.requests) {
      let failure: ModbusFailure | undefined = deviceFailure;
      let words: number[] | undefined;
      if (!failure) {
        this.counters.requests++;
        try {
          words = await this.link.read(unit, req.area, req.start, req.count);
          answered = true;
        } catch (err) {
          failure = toFailure(err);
          this.counters.failures++;
          if (failure.kind === 'protocol') refused ??= failure;
          // An exception or a refused answer is an answer: the device is alive and the poll goes on
          // with its other requests. No answer, or no connection, ends this poll of the unit.
          if (failure.kind === 'timeout' || failure.kind === 'framing' || failure.kind === 'connection') deviceFailure = failure;
        }
      }
      for (const i of req.points) {
        const p = g.points[i]!;
        if (failure || !words) {
          readings.push({ equipment: g.eq.id, point: p.name, value: null, quality: 'bad', reason: failure?.reason ?? 'no data', ts });
          continue;
        }
        const { value, bad } = pointValue(p, words, req.start);
        readings.push(
          bad
            ? { equipment: g.eq.id, point: p.name, value: null, quality: 'bad', reason: bad, ts }
            : { equipment: g.eq.id, point: p.name, value, quality: 'good', ts },
        );
      }
    }

    // A unit is backed off when it does not answer, breaks the byte stream or has every answer
    // refused (it disturbs the line and delivers nothing); not when the connection it shares is
    // down or was reset because of another unit (that would slow the healthy ones down).
    const unitFailure =
      deviceFailure && deviceFailure.kind !== 'connection' ? deviceFailure : !answered && !deviceFailure ? refused : undefined;
    if (unitFailure) {
      health.failures++;
      health.reason = unitFailure.reason;
      if (health.failures === this.conn.failures_before_backoff) {
        this.log.warn(
          { equipment: g.eq.id, unit, reason: health.reason, every: this.conn.backoff_poll_interval },
          'Modbus unit keeps failing; polling it at the reduced rate until it answers',
        );
      }
    } else if (!deviceFailure) {
      if (backedOff) this.log.info({ equipment: g.eq.id, unit }, 'Modbus unit answers again');
      health.failures = 0;
    }
    return readings;
  }

  private allBad(g: Group, ts: number, reason: string): Reading[] {
    return g.points.map((p) => ({ equipment: g.eq.id, point: p.name, value: null, quality: 'bad' as const, reason, ts }));
  }
}

export function createModbusDriver(connection: ModbusConnection, equipment: Equipment[], ctx: DriverContext): Driver {
  return new ModbusDriver(connection, equipment, ctx);
}
