import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseSite } from '../../../../config/load.js';
import { simDriver } from '../../../../drivers/sim/index.js';
import type { Reading } from '../../../../drivers/types.js';

const config = parseSite(
  `
version: 1
gateway: { id: gw-1, site: plant-1 }
connections: [{ id: sim, type: sim, seed: 3 }]
equipment:
  - id: B-1
    category: boiler
    connection: sim
    model: steam-boiler
    poll_interval: 250ms
    scenario: { normal: 1s, hazard: 30s, recovery: 30s }
    points: [{ name: level, signal: drum_level }, { name: flame }]
  - { id: B-2, category: boiler, connection: sim, model: steam-boiler, poll_interval: 1s, points: [{ name: steam_pressure }] }
`,
  { env: {} },
);

describe('sim driver', () => {
  let batches: Reading[][];
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    batches = [];
  });
  afterEach(() => vi.useRealTimers());

  const start = async () => {
    const driver = simDriver.create(config.connections[0]!, config.equipment, {
      log: pino({ level: 'silent' }),
      sink: (b) => batches.push(b),
      dataDir: '/nonexistent',
    });
    await driver.init();
    await driver.start();
    return driver;
  };

  it('polls each equipment at its own interval, one batch per poll, with good quality and gateway time', async () => {
    const driver = await start();
    await vi.advanceTimersByTimeAsync(2000);
    const b1 = batches.filter((b) => b[0]!.equipment === 'B-1');
    const b2 = batches.filter((b) => b[0]!.equipment === 'B-2');
    expect(b1.map((b) => b[0]!.ts - 1_000_000)).toEqual([0, 250, 500, 750, 1000, 1250, 1500, 1750, 2000]);
    expect(b2.map((b) => b[0]!.ts - 1_000_000)).toEqual([0, 1000, 2000]);
    expect(b1[0]!.map((r) => [r.point, r.quality])).toEqual([
      ['level', 'good'],
      ['flame', 'good'],
    ]);
    expect(typeof b1[0]![0]!.value).toBe('number');
    expect(b1[0]![1]!.value).toBe(true);
    await driver.stop();
  });

  it('does not queue up polls behind a stalled event loop, and does not drift', async () => {
    const driver = await start();
    await vi.advanceTimersByTimeAsync(10);
    batches = [];
    vi.setSystemTime(1_000_000 + 1100); // the loop was blocked for a second
    await vi.advanceTimersByTimeAsync(400);
    const times = batches.filter((b) => b[0]!.equipment === 'B-1').map((b) => b[0]!.ts - 1_000_000);
    // One late poll, then back on the 250 ms grid: no burst of the four missed ones.
    // The poll that was due fires late, once; the next is back on the 250 ms grid. No burst of missed polls.
    expect(times).toEqual([1340, 1500]);
    await driver.stop();
  });

  it('follows the scenario: the drum level falls during the hazard', async () => {
    const driver = await start();
    await vi.advanceTimersByTimeAsync(13_000);
    const levels = batches.filter((b) => b[0]!.equipment === 'B-1').map((b) => b[0]!.value as number);
    expect(Math.min(...levels)).toBeLessThan(-200);
    await driver.stop();
  });

  it('stops polling when stopped', async () => {
    const driver = await start();
    await vi.advanceTimersByTimeAsync(500);
    await driver.stop();
    const n = batches.length;
    await vi.advanceTimersByTimeAsync(5000);
    expect(batches.length).toBe(n);
  });
});
