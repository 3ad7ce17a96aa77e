import { describe, expect, it } from 'vitest';
import type { Reading } from '../../../drivers/types.js';
import { RuleEngine, RuleActionError } from '../../../rules/engine.js';
import type { RuleSpec } from '../../../rules/types.js';
import { lowLevelRule, memoryStore, pointNames } from '../../helpers/rules.js';

const names = pointNames('level');
const rule = (o: Partial<RuleSpec> = {}): RuleSpec => lowLevelRule(names, o);
const level = (ts: number, value: number | null, quality: Reading['quality'] = 'good'): Reading[] => [
  { equipment: 'B-1', point: 'level', value, quality, ts },
];

describe('rule engine', () => {
  it('restarted in the middle of an incident: the state comes back, no second raised event, the same incident clears', () => {
    const store = memoryStore();
    const first = new RuleEngine({ site: 's', rules: [rule()], store, now: 0 });
    const [raised] = first.ingest(level(1000, -250));
    expect(raised).toMatchObject({ type: 'raised', state: 'active_unacknowledged' });
    store.commit(first);

    const second = new RuleEngine({ site: 's', rules: [rule()], store, now: 5000 });
    expect(second.active()).toMatchObject([{ key: 'B-1/low', state: 'active_unacknowledged', incidentId: raised!.incidentId }]);
    expect(second.ingest(level(6000, -260))).toEqual([]);
    const [cleared] = second.ingest(level(7000, -100));
    expect(cleared).toMatchObject({ type: 'cleared', incidentId: raised!.incidentId, state: 'returned_unacknowledged' });
  });

  it('continues an on-delay across a restart from when the condition began', () => {
    const store = memoryStore();
    const first = new RuleEngine({ site: 's', rules: [rule({ onDelayMs: 10_000 })], store, now: 0 });
    expect(first.ingest(level(1000, -250))).toEqual([]);
    store.commit(first);
    const second = new RuleEngine({ site: 's', rules: [rule({ onDelayMs: 10_000 })], store, now: 6000 });
    expect(second.ingest(level(8000, -250))).toEqual([]);
    expect(second.tick(11_000)).toMatchObject([{ type: 'raised', ts: 11_000 }]);
  });

  it('evaluates only the rules that read a point of the batch', () => {
    const other = rule({ id: 'other', equipment: 'B-2' });
    const engine = new RuleEngine({ site: 's', rules: [rule(), other], now: 0 });
    engine.ingest(level(1000, -250));
    expect(engine.states()).toEqual([
      { key: 'B-1/low', state: 'active_unacknowledged', condition: 'true' },
      { key: 'B-2/other', state: 'normal', condition: 'uncertain' },
    ]);
  });

  it('refuses actions that make no sense, with a reason', () => {
    const engine = new RuleEngine({ site: 's', rules: [rule()], now: 0 });
    expect(() => engine.acknowledge('B-1/low', 'wang', '', 1)).toThrow(RuleActionError);
    expect(() => engine.acknowledge('B-9/none', 'wang', '', 1)).toThrow(/no alarm B-9\/none/);
    expect(() => engine.unshelve('B-1/low', 'wang', '', 1)).toThrow(/not shelved/);
  });

  it('caps a shelve at the maximum shelve time', () => {
    const engine = new RuleEngine({ site: 's', rules: [rule()], now: 0, maxShelveMs: 60_000 });
    const [shelved] = engine.shelve('B-1/low', 'wang', 'gauge swap', 3_600_000, 1000);
    expect(shelved).toMatchObject({ type: 'shelved', shelvedUntil: 61_000, by: 'wang', comment: 'gauge swap' });
    expect(engine.tick(61_000)).toMatchObject([{ type: 'unshelved', state: 'normal' }]);
  });
});
