// Rule specs for engine tests: a red `level <= -200` alarm on B-1 by default, over the points named.
import { compile } from '../../rules/expression.js';
import type { RuleSpec } from '../../rules/types.js';

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
