// Property tests of the rule expression parser: random tokens, random text and deep nesting get a
// compiled expression or an ExpressionError with its column; never a RangeError or a raw stack.
// Inputs that once failed are kept in tests/unit/corpus/expressions, one file each, and replayed.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile, ExpressionError, MAX_EXPRESSION_DEPTH, MAX_EXPRESSION_LENGTH, type Names } from '../../../rules/expression.js';

const CORPUS = join(import.meta.dirname, '..', 'corpus', 'expressions');
const corpus = readdirSync(CORPUS).filter((f) => f.endsWith('.txt'));
const names: Names = {
  isPoint: (n) => ['a', 'b', 'flame'].includes(n),
  constant: (n) => (n === 'limit' ? 10 : n === 'mode' ? 'auto' : undefined),
  describe: () => 'points are a, b, flame',
};
const scope = { point: (n: string) => (n === 'flame' ? true : n === 'a' ? 3 : undefined), deadband: 0, active: false };

/** compile() may succeed or throw an ExpressionError whose column lies within the text (or just past it). */
function outcome(src: string): 'compiled' | 'refused' {
  let compiled;
  try {
    compiled = compile(src, names);
  } catch (err) {
    if (!(err instanceof ExpressionError))
      throw new Error(`not an ExpressionError: ${String((err as Error)?.name)}: ${String((err as Error)?.message).slice(0, 200)}`, {
        cause: err,
      });
    expect(err.column).toBeGreaterThanOrEqual(1);
    expect(err.column).toBeLessThanOrEqual(src.length + 1);
    expect(err.message).toMatch(/^column \d+: [^\n]+$/);
    return 'refused';
  }
  // Evaluating may meet text where a number is needed (an ExpressionError); nothing else.
  try {
    compiled.evaluate(scope);
  } catch (err) {
    if (!(err instanceof ExpressionError)) throw err;
  }
  return 'compiled';
}

const token = fc.constantFrom(
  'a',
  'b',
  'flame',
  'limit',
  'mode',
  'nope',
  'abs',
  'min',
  'max',
  'round',
  'not',
  'and',
  'or',
  'true',
  'false',
  '1',
  '2.5',
  '1e3',
  '.5',
  '"x"',
  "'y'",
  '"',
  '(',
  ')',
  ',',
  '<',
  '<=',
  '>',
  '>=',
  '==',
  '!=',
  '=',
  '&&',
  '||',
  '&',
  '|',
  '!',
  '+',
  '-',
  '*',
  '/',
  '%',
  ' ',
  '#',
  '$',
  '\u0000',
  'é',
  '__proto__',
  'constructor',
);

describe('rule expressions under random input', () => {
  it('has a corpus to replay', () => expect(corpus.length).toBeGreaterThan(0));

  it.each(corpus)('corpus: %s', (file) => {
    outcome(readFileSync(join(CORPUS, file), 'utf8'));
  });

  it('compiles or refuses random token sequences, with a column', () => {
    fc.assert(
      fc.property(fc.array(token, { maxLength: 40 }), (tokens) => void outcome(tokens.join(' '))),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 40 }), (tokens) => void outcome(tokens.join(''))),
      { numRuns: 2000 },
    );
  });

  it('compiles or refuses random text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => void outcome(s)),
      { numRuns: 2000 },
    );
  });

  it('refuses nesting beyond the limit with the column where it goes too deep, whatever the kind of nesting', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: MAX_EXPRESSION_DEPTH + 1, max: 20_000 }),
        fc.constantFrom(['(', ')'], ['-', ''], ['!', ''], ['not ', ''], ['abs(', ')']),
        (depth, [open, close]) => {
          const src = `${open!.repeat(depth)}a${close!.repeat(depth)} > 1`;
          if (src.length > MAX_EXPRESSION_LENGTH) return void expect(outcome(src)).toBe('refused');
          const e = (() => {
            try {
              compile(src, names);
            } catch (err) {
              return err;
            }
          })();
          expect(e).toBeInstanceOf(ExpressionError);
          expect((e as ExpressionError).reason).toMatch(/nested too deeply \(at most \d+ levels\)/);
          expect((e as ExpressionError).column).toBe(open!.length * MAX_EXPRESSION_DEPTH + 1);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('compiles nesting up to the limit, and evaluates it', () => {
    const src = `${'('.repeat(MAX_EXPRESSION_DEPTH - 1)}a${')'.repeat(MAX_EXPRESSION_DEPTH - 1)} > 1`;
    expect(compile(src, names).evaluate(scope)).toBe(true);
  });

  it('refuses a text longer than the limit, and evaluates a long flat chain without deep recursion', () => {
    expect(outcome('a + '.repeat(MAX_EXPRESSION_LENGTH))).toBe('refused');
    // Tens of thousands of terms: as nested closures, evaluating these overflowed the stack.
    const sum = compile(`${'a+'.repeat(30_000)}1>0`, names);
    expect(sum.evaluate(scope)).toBe(true);
    expect(sum.value(scope)).toBe(true);
    const any = compile(`${'a>5||'.repeat(12_000)}flame`, names);
    expect(any.evaluate(scope)).toBe(true);
    const all = compile(`${'a>1&&'.repeat(12_000)}a<1`, names);
    expect(all.evaluate(scope)).toBe(false);
  });
});
