// Device profiles (profiles/*.yaml): where a concrete controller model keeps a template's points, in
// its driver's terms (Modbus addresses and types, OPC UA nodes). A site names the profile
// (`profile: gateway-sim-steam-boiler`) instead of copying the register map into every equipment
// entry, and lists `points:` only to change or add a point.
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { findDriver } from '../drivers/index.js';
import { identifier, pointName } from '../drivers/common/primitives.js';
import { packageRoot } from '../gateway/package-root.js';
import type { Template } from './templates.js';

const profileSchema = z.strictObject({
  profile: identifier.meta({ description: 'Profile id: the file name without .yaml, `<vendor>-<model>`.' }),
  vendor: z.string().min(1).meta({ description: 'Who makes the controller.' }),
  model: z.string().min(1).meta({ description: 'The controller model (and firmware, where the map depends on it).' }),
  description: z.string().optional(),
  template: identifier.meta({ description: 'The equipment template (config/templates) whose points this profile maps.' }),
  connection_types: z
    .array(z.string().min(1))
    .min(1)
    .meta({ description: 'Connection types the controller is read through (modbus-tcp, modbus-rtu, opcua...).' }),
  // Each point is checked by the driver of each connection type, below.
  points: z.array(z.looseObject({ name: pointName })).min(1),
});

export interface Profile {
  profile: string;
  vendor: string;
  model: string;
  description?: string | undefined;
  template: string;
  connection_types: string[];
  /** Each with `name` and its driver's point keys, as written in the file (driver defaults are applied by the site's check). */
  points: Array<Record<string, unknown> & { name: string }>;
  /** Where the profile is, for messages: `profiles/<id>.yaml`. */
  file: string;
}

/** A profile file that does not pass its checks: every problem, each as `<file>: path: message`. */
export class ProfileError extends Error {
  override name = 'ProfileError';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

/** The folder of the profiles: `GATEWAY_PROFILES_DIR` when set (a site's own copy), else the shipped ones beside config/ in the package. */
export function profilesDir(): string {
  const own = process.env.GATEWAY_PROFILES_DIR;
  return own ? resolve(own) : join(packageRoot(), 'profiles');
}

let cache: Map<string, Profile | ProfileError> | undefined;

/** The profiles are read again at the next load: a reload (docs/reload.md) sees an edited profile file. */
export function forgetProfiles(): void {
  cache = undefined;
}

/**
 * Every profile, read and checked once (until forgetProfiles). A broken file does not hide the others: its
 * entry is the error, reported to the site that uses it (and by the test that checks every file).
 */
export function loadProfiles(templates: ReadonlyMap<string, Template>, dir = profilesDir()): Map<string, Profile | ProfileError> {
  if (cache && dir === profilesDir()) return cache;
  const out = new Map<string, Profile | ProfileError>();
  for (const f of readdirSync(dir)
    .filter((x) => x.endsWith('.yaml'))
    .sort()) {
    const id = f.slice(0, -'.yaml'.length);
    const file = `profiles/${f}`;
    let text: string;
    try {
      text = readFileSync(join(dir, f), 'utf8');
    } catch (err) {
      out.set(id, new ProfileError([`${file}: cannot be read: ${(err as Error).message}`]));
      continue;
    }
    try {
      out.set(id, parseProfile(text, file, templates));
    } catch (err) {
      if (!(err instanceof ProfileError)) throw err;
      out.set(id, err);
    }
  }
  if (dir === profilesDir()) cache = out;
  return out;
}

/** A profile from its text, checked against its template and the drivers of its connection types. */
export function parseProfile(text: string, file: string, templates: ReadonlyMap<string, Template>): Profile {
  const problems: string[] = [];
  const problem = (path: ReadonlyArray<string | number>, message: string) =>
    problems.push(`${file}: ${path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i ? `.${s}` : s)).join('') || '(top)'}: ${message}`);
  let data: unknown;
  try {
    data = parse(text);
  } catch (err) {
    throw new ProfileError([`${file}: (yaml): ${(err as Error).message.split('\n')[0]}`]);
  }
  const parsed = profileSchema.safeParse(data);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys')
        for (const key of issue.keys) problem([...(issue.path as Array<string | number>), key], 'unknown key');
      else problem(issue.path as Array<string | number>, issue.message);
    }
    throw new ProfileError(problems);
  }
  const p = parsed.data;
  const id = /([^/]+)\.yaml$/.exec(file)?.[1];
  if (id !== undefined && p.profile !== id) problem(['profile'], `"${p.profile}" must match the file name (${id})`);

  const template = templates.get(p.template);
  if (!template) problem(['template'], `no template "${p.template}"; templates are ${[...templates.keys()].join(', ')}`);
  const seen = new Set<string>();
  p.points.forEach((point, k) => {
    if (seen.has(point.name)) problem(['points', k, 'name'], `point ${point.name} is listed twice`);
    seen.add(point.name);
    if (!template) return;
    const own = template.points.find((t) => t.name === point.name);
    // A profile maps the template's points; what else a controller offers, a site adds to its entry.
    if (!own)
      problem(
        ['points', k, 'name'],
        `template ${template.template} has no point ${point.name}; its points are ${template.points.map((t) => t.name).join(', ')}`,
      );
    else if (point.unit !== undefined && own.unit !== undefined && point.unit !== own.unit)
      problem(
        ['points', k, 'unit'],
        `template ${template.template} has ${point.name} in ${own.unit}: convert with the driver's scaling instead`,
      );
  });

  // Checked as the driver checks an equipment's points, so rules between keys (a register point needs
  // its type) apply too; each connection type once, the Modbus family's shared schema once.
  const checkedSchemas = new Set<z.ZodType>();
  p.connection_types.forEach((type, k) => {
    const driver = findDriver(type);
    if (!driver) {
      problem(['connection_types', k], `no connection type "${type}"`);
      return;
    }
    if (checkedSchemas.has(driver.equipmentSchema)) return;
    checkedSchemas.add(driver.equipmentSchema);
    let result: z.ZodSafeParseResult<unknown>;
    try {
      result = driver.equipmentSchema.safeParse({ points: p.points });
    } catch (err) {
      problem(['points'], `cannot be checked as ${type} points: ${(err as Error).message.split('\n')[0]}`);
      return;
    }
    if (result.success) return;
    const as = `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type} point`;
    for (const issue of result.error.issues) {
      const path = issue.path as Array<string | number>;
      if (issue.code === 'unrecognized_keys') for (const key of issue.keys) problem([...path, key], `not a key of ${as}`);
      else problem(path, `${issue.message.replace(/^Invalid input: expected \w+, received undefined$/, 'required')} (as ${as})`);
    }
  });
  if (problems.length > 0) throw new ProfileError(problems);
  return { ...p, file };
}

/** Where a point of an expanded entry came from: the entry's own `points[index]`, or the profile alone. */
export type PointSource = { from: 'entry'; index: number } | { from: 'profile'; name: string };

/**
 * An equipment entry with its profile's points: the profile's, in its order, each with the keys the
 * entry gives for a point of the same name winning, then the entry's other points. The entry's
 * template is the profile's when it names none (the loader checks a template it does name).
 */
export function expandProfile(
  entry: Record<string, unknown>,
  profile: Profile,
): { entry: Record<string, unknown>; sources: PointSource[] } {
  const own = Array.isArray(entry.points) ? (entry.points as unknown[]) : [];
  const byName = new Map<string, number>();
  own.forEach((p, i) => {
    if (isRecord(p) && typeof p.name === 'string' && !byName.has(p.name)) byName.set(p.name, i);
  });
  const points: unknown[] = [];
  const sources: PointSource[] = [];
  for (const p of profile.points) {
    const i = byName.get(p.name);
    points.push(i === undefined ? p : { ...p, ...(own[i] as Record<string, unknown>) });
    sources.push(i === undefined ? { from: 'profile', name: p.name } : { from: 'entry', index: i });
  }
  const used = new Set(profile.points.map((p) => byName.get(p.name)));
  own.forEach((p, i) => {
    if (used.has(i)) return;
    points.push(p);
    sources.push({ from: 'entry', index: i });
  });
  return {
    // A `points:` that is not a list stays what it is, for the driver to report.
    entry: {
      ...entry,
      template: entry.template ?? profile.template,
      points: entry.points === undefined || Array.isArray(entry.points) ? points : entry.points,
    },
    sources,
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
