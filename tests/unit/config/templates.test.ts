// Every shipped equipment template: valid, and each of its rules reads only points it has and limits
// it defines. A site that uses a template gets its units, limits (overridable) and rules.
import { reportsOnChangeOf } from '../../../drivers/index.js';
import { describe, expect, it } from 'vitest';
import { ConfigError, formatProblem } from '../../../config/errors.js';
import { parseSite } from '../../../config/load.js';
import { loadTemplates, parseTemplate } from '../../../config/templates.js';
import { compileTemplateRules } from '../../../rules/compile.js';
import { ruleSpecsOf } from '../../../rules/compile.js';
import type { RuleConfig } from '../../../config/rules-schema.js';

const templates = loadTemplates();

/** The names a rule can read a limit by: every name in its expressions, and its limits rule's thresholds. */
function limitNamesOf(rule: RuleConfig): string[] {
  const expressions = [rule.when, rule.suppress_when].filter((e) => e !== undefined);
  const names = expressions.flatMap((e) => e.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []);
  const l = rule.limits;
  const thresholds = l ? [l.hihi, l.hi, l.lo, l.lolo].filter((v) => typeof v === 'string') : [];
  return [...names, ...thresholds];
}

describe('equipment templates', () => {
  it('ships the six kinds of equipment', () => {
    expect([...templates.keys()]).toEqual([
      'boiler-hot-water',
      'boiler-steam',
      'crane',
      'elevator-traction',
      'lab-analyzer',
      'pressure-vessel',
    ]);
  });

  it.each([...templates.keys()])("%s: every rule compiles against the template's own points and limits", (id) => {
    const t = templates.get(id)!;
    expect(t.rules.length).toBeGreaterThan(0);
    const problems: string[] = [];
    const eq = { id: 'X-1', category: t.category, template: t.template, poll_interval: 1000, points: t.points, limits: t.limits };
    const specs = compileTemplateRules(t.rules, eq, t.template, (path, m) => problems.push(`${path.join('.')}: ${m}`), ['template']);
    expect(problems).toEqual([]);
    expect(specs.length).toBeGreaterThanOrEqual(t.rules.length);
    // Every limit is used by some rule, so none is a dead setting: named whole, as an expression's
    // name or a limits rule's threshold (drum_level_lo inside drum_level_lolo does not count).
    const used = new Set(t.rules.flatMap(limitNamesOf));
    expect(Object.keys(t.limits).length).toBeGreaterThan(0);
    for (const name of Object.keys(t.limits)) expect([...used], `limit ${name}`).toContain(name);
  });

  it('refuses a template rule that names equipment, and a rule over a point the template lacks', () => {
    expect(() =>
      parseTemplate(
        'template: x\nname: X\ncategory: boiler\npoints: [{ name: a }]\nrules: [{ id: r, equipment: B-1, when: a > 1, level: red }]\n',
        'x.yaml',
      ),
    ).toThrow(/rules\[0\]\.equipment: a template's rules apply/);
    const t = parseTemplate(
      'template: x\nname: X\ncategory: boiler\npoints: [{ name: a }]\nrules: [{ id: r, when: b > 1, level: red }]\n',
      'x.yaml',
    );
    const problems: string[] = [];
    compileTemplateRules(
      t.rules,
      { id: 'X-1', category: 'boiler', poll_interval: 1000, points: t.points },
      'x',
      (p, m) => problems.push(m),
      [],
    );
    expect(problems).toEqual(['template x, when: rule r, column 1: unknown name "b": X-1 has the points a (equipment X-1)']);
  });
});

const site = (equipment: string[]) =>
  [
    'version: 1',
    'gateway: { id: gw-1, site: plant-1 }',
    'connections: [{ id: plc, type: modbus-tcp, host: 127.0.0.1, port: 502 }]',
    'equipment:',
    ...equipment.map((l) => `  ${l}`),
    '',
  ].join('\n');
const problems = (text: string) => {
  try {
    parseSite(text, { env: {} });
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems.map(formatProblem);
  }
};

describe('an equipment entry with a template', () => {
  const boiler = (
    extra: string[] = [],
    points = [
      'drum_level, address: "hr:0", type: int16',
      'steam_pressure, address: "hr:1", type: float32',
      'flame, address: "di:0", type: bool',
      'burner_on, address: "di:1", type: bool',
      'interlock_tripped, address: "di:2", type: bool',
    ],
  ) => [
    '- id: B-1',
    '  template: boiler-steam',
    '  connection: plc',
    ...extra.map((l) => `  ${l}`),
    '  points:',
    ...points.map((p) => `    - { name: ${p} }`),
  ];

  it('gets the category, the units, the limits with its overrides, and the rules', () => {
    const config = parseSite(site(boiler(['limits: { drum_level_lo: -60, design_pressure: 1.25 }'])), { env: {} });
    const eq = config.equipment[0]! as unknown as {
      category: string;
      limits: Record<string, number>;
      points: Array<{ name: string; unit?: string }>;
    };
    expect(eq.category).toBe('boiler');
    expect(eq.points.find((p) => p.name === 'drum_level')?.unit).toBe('mm');
    expect(eq.limits).toMatchObject({ drum_level_lo: -60, drum_level_hi: 50, design_pressure: 1.25 });
    const ids = ruleSpecsOf(config, reportsOnChangeOf(config)).map((s) => s.id);
    // Each limit-like part comes with its predicted warning, right after it.
    expect(ids).toEqual([
      'drum-level.hi',
      'drum-level.hi.predicted',
      'drum-level.lo',
      'drum-level.lo.predicted',
      'drum-level-low-low',
      'drum-level-low-low.predicted',
      'low-water-interlock',
      'overpressure',
      'overpressure.predicted',
      'pressure-high',
      'pressure-high.predicted',
      'flame-failure',
    ]);
    const lo = ruleSpecsOf(config, reportsOnChangeOf(config)).find((s) => s.id === 'drum-level.lo')!;
    expect(lo.condition.kind === 'expression' && lo.condition.expr.source).toBe('drum_level <= -60');
  });

  it('reports a missing point, an unknown limit, a unit that differs and an unknown disabled rule, each at its path', () => {
    const text = site(
      boiler(
        ['limits: { drum_levl_lo: -60 }', 'disabled_rules: [no-such-rule]'],
        [
          'drum_level, address: "hr:0", type: int16, unit: cm',
          'steam_pressure, address: "hr:1", type: float32',
          'flame, address: "di:0", type: bool',
          'burner_on, address: "di:1", type: bool',
        ],
      ),
    );
    expect(problems(text)).toEqual([
      'equipment[0].template: template boiler-steam, when: rule low-water-interlock, column 1: unknown name "interlock_tripped": B-1 has the points drum_level, steam_pressure, flame, burner_on and the limits drum_level_hi, drum_level_lo, drum_level_lolo, design_pressure, safety_valve_pressure, drum_levl_lo (equipment B-1) (line 6)',
      'equipment[0].limits.drum_levl_lo: not a limit of template boiler-steam; its limits are drum_level_hi, drum_level_lo, drum_level_lolo, design_pressure, safety_valve_pressure (line 8)',
      'equipment[0].disabled_rules[0]: template boiler-steam has no rule "no-such-rule"; its rules are drum-level, drum-level-low-low, low-water-interlock, overpressure, pressure-high, flame-failure (line 9)',
      'equipment[0].points[0].unit: template boiler-steam has drum_level in mm, and its limits are in that unit (line 11)',
    ]);
  });

  it('lets a disabled rule go, and refuses an unknown template', () => {
    const points = [
      'drum_level, address: "hr:0", type: int16',
      'steam_pressure, address: "hr:1", type: float32',
      'flame, address: "di:0", type: bool',
      'burner_on, address: "di:1", type: bool',
    ];
    expect(problems(site(boiler(['disabled_rules: [low-water-interlock]'], points)))).toEqual([]);
    expect(
      problems(
        site([
          '- { id: B-1, template: boiler-stem, category: boiler, connection: plc, points: [{ name: a, address: "hr:0", type: int16 }] }',
        ]),
      )[0],
    ).toMatch(/^equipment\[0\]\.template: no template "boiler-stem"; templates are boiler-hot-water, boiler-steam, crane/);
  });
});
