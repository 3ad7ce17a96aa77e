// The parts of the Grafana export that follow from the templates and the site's limits: thresholds
// and uids (the dashboards as a whole are checked in tests/integration/grafana.test.ts).
import { describe, expect, it } from 'vitest';
import { loadTemplates } from '../../../../config/templates.js';
import type { SiteConfig } from '../../../../config/schema.js';
import { buildDashboards, grafanaUnit, stableUid, thresholdsOf } from '../../../../gateway/grafana/dashboards.js';

const steam = loadTemplates().get('boiler-steam')!;
const boiler = (id: string, limits: Record<string, number>, disabled: string[] = []) =>
  ({ id, limits: { ...steam.limits, ...limits }, disabled_rules: disabled }) as unknown as SiteConfig['equipment'][number];

describe('Grafana dashboards', () => {
  it("draws a point's limits at the equipment's own values", () => {
    const t = thresholdsOf(
      { template: steam, equipment: [boiler('B-1', { safety_valve_pressure: 2.5, design_pressure: 2.2 })] },
      'steam_pressure',
    );
    expect(t.thresholds?.steps).toEqual([
      { color: 'green', value: null },
      { color: 'orange', value: 2.2 },
      { color: 'red', value: 2.4 },
    ]);
  });

  it('draws none where the equipment shown differ, and says so', () => {
    const t = thresholdsOf({ template: steam, equipment: [boiler('B-1', {}), boiler('B-2', { drum_level_lo: -60 })] }, 'drum_level');
    expect(t.thresholds).toBeUndefined();
    expect(t.note).toMatch(/different limits/);
  });

  it('leaves out the limits of a rule the equipment does not get, and points no rule limits', () => {
    const t = thresholdsOf({ template: steam, equipment: [boiler('B-1', {}, ['overpressure'])] }, 'steam_pressure');
    expect(t.thresholds?.steps).toEqual([
      { color: 'green', value: null },
      { color: 'orange', value: 1.6 },
    ]);
    expect(thresholdsOf({ template: steam, equipment: [boiler('B-1', {})] }, 'flue_o2')).toEqual({});
  });

  it('gives uids Grafana takes (at most 40 of [A-Za-z0-9_-]), the same for the same site and group, different otherwise', () => {
    const long = stableUid('a-very-long-site-name-of-some-plant.with.dots', 'pressure-vessel', 'pressure-vessel', 'influxql');
    expect(long).toMatch(/^[A-Za-z0-9_-]{1,40}$/);
    expect(stableUid('s', 'boiler-steam', 'influxql')).toBe(stableUid('s', 'boiler-steam', 'influxql'));
    expect(stableUid('s', 'boiler-steam', 'influxql')).not.toBe(stableUid('s', 'boiler-steam', 'flux'));
    expect(stableUid('s', 'boiler-steam', 'influxql')).not.toBe(stableUid('t', 'boiler-steam', 'influxql'));
  });

  it("uses Grafana's unit ids, else the unit as written", () => {
    expect(grafanaUnit('°C')).toBe('celsius');
    expect(grafanaUnit('MPa')).toBe('suffix: MPa');
    expect(grafanaUnit(undefined)).toBeUndefined();
  });
});

describe('Grafana dashboards: a point the equipment give in different units', () => {
  // Two meters of no template, both with a point `power`: one in W, one in kW.
  const meter = (id: string, unit: string) =>
    ({
      id,
      category: 'other',
      points: [{ name: 'power', unit }],
      limits: {},
      disabled_rules: [],
    }) as unknown as SiteConfig['equipment'][number];
  const config = {
    gateway: { id: 'gw-1', site: 'plant-1' },
    equipment: [meter('M-1', 'W'), meter('M-2', 'kW'), meter('M-3', 'kW')],
  } as unknown as SiteConfig;
  const panels = (flavor: 'influxql' | 'flux') =>
    buildDashboards({
      config,
      templates: loadTemplates(),
      flavor,
      datasourceUid: 'ds',
      bucket: 'b',
      titleSuffix: '',
    })[0]!.dashboard.panels.filter((p) => p.title?.startsWith('power'));

  it('gets a panel per unit, each limited to the equipment that give it in that unit', () => {
    const p = panels('influxql');
    expect(p.map((x) => [x.title, x.fieldConfig.defaults.unit])).toEqual([
      ['power (W): M-1', 'watt'],
      ['power (kW): M-2, M-3', 'kwatt'],
    ]);
    expect(p[0]!.targets[0]!.query).toContain(`"equipment" =~ /^(M-1)$/`);
    expect(p[1]!.targets[0]!.query).toContain(`"equipment" =~ /^(M-2|M-3)$/`);
    // Still the dashboard's selection too.
    expect(p[1]!.targets[0]!.query).toContain('"equipment" =~ /^${equipment:regex}$/');
    const f = panels('flux');
    expect(f[0]!.targets[0]!.query).toContain('r.equipment =~ /^(M-1)$/');
  });

  it('keeps one panel for a point all give in the same unit', () => {
    const one = {
      ...config,
      equipment: [meter('M-2', 'kW'), meter('M-3', 'kW')],
    } as unknown as SiteConfig;
    const p = buildDashboards({
      config: one,
      templates: loadTemplates(),
      flavor: 'influxql',
      datasourceUid: 'ds',
      bucket: 'b',
      titleSuffix: '',
    })[0]!.dashboard.panels;
    expect(p.filter((x) => x.title?.startsWith('power')).map((x) => x.title)).toEqual(['power (kW)']);
  });
});
