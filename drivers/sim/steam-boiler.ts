// A steam boiler as a pure function of time: the same seed and time always give the same values,
// so tests can recompute what the simulator produced. Figures are those of a 10 t/h, 1.25 MPa
// fire-tube boiler (drivers/sim/README.md describes the model): drum level in mm relative to normal water level.

export interface Scenario {
  /** Length of each phase in ms. */
  normal: number;
  hazard: number;
  recovery: number;
  /** Run the cycle again after recovery; otherwise stay in normal operation. */
  repeat: boolean;
}

export type Phase = 'normal' | 'hazard' | 'recovery';

export interface SignalInfo {
  unit: string | undefined;
  type: 'number' | 'boolean';
  description: string;
}

export const STEAM_BOILER_SIGNALS = {
  steam_pressure: { unit: 'MPa', type: 'number', description: 'Drum steam pressure (gauge)' },
  steam_temperature: { unit: '°C', type: 'number', description: 'Saturated steam temperature' },
  drum_level: { unit: 'mm', type: 'number', description: 'Drum water level relative to normal level' },
  feedwater_flow: { unit: 't/h', type: 'number', description: 'Feedwater flow' },
  flue_o2: { unit: '%', type: 'number', description: 'Flue-gas oxygen' },
  flame: { unit: undefined, type: 'boolean', description: 'Flame detected' },
  burner_on: { unit: undefined, type: 'boolean', description: 'Burner commanded on' },
  interlock_tripped: { unit: undefined, type: 'boolean', description: 'Low-water interlock tripped (fuel shut off)' },
} as const satisfies Record<string, SignalInfo>;

export type SteamBoilerSignal = keyof typeof STEAM_BOILER_SIGNALS;
export type SteamBoilerState = { [K in SteamBoilerSignal]: (typeof STEAM_BOILER_SIGNALS)[K]['type'] extends 'boolean' ? boolean : number };

const NOMINAL = { pressure: 1.25, flow: 10, o2: 3.5, level: 0 };
/** Level fall with the feed pump tripped (mm/s) and after the fuel is cut (mm/s). */
const FALL_FIRING = 18;
const FALL_TRIPPED = 4;
const LEVEL_TRIP = -240;
const LEVEL_FLOOR = -300;
const REFILL = 15;
/** Manual reset of the interlock is possible once the level is back above this. */
const LEVEL_RESET = -50;
const PURGE_MS = 5000;
const IGNITION_MS = 2000;
const BURNER_LAG_MS = 1000;

/** Saturation temperature (°C) over absolute pressure (MPa), interpolated in steam-table points. */
const STEAM_TABLE: ReadonlyArray<readonly [number, number]> = [
  [0.1, 99.6],
  [0.2, 120.2],
  [0.5, 151.8],
  [0.8, 170.4],
  [1.0, 179.9],
  [1.35, 193.3],
  [1.6, 201.4],
  [2.0, 212.4],
];

export function saturationTemperature(absMPa: number): number {
  const first = STEAM_TABLE[0]!;
  if (absMPa <= first[0]) return first[1];
  for (let i = 1; i < STEAM_TABLE.length; i++) {
    const [p1, t1] = STEAM_TABLE[i]!;
    const [p0, t0] = STEAM_TABLE[i - 1]!;
    if (absMPa <= p1) return t0 + ((t1 - t0) * (absMPa - p0)) / (p1 - p0);
  }
  return STEAM_TABLE[STEAM_TABLE.length - 1]![1];
}

/** Deterministic noise in [-1, 1] for (seed, channel, 100 ms slot). */
function noise(seed: number, channel: number, tMs: number): number {
  let h = (seed * 0x9e3779b1) ^ (channel * 0x85ebca6b) ^ Math.floor(tMs / 100);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  h ^= h >>> 16;
  return ((h >>> 0) / 0xffffffff) * 2 - 1;
}

const round = (v: number, digits: number) => Number(v.toFixed(digits));

export function phaseAt(tMs: number, s: Scenario): { phase: Phase; t: number } {
  const cycle = s.normal + s.hazard + s.recovery;
  let t = Math.max(0, tMs);
  if (!s.repeat && t >= cycle) return { phase: 'normal', t: t - cycle + s.normal };
  t %= cycle;
  if (t < s.normal) return { phase: 'normal', t };
  if (t < s.normal + s.hazard) return { phase: 'hazard', t: t - s.normal };
  return { phase: 'recovery', t: t - s.normal - s.hazard };
}

interface Trajectory {
  level: number;
  pressure: number;
  flow: number;
  o2: number;
  flame: boolean;
  burner: boolean;
  tripped: boolean;
}

const TRIP_AFTER_MS = (-LEVEL_TRIP / FALL_FIRING) * 1000;

/** The noise-free hazard: the feed pump trips, the level falls, the low-water interlock cuts the fuel. */
function hazard(t: number): Trajectory {
  const flow = Math.max(0.3, NOMINAL.flow * (1 - t / 2000));
  if (t < TRIP_AFTER_MS) {
    return {
      level: -FALL_FIRING * (t / 1000),
      pressure: NOMINAL.pressure,
      flow,
      o2: NOMINAL.o2,
      flame: true,
      burner: true,
      tripped: false,
    };
  }
  const since = t - TRIP_AFTER_MS;
  return {
    level: Math.max(LEVEL_FLOOR, LEVEL_TRIP - FALL_TRIPPED * (since / 1000)),
    pressure: 0.6 + (NOMINAL.pressure - 0.6) * Math.exp(-since / 60_000),
    flow,
    o2: 20.9 - (20.9 - NOMINAL.o2) * Math.exp(-since / 3000),
    flame: false,
    burner: since < BURNER_LAG_MS,
    tripped: true,
  };
}

/** Feed restored: the level refills; once it is high enough the interlock is reset, purge, ignition. */
function recovery(t: number, from: Trajectory): Trajectory {
  const level = Math.min(NOMINAL.level, from.level + REFILL * (t / 1000));
  const flow = level < NOMINAL.level ? 14 : NOMINAL.flow;
  if (!from.tripped) return { ...from, level, flow, o2: NOMINAL.o2, flame: true, burner: true, pressure: NOMINAL.pressure };
  const resetAt = ((LEVEL_RESET - from.level) / REFILL) * 1000;
  const igniteAt = resetAt + PURGE_MS;
  const flameAt = igniteAt + IGNITION_MS;
  if (t < flameAt) {
    return { level, flow, pressure: from.pressure, o2: 20.9, flame: false, burner: t >= igniteAt, tripped: t < resetAt };
  }
  const since = t - flameAt;
  return {
    level,
    flow,
    pressure: NOMINAL.pressure - (NOMINAL.pressure - from.pressure) * Math.exp(-since / 8000),
    o2: NOMINAL.o2 + (20.9 - NOMINAL.o2) * Math.exp(-since / 2000),
    flame: true,
    burner: true,
    tripped: false,
  };
}

/** The boiler's state `tMs` after the scenario started. */
export function steamBoilerAt(tMs: number, scenario: Scenario, seed: number): SteamBoilerState {
  const { phase, t } = phaseAt(tMs, scenario);
  const normal: Trajectory = {
    level: NOMINAL.level,
    pressure: NOMINAL.pressure,
    flow: NOMINAL.flow,
    o2: NOMINAL.o2,
    flame: true,
    burner: true,
    tripped: false,
  };
  const x = phase === 'normal' ? normal : phase === 'hazard' ? hazard(t) : recovery(t, hazard(scenario.hazard));
  const n = (ch: number) => noise(seed, ch, tMs);
  const pressure = Math.max(0, x.pressure + 0.01 * n(1));
  return {
    steam_pressure: round(pressure, 3),
    steam_temperature: round(saturationTemperature(pressure + 0.101) + 0.3 * n(2), 1),
    drum_level: Math.round(x.level + 6 * Math.sin(tMs / 7000) + 4 * n(3)),
    feedwater_flow: round(Math.max(0, x.flow + 0.2 * n(4)), 2),
    flue_o2: round(Math.min(20.9, Math.max(0, x.o2 + 0.15 * n(5))), 2),
    flame: x.flame,
    burner_on: x.burner,
    interlock_tripped: x.tripped,
  };
}
