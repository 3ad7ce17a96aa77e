// Data-driven: each folder under cases/ holds a site file, an optional env.json and the expected
// `path: message (line N)` lines (or `valid`). A bug report becomes a new folder.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, formatProblem } from '../../../config/errors.js';
import { parseSite } from '../../../config/load.js';

const dir = join(import.meta.dirname, 'cases');
const cases = readdirSync(dir).filter((c) => existsSync(join(dir, c, 'site.yaml')));

describe('site file cases', () => {
  it('has cases', () => expect(cases.length).toBeGreaterThanOrEqual(8));

  it.each(cases)('%s', (name) => {
    const read = (f: string) => readFileSync(join(dir, name, f), 'utf8');
    const env = existsSync(join(dir, name, 'env.json')) ? (JSON.parse(read('env.json')) as Record<string, string>) : {};
    const expected = read('expected.txt').trimEnd().split('\n');
    let actual: string[];
    try {
      parseSite(read('site.yaml'), { env, file: `${name}/site.yaml` });
      actual = ['valid'];
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      actual = err.problems.map(formatProblem);
    }
    expect(actual).toEqual(expected);
  });
});
