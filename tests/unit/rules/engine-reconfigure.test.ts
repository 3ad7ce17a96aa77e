// RuleEngine.reconfigure, what a hot reload does to the alarms (docs/reload.md): unchanged rules keep
// everything, changed ones keep their state as across a restart, removed ones close their incident.
import { describe, expect, it } from 'vitest';
import type { Reading } from '../../../drivers/types.js';
import { compile } from '../../../rules/expression.js';
import { RuleEngine } from '../../../rules/engine.js';
import { specFingerprint } from '../../../rules/fingerprint.js';
import type { RuleSpec } from '../../../rules/types.js';
import { lowLevelRule, pointNames } from '../../helpers/rules.js';

const names = pointNames('level');
const rule = (o: Partial<RuleSpec> = {}): RuleSpec => lowLevelRule(names, o);
const at = (text: string) => ({ kind: 'expression' as const, expr: compile(text, names) });
const level = (ts: number, value: number): Reading[] => [{ equipment: 'B-1', point: 'level', value, quality: 'good', ts }];
const same = (a: RuleSpec, b: RuleSpec) => specFingerprint(a, {}) === specFingerprint(b, {});

describe('rule engine reconfigure', () => {
  it('keeps an unchanged active, acknowledged alarm as it is, with no event', () => {
    const engine = new RuleEngine({ site: 's', rules: [rule()], now: 0 });
    const [raised] = engine.ingest(level(1000, -250));
    engine.acknowledge('B-1/low', 'op', 'seen', 1500);
    // Compiled again, as a reload does: new objects, the same definition.
    engine.reconfigure([rule()], same, 2000);
    expect(engine.takeEvents()).toEqual([]);
    expect(engine.active()).toMatchObject([{ key: 'B-1/low', state: 'active_acknowledged', incidentId: raised!.incidentId }]);
    expect(engine.ingest(level(3000, -260))).toEqual([]);
    expect(engine.ingest(level(4000, -100))).toMatchObject([{ type: 'cleared', incidentId: raised!.incidentId }, { type: 'closed' }]);
  });

  it('keeps an unchanged pending on-delay running from when it began', () => {
    const engine = new RuleEngine({ site: 's', rules: [rule({ onDelayMs: 10_000 })], now: 0 });
    expect(engine.ingest(level(1000, -250))).toEqual([]);
    engine.reconfigure([rule({ onDelayMs: 10_000 })], same, 5000);
    expect(engine.tick(11_000)).toMatchObject([{ type: 'raised', ts: 11_000 }]);
  });

  it('a changed rule whose condition still holds stays active: no second raised; one that no longer holds clears', () => {
    const engine = new RuleEngine({ site: 's', rules: [rule()], now: 0 });
    const [raised] = engine.ingest(level(1000, -250));
    engine.reconfigure([rule({ condition: at('level <= -240'), message: 'changed' })], same, 2000);
    expect(engine.takeEvents()).toEqual([]);
    expect(engine.takeChanges().map((c) => c.key)).toEqual(['B-1/low']);
    expect(engine.ingest(level(3000, -245))).toEqual([]);
    expect(engine.active()).toMatchObject([{ state: 'active_unacknowledged', incidentId: raised!.incidentId }]);
    // -230 is below the old limit but above the new one: the new definition judges it.
    expect(engine.ingest(level(4000, -230))).toMatchObject([{ type: 'cleared', incidentId: raised!.incidentId }]);
  });

  it('a removed rule closes its open incident and its state is deleted', () => {
    const other = rule({ id: 'other', condition: at('level <= -300') });
    const engine = new RuleEngine({ site: 's', rules: [rule(), other], now: 0 });
    const [raised] = engine.ingest(level(1000, -250));
    engine.takeChanges();
    engine.reconfigure([other], same, 2000);
    expect(engine.takeEvents()).toMatchObject([
      { type: 'closed', rule: 'low', incidentId: raised!.incidentId, comment: 'rule removed from the site file (reload)', ts: 2000 },
    ]);
    expect(engine.takeChanges()).toEqual([{ key: 'B-1/low', state: null }]);
    expect(engine.active()).toEqual([]);
    // A normal alarm removed has nothing to close.
    engine.reconfigure([], same, 3000);
    expect(engine.takeEvents()).toEqual([]);
    expect(engine.takeChanges()).toEqual([{ key: 'B-1/other', state: null }]);
  });

  it('an added rule judges the values already read', () => {
    const engine = new RuleEngine({ site: 's', rules: [rule({ id: 'other', condition: at('level <= -300') })], now: 0 });
    engine.ingest(level(1000, -250));
    engine.reconfigure([rule({ id: 'other', condition: at('level <= -300') }), rule()], same, 2000);
    expect(engine.ingest(level(3000, -250))).toMatchObject([{ type: 'raised', rule: 'low' }]);
  });
});

describe('specFingerprint', () => {
  it('changes with the limits of the equipment, which are compiled into the expressions', () => {
    expect(specFingerprint(rule(), { lo: 1 })).not.toBe(specFingerprint(rule(), { lo: 2 }));
    expect(specFingerprint(rule(), { lo: 1 })).toBe(specFingerprint(rule(), { lo: 1 }));
    expect(specFingerprint(rule(), {})).not.toBe(specFingerprint(rule({ condition: at('level <= -201') }), {}));
  });
});
