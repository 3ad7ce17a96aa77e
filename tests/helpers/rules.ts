// Rule specs for engine tests: a red `level <= -200` alarm on B-1 by default, over the points named.
import type { RuleEngine } from '../../rules/engine.js';
import { compile } from '../../rules/expression.js';
import type { AlarmStore, PersistedAlarm, RuleSpec } from '../../rules/types.js';

/** Expression names where the given points exist and nothing else does. */
export function pointNames(...points: string[]) {
  return { isPoint: (n: string): boolean => points.includes(n), constant: () => undefined, describe: () => points.join(', ') };
}

export function lowLevelRule(names: ReturnType<typeof pointNames>, o: Partial<RuleSpec> = {}): RuleSpec {
  return {
    id: 'low',
    equipment: 'B-1',
    level: 'red',
    message: 'Level low: {value}',
    condition: { kind: 'expression', expr: compile('level <= -200', names) },
    onDelayMs: 0,
    offDelayMs: 0,
    deadband: 0,
    latch: false,
    ...o,
  };
}

/** What the gateway keeps in SQLite, kept in a Map here: a copy of what each commit took, as a disk would. */
export function memoryStore(): AlarmStore & { data: Map<string, PersistedAlarm>; commit(engine: RuleEngine): void } {
  const data = new Map<string, PersistedAlarm>();
  return {
    data,
    load: () => new Map([...data].map(([k, v]) => [k, structuredClone(v)])),
    commit(engine) {
      for (const { key, state } of engine.takeChanges()) {
        if (state) data.set(key, structuredClone(state));
        else data.delete(key);
      }
    },
  };
}
