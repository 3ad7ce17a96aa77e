// Modbus RTU over a real serial line: socat joins two pseudo-terminals, the driver on one end and
// the project's RTU simulator on the other.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSite } from '../../config/load.js';
import { encode } from '../../drivers/modbus/codec.js';
import { modbusRtuDriver } from '../../drivers/modbus/index.js';
import {
  BoilerDevice,
  createModbusRtuSimulator,
  RegisterBank,
  type ModbusSimulator,
  type SimDevice,
} from '../../drivers/modbus/simulator.js';
import type { Driver, Reading } from '../../drivers/types.js';
import { startPtyPair, type PtyPair } from '../helpers/socat.js';

const silent = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Modbus RTU through a socat pseudo-terminal pair', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });

  const setup = async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-rtu-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    let pty: PtyPair = await startPtyPair(dir);
    cleanup.push(() => pty.stop());
    const bank = new RegisterBank();
    bank.set('hr', 0, encode(-40.5, 'float32', 'CDAB'));
    bank.set('hr', 2, encode(1234, 'int16', 'ABCD'));
    bank.set('di', 3, [1]);
    const devices = new Map<number, SimDevice>([
      [1, new BoilerDevice({ normal: 60_000, hazard: 30_000, recovery: 30_000, repeat: true }, 5)],
      [2, bank],
    ]);
    let sim: ModbusSimulator = createModbusRtuSimulator({ path: pty.b, baudRate: 19200, parity: 'even', devices });
    await sim.start();
    cleanup.push(() => sim.stop());

    const cfg = parseSite(
      `version: 1
gateway: { id: g, site: s }
connections:
  - { id: bus, type: modbus-rtu, path: ${pty.a}, baud_rate: 19200, parity: even, timeout: 200ms, failures_before_backoff: 2, backoff_poll_interval: 3s, reconnect: { initial_delay: 100ms, max_delay: 500ms } }
equipment:
  - { id: B-1, category: boiler, connection: bus, unit_id: 1, poll_interval: 500ms, points: [{ name: drum_level, address: "hr:110", type: int16 }, { name: flame, address: "di:0" }] }
  - { id: A-2, category: lab_analyzer, connection: bus, unit_id: 2, poll_interval: 500ms, points: [{ name: temp, address: "hr:0", type: float32, byte_order: CDAB }, { name: count, address: "hr:2", type: int16 }, { name: ready, address: "di:3" }] }
`,
      { env: {} },
    );
    const readings: Reading[] = [];
    const driver: Driver = modbusRtuDriver.create(cfg.connections[0]!, cfg.equipment, {
      log: silent,
      sink: (b) => readings.push(...b),
      dataDir: '/nonexistent',
    });
    await driver.init();
    await driver.start();
    cleanup.push(() => driver.stop());
    const good = (eq: string, since: number) =>
      readings.filter(
        (r) => r.equipment === eq && r.quality === 'good' && r.ts >= since && (r.point === 'drum_level' || r.point === 'temp'),
      ).length;
    return {
      readings,
      good,
      driver,
      devices,
      sim: () => sim,
      async replaceLine() {
        // The serial line goes away (a USB adapter unplugged) and comes back.
        await sim.stop();
        await pty.stop();
        await sleep(500);
        pty = await startPtyPair(dir);
        sim = createModbusRtuSimulator({ path: pty.b, baudRate: 19200, parity: 'even', devices });
        await sim.start();
      },
    };
  };

  it('reads several unit ids on one bus, with their types and byte orders', async () => {
    const { readings, good } = await setup();
    await expect.poll(() => good('A-2', 0) > 0 && good('B-1', 0) > 0, { timeout: 5000 }).toBe(true);
    const a2 = Object.fromEntries(
      readings
        .filter((r) => r.equipment === 'A-2')
        .slice(-3)
        .map((r) => [r.point, r.value]),
    );
    expect(a2).toEqual({ temp: -40.5, count: 1234, ready: true });
    expect(readings.filter((r) => r.equipment === 'B-1' && r.point === 'flame').at(-1)?.value).toBe(true);
  });

  it('a dead unit is backed off so the other keeps its rate, and recovers when it answers', async () => {
    const { readings, good, sim, driver } = await setup();
    await expect.poll(() => good('A-2', 0), { timeout: 5000 }).toBeGreaterThan(0);
    sim().control(2).paused = true;
    await sleep(1500); // two timeouts, then backed off
    const t0 = Date.now();
    await sleep(2000);
    expect(good('B-1', t0)).toBeGreaterThanOrEqual(3);
    expect(driver.stats!().backedOffUnits).toBe(1);
    // Backed off, it is still reported at its poll rate, as bad with the reason, not left out.
    const dead = readings.filter((r) => r.equipment === 'A-2' && r.ts >= t0);
    expect(dead.length).toBeGreaterThan(0);
    expect(dead.filter((r) => r.quality !== 'bad' || r.reason !== 'timeout')).toEqual([]);
    sim().control(2).paused = false;
    const back = Date.now();
    await expect.poll(() => good('A-2', back), { timeout: 5000 }).toBeGreaterThan(0);
    expect(driver.stats!().backedOffUnits).toBe(0);
  });

  it('reopens the serial port after it disappears', async () => {
    const { readings, good, replaceLine, driver } = await setup();
    await expect.poll(() => good('B-1', 0), { timeout: 5000 }).toBeGreaterThan(0);
    const connects = driver.stats!().connects!;
    const gone = Date.now();
    await replaceLine();
    expect(readings.some((r) => r.ts > gone && r.quality === 'bad')).toBe(true);
    const back = Date.now();
    await expect.poll(() => good('B-1', back) > 0 && good('A-2', back) > 0, { timeout: 8000 }).toBe(true);
    expect(driver.stats!().connects).toBeGreaterThan(connects);
  });
});
