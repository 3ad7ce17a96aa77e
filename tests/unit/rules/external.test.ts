// External conditions (administrative dates): set from outside the readings with setExternal, and
// run through the same lifecycle as any alarm: on-delay, acknowledgement, latch, shelving.
import { describe, expect, it } from 'vitest';
import { RuleActionError, RuleEngine } from '../../../rules/engine.js';
import type { RuleSpec } from '../../../rules/types.js';

const external = (o: Partial<RuleSpec> = {}): RuleSpec => ({
  id: 'inspection-overdue',
  equipment: 'E-1',
  level: 'yellow',
  message: 'Periodic inspection overdue',
  condition: { kind: 'external' },
  origin: 'administrative',
  onDelayMs: 0,
  offDelayMs: 0,
  deadband: 0,
  latch: false,
  ...o,
});
const KEY = 'E-1/inspection-overdue';
const types = (events: Array<{ type: string }>) => events.map((e) => e.type);

describe('external conditions', () => {
  it('raise, clear and close through setExternal, with the spec origin on events and active alarms', () => {
    const engine = new RuleEngine({ site: 's', rules: [external()], now: 0 });
    expect(engine.states()[0]!.condition).toBe('uncertain');
    const raised = engine.setExternal(KEY, true, 1000);
    expect(raised).toMatchObject([
      { type: 'raised', origin: 'administrative', level: 'yellow', message: 'Periodic inspection overdue', ts: 1000 },
    ]);
    expect(engine.active()).toMatchObject([{ key: KEY, origin: 'administrative', state: 'active_unacknowledged' }]);
    // Setting what it already is changes nothing.
    expect(engine.setExternal(KEY, true, 2000)).toEqual([]);
    expect(types(engine.acknowledge(KEY, 'op', 'booked', 3000))).toEqual(['acknowledged']);
    expect(types(engine.setExternal(KEY, false, 4000))).toEqual(['cleared', 'closed']);
    expect(engine.active()).toEqual([]);
  });

  it('are not evaluated from readings or ticks, but their delays and escalation run with time', () => {
    const engine = new RuleEngine({ site: 's', rules: [external({ onDelayMs: 5000, escalateAfterMs: 60_000 })], now: 0 });
    expect(engine.ingest([{ equipment: 'E-1', point: 'x', value: 1, quality: 'good', ts: 500 }])).toEqual([]);
    expect(engine.setExternal(KEY, true, 1000)).toEqual([]);
    expect(engine.tick(5999)).toEqual([]);
    expect(engine.tick(6000)).toMatchObject([{ type: 'raised', ts: 6000 }]);
    expect(engine.tick(66_000)).toMatchObject([{ type: 'escalated', level: 'orange', origin: 'administrative' }]);
    // Unknown (undefined) neither raises nor clears.
    expect(engine.setExternal(KEY, undefined, 70_000)).toEqual([]);
    expect(engine.states()[0]).toEqual({ key: KEY, state: 'active_unacknowledged', condition: 'uncertain' });
  });

  it('latch and shelve like any alarm', () => {
    const engine = new RuleEngine({ site: 's', rules: [external({ latch: true })], now: 0 });
    engine.setExternal(KEY, true, 1000);
    expect(engine.setExternal(KEY, false, 2000)).toEqual([]);
    expect(engine.states()[0]!.state).toBe('active_unacknowledged');
    expect(types(engine.acknowledge(KEY, 'op', '', 3000))).toEqual(['acknowledged', 'closed']);
    expect(types(engine.shelve(KEY, 'op', 'audit booked', 60_000, 4000))).toEqual(['shelved']);
    expect(engine.setExternal(KEY, true, 5000)).toEqual([]);
    // The shelve ends and the condition that came meanwhile raises.
    expect(types(engine.tick(64_000)).sort()).toEqual(['raised', 'unshelved']);
  });

  it('refuse an unknown key and an alarm that is not external', () => {
    const reading: RuleSpec = { ...external({ id: 'low', origin: undefined }), condition: { kind: 'stale', afterMs: 1000 } };
    const engine = new RuleEngine({ site: 's', rules: [external(), reading], now: 0 });
    expect(() => engine.setExternal('E-1/nothing', true, 1)).toThrow(RuleActionError);
    expect(() => engine.setExternal('E-1/low', true, 1)).toThrow(
      new RuleActionError('E-1/low is not an external alarm (its condition is stale)'),
    );
  });
});
