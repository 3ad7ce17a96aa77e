// Equipment templates (config/templates/*.yaml): the points of a kind of equipment with their units,
// named limits with defaults, and the rules every equipment of that kind gets. An equipment entry
// names its template, gives its points' addresses and overrides limits (`limits: { drum_level_lo: -60 }`).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { identifier, pointName } from '../drivers/common/primitives.js';
import { ruleSchema, type RuleConfig } from './rules-schema.js';
import { CATEGORIES } from './schema.js';
import { templateRiskShape, type FactorOverrides } from './risk-schema.js';

const templateSchema = z.strictObject({
  template: identifier.meta({ description: 'Template id: the file name without .yaml.' }),
  name: z.string().min(1),
  category: z.enum(CATEGORIES),
  description: z.string().optional(),
  points: z.array(z.strictObject({ name: pointName, unit: z.string().optional(), description: z.string().optional() })).min(1),
  limits: z.record(z.string(), z.union([z.number(), z.boolean(), z.string()])).default({}),
  rules: z.array(z.record(z.string(), z.unknown())).default([]),
  ...templateRiskShape,
});

export interface Template {
  template: string;
  name: string;
  category: string;
  description?: string | undefined;
  points: Array<{ name: string; unit?: string | undefined; description?: string | undefined }>;
  limits: Record<string, number | boolean | string>;
  /** Rules without `equipment`: they apply to each equipment that uses the template. */
  rules: RuleConfig[];
  /** Consequence class 1..4 of this kind of equipment (docs/risk.md); absent: by category. */
  consequence?: number | undefined;
  /** Risk weights of this kind of equipment, over the defaults (the site's `risk.factors` go over these). */
  risk?: { factors: FactorOverrides } | undefined;
  file: string;
}

export class TemplateError extends Error {
  override name = 'TemplateError';
}

/**
 * The folder of the templates: `GATEWAY_TEMPLATES_DIR` when set (a site's own copy of them), else the
 * shipped ones, from the source tree or from dist/.
 */
export function templatesDir(): string {
  const own = process.env.GATEWAY_TEMPLATES_DIR;
  if (own) return resolve(own);
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new TemplateError('Cannot find the package root (package.json) to read config/templates');
    dir = up;
  }
  return join(dir, 'config', 'templates');
}

let cache: Map<string, Template> | undefined;

/** The templates are read again at the next load: a reload (docs/reload.md) sees an edited template file. */
export function forgetTemplates(): void {
  cache = undefined;
}

/** Every template, read and checked once (until forgetTemplates); a broken template file is an error naming it. */
export function loadTemplates(dir = templatesDir()): Map<string, Template> {
  if (cache && dir === templatesDir()) return cache;
  const out = new Map<string, Template>();
  for (const f of readdirSync(dir)
    .filter((x) => x.endsWith('.yaml'))
    .sort()) {
    const file = join(dir, f);
    const t = parseTemplate(readFileSync(file, 'utf8'), file);
    if (`${t.template}.yaml` !== f) throw new TemplateError(`${file}: template: "${t.template}" must match the file name`);
    out.set(t.template, t);
  }
  if (dir === templatesDir()) cache = out;
  return out;
}

export function parseTemplate(text: string, file: string): Template {
  const parsed = templateSchema.safeParse(parse(text));
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    throw new TemplateError(`${file}: ${first.path.join('.') || '(top)'}: ${first.message}`);
  }
  const t = parsed.data;
  const rules = t.rules.map((r, i) => {
    if ('equipment' in r)
      throw new TemplateError(
        `${file}: rules[${i}].equipment: a template's rules apply to the equipment that uses it; leave equipment out`,
      );
    const rule = ruleSchema.safeParse({ ...r, equipment: 'template' });
    if (!rule.success) {
      const first = rule.error.issues[0]!;
      throw new TemplateError(`${file}: rules[${i}]${first.path.length ? `.${first.path.join('.')}` : ''}: ${first.message}`);
    }
    return rule.data;
  });
  return { ...t, rules, file };
}
