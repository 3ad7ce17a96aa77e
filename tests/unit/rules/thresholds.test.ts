// Limits as thresholds: which rule parts compare one point with a limit, their near-miss settings
// (the normal value from the rule, the equipment's <point>_normal, or the middle of the opposite
// limits), the predicted warnings that follow them, and the mistakes reported at their path.
import { describe, expect, it } from 'vitest';
import { ruleSchema, type RuleConfig } from '../../../config/rules-schema.js';
import { compileRules, thresholdsOf, type RuleEquipment } from '../../../rules/compile.js';
import { compile, type Names } from '../../../rules/expression.js';
import type { RuleSpec } from '../../../rules/types.js';

const names: Names = {
  isPoint: (n) => ['level', 'pressure', 'flag', 'other'].includes(n),
  constant: (n) => ({ lolo: -200, relief: 1.7, label: 'text' })[n],
  describe: () => 'test',
};

describe('expression comparison', () => {
  it('is the whole expression comparing one point with a numeric side that reads no point', () => {
    expect(compile('level <= lolo', names).comparison).toEqual({ point: 'level', op: '<=', limit: -200 });
    expect(compile('pressure >= 0.96 * relief', names).comparison).toEqual({ point: 'pressure', op: '>=', limit: 0.96 * 1.7 });
    // Written the other way round: the point goes to the left.
    expect(compile('-200 >= level', names).comparison).toEqual({ point: 'level', op: '<=', limit: -200 });
    expect(compile('(level > 5)', names).comparison).toEqual({ point: 'level', op: '>', limit: 5 });
  });

  it('is absent for anything else', () => {
    for (const text of [
      'level <= -200 && pressure > 1',
      'level == 5',
      'level != 5',
      'flag',
      '!(level < 5)',
      'level < other',
      '2 * level < 5',
      'level + 0 < 5',
      'level < other - other + 3',
      'level > true',
      'level > 1 / 0',
      'level > 1 || level < -1',
    ])
      expect(compile(text, names).comparison, text).toBeUndefined();
  });
});

const equipment = (
  limits: Record<string, number> = {},
  points: RuleEquipment['points'] = [{ name: 'level', unit: 'mm' }],
): RuleEquipment => ({
  id: 'T-1',
  category: 'tank',
  poll_interval: 1000,
  points: [...points, { name: 'flag', type: 'bool' }],
  limits,
});

/** Compiles rules (as the site file gives them) for one equipment; problems come back as `path: message`. */
function build(rules: unknown[], eq = equipment()): { specs: RuleSpec[]; problems: string[] } {
  const problems: string[] = [];
  const parsed = rules.map((r) => ruleSchema.parse({ equipment: 'T-1', ...(r as object) }) as RuleConfig);
  const specs = compileRules(parsed, [eq], (path, m) => problems.push(`${path.join('.')}: ${m}`));
  return { specs, problems };
}

const byId = (specs: RuleSpec[], id: string) => specs.find((s) => s.id === id)!;

describe('thresholds and near misses', () => {
  it('gives every limits part a threshold, normal at the middle of the opposite limits and a 10 % margin by default', () => {
    const { specs, problems } = build([{ id: 'lvl', limits: { point: 'level', hihi: 90, hi: 80, lo: 20, lolo: 0 } }]);
    expect(problems).toEqual([]);
    expect(thresholdsOf(specs)).toEqual([
      {
        equipment: 'T-1',
        rule: 'lvl.hihi',
        level: 'red',
        threshold: { point: 'level', limit: 90, direction: 'above', nearMiss: { normal: 45, margin: 4.5 } },
      },
      {
        equipment: 'T-1',
        rule: 'lvl.hi',
        level: 'yellow',
        threshold: { point: 'level', limit: 80, direction: 'above', nearMiss: { normal: 50, margin: 3 } },
      },
      {
        equipment: 'T-1',
        rule: 'lvl.lo',
        level: 'yellow',
        threshold: { point: 'level', limit: 20, direction: 'below', nearMiss: { normal: 50, margin: 3 } },
      },
      {
        equipment: 'T-1',
        rule: 'lvl.lolo',
        level: 'red',
        threshold: { point: 'level', limit: 0, direction: 'below', nearMiss: { normal: 45, margin: 4.5 } },
      },
    ]);
  });

  it("takes hi/lo for hihi/lolo when only those exist, and a when's comparison as a threshold", () => {
    const { specs } = build([
      { id: 'lvl', limits: { point: 'level', hihi: 90, lo: 10 } },
      { id: 'low', when: 'level <= 5', level: 'red', near_miss: { normal: 50, margin: 2 } },
    ]);
    expect(byId(specs, 'lvl.hihi').threshold!.nearMiss).toEqual({ normal: 50, margin: 4 });
    expect(byId(specs, 'lvl.lo').threshold!.nearMiss).toEqual({ normal: 50, margin: 4 });
    expect(byId(specs, 'low').threshold).toEqual({ point: 'level', limit: 5, direction: 'below', nearMiss: { normal: 50, margin: 2 } });
  });

  it("prefers the rule's normal, then the equipment's <point>_normal limit, and turns off without either", () => {
    const eq = equipment({ level_normal: 40, lim: 100, mid: 60 });
    const { specs, problems } = build(
      [
        { id: 'a', when: 'level >= lim', level: 'red' },
        { id: 'b', when: 'level >= lim', level: 'red', near_miss: { normal: 'mid', margin: '50%' } },
        { id: 'c', when: 'level >= lim', level: 'red', near_miss: false },
        { id: 'd', limits: { point: 'level', hi: 100, lo: 0 }, near_miss: { margin: 5 } },
      ],
      eq,
    );
    expect(problems).toEqual([]);
    expect(byId(specs, 'a').threshold!.nearMiss).toEqual({ normal: 40, margin: 6 });
    expect(byId(specs, 'b').threshold!.nearMiss).toEqual({ normal: 60, margin: 20 });
    expect(byId(specs, 'c').threshold).toEqual({ point: 'level', limit: 100, direction: 'above' });
    expect(byId(specs, 'd.hi').threshold!.nearMiss).toEqual({ normal: 40, margin: 5 });
    const alone = build([{ id: 'e', when: 'level >= 100', level: 'red' }]);
    expect(alone.specs[0]!.threshold).toEqual({ point: 'level', limit: 100, direction: 'above' });
  });

  it('reports a normal on the wrong side of its limit, and a normal that names no numeric limit, at their path', () => {
    const { problems } = build(
      [
        { id: 'a', when: 'level >= 100', level: 'red', near_miss: { normal: 120 } },
        { id: 'b', when: 'level <= 0', level: 'red', near_miss: { normal: 'nothing' } },
        { id: 'c', when: 'level >= 10', level: 'red' },
      ],
      equipment({ level_normal: 50 }),
    );
    expect(problems).toEqual([
      'rules.0.near_miss.normal: rule a: the normal value, near_miss.normal 120, is not below the limit 100 it is normal for (equipment T-1)',
      'rules.1.near_miss.normal: rule b: no numeric limit "nothing" on equipment T-1; its limits are level_normal',
      'rules.2.near_miss: rule c: the normal value, the limit level_normal (50) of equipment T-1, is not below the limit 10 it is normal for (equipment T-1)',
    ]);
  });

  it('refuses predict or near_miss where there is no limit to follow, at their path', () => {
    const { problems } = build([
      { id: 'a', when: 'level > 1 && level < 5', level: 'red', predict: { window: '10s' } },
      { id: 'b', when: 'flag', level: 'red', near_miss: { normal: 0 } },
    ]);
    expect(problems).toEqual([
      'rules.0.predict: rule a: predict needs a when that compares one numeric point with a limit (as drum_level <= drum_level_lolo), not "level > 1 && level < 5"',
      'rules.1.near_miss: rule b: near_miss needs a when that compares one numeric point with a limit (as drum_level <= drum_level_lolo), not "flag"',
    ]);
    expect(
      ruleSchema.safeParse({ id: 'r', equipment: 'T-1', stale: {}, level: 'red', predict: { window: '10s' } }).error?.issues[0],
    ).toMatchObject({
      path: ['predict'],
      message: 'applies to a limits or when rule, not to stale',
    });
    expect(ruleSchema.safeParse({ id: 'r', equipment: 'T-1', when: 'a > 1', level: 'red', predict: { min_readings: 2 } }).success).toBe(
      false,
    );
    expect(ruleSchema.safeParse({ id: 'r', equipment: 'T-1', when: 'a > 1', level: 'red', near_miss: { margin: '150%' } }).success).toBe(
      false,
    );
  });
});

describe('predicted specs', () => {
  it('follow each threshold one level below, with the part suppression and escalation, and no delays of their own', () => {
    const { specs } = build([
      {
        id: 'lvl',
        limits: { point: 'level', hihi: 90, lo: 10, levels: { lo: 'blue' } },
        on_delay: '5s',
        deadband: 2,
        latch: true,
        escalate_after: '10m',
        suppress_when: 'flag',
        predict: { window: '20s', horizon: '30s', min_readings: 5 },
      },
    ]);
    expect(specs.map((s) => `${s.id} ${s.level}`)).toEqual([
      'lvl.hihi red',
      'lvl.hihi.predicted orange',
      'lvl.lo blue',
      'lvl.lo.predicted blue',
    ]);
    const p = byId(specs, 'lvl.hihi.predicted');
    expect(p).toMatchObject({
      origin: 'predicted',
      predicts: 'lvl.hihi',
      onDelayMs: 0,
      offDelayMs: 0,
      deadband: 0,
      latch: false,
      escalateAfterMs: 600_000,
      unit: 'mm',
      message: 'Predicted: level reaches {limit} mm in {eta} (high-high limit, lvl.hihi)',
      condition: { kind: 'predict', point: 'level', limit: 90, direction: 'above', windowMs: 20_000, horizonMs: 30_000, minReadings: 5 },
    });
    expect(p.suppressWhen?.source).toBe('flag');
    expect(p.threshold).toBeUndefined();
    expect(thresholdsOf(specs).map((t) => t.rule)).toEqual(['lvl.hihi', 'lvl.lo']);
  });

  it('are on by default (60 s window, 10 min horizon, 10 readings), off with predict: false, and never on bool points or codes', () => {
    const { specs } = build(
      [
        { id: 'a', when: 'level > 5', level: 'yellow' },
        { id: 'b', when: 'level > 5', level: 'yellow', predict: false },
        { id: 'c', when: 'flag >= 1', level: 'yellow' },
        { id: 'd', codes: { point: 'level', table: { '3': { level: 'red', message: 'three' } } } },
        { id: 'e', limits: { point: 'flag', hi: 1 } },
      ],
      equipment(),
    );
    expect(specs.map((s) => s.id)).toEqual(['a', 'a.predicted', 'b', 'c', 'd.3', 'e.hi']);
    expect(byId(specs, 'a.predicted').condition).toEqual({
      kind: 'predict',
      point: 'level',
      limit: 5,
      direction: 'above',
      windowMs: 60_000,
      horizonMs: 600_000,
      minReadings: 10,
    });
    expect(byId(specs, 'b').threshold).toBeDefined();
  });
});
