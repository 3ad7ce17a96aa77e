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

  describe('with --risk, on the recorded feed-pump trip of the demo boiler (tests/fixtures/boiler-feed-pump-trip.csv)', () => {
    const trip = join(ROOT, 'tests', 'fixtures', 'boiler-feed-pump-trip.csv');
    const site = () => {
      const file = join(mkdtempSync(join(tmpdir(), 'gw-rules-')), 'site.yaml');
      writeFileSync(
        file,
        [
          'version: 2',
          'gateway: { id: gw-1, site: plant-1, timezone: Asia/Shanghai }',
          'connections: [{ id: boiler-plc, type: modbus-tcp, host: 127.0.0.1, port: 502 }]',
          'equipment:',
          '  - { id: B-07, profile: gateway-sim-steam-boiler, connection: boiler-plc, unit_id: 1, poll_interval: 1s }',
          '',
        ].join('\n'),
      );
      return file;
    };

    it('prints the risk rise among the alarm events, each change with its factors, and counts it', () => {
      const r = gateway(['rules', 'test', site(), '--input', trip, '--risk']);
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines.filter((l) => / risk B-07 /.test(l))).toEqual([
        '2026-03-01T08:00:45.000Z risk B-07 blue -> yellow (index 8: predicted 1 = 15)',
        '2026-03-01T08:00:48.000Z risk B-07 yellow -> orange (index 12: predicted 1 = 15, alarm_yellow 1 = 10)',
        '2026-03-01T08:00:54.000Z risk B-07 orange -> red (index 20: alarm_red 1 = 100, alarm_orange 1 = 40, predicted 1 = 15, alarm_yellow 1 = 10)',
      ]);
      // The red alarm comes before the risk change it causes, in the same second.
      const red = lines.findIndex((l) => l.includes(' raised B-07/drum-level-low-low red '));
      expect(red).toBeGreaterThan(lines.findIndex((l) => l.includes(' raised B-07/drum-level-low-low.predicted orange ')));
      expect(lines[red + 2]).toContain(' risk B-07 orange -> red ');
      expect(r.stderr).toContain('808 readings, 10 alarm events, 0 near misses, 3 risk changes');
    });

    it('with --json, one JSON object a line, each with its kind; --tail lets the risk come down after risk.hold', () => {
      const r = gateway(['rules', 'test', site(), '--input', trip, '--risk', '--json', '--tail', '12m']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      const entries = r.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as { kind: string; ts: number; from?: string; to?: string; factors?: unknown[] });
      expect(new Set(entries.map((e) => e.kind))).toEqual(new Set(['alarm', 'risk']));
      const risks = entries.filter((e) => e.kind === 'risk');
      expect(risks.map((e) => `${e.from}->${e.to}`).slice(0, 3)).toEqual(['blue->yellow', 'yellow->orange', 'orange->red']);
      // Down only after the default 5 min hold, from the last alarm's clearing (08:01:27).
      const down = risks.slice(3);
      expect(down.length).toBeGreaterThan(0);
      expect(down[0]!.ts).toBeGreaterThanOrEqual(Date.parse('2026-03-01T08:06:27Z'));
      for (const e of risks) expect(Array.isArray(e.factors)).toBe(true);
    });

    it('--help says so, with an example', () => {
      const r = gateway(['rules', 'test', '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('--risk');
      expect(r.stdout).toContain('--tail <duration>');
      expect(r.stdout).toContain('gateway rules test site.yaml --input readings.csv --risk --tail 10m');
    });

    it('refuses a tail that is no duration, in one line', () => {
      const r = gateway(['rules', 'test', site(), '--input', trip, '--risk', '--tail', 'soon']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--tail takes a duration up to 24h, such as 30s, 10m or 1h, not "soon"');
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
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
