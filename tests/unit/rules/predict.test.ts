// Predicted warnings through the real template rules and engine: the demo boiler's feed-pump trip is
// foretold before its red drum-level alarm, a noisy but steady signal foretells nothing, and a trend
// that hovers around the horizon does not flap.
import { describe, expect, it } from 'vitest';
import { parseSite } from '../../../config/load.js';
import { reportsOnChangeOf } from '../../../drivers/index.js';
import { steamBoilerAt, type Scenario } from '../../../drivers/sim/steam-boiler.js';
import type { Reading } from '../../../drivers/types.js';
import { backtest } from '../../../rules/backtest.js';
import { ruleSpecsOf } from '../../../rules/compile.js';
import { RuleEngine } from '../../../rules/engine.js';
import { MAX_SERIES, SampleSeries } from '../../../rules/trend.js';
import type { AlarmEvent, RuleSpec } from '../../../rules/types.js';

const SITE = `version: 1
gateway: { id: gw-1, site: plant-1 }
connections: [{ id: plc, type: modbus-tcp, host: 127.0.0.1, port: 502 }]
equipment:
  - id: B-1
    template: boiler-steam
    connection: plc
    points:
      - { name: drum_level, address: "hr:0", type: int16 }
      - { name: steam_pressure, address: "hr:1", type: float32 }
      - { name: flame, address: "di:0", type: bool }
      - { name: burner_on, address: "di:1", type: bool }
      - { name: interlock_tripped, address: "di:2", type: bool }
`;

const T0 = Date.parse('2026-03-01T08:00:00Z');
const POINTS = ['drum_level', 'steam_pressure', 'flame', 'burner_on', 'interlock_tripped'] as const;

/** The boiler polled once a second over `seconds`, as the simulator produces it (seed 7). */
function boilerReadings(scenario: Scenario, seconds: number): Reading[] {
  const out: Reading[] = [];
  for (let s = 0; s <= seconds; s++) {
    const state = steamBoilerAt(s * 1000, scenario, 7);
    for (const p of POINTS) out.push({ ts: T0 + s * 1000, equipment: 'B-1', point: p, value: state[p], quality: 'good' });
  }
  return out;
}

function run(readings: Reading[]): AlarmEvent[] {
  const site = parseSite(SITE, { env: {} });
  return backtest({ site: site.gateway.site, rules: ruleSpecsOf(site, reportsOnChangeOf(site)), readings, tickMs: 250 });
}

const at = (events: AlarmEvent[], type: string, rule: string) => events.find((e) => e.type === type && e.rule === rule);

describe('the demo boiler feed-pump trip (normal 40 s, hazard 30 s, recovery 30 s, seed 7)', () => {
  const events = run(boilerReadings({ normal: 40_000, hazard: 30_000, recovery: 30_000, repeat: false }, 130));
  const predicted = at(events, 'raised', 'drum-level-low-low.predicted');
  const red = at(events, 'raised', 'drum-level-low-low');

  it('raises the orange predicted low-low warning seconds before the red alarm, with its time to the limit', () => {
    expect(predicted).toBeDefined();
    expect(red).toBeDefined();
    const lead = (red!.ts - predicted!.ts) / 1000;
    // Measured: the level falls 18 mm/s from 0 at 40 s; the prediction comes at 45 s, the red alarm at 54 s: a lead of 9 s.
    expect(lead, `lead ${lead} s`).toBeGreaterThanOrEqual(5);
    expect(predicted).toMatchObject({ level: 'orange', origin: 'predicted', point: 'drum_level', unit: 'mm' });
    expect(red!.level).toBe('red');
    expect(red!.origin).toBeUndefined();
    expect(predicted!.message).toMatch(/^Predicted: drum_level reaches -200 mm in \d+ s \(drum-level-low-low\)$/);
    // Within the template's 20 s horizon (the robust fit, half flat and half falling, underestimates the fall at first).
    expect(Number(/in (\d+) s/.exec(predicted!.message)![1])).toBeLessThanOrEqual(20);
  });

  it('does not foretell the low limit the level passed before its trend could be told: its own alarm says it', () => {
    // The level falls past -50 mm 2.8 s into the trip, before 8 readings of the 10 s window show a
    // significant trend; by then there is nothing left to foretell, and no "reaches -50 mm in under 1 s".
    expect(at(events, 'raised', 'drum-level.lo.predicted')).toBeUndefined();
    expect(at(events, 'raised', 'drum-level.lo')).toMatchObject({ level: 'yellow' });
  });

  it('raises no prediction for a value that jumps past its limit (a flag stored as a number is no trend)', () => {
    const readings = Array.from({ length: 40 }, (_, k) => ({
      equipment: 'B-1',
      point: 'drum_level',
      value: k < 20 ? 0 : -400,
      quality: 'good' as const,
      ts: T0 + k * 1000,
    }));
    const got = run(readings);
    expect(got.filter((e) => e.origin === 'predicted')).toEqual([]);
    expect(at(got, 'raised', 'drum-level-low-low')).toBeDefined();
  });

  it('clears the predicted warning once the level recovers, and closes its incident', () => {
    const cleared = at(events, 'cleared', 'drum-level-low-low.predicted');
    expect(cleared).toBeDefined();
    expect(cleared!.ts).toBeGreaterThan(red!.ts);
    // The refill starts at 70 s: the trend turns away from the limit within the window.
    expect(cleared!.ts).toBeLessThanOrEqual(T0 + 90_000);
    expect(cleared!.origin).toBe('predicted');
    // Nothing raises it again during the recovery (no flapping).
    expect(events.filter((e) => e.type === 'raised' && e.rule === 'drum-level-low-low.predicted')).toHaveLength(1);
  });
});

describe('a noisy but steady signal', () => {
  it('raises no predicted warning over 20 minutes of the boiler in normal operation', () => {
    const events = run(boilerReadings({ normal: 3_600_000, hazard: 1000, recovery: 1000, repeat: false }, 1200));
    expect(events.filter((e) => e.origin === 'predicted')).toEqual([]);
  });

  it('raises none on a constant with random noise near its limit, over 2,000 readings', () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
    const readings: Reading[] = Array.from({ length: 2000 }, (_, k) => ({
      ts: T0 + k * 1000,
      equipment: 'T-1',
      point: 'x',
      value: 80 + 5 * rnd(),
      quality: 'good' as const,
    }));
    const events = backtest({
      site: 's',
      rules: [predictSpec({ limit: 90, windowMs: 60_000, horizonMs: 600_000, minReadings: 10 })],
      readings,
    });
    expect(events).toEqual([]);
  });
});

/** A predicted warning on point x of T-1, as compile.ts makes them. */
function predictSpec(c: { limit: number; windowMs: number; horizonMs: number; minReadings: number }): RuleSpec {
  return {
    id: 'x-hi.predicted',
    equipment: 'T-1',
    level: 'yellow',
    message: 'Predicted: x reaches {limit} in {eta}',
    condition: { kind: 'predict', point: 'x', direction: 'above', ...c },
    origin: 'predicted',
    predicts: 'x-hi',
    onDelayMs: 0,
    offDelayMs: 0,
    deadband: 0,
    latch: false,
  };
}

describe('hysteresis', () => {
  it('a trend whose crossing wanders around the horizon raises once and does not flap', () => {
    // x rises 1 per second toward 200 from 0, but with a slope that sways ±15 %: the crossing time
    // wanders around the 100 s horizon as it nears, then the trend turns away at 150 s.
    const values: number[] = [];
    let x = 0;
    for (let k = 0; k < 220; k++) {
      const slope = k < 150 ? 1 + 0.15 * Math.sin(k / 4) : -2;
      x += slope;
      values.push(x);
    }
    const readings: Reading[] = values.map((value, k) => ({ ts: T0 + k * 1000, equipment: 'T-1', point: 'x', value, quality: 'good' }));
    const events = backtest({
      site: 's',
      rules: [predictSpec({ limit: 200, windowMs: 20_000, horizonMs: 100_000, minReadings: 5 })],
      readings,
    });
    const types = events.map((e) => e.type);
    expect(types.filter((t) => t === 'raised')).toHaveLength(1);
    expect(types.filter((t) => t === 'cleared')).toHaveLength(1);
    // Raised when the crossing came within 100 s (x near 100), cleared once the trend turned.
    const raised = events.find((e) => e.type === 'raised')!;
    expect(Number(raised.value)).toBeGreaterThan(80);
    expect(Number(raised.value)).toBeLessThan(120);
    expect(events.find((e) => e.type === 'cleared')!.ts).toBeGreaterThan(T0 + 150_000);
  });
});

describe('uncertainty', () => {
  it('is uncertain with fewer good readings than min_readings in the window, and raises nothing', () => {
    const engine = new RuleEngine({
      site: 's',
      rules: [predictSpec({ limit: 14, windowMs: 10_000, horizonMs: 60_000, minReadings: 5 })],
      now: T0,
    });
    for (let k = 0; k < 4; k++) engine.ingest([{ ts: T0 + k * 1000, equipment: 'T-1', point: 'x', value: k * 2, quality: 'good' }]);
    expect(engine.states()[0]!.condition).toBe('uncertain');
    // Bad readings are no samples: still four.
    engine.ingest([{ ts: T0 + 4000, equipment: 'T-1', point: 'x', value: null, quality: 'bad' }]);
    expect(engine.states()[0]!.condition).toBe('uncertain');
    const events = engine.ingest([{ ts: T0 + 5000, equipment: 'T-1', point: 'x', value: 10, quality: 'good' }]);
    expect(engine.states()[0]!.condition).toBe('true');
    expect(events[0]).toMatchObject({ type: 'raised', origin: 'predicted', message: 'Predicted: x reaches 14 in 2 s' });
    expect(engine.active()[0]).toMatchObject({ rule: 'x-hi.predicted', origin: 'predicted' });
  });

  it('keeps a fast poll to a bounded series over the whole window, and still times the crossing', () => {
    // 10 readings a second for 90 s, rising 1 per second with noise: 600 readings per window, decimated to at most 120.
    let seed = 99;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
    const readings: Reading[] = Array.from({ length: 900 }, (_, k) => ({
      ts: T0 + k * 100,
      equipment: 'T-1',
      point: 'x',
      value: k / 10 + 0.5 * rnd(),
      quality: 'good' as const,
    }));
    const events = backtest({
      site: 's',
      rules: [predictSpec({ limit: 150, windowMs: 60_000, horizonMs: 70_000, minReadings: 10 })],
      readings,
    });
    // Crossing at 150 s: 70 s ahead is 80 s, when x is 80.
    const raised = events.find((e) => e.type === 'raised')!;
    expect((raised.ts - T0) / 1000).toBeGreaterThan(78);
    expect((raised.ts - T0) / 1000).toBeLessThan(82);
    expect(raised.message).toMatch(/^Predicted: x reaches 150 in (69|70|71) s$/);
  });

  it('bounds a series by halving its spacing, keeping the newest sample and the whole window', () => {
    const s = new SampleSeries(60_000);
    let most = 0;
    for (let k = 0; k < 2000; k++) {
      s.add(k * 100, k);
      most = Math.max(most, s.length);
    }
    expect(most).toBe(MAX_SERIES);
    expect(s.timeAt(s.length - 1)).toBe(199_900);
    expect(s.timeAt(0)).toBeLessThanOrEqual(199_900 - 50_000);
    expect(s.timeAt(0)).toBeGreaterThanOrEqual(199_900 - 60_000);
    // A value of the same instant replaces the sample, out of order goes in its place.
    s.add(199_900, -1);
    s.add(199_850, -2);
    expect([s.valueAt(s.length - 2), s.valueAt(s.length - 1)]).toEqual([-2, -1]);
  });

  it('shares one series between the predictions on a point and window', () => {
    const a = predictSpec({ limit: 10, windowMs: 10_000, horizonMs: 60_000, minReadings: 5 });
    const b = { ...a, id: 'x-hihi.predicted', condition: { ...a.condition, limit: 1000 } } as RuleSpec;
    const engine = new RuleEngine({ site: 's', rules: [a, b], now: T0 });
    for (let k = 0; k < 5; k++) engine.ingest([{ ts: T0 + k * 1000, equipment: 'T-1', point: 'x', value: k, quality: 'good' }]);
    expect(engine.states().map((s) => s.condition)).toEqual(['true', 'false']);
  });
});

describe('the normal value of a limit', () => {
  /** The part x-hi (limit 50) a prediction foresees, with the near-miss normal compile.ts gives it (or none). */
  const part = (normal: number | undefined): RuleSpec => ({
    id: 'x-hi',
    equipment: 'T-1',
    level: 'orange',
    message: 'High x',
    // Never set: only its threshold matters here.
    condition: { kind: 'external' },
    threshold: { point: 'x', limit: 50, direction: 'above', ...(normal !== undefined ? { nearMiss: { normal, margin: 5 } } : {}) },
    onDelayMs: 0,
    offDelayMs: 0,
    deadband: 0,
    latch: false,
  });
  // A recovery: x rises 16 a second from -184 toward its normal value, 0 (the last reading -8).
  const readings: Reading[] = Array.from({ length: 12 }, (_, k) => ({
    ts: T0 + k * 1000,
    equipment: 'T-1',
    point: 'x',
    value: -184 + 16 * k,
    quality: 'good' as const,
  }));
  const spec = predictSpec({ limit: 50, windowMs: 60_000, horizonMs: 600_000, minReadings: 5 });
  const raised = (normal: number | undefined) =>
    backtest({ site: 's', rules: [part(normal), spec], readings }).filter((e) => e.type === 'raised' && e.rule === spec.id);

  it('foretells no high limit from a value that rises fast back toward normal from below it', () => {
    expect(raised(0)).toEqual([]);
  });

  it('foretells it as before when the limit has no normal value', () => {
    expect(raised(undefined)).toHaveLength(1);
  });
});
