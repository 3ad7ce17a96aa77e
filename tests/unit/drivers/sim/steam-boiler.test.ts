import { describe, expect, it } from 'vitest';
import { phaseAt, saturationTemperature, steamBoilerAt, type Scenario } from '../../../../drivers/sim/steam-boiler.js';

const scenario: Scenario = { normal: 60_000, hazard: 30_000, recovery: 30_000, repeat: true };
const at = (seconds: number, seed = 1) => steamBoilerAt(seconds * 1000, scenario, seed);
const series = (from: number, to: number, step = 0.1) => {
  const out = [];
  for (let t = from; t < to; t += step) out.push({ t, ...at(t) });
  return out;
};

describe('steam boiler simulation', () => {
  it('runs normally: pressure near 1.25 MPa, level near normal, flame on', () => {
    for (const s of series(0, 60, 0.5)) {
      expect(s.steam_pressure).toBeGreaterThan(1.2);
      expect(s.steam_pressure).toBeLessThan(1.3);
      expect(Math.abs(s.drum_level)).toBeLessThanOrEqual(10);
      expect(s.steam_temperature).toBeGreaterThan(190);
      expect(s.steam_temperature).toBeLessThan(197);
      expect(s).toMatchObject({ flame: true, burner_on: true, interlock_tripped: false });
    }
  });

  it('in the hazard, the level falls below -200 mm, then the interlock trips and the flame is lost', () => {
    const hazard = series(60, 90);
    const below = hazard.find((s) => s.drum_level <= -200)!;
    const trip = hazard.find((s) => s.interlock_tripped)!;
    const flameOut = hazard.find((s) => !s.flame)!;
    expect(below.t).toBeGreaterThan(70);
    expect(below.t).toBeLessThan(73);
    expect(trip.t).toBeGreaterThan(below.t);
    expect(flameOut.t).toBeCloseTo(trip.t, 5);
    expect(trip.drum_level).toBeLessThanOrEqual(-230);
    expect(hazard.at(-1)!.feedwater_flow).toBeLessThan(1);
    expect(hazard.at(-1)!.steam_pressure).toBeLessThan(1.2);
    // The burner is still commanded on for a moment after the flame is lost: the flame-failure case.
    expect(hazard.some((s) => !s.flame && s.burner_on)).toBe(true);
  });

  it('recovers: interlock reset, re-ignition, level back to normal by the end of the cycle', () => {
    const recovery = series(90, 120);
    const reset = recovery.find((s) => !s.interlock_tripped)!;
    const relit = recovery.find((s) => s.flame)!;
    expect(reset.drum_level).toBeGreaterThan(-60);
    expect(relit.t - reset.t).toBeGreaterThanOrEqual(6.9);
    const end = at(119.9);
    expect(end).toMatchObject({ flame: true, interlock_tripped: false });
    expect(Math.abs(end.drum_level)).toBeLessThanOrEqual(10);
    expect(end.steam_pressure).toBeGreaterThan(1.15);
  });

  it('repeats the cycle, or stays normal when repeat is off', () => {
    expect(phaseAt(125_000, scenario)).toEqual({ phase: 'normal', t: 5000 });
    expect(phaseAt(185_000, scenario)).toEqual({ phase: 'hazard', t: 5000 });
    expect(phaseAt(185_000, { ...scenario, repeat: false }).phase).toBe('normal');
  });

  it('is a pure function of seed and time', () => {
    expect(at(12.3, 5)).toEqual(at(12.3, 5));
    expect(at(12.3, 5)).not.toEqual(at(12.3, 6));
  });

  it('uses steam-table saturation temperatures', () => {
    expect(saturationTemperature(0.101)).toBeCloseTo(99.6, 0);
    expect(saturationTemperature(1.351)).toBeCloseTo(193.3, 0);
  });
});
