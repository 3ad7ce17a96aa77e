// From the site file's rules to what the engine evaluates: one RuleSpec per rule (or part of a
// shorthand rule) and equipment, every expression compiled against that equipment's points and limits.
import type { RuleConfig } from '../config/rules-schema.js';
import { compile, ExpressionError, type Compiled, type Names, type Value } from './expression.js';
import type { Level, RuleSpec } from './types.js';

export interface RuleEquipment {
  id: string;
  name?: string | undefined;
  category: string;
  template?: string | undefined;
  poll_interval: number;
  /** Its driver reports values when they change (drivers/types.ts capabilities): silence is not loss. */
  reportsOnChange?: boolean | undefined;
  points: ReadonlyArray<{ name: string; unit?: string | undefined }>;
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
    return [
      {
        ...base,
        id: rule.id,
        level: rule.level!,
        message: rule.message ?? `${rule.id}: ${rule.when}`,
        condition: { kind: 'expression', expr: c },
        ...(unit ? { unit } : {}),
      },
    ];
  }
  if (rule.limits) {
    const l = rule.limits;
    if (!point(l.point, ['limits', 'point'])) return [];
    const unit = unitOf(l.point);
    const out: RuleSpec[] = [];
    for (const k of ['hihi', 'hi', 'lo', 'lolo'] as const) {
      const t = l[k];
      if (t === undefined) continue;
      let value: Value | undefined = t;
      if (typeof t === 'string') {
        value = names.constant(t);
        if (typeof value !== 'number') {
          report(
            [...path, 'limits', k],
            `rule ${rule.id}: no numeric limit "${t}" on equipment ${eq.id}${eq.limits ? `; its limits are ${Object.keys(eq.limits).join(', ') || 'none'}` : ''}`,
          );
          continue;
        }
      }
      const op = k.startsWith('h') ? '>=' : '<=';
      const c = compile(`${l.point} ${op} ${value}`, names);
      const message =
        rule.message ?? `${LIMIT_TEXT[k][0]!.toUpperCase()}${LIMIT_TEXT[k].slice(1)} ${l.point}: {value} {unit} (limit ${value})`;
      out.push({
        ...base,
        id: `${rule.id}.${k}`,
        level: l.levels[k] ?? rule.level ?? LIMIT_LEVELS[k],
        message,
        condition: { kind: 'expression', expr: c },
        ...(unit ? { unit } : {}),
      });
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
