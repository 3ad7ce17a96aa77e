import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../config/errors.js';
import { parseSite } from '../../../config/load.js';
import { parseDays, systemTimeZone } from '../../../config/risk-schema.js';
import { loadTemplates, parseTemplate, TemplateError } from '../../../config/templates.js';

const site = (opts: { gateway?: string; equipment?: string; extra?: string } = {}) => `
version: 1
gateway: { id: gw-1, site: plant-1${opts.gateway ?? ''} }
connections: [{ id: sim, type: sim }]
equipment:
  - id: B-1
    code: "10003101012019000117"
    connection: sim
    model: steam-boiler
    points: [{ name: drum_level }]
${opts.equipment ?? ''}
${opts.extra ?? ''}`;

const problems = (text: string) => {
  try {
    parseSite(text, { env: {} });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
};

describe('risk keys of the site file', () => {
  it('parses days as well as the shorter durations', () => {
    expect(parseDays('30d')).toBe(30 * 86_400_000);
    expect(parseDays('1.5d')).toBe(36 * 3_600_000);
    expect(parseDays('12h')).toBe(12 * 3_600_000);
    expect(parseDays('30 days')).toBeUndefined();
  });

  it('gives the defaults: system time zone, one operator, risk on, report at 06:00', () => {
    const cfg = parseSite(site());
    expect(cfg.gateway.timezone).toBe(systemTimeZone());
    expect(cfg.alarms.operators).toBe(1);
    expect(cfg.risk).toMatchObject({ enabled: true, hold: 300_000, factors: {}, likelihood: [10, 25, 50, 100], summary_every: 3_600_000 });
    expect(cfg.risk.levels).toEqual({ yellow: 5, orange: 10, red: 15 });
    expect(cfg.report).toEqual({ enabled: true, at: '06:00', keep: 400 * 86_400_000 });
  });

  it('reads administrative dates with their default warning periods', () => {
    const cfg = parseSite(
      site({
        gateway: ', timezone: Asia/Shanghai',
        equipment: [
          '    inspection: { next: 2027-03-31 }',
          '    maintenance: { last: 2026-11-20, interval: 15d }',
          '    certificate: { valid_until: 2028-06-30, warn_before: 60d }',
          '    consequence: 3',
        ].join('\n'),
      }),
    );
    const eq = cfg.equipment[0]!;
    expect(cfg.gateway.timezone).toBe('Asia/Shanghai');
    expect(eq.inspection).toEqual({ next: '2027-03-31', warn_before: 30 * 86_400_000 });
    expect(eq.maintenance).toEqual({ last: '2026-11-20', interval: 15 * 86_400_000, warn_before: 3 * 86_400_000 });
    expect(eq.certificate).toEqual({ valid_until: '2028-06-30', warn_before: 60 * 86_400_000 });
    expect(eq.consequence).toBe(3);
  });

  it('gives each equipment its effective consequence: its own, else its template’s, else its category’s', () => {
    const text = site({
      extra: [
        // A template's consequence goes over the category's: 3 is not a boiler's (4).
        '  - { id: B-2, consequence: 3, template: boiler-steam, connection: sim, model: steam-boiler, points: [{ name: drum_level }],',
        '      disabled_rules: [low-water-interlock, overpressure, pressure-high, flame-failure] }',
        '  - { id: B-3, template: boiler-steam, connection: sim, model: steam-boiler, points: [{ name: drum_level }],',
        '      disabled_rules: [low-water-interlock, overpressure, pressure-high, flame-failure] }',
        '  - { id: L-1, category: lab_analyzer, connection: sim, model: steam-boiler, points: [{ name: drum_level }] }',
        '  - { id: X-1, category: other, connection: sim, model: steam-boiler, points: [{ name: drum_level }] }',
      ].join('\n'),
    });
    const byId = new Map(parseSite(text, { env: {} }).equipment.map((e) => [e.id, e.consequence]));
    // B-1 is a boiler by its code and has no template: by category, 4.
    expect(Object.fromEntries(byId)).toEqual({ 'B-1': 4, 'B-2': 3, 'B-3': 4, 'L-1': 1, 'X-1': 2 });
  });

  it('gives every shipped template its consequence class', () => {
    const classes = Object.fromEntries([...loadTemplates()].map(([id, t]) => [id, t.consequence]));
    expect(classes).toEqual({
      'boiler-hot-water': 4,
      'boiler-steam': 4,
      crane: 3,
      'elevator-traction': 3,
      'lab-analyzer': 1,
      'pressure-vessel': 4,
    });
  });

  it("refuses a template's consequence class out of range and an unknown risk factor", () => {
    const template = (extra: string) => `template: x\nname: X\ncategory: boiler\npoints: [{ name: a }]\n${extra}\n`;
    expect(() => parseTemplate(template('consequence: 0'), 'x.yaml')).toThrow(TemplateError);
    expect(() => parseTemplate(template('risk: { factors: { luck: { weight: 1 } } }'), 'x.yaml')).toThrow(/risk\.factors/);
    expect(parseTemplate(template('consequence: 2\nrisk: { factors: { near_misses: { weight: 4 } } }'), 'x.yaml')).toMatchObject({
      consequence: 2,
      risk: { factors: { near_misses: { weight: 4 } } },
    });
  });

  it('reports every mistake at its path at once', () => {
    expect(
      problems(
        site({
          gateway: ', timezone: Mars/Olympus',
          equipment: [
            '    inspection: { next: 2027-02-30 }',
            '    maintenance: { last: 2026-11-20 }',
            '    certificate: { valid_until: 2028-06-30, warn_before: 30 days }',
            '    consequence: 5',
          ].join('\n'),
          extra: [
            'alarms: { operators: 0 }',
            'risk: { hold: 5, factors: { nonsense: { weight: 1 } }, likelihood: [10, 5, 50, 100], levels: { yellow: 12 } }',
            'report: { at: "6:00" }',
          ].join('\n'),
        }),
      ),
    ).toMatchInlineSnapshot(`
      [
        "gateway.timezone: expected an IANA time zone name such as Asia/Shanghai or UTC",
        "equipment[0].inspection.next: expected a date written YYYY-MM-DD, such as 2026-09-30",
        "equipment[0].maintenance: expected next, or last and interval (next is last + interval)",
        "equipment[0].certificate.warn_before: expected a duration such as 30d, 15d, 12h or 5m",
        "equipment[0].consequence: expected a consequence class from 1 (minor) to 4 (catastrophic)",
        "alarms.operators: expected at least 1, got 0",
        "risk.hold: expected a duration such as 30d, 15d, 12h or 5m",
        "risk.factors.nonsense: unknown key",
        "risk.likelihood: expected thresholds in ascending order",
        "risk.levels: expected yellow < orange < red",
        "report.at: expected a time of day written HH:MM, such as 06:00",
      ]
    `);
  });
});
