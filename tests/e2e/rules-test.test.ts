// `gateway rules test`: a safety engineer replays recorded readings through a site's rules.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gatewaySync as gateway, ROOT } from '../helpers/cli.js';

const cases = join(ROOT, 'tests', 'unit', 'rules', 'cases');

describe('gateway rules test', () => {
  it('prints the alarm events the readings would raise, with their times', () => {
    const c = join(cases, 'on-off-delay');
    const r = gateway([
      'rules',
      'test',
      '-c',
      join(c, 'site.yaml'),
      '--input',
      join(c, 'readings.csv'),
      '--actions',
      join(c, 'actions.csv'),
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd().split('\n')).toEqual([
      '5000 raised B-1/overpressure orange active_unacknowledged: Steam pressure high: 1.6 MPa',
      '11000 cleared B-1/overpressure orange returned_unacknowledged: Steam pressure high: 1.6 MPa',
      '12500 acknowledged B-1/overpressure orange normal by li: Steam pressure high: 1.6 MPa',
      '12500 closed B-1/overpressure orange normal: Steam pressure high: 1.6 MPa',
    ]);
    expect(r.stderr).toContain('13 readings, 4 alarm events');
  });

  it('tries a limit change: with the limit raised the same readings raise nothing', () => {
    const c = join(cases, 'on-off-delay');
    const dir = mkdtempSync(join(tmpdir(), 'gw-rules-'));
    const site = join(dir, 'site.yaml');
    writeFileSync(site, readFileSync(join(c, 'site.yaml'), 'utf8').replace('steam_pressure > 1.5', 'steam_pressure > 1.7'));
    const r = gateway(['rules', 'test', '-c', site, '--input', join(c, 'readings.csv'), '--json']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
  });

  it('says which line of the CSV is wrong, and exits 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-rules-'));
    const input = join(dir, 'readings.csv');
    writeFileSync(input, 'ts,equipment,point,value,quality\n1000,B-1,steam_pressure,1.2,fine\n');
    const r = gateway(['rules', 'test', '-c', join(cases, 'on-off-delay', 'site.yaml'), '--input', input]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('line 2: quality must be good, uncertain or bad, not "fine" (GW_ERR_INPUT)');
  });
});
