// Reads a site file: YAML with ${NAME:-default} interpolation, validated by config/schema.ts and by
// each driver's schema. Every problem is collected and reported at once, with its path and line.
import { closeSync, openSync, readSync } from 'node:fs';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { DRIVERS, findDriver } from '../drivers/index.js';
import type { ConnectionConfig, EquipmentConfig } from '../drivers/types.js';
import { ConfigError, type ConfigProblem, GatewayError } from './errors.js';
import {
  categoryFromCode,
  type Category,
  EQUIPMENT_BASE_KEYS,
  EQUIPMENT_CODE,
  siteBaseSchema,
  type SimulatorConfig,
  type SiteConfig,
} from './schema.js';
import { compileRules, compileTemplateRules } from '../rules/compile.js';
import { loadTemplates, TemplateError, type Template } from './templates.js';
import { expandProfile, loadProfiles, ProfileError, type PointSource, type Profile } from './profiles.js';
import { ruleSchema } from './rules-schema.js';
import { defaultConsequence } from './risk-schema.js';
import { parseDuration } from '../drivers/common/primitives.js';
import { prescanYaml } from './prescan.js';
import { readAsCurrent } from './site-version.js';

type Path = ReadonlyArray<string | number>;
type Env = Record<string, string | undefined>;

export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    // A key that is not a plain name (a mistyped flow mapping can make one of many lines) is quoted,
    // so the report stays one `path: message` line.
    else if (!/^[\w-]+$/.test(seg)) out += `[${JSON.stringify(seg.length > 60 ? `${seg.slice(0, 60)}…` : seg)}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out || '(root)';
}

export interface ParseOptions {
  /** The name problems are reported under. */
  file?: string;
  /**
   * Where `${VAR}` takes its value: the process environment by default. `false`: nowhere, and the
   * environment is never read. Each placeholder is then reported as a note (it takes its value when
   * the gateway starts) and the checks of that value are skipped, or made on its `:-default`.
   * The HTTP API checks files this way: they are someone else's, checked with this process's secrets.
   */
  env?: Env | false;
  /**
   * false: no message repeats a value of the file (`got "..."`); it names the value's kind or says
   * that it is not one of the allowed ones. A value that came from the environment is never
   * repeated, whatever this says.
   */
  echoValues?: boolean;
  /** Receives what is worth knowing but is not a mistake: the placeholders left unexpanded. */
  onNote?: (note: ConfigProblem) => void;
}

export function loadSiteFile(file: string, env: Env = process.env, onNote?: ParseOptions['onNote']): SiteConfig {
  let text: string;
  try {
    // Refused by parseSite's size check when over the limit.
    const fd = openSync(file, 'r');
    try {
      text = readSiteBytes(fd).toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw new GatewayError('GW_ERR_CONFIG_READ', `Cannot read site file "${file}": ${(err as Error).message}`, { cause: err });
  }
  return parseSite(text, { file, env, onNote });
}

/**
 * A site file's bytes, at most one over SITE_FILE_LIMITS.maxBytes: /dev/zero or a log file given by
 * mistake is refused for its size, never read whole.
 */
export function readSiteBytes(fd: number): Buffer {
  const buffer = Buffer.alloc(SITE_FILE_LIMITS.maxBytes + 1);
  let length = 0;
  for (let n = -1; n !== 0 && length < buffer.length; length += n) n = readSync(fd, buffer, length, buffer.length - length, null);
  return buffer.subarray(0, length);
}

/**
 * Bounds on what a site file may cost to read, whoever wrote it. A real site file is a few hundred
 * kB and nests 6 levels; these are far beyond that and far below what exhausts the parser's stack
 * (about 900 levels) or memory (a YAML alias bomb expands 10 anchors of 10 to 10^10 nodes).
 */
export const SITE_FILE_LIMITS = { maxBytes: 4 * 1024 * 1024, maxDepth: 64, maxAliasCount: 100 } as const;

export function parseSite(text: string, opts: ParseOptions = {}): SiteConfig {
  const file = opts.file ?? '<site file>';
  const { doc, lines } = readYaml(text, file);
  readAsCurrent(doc, file, lines, opts.onNote);
  const check = new SiteCheck(doc, lines, opts.echoValues ?? true);
  expandPlaceholders(check, opts.env ?? process.env, opts.onNote);
  check.raw = toPlain(doc, file);
  const base = siteBaseSchema.safeParse(check.raw);
  if (!base.success) check.reportZod([], base.error);

  // Each connection and equipment entry is also checked by its driver, whatever happened above.
  const site = isRecord(check.raw) ? check.raw : {};
  const connections = Array.isArray(site.connections) ? site.connections : [];
  const equipment = Array.isArray(site.equipment) ? site.equipment : [];
  checkUnique(connections, 'connections', 'id', check.report);
  checkUnique(equipment, 'equipment', 'id', check.report);
  const { connectionById, driverConnections } = checkConnections(connections, check);
  const templates = readTemplates(check);
  const expansion = expandProfiles(equipment, templates, connectionById, check);
  const checkedEquipment = checkEquipment(expansion, templates, connectionById, check);
  const ruleEquipment = applyTemplates(expansion, checkedEquipment, templates, check);
  checkRules(site.rules, ruleEquipment, check.report);

  // With env: false a value the schema refuses may be only a placeholder's: no problem left to show
  // means the file is valid as far as it can be checked here (an error with no problems says that).
  if (check.problems.length > 0 || !base.success) throw new ConfigError(file, sortProblems(check.problems));
  return assembleSite(base.data, driverConnections, checkedEquipment.driverEquipment, ruleEquipment);
}

type Report = (path: Path, message: string) => void;

/** The YAML document of a site file, refused whole (one problem) when it is too big, hostile or not YAML. */
function readYaml(text: string, file: string): { doc: Document; lines: LineCounter } {
  const bytes = Buffer.byteLength(text);
  if (bytes > SITE_FILE_LIMITS.maxBytes) throw yamlProblem(file, `the file is ${bytes} bytes, at most ${SITE_FILE_LIMITS.maxBytes}`);
  // Before the parser: it would spend seconds and hundreds of MB on some texts before its own limits apply.
  const hostile = prescanYaml(text, SITE_FILE_LIMITS);
  if (hostile) throw yamlProblem(file, hostile.message, hostile.line);
  const lines = new LineCounter();
  // logLevel error: the library's warnings (collection keys stringified) would go to the console.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true, logLevel: 'error' });
  if (doc.errors.length > 0) {
    // Later syntax errors are mostly echoes of the first one.
    const e = doc.errors[0]!;
    const message = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    // The parser catches its own stack overflow and reports it as a syntax error.
    throw yamlProblem(file, /^Maximum call stack size exceeded/.test(message) ? tooDeep : message, e.linePos?.[0].line);
  }
  const deep = deeperThan(doc, SITE_FILE_LIMITS.maxDepth);
  if (deep) throw yamlProblem(file, tooDeep, deep.range ? lines.linePos(deep.range[0]).line : undefined);
  return { doc, lines };
}

function yamlProblem(file: string, message: string, line?: number): ConfigError {
  return new ConfigError(file, [{ path: '(yaml)', message, line }]);
}

/** The document as plain values, once its placeholders are expanded. */
function toPlain(doc: Document, file: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: SITE_FILE_LIMITS.maxAliasCount }) ?? {};
  } catch (err) {
    // An alias bomb, or an alias used before its anchor: the library says which (a ReferenceError).
    throw yamlProblem(file, aliasMessage((err as Error).message));
  }
}

/**
 * The problems found in one site file, each with its path and line, and what a message may repeat:
 * never a value that came from the environment, and no value at all when `echo` is false.
 */
class SiteCheck {
  readonly problems: ConfigProblem[] = [];
  /**
   * A value whose ${VAR} could not be resolved is reported once, not again by the schema; so is a
   * placeholder left unexpanded (env: false).
   */
  readonly unresolved = new Set<string>();
  /**
   * Paths whose value came (in part) from ${VAR}, with the names: their values are never repeated
   * in a message; a message that would quote one names the variable instead.
   */
  readonly fromEnv = new Map<string, string[]>();
  /** The file's values, once its placeholders are expanded. */
  raw: unknown;

  constructor(
    readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly echo: boolean,
  ) {}

  lineOf(path: Path): number | undefined {
    const offset = nodeAt(this.doc, path)?.range?.[0];
    return offset === undefined ? undefined : this.lines.linePos(offset).line;
  }

  readonly report: Report = (path, message) => {
    const at = formatPath(path);
    if (this.unresolved.has(at)) return;
    const names = this.fromEnv.get(at);
    const value = names ? valueAt(this.raw, path) : undefined;
    const text =
      typeof value === 'string' && value.length >= 3 && message.includes(value)
        ? message.split(value).join(`<the value of ${names!.join(', ')}>`)
        : message;
    this.problems.push({ path: at, message: text, line: this.lineOf(path) });
  };

  /**
   * `entry`: an equipment entry as its driver saw it (with its profile's points), and where each of
   * its paths is in the site file, or in the profile (then the message names the profile's file).
   */
  reportZod(prefix: Path, error: z.ZodError, entry?: { input: unknown; place: Place }): void {
    const say = (inner: Path, message: (path: Path) => string) => {
      const place = entry ? entry.place(inner) : inner;
      if (place === null) return;
      if (typeof place === 'string') this.report([...prefix, 'profile'], `${place}: ${message([...prefix, 'profile'])}`);
      else this.report([...prefix, ...place], message([...prefix, ...place]));
    };
    for (const issue of error.issues) {
      const inner = issue.path as Path;
      const value = entry ? valueAt(entry.input, inner) : valueAt(this.raw, [...prefix, ...inner]);
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) say([...inner, key], () => 'unknown key');
      } else {
        say(inner, (path) => describeIssue(issue, value, this.echo && !this.fromEnv.has(formatPath(path))));
      }
    }
  }
}

/** Expands ${VAR} in the document; an unset variable is a problem, and with env false each placeholder is a note. */
function expandPlaceholders(check: SiteCheck, env: Env | false, onNote: ParseOptions['onNote']): void {
  interpolate(check.doc, env, (path, names, unset) => {
    const at = formatPath(path);
    check.fromEnv.set(
      at,
      names.map((v) => v.name),
    );
    if (env === false) {
      const from = names.map((v) => `\${${v.name}}`).join(', ');
      const withDefault = names.every((v) => v.fallback !== undefined);
      onNote?.({
        path: at,
        message: `takes its value from ${from} when the gateway starts; ${withDefault ? 'checked here with its default' : 'not checked here'}`,
        line: check.lineOf(path),
      });
      if (!withDefault) check.unresolved.add(at);
      return;
    }
    for (const name of unset) check.report(path, `environment variable ${name} is not set and has no default (write \${${name}:-default})`);
    if (unset.length > 0) check.unresolved.add(at);
  });
}

/** Each connection checked by its driver; the first entry of each id is the one equipment refers to. */
function checkConnections(connections: unknown[], check: SiteCheck) {
  const connectionById = new Map<string, Record<string, unknown>>();
  const driverConnections: ConnectionConfig[] = [];
  connections.forEach((c, i) => {
    if (!isRecord(c)) return;
    if (typeof c.id === 'string' && !connectionById.has(c.id)) connectionById.set(c.id, c);
    const driver = typeof c.type === 'string' ? findDriver(c.type) : undefined;
    if (!driver) return;
    const parsed = checked(driver.connectionSchema, c, ['connections', i], check.report);
    if (!parsed) return;
    if (parsed.success) driverConnections[i] = parsed.data as ConnectionConfig;
    else check.reportZod(['connections', i], parsed.error);
  });
  return { connectionById, driverConnections };
}

function readTemplates(check: SiteCheck): Map<string, Template> {
  try {
    return loadTemplates();
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    check.report(['(templates)'], err.message);
    return new Map();
  }
}

/** Where a path inside an equipment entry (as its driver saw it) is written; null: not worth a message. */
type Place = (inner: Path) => Path | string | null;

/**
 * The equipment entries with their profiles' points. From now on an entry is checked as expanded,
 * and a problem in a point is reported where that point (or key) is written (`place`).
 */
interface Expansion {
  /** The entries as written in the site file. */
  written: unknown[];
  /** The entries as their drivers see them. */
  entries: unknown[];
  /** Entries whose profile could not be used: their missing points are that mistake, not another. */
  withoutProfile: Set<number>;
  place(i: number, e: Record<string, unknown>): Place;
}

function expandProfiles(
  equipment: unknown[],
  templates: ReadonlyMap<string, Template>,
  connectionById: ReadonlyMap<string, Record<string, unknown>>,
  check: SiteCheck,
): Expansion {
  const pointSources: Array<ProfilePoints | undefined> = [];
  const withoutProfile = new Set<number>();
  let profiles: Map<string, Profile | ProfileError> | undefined;
  const entries: unknown[] = equipment.map((e, i) => {
    if (!isRecord(e) || typeof e.profile !== 'string') return e;
    try {
      profiles ??= loadProfiles(templates);
    } catch (err) {
      check.report(['equipment', i, 'profile'], `cannot read the profiles folder: ${(err as Error).message}`);
      profiles = new Map();
    }
    const profile = usableProfile(e, i, profiles.get(e.profile), profiles, check.report);
    if (!profile) {
      withoutProfile.add(i);
      return e;
    }
    const connection = typeof e.connection === 'string' ? connectionById.get(e.connection) : undefined;
    const type = connection && typeof connection.type === 'string' && findDriver(connection.type) ? connection.type : undefined;
    const fits = type === undefined || profile.connection_types.includes(type);
    if (!fits)
      check.report(
        ['equipment', i, 'profile'],
        `profile ${profile.profile} is for ${profile.connection_types.join(', ')} connections (${profile.file}: connection_types); connection ${String(e.connection)} is ${type}`,
      );
    const expanded = expandProfile(e, profile);
    pointSources[i] = { profile, sources: expanded.sources, fits };
    return expanded.entry;
  });
  return {
    written: equipment,
    entries,
    withoutProfile,
    place: (i, e) => (inner) => placeOf(inner, e, equipment[i] as Record<string, unknown>, pointSources[i], withoutProfile.has(i)),
  };
}

/** Where an expanded entry's points came from: the profile's, or the entry's own. */
interface ProfilePoints {
  profile: Profile;
  sources: PointSource[];
  /** Whether the profile is for the entry's connection type. */
  fits: boolean;
}

/** The profile an entry names, or undefined (and the reason reported) when it cannot be used. */
function usableProfile(
  e: Record<string, unknown>,
  i: number,
  profile: Profile | ProfileError | undefined,
  profiles: ReadonlyMap<string, Profile | ProfileError>,
  report: Report,
): Profile | undefined {
  if (profile === undefined) {
    const known = [...profiles.keys()];
    report(['equipment', i, 'profile'], `no profile "${String(e.profile)}"${known.length ? `; profiles are ${known.join(', ')}` : ''}`);
    return undefined;
  }
  if (profile instanceof ProfileError) {
    for (const p of profile.problems) report(['equipment', i, 'profile'], `profile ${String(e.profile)} is broken: ${p}`);
    return undefined;
  }
  if (typeof e.template === 'string' && e.template !== profile.template) {
    // Its points are another template's: checking that template's rules against them would only echo this.
    report(
      ['equipment', i, 'template'],
      `profile ${profile.profile} maps template ${profile.template} (${profile.file}: template), not ${e.template}`,
    );
    return undefined;
  }
  return profile;
}

/** Where a path inside entry `e` (as expanded from `written`) is written; null: not worth a message. */
function placeOf(
  inner: Path,
  e: Record<string, unknown>,
  written: Record<string, unknown>,
  from: ProfilePoints | undefined,
  withoutProfile: boolean,
): Path | string | null {
  if (withoutProfile && inner.length === 1 && inner[0] === 'points' && e.points === undefined) return null;
  if (!from || inner[0] !== 'points' || typeof inner[1] !== 'number') return inner;
  const source = from.sources[inner[1]];
  if (!source) return inner;
  const rest = inner.slice(2);
  if (source.from === 'entry') {
    const point = (written.points as unknown[])[source.index];
    // A key the entry writes is the entry's; a key that comes from the profile is the profile's.
    if (rest.length === 0 || (isRecord(point) && Object.hasOwn(point, rest[0]!))) return ['points', source.index, ...rest];
  }
  // The profile's points were checked against its connection types; on another, the misfit is the message.
  if (!from.fits) return null;
  const name = source.from === 'profile' ? source.name : String((e.points as Array<{ name: string }>)[inner[1]]?.name);
  return `${from.profile.file}: point ${name}${rest.length ? `, ${rest.join('.')}` : ''}`;
}

interface CheckedEquipment {
  driverEquipment: EquipmentConfig[];
  /** What each entry's driver says of it: whether its values come on change (rules need it). */
  reportsOnChange: Array<boolean | undefined>;
}

function checkEquipment(
  expansion: Expansion,
  templates: ReadonlyMap<string, Template>,
  connectionById: ReadonlyMap<string, Record<string, unknown>>,
  check: SiteCheck,
): CheckedEquipment {
  const out: CheckedEquipment = { driverEquipment: [], reportsOnChange: [] };
  expansion.entries.forEach((e, i) => {
    if (!isRecord(e)) return;
    if (typeof e.id === 'string' && RESERVED_EQUIPMENT_IDS.has(e.id)) {
      check.report(
        ['equipment', i, 'id'],
        `"${e.id}" is reserved: the site's own topics use that level (${[...RESERVED_EQUIPMENT_IDS].join(', ')})`,
      );
    }
    const written = expansion.written[i] as Record<string, unknown>;
    if (Array.isArray(written.points)) checkUnique(written.points, ['equipment', i, 'points'], 'name', check.report);
    // A template the entry has from its profile is not written in it: the profile is where to look.
    const byProfile = written.template === undefined && e.template !== undefined;
    const reportCategory: Report = (p, m) => check.report(byProfile && p.at(-1) === 'template' ? [...p.slice(0, -1), 'profile'] : p, m);
    const template = typeof e.template === 'string' ? templates.get(e.template) : undefined;
    checkCategory(e, ['equipment', i], reportCategory, template?.category);
    const own = Object.fromEntries(Object.entries(e).filter(([k]) => !BASE_KEYS.has(k)));
    const connection = typeof e.connection === 'string' ? connectionById.get(e.connection) : undefined;
    const driver = connection && typeof connection.type === 'string' ? findDriver(connection.type) : undefined;
    const place = expansion.place(i, e);
    if (!driver) return checkWithoutDriver(e, i, own, connection, connectionById, place, check);
    // Quality control judges lab results: on equipment whose driver captures none it would never run.
    if (e.qc !== undefined && !driver.capabilities.labResults)
      check.report(['equipment', i, 'qc'], `qc is for lab instruments: a ${driver.type} connection gives no lab results`);
    const parsed = checked(driver.equipmentSchema, own, ['equipment', i], check.report);
    if (!parsed) return;
    if (parsed.success) out.driverEquipment[i] = parsed.data as EquipmentConfig;
    if (parsed.success) out.reportsOnChange[i] = driver.capabilities.reportsOnChange(parsed.data as EquipmentConfig);
    else check.reportZod(['equipment', i], parsed.error, { input: own, place });
  });
  return out;
}

/**
 * Without its connection's driver the entry is still checked, by the driver it fits best, so one
 * pass reports its misspelt keys and wrong point types along with the connection. An entry that
 * some driver takes as it is (no keys of a driver's own) needs no such note.
 */
function checkWithoutDriver(
  e: Record<string, unknown>,
  i: number,
  own: Record<string, unknown>,
  connection: Record<string, unknown> | undefined,
  connectionById: ReadonlyMap<string, Record<string, unknown>>,
  place: Place,
  check: SiteCheck,
): void {
  const found = closestDriver(own);
  const closest = found && !found.result.success ? found : undefined;
  const as = closest ? `; checked as ${closest.label} entry, the driver it fits best` : '';
  if (typeof e.connection === 'string' && !connection) {
    const known = [...connectionById.keys()];
    check.report(
      ['equipment', i, 'connection'],
      `no connection "${e.connection}"${known.length ? `; connections are ${known.join(', ')}` : ''}${as}`,
    );
  } else if (closest && connection) {
    check.report(['equipment', i, 'connection'], `its connection has no known type${as}`);
  }
  if (closest && !closest.result.success) check.reportZod(['equipment', i], closest.result.error, { input: own, place });
}

type RuleEquipment = ReturnType<typeof applyTemplate> & { reportsOnChange: boolean | undefined };

/**
 * Templates give units, limits and rules; rules are compiled against the points and limits of each
 * equipment they apply to, whatever else is wrong.
 */
function applyTemplates(
  expansion: Expansion,
  checkedEquipment: CheckedEquipment,
  templates: ReadonlyMap<string, Template>,
  check: SiteCheck,
): RuleEquipment[] {
  return expansion.entries
    .flatMap((e, i) => (isRecord(e) ? [{ e, i }] : []))
    .map(({ e, i }) => {
      const place = expansion.place(i, e);
      // A unit is checked against the template where it is written (a profile's units were checked with the profile).
      const reportAt: Report = (path, message) => {
        const at = place(path.slice(2));
        if (typeof at !== 'string' && at !== null) check.report(['equipment', i, ...at], message);
      };
      const applied = applyTemplate(e, i, checkedEquipment.driverEquipment[i], templates, reportAt);
      // Without its profile's points the template's rules have nothing to read: the profile is the mistake.
      if (expansion.withoutProfile.has(i) && e.points === undefined) applied.template_rules = undefined;
      return { ...applied, reportsOnChange: checkedEquipment.reportsOnChange[i] };
    });
}

/** The site's rules and each equipment's template rules, compiled; a site rule may not take a template rule's id. */
function checkRules(siteRules: unknown, ruleEquipment: RuleEquipment[], report: Report): void {
  const rules = (Array.isArray(siteRules) ? siteRules : []).map((r) => {
    const parsed = ruleSchema.safeParse(r);
    return parsed.success ? parsed.data : undefined;
  });
  compileRules(rules, ruleEquipment, report);
  const templateRuleIds = new Map<string, string>();
  for (const eq of ruleEquipment) {
    if (!eq.template_rules) continue;
    compileTemplateRules(eq.template_rules, eq, eq.template!, report, ['equipment', eq.index, 'template']);
    for (const r of eq.template_rules) templateRuleIds.set(r.id, eq.template!);
  }
  rules.forEach((r, j) => {
    if (r && templateRuleIds.has(r.id))
      report(['rules', j, 'id'], `"${r.id}" is also a rule of template ${templateRuleIds.get(r.id)}; choose another id`);
  });
}

/** The SiteConfig of a file with no problems: each entry as its driver parsed it, with its template applied. */
function assembleSite(
  out: z.infer<typeof siteBaseSchema>,
  driverConnections: ConnectionConfig[],
  driverEquipment: EquipmentConfig[],
  ruleEquipment: RuleEquipment[],
): SiteConfig {
  return {
    version: out.version,
    gateway: out.gateway,
    mqtt: out.mqtt,
    influx: out.influx,
    // Each entry was parsed by its simulator's schema, which has these keys (the registry erases the types).
    simulators: out.simulators as SimulatorConfig[],
    rules: out.rules,
    alarms: out.alarms,
    platform: out.platform,
    http: out.http,
    risk: out.risk,
    report: out.report,
    lab: out.lab,
    sparkplug: out.sparkplug,
    connections: driverConnections,
    equipment: out.equipment.map((e, i) => {
      const t = ruleEquipment.find((r) => r.index === i)!;
      const own = driverEquipment[i]!;
      const category = (e.category ?? (e.code ? categoryFromCode(e.code) : undefined) ?? t.category) as Category;
      return {
        ...(e as Record<string, unknown>),
        ...own,
        id: e.id,
        connection: e.connection,
        poll_interval: e.poll_interval,
        category,
        // An entry with a profile and no template of its own has the profile's.
        ...(t.template ? { template: t.template } : {}),
        limits: t.limits,
        // A point without a unit takes its template's.
        points: own.points.map((p) => ({ ...p, ...(p.unit === undefined && t.units.has(p.name) ? { unit: t.units.get(p.name) } : {}) })),
        ...(t.template_rules ? { template_rules: t.template_rules } : {}),
        // The entry's own class, else its template's, else its category's (docs/risk.md).
        consequence: e.consequence ?? t.consequence ?? defaultConsequence(category),
        ...(t.risk_factors ? { risk_factors: t.risk_factors } : {}),
      };
    }),
  };
}

/**
 * A driver's schema run on an entry. A refinement of the driver's that throws on a value it did not
 * expect (a mapping where a name belongs) is that entry's problem, not the end of the check.
 */
function checked(schema: z.ZodType, value: unknown, at: Path, report: (p: Path, m: string) => void) {
  try {
    return schema.safeParse(value);
  } catch (err) {
    report(at, `cannot be checked: ${(err as Error).message.split('\n')[0]}`);
    return undefined;
  }
}

/**
 * The equipment schema an entry fits best (fewest problems), for an entry whose connection or
 * connection type is unknown. Drivers sharing a schema (the Modbus family) are tried once, under
 * the name they share.
 */
function closestDriver(entry: Record<string, unknown>): { label: string; result: z.ZodSafeParseResult<unknown> } | undefined {
  const families = new Map<z.ZodType, string[]>();
  for (const d of DRIVERS) families.set(d.equipmentSchema, [...(families.get(d.equipmentSchema) ?? []), d.type]);
  let best: { label: string; result: z.ZodSafeParseResult<unknown>; count: number } | undefined;
  for (const [schema, types] of families) {
    let result: z.ZodSafeParseResult<unknown>;
    try {
      result = schema.safeParse(entry);
    } catch {
      // A refinement that throws on an entry of another driver's shape: that driver does not fit.
      continue;
    }
    const count = result.success
      ? 0
      : result.error.issues.reduce((n, issue) => n + (issue.code === 'unrecognized_keys' ? issue.keys.length : 1), 0);
    if (!best || count < best.count) best = { label: familyName(types), result, count };
  }
  return best && { label: best.label, result: best.result };
}

/** `a modbus` for modbus-tcp, modbus-rtu, modbus-rtu-over-tcp: the name their types begin with. */
function familyName(types: string[]): string {
  const first = types[0]!.split('-');
  let n = first.length;
  for (const t of types) {
    const parts = t.split('-');
    let k = 0;
    while (k < n && parts[k] === first[k]) k++;
    n = k;
  }
  const name = first.slice(0, Math.max(n, 1)).join('-');
  return `${/^[aeiou]/.test(name) ? 'an' : 'a'} ${name}`;
}

const tooDeep = `nested too deeply: at most ${SITE_FILE_LIMITS.maxDepth} levels of mappings and lists`;

function aliasMessage(message: string): string {
  if (/^Excessive alias count/.test(message))
    return `aliases expand too far (at most ${SITE_FILE_LIMITS.maxAliasCount} expansions): a YAML alias bomb?`;
  const unresolved = /^Unresolved alias.*: (.*)$/.exec(message);
  if (unresolved) return `alias *${unresolved[1]} refers to no anchor before it`;
  return message.split('\n')[0]!;
}

/** The first collection nested deeper than `max`, found without recursion (the document may be deep). */
function deeperThan(doc: Document, max: number): Node | undefined {
  const stack: Array<[unknown, number]> = [[doc.contents, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (isMap(node) || isSeq(node)) {
      if (depth >= max) return node;
      for (const item of node.items) {
        if (isPair(item)) stack.push([item.key, depth + 1], [item.value, depth + 1]);
        else stack.push([item, depth + 1]);
      }
    } else if (isPair(node)) stack.push([node.key, depth], [node.value, depth]);
    else if (isAlias(node)) continue;
  }
  return undefined;
}

/** An equipment entry as rules see it, with its template's limits, units and rules applied. */
function applyTemplate(
  e: Record<string, unknown>,
  index: number,
  parsed: EquipmentConfig | undefined,
  templates: ReadonlyMap<string, Template>,
  report: (p: Path, m: string) => void,
) {
  const at: Path = ['equipment', index];
  const t = typeof e.template === 'string' ? templates.get(e.template) : undefined;
  if (typeof e.template === 'string' && !t && templates.size > 0)
    report([...at, 'template'], `no template "${e.template}"; templates are ${[...templates.keys()].join(', ')}`);
  const own = isRecord(e.limits) ? (e.limits as Record<string, number | boolean | string>) : {};
  if (t) {
    for (const name of Object.keys(own)) {
      if (!Object.hasOwn(t.limits, name))
        report([...at, 'limits', name], `not a limit of template ${t.template}; its limits are ${Object.keys(t.limits).join(', ')}`);
    }
  }
  // An entry its driver refused still names its points: its rules are checked against those.
  const points = parsed?.points ?? rawPoints(e);
  const units = new Map((t?.points ?? []).filter((p) => p.unit !== undefined).map((p) => [p.name, p.unit!]));
  points.forEach((p, k) => {
    const unit = units.get(p.name);
    if (p.unit !== undefined && unit !== undefined && p.unit !== unit)
      report([...at, 'points', k, 'unit'], `template ${t!.template} has ${p.name} in ${unit}, and its limits are in that unit`);
  });
  const disabled = Array.isArray(e.disabled_rules) ? e.disabled_rules.filter((x): x is string => typeof x === 'string') : [];
  disabled.forEach((id, k) => {
    if (!t) report([...at, 'disabled_rules'], "needs a template: the rules it names are a template's");
    else if (!t.rules.some((r) => r.id === id))
      report(
        [...at, 'disabled_rules', k],
        `template ${t.template} has no rule "${id}"; its rules are ${t.rules.map((r) => r.id).join(', ')}`,
      );
  });
  return {
    index,
    id: typeof e.id === 'string' ? e.id : describeValue(e.id),
    name: typeof e.name === 'string' ? e.name : undefined,
    category:
      typeof e.category === 'string'
        ? e.category
        : typeof e.code === 'string'
          ? (categoryFromCode(e.code) ?? 'other')
          : (t?.category ?? 'other'),
    template: t?.template,
    poll_interval: (typeof e.poll_interval === 'string' ? parseDuration(e.poll_interval) : undefined) ?? 1000,
    points: points.map((p) => ({ name: p.name, unit: p.unit ?? units.get(p.name) })),
    units,
    limits: { ...t?.limits, ...own },
    template_rules: t ? t.rules.filter((r) => !disabled.includes(r.id)) : undefined,
    consequence: t?.consequence,
    risk_factors: t?.risk?.factors,
  };
}

function rawPoints(e: unknown): Array<{ name: string; unit?: string }> {
  const points = isRecord(e) && Array.isArray(e.points) ? e.points : [];
  return points.filter((p): p is { name: string } => isRecord(p) && typeof p.name === 'string').map((p) => ({ name: p.name }));
}

/** Topic levels the site itself publishes under: gw/<site>/gateway/status, gw/<site>/alarms/active. */
const RESERVED_EQUIPMENT_IDS = new Set(['gateway', 'alarms']);

const BASE_KEYS = new Set(EQUIPMENT_BASE_KEYS);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkUnique(list: unknown[], at: string | Path, key: string, report: (p: Path, m: string) => void) {
  const prefix = typeof at === 'string' ? [at] : at;
  const seen = new Map<unknown, number>();
  list.forEach((item, i) => {
    if (!isRecord(item) || typeof item[key] !== 'string') return;
    const first = seen.get(item[key]);
    if (first === undefined) seen.set(item[key], i);
    else report([...prefix, i, key], `duplicate ${key} "${String(item[key])}" (already used by ${formatPath([...prefix, first])})`);
  });
}

function checkCategory(e: Record<string, unknown>, at: Path, report: (p: Path, m: string) => void, templateCategory?: string) {
  const code = typeof e.code === 'string' && EQUIPMENT_CODE.test(e.code) ? e.code : undefined;
  const fromCode = code ? categoryFromCode(code) : undefined;
  if (templateCategory && (e.category ?? fromCode ?? templateCategory) !== templateCategory) {
    report(
      [...at, 'template'],
      `template ${String(e.template)} is for ${templateCategory} equipment, and this is ${typeof e.category === 'string' ? e.category : String(fromCode)}`,
    );
  }
  if (e.category === undefined && e.code === undefined) {
    if (!templateCategory) report([...at, 'category'], 'required when no code or template is given');
  } else if (code && typeof e.category === 'string') {
    const fromCode = categoryFromCode(code);
    if (fromCode && fromCode !== e.category) report([...at, 'category'], `code ${code} belongs to category ${fromCode}, not ${e.category}`);
  } else if (code && !categoryFromCode(code)) {
    report([...at, 'category'], `code ${code} names no known category; set category`);
  }
}

/** One clear sentence per zod issue. */
function describeIssue(issue: z.core.$ZodIssue, value: unknown, echo: boolean): string {
  const describeValue = echo ? describeAnyValue : kindOf;
  // Messages the schema spells out itself are kept; zod's generic ones are rewritten.
  if (!/^(Invalid (input|option)|Too (small|big))/.test(issue.message)) return issue.message;
  switch (issue.code) {
    case 'invalid_type':
      if (value === undefined) return 'required';
      return `expected ${issue.expected}, got ${describeValue(value)}${hint(issue.expected, value)}`;
    case 'invalid_value':
      return issue.values.length === 1
        ? `expected ${JSON.stringify(issue.values[0])}, got ${describeValue(value)}`
        : `expected one of ${issue.values.map(String).join(', ')}, got ${echo ? describeValue(value) : `${kindOf(value)} that is not one of them`}`;
    case 'too_small':
      if (issue.origin === 'array') return `expected at least ${String(issue.minimum)} entries`;
      if (issue.origin === 'number') return `expected at least ${String(issue.minimum)}, got ${describeValue(value)}`;
      return lowerFirst(issue.message);
    case 'too_big':
      if (issue.origin === 'number') return `expected at most ${String(issue.maximum)}, got ${describeValue(value)}`;
      return lowerFirst(issue.message);
    default:
      return lowerFirst(issue.message);
  }
}

function hint(expected: string, value: unknown): string {
  if (expected === 'string' && (typeof value === 'number' || typeof value === 'boolean')) return ' (quote the value to keep it text)';
  if ((expected === 'number' || expected === 'int') && typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value))
    return ' (write it without quotes; in a { flow: mapping } put a ${VAR} on a line of its own)';
  return '';
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return JSON.stringify(v);
}
const describeAnyValue = describeValue;

/** What a value is, without repeating it. */
function kindOf(v: unknown): string {
  if (typeof v === 'string') return 'a text';
  if (typeof v === 'number') return 'a number';
  if (typeof v === 'boolean') return 'true or false';
  return describeValue(v);
}

const lowerFirst = (s: string) => (/^[A-Z][a-z]/.test(s) ? s.charAt(0).toLowerCase() + s.slice(1) : s);

function valueAt(root: unknown, path: Path): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

/** The YAML node at a path, or the nearest ancestor that exists (for a missing key: its mapping). */
function nodeAt(doc: Document, path: Path): Node | undefined {
  for (let n = path.length; n >= 0; n--) {
    const parentPath = path.slice(0, n);
    if (n < path.length) {
      // An unknown key points at the key itself, not its value.
      const parent = parentPath.length ? doc.getIn(parentPath, true) : doc.contents;
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path[n]);
        if (pair && isScalar(pair.key)) return pair.key;
      }
    }
    const node = parentPath.length ? doc.getIn(parentPath, true) : doc.contents;
    if (node && typeof node === 'object' && 'range' in node) return node as Node;
  }
  return undefined;
}

const VAR = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}/g;

/**
 * Replaces ${NAME}, ${NAME:-default} (default when unset or empty) and ${NAME-default} (when unset)
 * in string values; `$$` is a literal `$`. A plain (unquoted) scalar that becomes a number or a
 * boolean takes that type, so `port: ${MQTT_PORT:-1883}` is a number; quote it to keep text.
 */
function interpolate(
  doc: Document,
  env: Env | false,
  found: (p: Path, names: Array<{ name: string; fallback?: string | undefined }>, unset: string[]) => void,
): void {
  visit(doc, {
    Scalar(key, node, ancestors) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('$')) return;
      const source = node.value;
      const names: Array<{ name: string; fallback?: string | undefined }> = [];
      const unset: string[] = [];
      const result = source.replace(VAR, (whole, name: string | undefined, op: string | undefined, fallback: string | undefined) => {
        if (whole === '$$') return '$';
        names.push({ name: name!, fallback: op ? (fallback ?? '') : undefined });
        // Without an environment a placeholder stands for a value not known here: its default, or nothing.
        const value = env === false ? undefined : env[name!];
        if (op === ':-' && (value === undefined || value === '')) return fallback ?? '';
        if (op === '-' && value === undefined) return fallback ?? '';
        if (value === undefined) {
          if (env !== false) unset.push(name!);
          return '';
        }
        return value;
      });
      if (names.length > 0) found(pathOf(ancestors, node), names, unset);
      if (result === source) return;
      node.value = node.type === 'PLAIN' ? retype(result) : result;
    },
  });
}

function retype(text: string): string | number | boolean {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text === 'true' || text === 'false') return text === 'true';
  return text;
}

function pathOf(ancestors: readonly unknown[], node: unknown): Path {
  const path: Array<string | number> = [];
  const chain = [...ancestors, node];
  for (let i = 0; i < chain.length - 1; i++) {
    const a = chain[i];
    const child = chain[i + 1];
    if (isPair(a) && isScalar(a.key)) path.push(String(a.key.value));
    else if (isSeq(a)) path.push(a.items.indexOf(child as never));
  }
  return path;
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems
    .filter((p) => {
      const k = `${p.path}\0${p.message}`;
      return !seen.has(k) && seen.add(k);
    })
    .sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
}
