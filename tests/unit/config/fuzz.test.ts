// Property tests of the site-file loader: whatever text it is given (random structures, mutations of
// the valid cases, deep nesting, alias bombs), it answers with a ConfigError of `path: message`
// lines, or with a config; never a raw stack, a RangeError or a TypeError. Inputs that once failed
// are kept in tests/unit/corpus/site-files, one file each, and replayed first.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, formatProblem } from '../../../config/errors.js';
import { parseSite, SITE_FILE_LIMITS } from '../../../config/load.js';

const CASES = join(import.meta.dirname, 'cases');
const CORPUS = join(import.meta.dirname, '..', 'corpus', 'site-files');
const valid = readdirSync(CASES)
  .filter((c) => readFileSync(join(CASES, c, 'expected.txt'), 'utf8').trim() === 'valid')
  .map((c) => readFileSync(join(CASES, c, 'site.yaml'), 'utf8'));
const corpus = readdirSync(CORPUS).filter((f) => f.endsWith('.yaml'));

/** What the loader may answer: a config, or a ConfigError whose problems read as `path: message`. */
function outcome(text: string): 'valid' | 'invalid' {
  return problemsOf(text) ? 'invalid' : 'valid';
}

function problemsOf(text: string): string[] | undefined {
  try {
    parseSite(text, { env: { GW_ID: 'gw-1' } });
    return undefined;
  } catch (err) {
    if (!(err instanceof ConfigError))
      throw new Error(`not a ConfigError: ${String((err as Error)?.name)}: ${String((err as Error)?.message).slice(0, 300)}`, {
        cause: err,
      });
    expect(err.problems.length).toBeGreaterThan(0);
    for (const p of err.problems) {
      const line = formatProblem(p);
      expect(line).toMatch(/^[^\n]+: [^\n]+$/);
      expect(line).not.toMatch(/\bat .+:\d+:\d+\)?$|Maximum call stack|RangeError|TypeError/);
      expect(line.length).toBeLessThan(2000);
    }
    return err.problems.map(formatProblem);
  }
}

/** Text edits of a valid file: cut, insert, duplicate, swap lines, replace a token. */
const mutation = (text: string) =>
  fc.oneof(
    fc.tuple(fc.nat(text.length), fc.nat(40)).map(([at, n]) => text.slice(0, at) + text.slice(at + n)),
    fc
      .tuple(fc.nat(text.length), fc.string({ unit: fc.constantFrom(...'{}[],:-&*!|>\'"#%@` \n\t$abc1.?'.split('')), maxLength: 12 }))
      .map(([at, s]) => text.slice(0, at) + s + text.slice(at)),
    fc.tuple(fc.nat(200), fc.nat(200)).map(([a, b]) => {
      const lines = text.split('\n');
      const i = a % lines.length;
      const j = b % lines.length;
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      return lines.join('\n');
    }),
    fc.tuple(fc.nat(200), fc.nat(5)).map(([a, k]) => {
      const lines = text.split('\n');
      const i = a % lines.length;
      lines.splice(i, 0, ...Array<string>(k + 1).fill(lines[i]!));
      return lines.join('\n');
    }),
    fc
      .tuple(
        fc.nat(200),
        fc.oneof(
          fc.constant('null'),
          fc.constant('[]'),
          fc.constant('{}'),
          fc.constant('~'),
          fc.constant('-1e999'),
          fc.constant('"\\u0000"'),
          fc.constant('*x'),
          fc.constant('&x [*x]'),
          fc.constant('!!binary AAAA'),
          fc.constant('!!set {a}'),
          fc.constant('!!timestamp 2001-12-14'),
          fc.constant('{toString: 1, valueOf: 2}'),
          fc.constant('__proto__'),
          fc.constant('constructor'),
          fc.string({ maxLength: 8 }),
        ),
      )
      .map(([a, v]) => {
        const tokens = text.split(/(?<=[:,[{]\s)/);
        const i = a % tokens.length;
        tokens[i] = v + tokens[i]!.replace(/^[^,}\]\n]*/, '');
        return tokens.join('');
      }),
  );

/** Structural edits: a value anywhere in a valid document replaced by anything YAML can hold. */
const structural = (text: string) => {
  const doc = parseSite(text, { env: { GW_ID: 'gw-1' } }) as unknown;
  const paths: Array<Array<string | number>> = [];
  const walk = (v: unknown, path: Array<string | number>) => {
    paths.push(path);
    if (Array.isArray(v)) v.forEach((x, k) => walk(x, [...path, k]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  const raw = JSON.parse(JSON.stringify(doc)) as Record<string, unknown>;
  walk(raw, []);
  return fc
    .tuple(
      fc.constantFrom(...paths.filter((p) => p.length > 0)),
      fc.jsonValue({ maxDepth: 3 }),
      fc.constantFrom('{}', 'x', '__proto__', 'constructor', 'toString'),
    )
    .map(([path, value, key]) => {
      const copy = JSON.parse(JSON.stringify(raw)) as Record<string, unknown>;
      let at: Record<string | number, unknown> = copy;
      for (const seg of path.slice(0, -1)) at = at[seg] as Record<string | number, unknown>;
      const last = path.at(-1)!;
      at[last] = typeof value === 'object' && value !== null && !Array.isArray(value) ? { ...value, [key]: 1 } : value;
      return stringify(copy);
    });
};

const deepFlow = (depth: number, open: string, close: string) => `version: 1\ngateway: ${open.repeat(depth)}${close.repeat(depth)}\n`;
const deepBlock = (depth: number) => `version: 1\n${Array.from({ length: depth }, (_, i) => `${' '.repeat(i)}k:`).join('\n')}\n`;
const aliasBomb = (levels: number, width: number) =>
  `${Array.from(
    { length: levels },
    (_, i) =>
      `l${i}: &a${i} [${Array<string>(width)
        .fill(i === 0 ? '"lol"' : `*a${i - 1}`)
        .join(', ')}]`,
  ).join('\n')}\nversion: 1\n`;

describe('site-file loader under random input', () => {
  it('has valid cases to mutate and a corpus to replay', () => {
    expect(valid.length).toBeGreaterThanOrEqual(2);
    expect(corpus.length).toBeGreaterThan(0);
  });

  it.each(corpus)('corpus: %s', (file) => {
    outcome(readFileSync(join(CORPUS, file), 'utf8'));
  });

  it('answers random YAML structures with a config or a ConfigError', () => {
    fc.assert(
      fc.property(
        fc.anything({ maxDepth: 4, withNullPrototype: false, withBoxedValues: false, withMap: false, withSet: false }),
        (v) => void outcome(stringify(v) ?? ''),
      ),
      { numRuns: 300 },
    );
  });

  it('answers random text with a config or a ConfigError', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...'{}[],:-&*!|>\'"#%@`? \n\t$abcxyz019.\\'.split('')), maxLength: 200 }),
        (t) => void outcome(t),
      ),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 100 }), (t) => void outcome(t)),
      { numRuns: 200 },
    );
  });

  it('answers text mutations of the valid cases with a config or a ConfigError', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...valid).chain((t) => fc.array(mutation(t), { minLength: 1, maxLength: 1 })),
        ([t]) => void outcome(t!),
      ),
      { numRuns: 400 },
    );
  });

  it('answers structural mutations of the valid cases with a config or a ConfigError', () => {
    fc.assert(
      fc.property(fc.oneof(...valid.map(structural)), (t) => void outcome(t)),
      { numRuns: 300 },
    );
  });

  it('refuses a file over the size limit without parsing it', () => {
    const big = `version: 1\n# ${'x'.repeat(SITE_FILE_LIMITS.maxBytes)}\n`;
    const t0 = performance.now();
    expect(problemsOf(big)).toEqual([`(yaml): the file is ${Buffer.byteLength(big)} bytes, at most ${SITE_FILE_LIMITS.maxBytes}`]);
    expect(performance.now() - t0).toBeLessThan(100);
  });

  it('refuses deep nesting and alias bombs with a ConfigError that says so', () => {
    fc.assert(
      fc.property(fc.integer({ min: 65, max: 5000 }), fc.constantFrom(['[', ']'], ['{a: ', '}']), (depth, [open, close]) => {
        expect(problemsOf(deepFlow(depth, open!, close!))).toEqual([
          expect.stringMatching(/^\(yaml\): nested too deeply: at most 64 levels of mappings and lists \(line \d+\)$/),
        ]);
      }),
      { numRuns: 20 },
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 65, max: 2000 }),
        (depth) => void expect(problemsOf(deepBlock(depth))).toEqual([expect.stringMatching(/^\(yaml\): nested too deeply/)]),
      ),
      { numRuns: 10 },
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 4, max: 12 }),
        fc.integer({ min: 4, max: 12 }),
        (levels, width) =>
          void expect(problemsOf(aliasBomb(levels, width))).toEqual([
            expect.stringMatching(
              /^\(yaml\): (aliases expand too far \(at most 100 expansions\)|more than 100 aliases \(\*name\)): a YAML alias bomb\?/,
            ),
          ]),
      ),
      { numRuns: 20 },
    );
  });
});
