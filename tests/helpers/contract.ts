// The MQTT telemetry contract (README.md, "How data flows": the telemetry message), as an outside consumer checks it.
import { expect } from 'vitest';
import { BOILER_POINTS } from './site.js';

export function expectBoilerTelemetry(payload: string, window: { from: number; to: number }): void {
  const msg = JSON.parse(payload) as Record<string, unknown>;
  expect(Object.keys(msg).sort()).toEqual(['quality', 'ts', 'values']);
  expect(typeof msg.ts).toBe('number');
  expect(msg.ts).toBeGreaterThanOrEqual(window.from);
  expect(msg.ts).toBeLessThanOrEqual(window.to);
  const values = msg.values as Record<string, unknown>;
  const quality = msg.quality as Record<string, unknown>;
  expect(Object.keys(values).sort()).toEqual([...BOILER_POINTS].sort());
  expect(Object.keys(quality).sort()).toEqual([...BOILER_POINTS].sort());
  for (const p of BOILER_POINTS) expect(quality[p]).toBe('good');
  for (const p of ['flame', 'burner_on', 'interlock_tripped']) expect(typeof values[p]).toBe('boolean');
  for (const p of ['steam_pressure', 'steam_temperature', 'drum_level', 'feedwater_flow', 'flue_o2'])
    expect(typeof values[p]).toBe('number');
  expect(values.steam_pressure).toBeGreaterThan(0.5);
  expect(values.steam_pressure).toBeLessThan(1.6);
  expect(values.drum_level).toBeGreaterThanOrEqual(-300);
  expect(values.drum_level).toBeLessThanOrEqual(20);
}
