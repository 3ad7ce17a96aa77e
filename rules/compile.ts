// From the site file's rules to what the engine evaluates: one RuleSpec per rule (or part of a
// shorthand rule) and equipment, every expression compiled against that equipment's points and limits.
import { PREDICT_DEFAULTS, type RuleConfig } from '../config/rules-schema.js';
import { compile, ExpressionError, type Compiled, type Names, type Value } from './expression.js';
import { LEVELS, type Level, type RuleSpec, type Threshold } from './types.js';

export interface RuleEquipment {
  id: string;
  name?: string | undefined;
  category: string;
  template?: string | undefined;
  poll_interval: number;
  /** Its driver reports values when they change (drivers/types.ts capabilities): silence is not loss. */
  reportsOnChange?: boolean | undefined;
  /** `type` where the driver gives one: a bool point has no trend and no limit to come near. */
  points: ReadonlyArray<{ name: string; unit?: string | undefined; type?: string | undefined }>;
  limits?: Readonly<Record<string, Value>> | undefined;
}

export type Path = Array<string | number>;
export type Report = (path: Path, message: string) => void;

const LIMIT_LEVELS: Record<'hihi' | 'hi' | 'lo' | 'lolo', Level> = { hihi: 'red', hi: 'yellow', lo: 'yellow', lolo: 'red' };
const LIMIT_TEXT = { hihi: 'high-high', hi: 'high', lo: 'low', lolo: 'low-low' } as const;

/** Told which equipment a rule chose and left out (a stale rule, equipment that reports on change). */
export type LeftOut = (rule: string, equipment: string[]) => void;

/** Compiles every rule for every equipment it selects; problems go to report with their path. */
export function compileRules(
  rules: ReadonlyArray<RuleConfig | undefined>,
  equipment: readonly RuleEquipment[],
  report: Report,
  at: Path = ['rules'],
  leftOut?: LeftOut,
): RuleSpec[] {
  const specs: RuleSpec[] = [];
  const seen = new Set<string>();
  rules.forEach((rule, i) => {
    // A rule the schema refused has been reported already.
    if (!rule) return;
    const path = [...at, i];
    if (seen.has(rule.id)) report([...path, 'id'], `duplicate rule id "${rule.id}"`);
    seen.add(rule.id);
    const selected = select(rule, equipment, (m) => report([...path, 'equipment'], m));
    for (const eq of selected) specs.push(...compileFor(rule, eq, path, report));
    const quiet = rule.stale && !(typeof rule.equipment === 'string' || Array.isArray(rule.equipment));
    if (quiet && leftOut) {
      const ids = selected.filter((e) => e.reportsOnChange).map((e) => e.id);
      if (ids.length > 0) leftOut(rule.id, ids);
    }
  });
  return specs;
}

/**
 * The rules of an equipment's template, for that equipment. A problem is reported at `at` (the
 * equipment's `template` key) and names the template rule, since the rule is not in the site file.
 */
export function compileTemplateRules(
  rules: readonly RuleConfig[],
  eq: RuleEquipment,
  template: string,
  report: Report,
  at: Path,
): RuleSpec[] {
  return rules.flatMap((rule) =>
    compileFor(rule, eq, [], (key, message) => report(at, `template ${template}, ${key.join('.')}: ${message}`)),
  );
}

function select(rule: RuleConfig, equipment: readonly RuleEquipment[], report: (m: string) => void): RuleEquipment[] {
  const sel = rule.equipment;
  if (typeof sel === 'string' || Array.isArray(sel)) {
    const ids = typeof sel === 'string' ? [sel] : sel;
    const out: RuleEquipment[] = [];
    for (const id of ids) {
      const eq = equipment.find((e) => e.id === id);
      if (eq) out.push(eq);
      else report(`no equipment "${id}"; equipment is ${equipment.map((e) => e.id).join(', ')}`);
    }
    return out;
  }
  const out =
    'category' in sel ? equipment.filter((e) => e.category === sel.category) : equipment.filter((e) => e.template === sel.template);
  if (out.length === 0) report(`no equipment has ${'category' in sel ? `category "${sel.category}"` : `template "${sel.template}"`}`);
  return out;
}

function namesOf(eq: RuleEquipment): Names {
  const points = new Set(eq.points.map((p) => p.name));
  const limits = eq.limits ?? {};
  return {
    isPoint: (n) => points.has(n),
    constant: (n) => (Object.hasOwn(limits, n) ? limits[n] : undefined),
    describe: () =>
      `${eq.id} has the points ${[...points].join(', ')}${Object.keys(limits).length ? ` and the limits ${Object.keys(limits).join(', ')}` : ''}`,
  };
}

function compileFor(rule: RuleConfig, eq: RuleEquipment, path: Path, report: Report): RuleSpec[] {
  const names = namesOf(eq);
  const expr = (text: string, key: string): Compiled | undefined => {
    try {
      return compile(text, names);
    } catch (e) {
      if (!(e instanceof ExpressionError)) throw e;
      // A text refused for its size says so once, at its path, whichever equipment the rule selects.
      if (e.ofText) report([...path, key], e.reason);
      else report([...path, key], `rule ${rule.id}, ${e.message} (equipment ${eq.id})`);
      return undefined;
    }
  };
  const point = (name: string, key: Path): boolean => {
    if (names.isPoint(name)) return true;
    report(
      [...path, ...key],
      `rule ${rule.id}: no point "${name}" on equipment ${eq.id}; it has ${eq.points.map((p) => p.name).join(', ')}`,
    );
    return false;
  };
  const unitOf = (name: string | undefined) => eq.points.find((p) => p.name === name)?.unit;
  const suppressWhen = rule.suppress_when !== undefined ? expr(rule.suppress_when, 'suppress_when') : undefined;
  if (rule.suppress_when !== undefined && !suppressWhen) return [];
  const base = {
    equipment: eq.id,
    ...(eq.name !== undefined ? { equipmentName: eq.name } : {}),
    onDelayMs: rule.on_delay,
    offDelayMs: rule.off_delay,
    deadband: rule.deadband,
    latch: rule.latch,
    ...(rule.escalate_after !== undefined ? { escalateAfterMs: rule.escalate_after } : {}),
    maxShelveMs: rule.max_shelve,
    ...(suppressWhen ? { suppressWhen } : {}),
  };

  if (rule.when !== undefined) {
    const c = expr(rule.when, 'when');
    if (!c) return [];
    const unit = unitOf(c.primaryPoint);
    const cmp = c.comparison && !isBoolean(eq, c.comparison.point) ? c.comparison : undefined;
    const spec: RuleSpec = {
      ...base,
      id: rule.id,
      level: rule.level!,
      message: rule.message ?? `${rule.id}: ${rule.when}`,
      condition: { kind: 'expression', expr: c },
      ...(unit ? { unit } : {}),
    };
    if (!cmp) {
      // Asked for explicitly, a prediction or near miss that cannot be is a mistake worth telling.
      for (const key of ['predict', 'near_miss'] as const)
        if (rule[key] !== undefined && rule[key] !== false)
          report(
            [...path, key],
            `rule ${rule.id}: ${key} needs a when that compares one numeric point with a limit (as drum_level <= drum_level_lolo), not "${rule.when}"`,
          );
      return [spec];
    }
    const direction = cmp.op === '>' || cmp.op === '>=' ? 'above' : 'below';
    spec.threshold = thresholdOf(rule, eq, names, cmp.point, cmp.limit, direction, undefined, path, report);
    return [spec, ...predicted(rule, base, spec, rule.id)];
  }
  if (rule.limits) {
    const l = rule.limits;
    if (!point(l.point, ['limits', 'point'])) return [];
    const unit = unitOf(l.point);
    const out: RuleSpec[] = [];
    const values: Partial<Record<'hihi' | 'hi' | 'lo' | 'lolo', number>> = {};
    for (const k of ['hihi', 'hi', 'lo', 'lolo'] as const) {
      const t = l[k];
      if (t === undefined) continue;
      const value = typeof t === 'string' ? names.constant(t) : t;
      if (typeof value === 'number' && Number.isFinite(value)) values[k] = value;
      else if (typeof value === 'number')
        report([...path, 'limits', k], `rule ${rule.id}: limit "${t}" on equipment ${eq.id} is ${value}; expected a finite number`);
      else
        report(
          [...path, 'limits', k],
          `rule ${rule.id}: no numeric limit "${t}" on equipment ${eq.id}${eq.limits ? `; its limits are ${Object.keys(eq.limits).join(', ') || 'none'}` : ''}`,
        );
    }
    const boolean = isBoolean(eq, l.point);
    for (const k of ['hihi', 'hi', 'lo', 'lolo'] as const) {
      const value = values[k];
      if (value === undefined) continue;
      const op = k.startsWith('h') ? '>=' : '<=';
      const c = compile(`${l.point} ${op} ${value}`, names);
      const message =
        rule.message ?? `${LIMIT_TEXT[k][0]!.toUpperCase()}${LIMIT_TEXT[k].slice(1)} ${l.point}: {value} {unit} (limit ${value})`;
      const part: RuleSpec = {
        ...base,
        id: `${rule.id}.${k}`,
        level: l.levels[k] ?? rule.level ?? LIMIT_LEVELS[k],
        message,
        condition: { kind: 'expression', expr: c },
        ...(unit ? { unit } : {}),
      };
      out.push(part);
      if (boolean) continue;
      // The normal value lies between opposite limits: hi's opposite is lo, hihi's lolo (or the other of them when only it exists).
      const opposite = {
        hihi: values.lolo ?? values.lo,
        hi: values.lo ?? values.lolo,
        lo: values.hi ?? values.hihi,
        lolo: values.hihi ?? values.hi,
      }[k];
      const direction = k.startsWith('h') ? 'above' : 'below';
      part.threshold = thresholdOf(rule, eq, names, l.point, value, direction, opposite, path, report);
      out.push(...predicted(rule, base, part, `${LIMIT_TEXT[k]} limit, ${part.id}`));
    }
    return out;
  }
  if (rule.rate) {
    const r = rule.rate;
    if (!point(r.point, ['rate', 'point'])) return [];
    const unit = unitOf(r.point);
    const per = r.per === 'second' ? 1000 : 60_000;
    const condition = {
      kind: 'rate' as const,
      point: r.point,
      windowMs: r.window,
      perMs: per,
      ...(r.above !== undefined ? { above: r.above } : {}),
      ...(r.below !== undefined ? { below: r.below } : {}),
    };
    return [
      {
        ...base,
        id: rule.id,
        level: rule.level!,
        message: rule.message ?? `${r.point} changes at {value} {unit} per ${r.per}`,
        condition,
        ...(unit ? { unit: `${unit}` } : {}),
      },
    ];
  }
  if (rule.stale) {
    // A value reported on change may rightly stay quiet for hours: no reading says nothing of its
    // connection. A rule that chooses equipment by category or template leaves such equipment out
    // (compileRules tells leftOut); one that names it is kept as written: no reading for that long.
    if (eq.reportsOnChange && !(typeof rule.equipment === 'string' || Array.isArray(rule.equipment))) return [];
    const afterMs = rule.stale.intervals * eq.poll_interval;
    return [
      {
        ...base,
        id: rule.id,
        level: rule.level!,
        message: rule.message ?? `No good reading from {name} for ${afterMs / 1000} s`,
        condition: { kind: 'stale', afterMs },
      },
    ];
  }
  if (rule.codes) {
    const c = rule.codes;
    if (!point(c.point, ['codes', 'point'])) return [];
    return Object.entries(c.table).map(([code, entry]) => ({
      ...base,
      id: `${rule.id}.${code}`,
      level: entry.level,
      message: entry.message,
      condition: { kind: 'expression' as const, expr: compile(`${c.point} == ${code}`, names) },
    }));
  }
  return [];
}

/** What a predicted spec takes from its part unchanged: equipment, suppression, escalation, shelving. */
type Base = Pick<RuleSpec, 'equipment' | 'equipmentName' | 'escalateAfterMs' | 'maxShelveMs' | 'suppressWhen'>;

/** A bool point (where the driver says so) has neither a trend nor a limit to come near. */
function isBoolean(eq: RuleEquipment, point: string): boolean {
  const type = eq.points.find((p) => p.name === point)?.type;
  return type === 'bool' || type === 'boolean';
}

/**
 * The threshold of a part, with its near-miss settings: the normal value from the rule's
 * `near_miss.normal`, else the equipment's limit `<point>_normal`, else the middle of the opposite
 * limit and this one; the margin absolute or a percentage of the span between normal and the limit.
 */
function thresholdOf(
  rule: RuleConfig,
  eq: RuleEquipment,
  names: Names,
  point: string,
  limit: number,
  direction: 'above' | 'below',
  opposite: number | undefined,
  path: Path,
  report: Report,
): Threshold {
  const threshold: Threshold = { point, limit, direction };
  if (rule.near_miss === false) return threshold;
  const given = rule.near_miss?.normal;
  let normal: number | undefined;
  let from: string;
  if (given !== undefined) {
    const value = typeof given === 'number' ? given : names.constant(given);
    if (typeof value !== 'number') {
      report(
        [...path, 'near_miss', 'normal'],
        `rule ${rule.id}: no numeric limit "${given}" on equipment ${eq.id}${eq.limits ? `; its limits are ${Object.keys(eq.limits).join(', ') || 'none'}` : ''}`,
      );
      return threshold;
    }
    normal = value;
    from = `near_miss.normal ${typeof given === 'number' ? given : `${given} (${value})`}`;
  } else {
    const named = eq.limits?.[`${point}_normal`];
    if (typeof named === 'number' && Object.hasOwn(eq.limits!, `${point}_normal`)) {
      normal = named;
      from = `the limit ${point}_normal (${named}) of equipment ${eq.id}`;
    } else if (opposite !== undefined) {
      normal = (limit + opposite) / 2;
      from = `the middle of the limits ${opposite} and ${limit}`;
    } else return threshold;
  }
  const side = direction === 'above' ? normal < limit : normal > limit;
  if (!side) {
    report(
      [...path, 'near_miss', ...(given !== undefined ? ['normal'] : [])],
      `rule ${rule.id}: the normal value, ${from}, is not ${direction === 'above' ? 'below' : 'above'} the limit ${limit} it is normal for (equipment ${eq.id})`,
    );
    return threshold;
  }
  const margin = rule.near_miss?.margin ?? '10%';
  const span = Math.abs(limit - normal);
  threshold.nearMiss = { normal, margin: typeof margin === 'number' ? margin : (Number.parseFloat(margin) / 100) * span };
  return threshold;
}

/**
 * The predicted warning of a part with a threshold (`<part>.predicted`): one level below the part's,
 * raised when the trend reaches the limit within the horizon. It has no delays, deadband or latch of
 * its own: the trend's significance and the horizon's hysteresis keep it from flapping, and it must
 * go as soon as the trend does.
 */
function predicted(rule: RuleConfig, base: Base, part: RuleSpec, describe: string): RuleSpec[] {
  const t = part.threshold;
  if (!t || rule.predict === false) return [];
  const p = rule.predict ?? {
    window: PREDICT_DEFAULTS.window,
    horizon: PREDICT_DEFAULTS.horizon,
    min_readings: PREDICT_DEFAULTS.min_readings,
  };
  const unit = part.unit ? ` ${part.unit}` : '';
  return [
    {
      ...base,
      id: `${part.id}.predicted`,
      level: LEVELS[Math.max(0, LEVELS.indexOf(part.level) - 1)]!,
      message: `Predicted: ${t.point} reaches {limit}${unit} in {eta} (${describe})`,
      condition: {
        kind: 'predict',
        point: t.point,
        limit: t.limit,
        direction: t.direction,
        windowMs: p.window,
        horizonMs: p.horizon,
        minReadings: p.min_readings,
      },
      origin: 'predicted',
      predicts: part.id,
      onDelayMs: 0,
      offDelayMs: 0,
      deadband: 0,
      latch: false,
      ...(part.unit ? { unit: part.unit } : {}),
    },
  ];
}

/** The rule parts that compare a point with a limit (predicted warnings left out), for near misses and risk. */
export function thresholdsOf(specs: readonly RuleSpec[]): Array<{ equipment: string; rule: string; level: Level; threshold: Threshold }> {
  return specs.flatMap((s) =>
    s.threshold && s.origin !== 'predicted' ? [{ equipment: s.equipment, rule: s.id, level: s.level, threshold: s.threshold }] : [],
  );
}

/**
 * The rules of a loaded site as the engine takes them (the site file was checked when it loaded).
 * `reportsOnChange` tells, from each equipment's driver, whether its values come on change.
 */
export function ruleSpecsOf(
  site: {
    rules: readonly RuleConfig[];
    equipment: ReadonlyArray<RuleEquipment & { limits?: unknown; template_rules?: readonly RuleConfig[] }>;
  },
  reportsOnChange: (equipment: string) => boolean,
  leftOut?: LeftOut,
): RuleSpec[] {
  const problems: string[] = [];
  const report: Report = (path, message) => problems.push(`${path.join('.')}: ${message}`);
  const equipment = site.equipment.map((e) => ({ ...e, reportsOnChange: reportsOnChange(e.id) }));
  const specs = equipment.flatMap((e, i) =>
    e.template_rules
      ? compileTemplateRules(e.template_rules, e as RuleEquipment, e.template ?? '', report, ['equipment', i, 'template'])
      : [],
  );
  specs.push(...compileRules(site.rules, equipment as readonly RuleEquipment[], report, ['rules'], leftOut));
  if (problems.length > 0) throw new Error(`Rules do not compile: ${problems.join('; ')}`);
  return specs;
}
