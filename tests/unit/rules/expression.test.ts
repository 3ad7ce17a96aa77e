import { describe, expect, it } from 'vitest';
import { compile, ExpressionError, type Names, type Scope, type Value } from '../../../rules/expression.js';

const names = (points: string[], constants: Record<string, Value> = {}): Names => ({
  isPoint: (n) => points.includes(n),
  constant: (n) => (Object.hasOwn(constants, n) ? constants[n] : undefined),
  describe: () => `points are ${points.join(', ')}`,
});
const scope = (values: Record<string, Value | undefined>, o: Partial<Scope> = {}): Scope => ({
  point: (n) => values[n],
  deadband: 0,
  active: false,
  ...o,
});
const errorOf = (src: string, n = names(['a', 'b'])) => {
  try {
    compile(src, n);
  } catch (e) {
    return e as ExpressionError;
  }
  throw new Error(`compiled: ${src}`);
};

describe('rule expressions', () => {
  it.each([
    ['drum_level <= -200', { drum_level: -212 }, true],
    ['drum_level <= -200', { drum_level: -199 }, false],
    ['flame == false && burner_on', { flame: false, burner_on: true }, true],
    ['flame == false && burner_on', { flame: true, burner_on: true }, false],
    ['not flame and burner_on', { flame: false, burner_on: true }, true],
    ['steam_pressure > 0.9 * design_pressure', { steam_pressure: 1.17 }, true],
    ['steam_pressure > 0.9 * design_pressure', { steam_pressure: 1.1 }, false],
    ['(a + b) / 2 >= 10 || a % 2 == 1', { a: 3, b: 4 }, true],
    ['abs(a - b) > 5 and max(a, b, 0) < 100', { a: 20, b: 2 }, true],
    ['mode == "inspection"', { mode: 'inspection' }, true],
    ['flag == 1', { flag: true }, true],
    ['-a < -2', { a: 3 }, true],
  ])('%s with %j is %s', (src, values, expected) => {
    const c = compile(src, names(Object.keys(values).concat(['burner_on']), { design_pressure: 1.25 }));
    expect(c.evaluate(scope(values))).toBe(expected);
  });

  it('knows the points it reads, and which it compares first', () => {
    const c = compile('steam_pressure > design_pressure && flame', names(['steam_pressure', 'flame'], { design_pressure: 1 }));
    expect([...c.points]).toEqual(['steam_pressure', 'flame']);
    expect(c.primaryPoint).toBe('steam_pressure');
  });

  it('is uncertain when a point it reads has no good value, even where the other side would decide', () => {
    const c = compile('a > 1 || b > 1', names(['a', 'b']));
    expect(c.evaluate(scope({ a: 5, b: undefined }))).toBeUndefined();
    expect(c.evaluate(scope({ a: 5, b: 0 }))).toBe(true);
  });

  it('holds an active comparison by the deadband, in the direction of staying active', () => {
    const low = compile('level <= -200', names(['level']));
    expect(low.evaluate(scope({ level: -195 }, { deadband: 10, active: false }))).toBe(false);
    expect(low.evaluate(scope({ level: -195 }, { deadband: 10, active: true }))).toBe(true);
    expect(low.evaluate(scope({ level: -189 }, { deadband: 10, active: true }))).toBe(false);
    const high = compile('p > 1.5', names(['p']));
    expect(high.evaluate(scope({ p: 1.45 }, { deadband: 0.1, active: true }))).toBe(true);
    expect(high.evaluate(scope({ p: 1.39 }, { deadband: 0.1, active: true }))).toBe(false);
  });

  it.each([
    ['a >', 4, /expected a value but found the end of the expression/],
    ['a = 1', 3, /"=" is not a comparison; write "=="/],
    ['a & b', 3, /write "&&"/],
    ['a > 1 b', 7, /unexpected "b"/],
    ['c > 1', 1, /unknown name "c": points are a, b/],
    ['constructor > 1', 1, /unknown name "constructor"/],
    ['toString(a) > 1', 1, /unknown function "toString"/],
    ['abs(a, b) > 1', 1, /abs\(\) takes 1 argument\b/],
    ['1 < a < 3', 7, /comparisons do not chain/],
    ['(a > 1', 7, /expected "\)"/],
    ["a == 'x", 6, /unterminated string/],
    ['a > 1 # note', 7, /unexpected character "#"/],
  ])('refuses %j at column %i', (src, column, message) => {
    const e = errorOf(src);
    expect(e).toBeInstanceOf(ExpressionError);
    expect(e.column).toBe(column);
    expect(e.message).toMatch(message);
  });

  it('reaches nothing but points and limits: no prototype, no globals', () => {
    for (const src of ['__proto__ > 1', 'process > 1', 'globalThis > 1', 'hasOwnProperty > 1'])
      expect(errorOf(src, names(['a'], {}))).toBeInstanceOf(ExpressionError);
  });
});
