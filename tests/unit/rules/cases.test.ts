// Table-driven rule cases: each folder under cases/ holds a site file with rules, the readings that
// arrive (readings.csv), the operator's actions if any (actions.csv) and the alarm events expected
// (expected.txt, one formatted event per line). A bug report becomes a new folder.
import { reportsOnChangeOf } from '../../../drivers/index.js';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSite } from '../../../config/load.js';
import { backtest, formatEvent, parseActionsCsv, parseReadingsCsv } from '../../../rules/backtest.js';
import { ruleSpecsOf } from '../../../rules/compile.js';

const dir = join(import.meta.dirname, 'cases');
const cases = readdirSync(dir).filter((c) => existsSync(join(dir, c, 'site.yaml')));

describe('rule cases', () => {
  it('has cases', () => expect(cases.length).toBeGreaterThanOrEqual(11));

  it.each(cases)('%s', (name) => {
    const read = (f: string) => readFileSync(join(dir, name, f), 'utf8');
    const site = parseSite(read('site.yaml'), { env: {}, file: `${name}/site.yaml` });
    const tail = existsSync(join(dir, name, 'tail.txt')) ? Number(read('tail.txt').trim()) : 0;
    const events = backtest({
      site: site.gateway.site,
      rules: ruleSpecsOf(site, reportsOnChangeOf(site)),
      readings: parseReadingsCsv(read('readings.csv')),
      actions: existsSync(join(dir, name, 'actions.csv')) ? parseActionsCsv(read('actions.csv')) : [],
      tailMs: tail,
      chattering: site.alarms.chattering,
    });
    const expected = read('expected.txt')
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('#'));
    expect(events.map(formatEvent)).toEqual(expected);
  });
});
