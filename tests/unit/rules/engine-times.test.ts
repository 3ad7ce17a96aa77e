// Every value of a batch counts, at its own time: a notification can hold several values of a point,
// delivered after the fact and out of order, and a limit crossed among them must raise.
import { describe, expect, it } from 'vitest';
import type { Reading } from '../../../drivers/types.js';
import { compile } from '../../../rules/expression.js';
import { RuleEngine } from '../../../rules/engine.js';
import type { RuleSpec } from '../../../rules/types.js';
import { lowLevelRule, pointNames } from '../../helpers/rules.js';

const names = pointNames('level', 'a', 'b');
const rule = (o: Partial<RuleSpec> = {}): RuleSpec => lowLevelRule(names, o);
/** A value of `level` received at `ts`, with the source's own time when given. */
const level = (value: number, ts: number, sourceTs?: number): Reading => ({
  equipment: 'B-1',
  point: 'level',
  value,
  quality: 'good',
  ts,
  ...(sourceTs !== undefined ? { sourceTs } : {}),
});
const brief = (events: ReturnType<RuleEngine['ingest']>) => events.map((e) => [e.type, e.ts, e.value]);

describe('rule engine: every value of a batch, at its own time', () => {
  it('raises on a spike inside one batch, at its source time, with its value', () => {
    const engine = new RuleEngine({ site: 's', rules: [rule()], now: 0 });
    expect(engine.ingest([level(-100, 500)])).toEqual([]);
    expect(brief(engine.ingest([level(-150, 3000, 1000), level(-250, 3000, 1500), level(-150, 3000, 2000)]))).toEqual([
      ['raised', 1500, -250],
      ['cleared', 2000, -250],
    ]);
  });

  it('raises on a spike inside one batch without source times: each value of a point is evaluated in turn', () => {
    const engine = new RuleEngine({ site: 's', rules: [rule()], now: 0 });
    expect(brief(engine.ingest([level(-150, 3000), level(-250, 3000), level(-150, 3000)]))).toEqual([
      ['raised', 3000, -250],
      ['cleared', 3000, -250],
    ]);
  });

  it('counts an on-delay on source time: a dip shorter than it stays silent, a longer one raises when it ran out, out of order or not', () => {
    const engine = new RuleEngine({ site: 's', rules: [rule({ onDelayMs: 1000 })], now: 0 });
    expect(engine.ingest([level(-150, 3000, 1000), level(-250, 3000, 1500), level(-150, 3000, 2000)])).toEqual([]);
    expect(engine.tick(4000)).toEqual([]);
    expect(brief(engine.ingest([level(-150, 11_000, 10_000), level(-260, 11_000, 8000)]))).toEqual([
      ['raised', 9000, -260],
      ['cleared', 10_000, -260],
    ]);
  });

  it('takes a source time ahead of the receive time, or none (0), as the receive time', () => {
    const ahead = new RuleEngine({ site: 's', rules: [rule({ onDelayMs: 1000 })], now: 0 });
    expect(ahead.ingest([level(-250, 3000, 60_000)])).toEqual([]);
    // Counted from 3000: the delay runs out at 4000, not an hour of a wrong clock later.
    expect(brief(ahead.tick(4000))).toEqual([['raised', 4000, -250]]);
    const none = new RuleEngine({ site: 's', rules: [rule()], now: 0 });
    expect(brief(none.ingest([level(-250, 3000, 0)]))).toEqual([['raised', 3000, -250]]);
  });

  it("a source clock running behind the gateway's neither cuts a delay short nor escalates at once: the batch is moved onto the gateway's clock", () => {
    const behind = 60_000;
    const engine = new RuleEngine({
      site: 's',
      rules: [rule({ onDelayMs: 10_000, offDelayMs: 10_000, escalateAfterMs: 300_000 })],
      now: 0,
    });
    // A 1 s dip, stamped a minute behind: not 10 s of condition, whatever the stamps say.
    expect(engine.ingest([level(-250, 100_000, 100_000 - behind)])).toEqual([]);
    expect(engine.tick(100_250)).toEqual([]);
    expect(engine.ingest([level(-100, 101_000, 101_000 - behind)])).toEqual([]);
    expect(engine.tick(112_000)).toEqual([]);
    // A real one: raised 10 s after it began on the gateway's clock, and not escalated one tick later.
    expect(engine.ingest([level(-250, 200_000, 200_000 - behind), level(-260, 200_000, 200_500 - behind)])).toEqual([]);
    expect(engine.tick(209_000)).toEqual([]);
    expect(brief(engine.tick(210_000))).toEqual([['raised', 209_500, -260]]);
    expect(engine.tick(210_250)).toEqual([]);
    // Inside the batch the spacing holds: 500 ms between the two values, the later one on the receive time.
  });

  it('evaluates the values of one time together: a rule over two points never sees one new and one old', () => {
    const engine = new RuleEngine({
      site: 's',
      rules: [rule({ condition: { kind: 'expression', expr: compile('a > b', names) } })],
      now: 0,
    });
    const at = (point: string, value: number, ts: number, sourceTs: number): Reading => ({
      equipment: 'B-1',
      point,
      value,
      quality: 'good',
      ts,
      sourceTs,
    });
    expect(engine.ingest([at('a', 1, 1000, 900), at('b', 2, 1000, 900)])).toEqual([]);
    expect(engine.ingest([at('a', 5, 2000, 1900), at('b', 6, 2000, 1900)])).toEqual([]);
    expect(engine.states()).toEqual([{ key: 'B-1/low', state: 'normal', condition: 'false' }]);
    // At different times they are evaluated in turn: a was above b from 2500 until 2600.
    expect(brief(engine.ingest([at('b', 9, 3000, 2600), at('a', 7, 3000, 2500)]))).toEqual([
      ['raised', 2500, 7],
      ['cleared', 2600, 7],
    ]);
  });

  it('lets a rate fall back while a polled value holds (read again with the source time of its last change)', () => {
    const rate = rule({ id: 'rise', condition: { kind: 'rate', point: 'level', windowMs: 5000, perMs: 1000, above: 50 } });
    const engine = new RuleEngine({ site: 's', rules: [rate], now: 0 });
    engine.ingest([level(0, 1000, 1000)]);
    expect(brief(engine.ingest([level(100, 2000, 2000)]))).toEqual([['raised', 2000, 100]]);
    const events: ReturnType<RuleEngine['ingest']> = [];
    for (let ts = 3000; ts <= 9000; ts += 1000) events.push(...engine.ingest([level(100, ts, 2000)]), ...engine.tick(ts));
    expect(events.map((e) => e.type)).toEqual(['cleared']);
  });
});
