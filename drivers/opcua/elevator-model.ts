// A traction elevator as a pure function of time (GB/T 24476 running-status items, listed in
// drivers/opcua/README.md): normal trips, a stop outside the door zone with a passenger inside and the door
// closed (a trapped passenger), moving with the door open (UCMP), and a main power loss.

export interface ElevatorScenario {
  normal: number;
  trapped: number;
  ucmp: number;
  power_loss: number;
  repeat: boolean;
}

export interface ElevatorState {
  floor: number;
  /** 0 stopped, 1 up, 2 down. */
  direction: number;
  running: boolean;
  door_open: boolean;
  in_door_zone: boolean;
  passenger_present: boolean;
  load: number;
  speed: number;
  safety_circuit: boolean;
  door_lock_circuit: boolean;
  main_power: boolean;
  /** 40 automatic (normal) service. */
  service_mode: number;
  /** 0 none, 4 stopped outside door zone, 5 moving with door open, 41 main power off. */
  fault_code: number;
  run_count: number;
}

export type ElevatorPhase = 'normal' | 'trapped' | 'ucmp' | 'power_loss';

const FLOORS = 12;
const TRIP_MS = 12_000;
/** A fault is held this long before it is reported, to suppress false reports. */
const FAULT_HOLD_MS = 5000;

function hash(seed: number, n: number): number {
  let h = Math.imul(seed ^ 0x9e3779b1, 0x85ebca6b) ^ Math.imul(n + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  h ^= h >>> 13;
  return (h >>> 0) / 0xffffffff;
}

/** Where trip n starts and ends: destinations follow the seed; every trip is 1-4 floors. */
function trip(seed: number, n: number): { from: number; to: number } {
  let floor = 1;
  for (let i = 0; i < n; i++) floor = nextFloor(seed, i, floor);
  return { from: floor, to: nextFloor(seed, n, floor) };
}

function nextFloor(seed: number, i: number, floor: number): number {
  const step = 1 + Math.floor(hash(seed, i) * 4);
  const up = floor + step <= FLOORS && (floor - step < 1 || hash(seed, i + 1000) < 0.5);
  return up ? floor + step : floor - step;
}

/** The phases in order, with their lengths. */
function plan(s: ElevatorScenario): Array<[ElevatorPhase, number]> {
  const third = s.normal / 3;
  return [
    ['normal', third],
    ['trapped', s.trapped],
    ['normal', third],
    ['ucmp', s.ucmp],
    ['normal', s.normal - 2 * third],
    ['power_loss', s.power_loss],
  ];
}

export function elevatorPhaseAt(tMs: number, s: ElevatorScenario): { phase: ElevatorPhase; t: number; normalBefore: number } {
  const phases = plan(s);
  const cycle = phases.reduce((n, [, d]) => n + d, 0);
  let t = Math.max(0, tMs);
  const cycles = Math.floor(t / cycle);
  if (!s.repeat && cycles >= 1) return { phase: 'normal', t: t - cycle, normalBefore: s.normal * 1 };
  t -= cycles * cycle;
  let normalBefore = cycles * s.normal;
  for (const [phase, d] of phases) {
    if (t < d) return { phase, t, normalBefore };
    t -= d;
    if (phase === 'normal') normalBefore += d;
  }
  return { phase: 'normal', t: 0, normalBefore };
}

function normalAt(tNormal: number, seed: number): ElevatorState {
  const n = Math.floor(tNormal / TRIP_MS);
  const t = tNormal - n * TRIP_MS;
  const { from, to } = trip(seed, n);
  const passengers = hash(seed, n + 5000) < 0.7;
  const base: ElevatorState = {
    floor: from,
    direction: 0,
    running: false,
    door_open: false,
    in_door_zone: true,
    passenger_present: passengers,
    load: passengers ? Math.round(75 + hash(seed, n + 7000) * 450) : 0,
    speed: 0,
    safety_circuit: true,
    door_lock_circuit: true,
    main_power: true,
    service_mode: 40,
    fault_code: 0,
    run_count: 10_000 + n,
  };
  if (t < 4000) return { ...base, door_open: true, door_lock_circuit: false };
  if (t < 6000) return base;
  const travel = Math.abs(to - from) * 1500;
  const moving = t - 6000;
  if (moving < travel) {
    const passed = Math.floor(moving / 1500);
    return {
      ...base,
      floor: from + Math.sign(to - from) * passed,
      direction: to > from ? 1 : 2,
      running: true,
      in_door_zone: moving % 1500 < 150,
      speed: 1.0,
    };
  }
  return { ...base, floor: to, run_count: base.run_count + 1 };
}

/** The elevator's state `tMs` after the scenario started. */
export function elevatorAt(tMs: number, s: ElevatorScenario, seed: number): ElevatorState {
  const { phase, t, normalBefore } = elevatorPhaseAt(tMs, s);
  if (phase === 'normal') return normalAt(normalBefore + t, seed);
  // The abnormal phases start from where normal operation left the car.
  const before = normalAt(normalBefore, seed);
  const stopped = { ...before, running: false, direction: 0, speed: 0, door_open: false, door_lock_circuit: true };
  switch (phase) {
    case 'trapped':
      return {
        ...stopped,
        in_door_zone: false,
        passenger_present: true,
        load: Math.max(before.load, 80),
        fault_code: t >= FAULT_HOLD_MS ? 4 : 0,
      };
    case 'ucmp':
      return {
        ...before,
        running: true,
        direction: 1,
        speed: 0.3,
        door_open: true,
        door_lock_circuit: false,
        in_door_zone: t < 1000,
        safety_circuit: t < 1000,
        fault_code: 5,
      };
    case 'power_loss':
      return { ...stopped, main_power: false, fault_code: 41 };
  }
}
