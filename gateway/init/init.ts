// `gateway init` (declared in gateway/commands/init.ts): gathers the answers from the options and, on
// a terminal, from questions; reads the device; writes the site file once the site loader has
// passed it. Without a terminal (a script, CI) nothing is asked: what is missing is one usage line.
import { chmodSync, existsSync, linkSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { ADDRESS_PATTERN } from '../../drivers/modbus/address.js';
import type { Profile } from '../../config/profiles.js';
import type { Template } from '../../config/templates.js';
import type { CliIo } from '../commands/declare.js';
import { EXIT, usageError } from '../commands/common.js';
import { createPrompter, NoAnswer, type Prompter, type Question } from './prompt.js';
import { describeValue, type InitConnection, siteFileText, type SitePlan, type WrittenPoint } from './site-file.js';

export interface InitOptions {
  out: string;
  category?: string | undefined;
  template?: string | undefined;
  connection?: 'modbus-tcp' | 'modbus-rtu' | 'opcua' | undefined;
  host?: string | undefined;
  port?: string | undefined;
  unit?: string | undefined;
  device?: string | undefined;
  baud?: string | undefined;
  endpoint?: string | undefined;
  securityMode?: 'None' | 'Sign' | 'SignAndEncrypt' | undefined;
  equipmentId?: string | undefined;
  site?: string | undefined;
  gatewayId?: string | undefined;
  profile?: string | undefined;
  point?: string[] | undefined;
  scan: boolean;
  yes?: boolean | undefined;
  force?: boolean | undefined;
}

/** Where the questions come from; a test gives its own streams. */
export interface InitTerminal {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  interactive: boolean;
}

const CONNECTIONS = ['modbus-tcp', 'modbus-rtu', 'opcua'] as const;
/** The types a --point may name (a string needs its length, which --point cannot give). */
const POINT_TYPES = ['bool', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64'];
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const ENDPOINT = /^opc\.tcp:\/\/[^\s/]+(:\d+)?(\/.*)?$/;

const checks = {
  id: (v: string) => (ID.test(v) ? undefined : 'an id of at most 64 letters, digits, "-", "_" or "." starting with a letter or digit'),
  port: (v: string) => wholeNumber(v, 1, 65535),
  unit: (v: string) => wholeNumber(v, 0, 255),
  // On a serial line 0 is a broadcast, which no unit answers, and 248-255 are reserved.
  serialUnit: (v: string) => {
    const why = wholeNumber(v, 1, 247);
    return why && `${why} on a serial line (0 is every unit at once, 248 to 255 are reserved)`;
  },
  baud: (v: string) => wholeNumber(v, 300, 4_000_000),
  host: (v: string) => (/^[^\s/]{1,253}$/.test(v) ? undefined : 'a host name or an IP address'),
  device: (v: string) => (v.length <= 4096 && isAbsolute(v) ? undefined : 'the path of the serial line, as /dev/ttyUSB0'),
  // A user or password in the URL would be written to the file and printed in clear: the file's
  // `user:` takes them, the password from the environment.
  endpoint: (v: string) =>
    /^[^/]*\/\/[^/]*@/.test(v)
      ? 'an endpoint with no user or password in it (set them in the written file: connections[].user in docs/configuration.md)'
      : ENDPOINT.test(v)
        ? undefined
        : 'an endpoint URL such as opc.tcp://10.0.0.9:4840',
};

/** An endpoint as it may be shown: what stands before an `@` (a user, a password) is left out. */
function shownEndpoint(v: string): string {
  return v.replace(/^([^/]*\/\/)[^/]*@/, '$1***@');
}

function wholeNumber(v: string, min: number, max: number): string | undefined {
  const n = Number(v);
  return /^\d+$/.test(v) && n >= min && n <= max ? undefined : `a whole number from ${min} to ${max}`;
}

/** `--point name=where` as the driver's keys: `hr:100:float32` → address and type; an OPC UA NodeId → node. */
export function pointKeys(where: string, type: InitConnection['type']): Record<string, string> | string {
  if (type === 'opcua') return /^(ns=\d+;)?[isgb]=.+$/.test(where) ? { node: where } : 'an OPC UA NodeId, as ns=1;s=Lift3.Floor';
  const m = /^((?:hr|ir|co|di):\d{1,5}(?:\.\d{1,2})?)(?::(\w+))?$/.exec(where);
  if (!m || !ADDRESS_PATTERN.test(m[1]!)) return 'area:offset[:type], as hr:100:float32, ir:3:int16, di:0 or hr:130.2:bool';
  // Said here, for this --point (or answer), rather than by the loader about a line of a file never written.
  const register = /^(hr|ir):/.test(m[1]!);
  if (register && !m[2]) return `a type after a register's offset (${POINT_TYPES.join(', ')}), as hr:100:float32`;
  if (m[2] && !POINT_TYPES.includes(m[2])) return `a type of ${POINT_TYPES.join(', ')} after the offset`;
  return m[2] ? { address: m[1]!, type: m[2] } : { address: m[1]! };
}

export async function runInit(o: InitOptions, io: CliIo, terminal?: InitTerminal): Promise<number> {
  const term = terminal ?? {
    input: process.stdin,
    output: process.stdout,
    interactive: process.stdin.isTTY === true && o.yes !== true,
  };
  // Refused before any question: the file is there, and nobody said to replace it.
  if (existsSync(o.out) && !o.force) {
    io.err(`${o.out}: exists; gateway init does not overwrite it without --force\n`);
    return EXIT.failure;
  }
  const { loadTemplates } = await import('../../config/templates.js');
  const { loadProfiles, ProfileError } = await import('../../config/profiles.js');
  const templates = loadTemplates();
  const profiles = [...loadProfiles(templates).values()].filter((p): p is Profile => !(p instanceof ProfileError));
  const categories = [...new Set([...templates.values()].map((t) => t.category))];

  // Options are checked first, all of them, before anything is asked.
  const problems: string[] = [];
  const optionCheck = (flag: string, value: string | undefined, check: (v: string) => string | undefined) => {
    const why = value === undefined ? undefined : check(value);
    if (why) problems.push(`${flag} takes ${why}, not ${JSON.stringify(flag === '--endpoint' ? shownEndpoint(value!) : value)}`);
  };
  optionCheck('--category', o.category, (v) => (categories.includes(v) ? undefined : `one of ${categories.join(', ')}`));
  optionCheck('--template', o.template, (v) => (templates.has(v) ? undefined : `one of ${[...templates.keys()].join(', ')}`));
  optionCheck('--host', o.host, checks.host);
  optionCheck('--port', o.port, checks.port);
  optionCheck('--unit', o.unit, o.connection === 'modbus-rtu' ? checks.serialUnit : checks.unit);
  optionCheck('--device', o.device, checks.device);
  optionCheck('--baud', o.baud, checks.baud);
  optionCheck('--endpoint', o.endpoint, checks.endpoint);
  optionCheck('--equipment-id', o.equipmentId, checks.id);
  optionCheck('--site', o.site, checks.id);
  optionCheck('--gateway-id', o.gatewayId, checks.id);
  optionCheck('--profile', o.profile, (v) =>
    v === 'none' || profiles.some((p) => p.profile === v) ? undefined : `none or one of ${profiles.map((p) => p.profile).join(', ')}`,
  );
  const given = o.template ? templates.get(o.template) : undefined;
  if (given && o.category && given.category !== o.category)
    problems.push(`--template ${given.template} is for ${given.category} equipment, not ${o.category}`);
  if (o.connection) {
    const forType: Record<string, string[]> = {
      'modbus-tcp': ['host', 'port', 'unit'],
      'modbus-rtu': ['device', 'baud', 'unit'],
      opcua: ['endpoint', 'securityMode'],
    };
    for (const key of ['host', 'port', 'unit', 'device', 'baud', 'endpoint', 'securityMode'] as const) {
      if (o[key] !== undefined && !forType[o.connection]!.includes(key))
        problems.push(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is not an option of a ${o.connection} connection`);
    }
  }
  const pointsGiven: Array<{ name: string; where: string }> = [];
  for (const p of o.point ?? []) {
    const eq = p.indexOf('=');
    const name = eq > 0 ? p.slice(0, eq) : '';
    if (!/^[a-z_][a-z0-9_]{0,63}$/i.test(name) || eq === p.length - 1)
      problems.push(`--point takes name=where, as steam_pressure=hr:100:float32, not ${JSON.stringify(p)}`);
    else pointsGiven.push({ name, where: p.slice(eq + 1) });
  }
  if (problems.length > 0) usageError('init', problems.join('; '));

  const prompter = term.interactive ? createPrompter(term.input, term.output) : undefined;
  try {
    return await gather(o, io, { templates, profiles, categories, pointsGiven, prompter });
  } catch (err) {
    if (err instanceof NoAnswer) {
      io.err(`gateway init: ${err.message}; nothing written\n`);
      return EXIT.invalid;
    }
    throw err;
  } finally {
    prompter?.close();
  }
}

interface Context {
  templates: Map<string, Template>;
  profiles: Profile[];
  categories: string[];
  pointsGiven: Array<{ name: string; where: string }>;
  prompter: Prompter | undefined;
}

async function gather(o: InitOptions, io: CliIo, ctx: Context): Promise<number> {
  const { prompter } = ctx;
  const missing: string[] = [];
  /** The option's value, else the answer to the question, else its default; undefined (and noted) when needed and nobody gave it. */
  const value = async (flag: string, given: string | undefined, q: Question): Promise<string | undefined> => {
    if (given !== undefined) return given;
    if (prompter) return prompter.ask(q);
    if (q.default !== undefined) return q.default;
    missing.push(flag);
    return undefined;
  };

  // The template, by category when there are several of it.
  let templateId = o.template;
  if (!templateId) {
    const category = await value('--category (or --template)', o.category, { text: 'Equipment category', choices: ctx.categories });
    const fits = [...ctx.templates.values()].filter((t) => t.category === category).map((t) => t.template);
    if (category !== undefined)
      templateId =
        fits.length === 1
          ? fits[0]
          : await value(`--template (${fits.join(' or ')})`, undefined, { text: 'Equipment template', choices: fits });
  }
  const connectionType = (await value('--connection (modbus-tcp, modbus-rtu or opcua)', o.connection, {
    text: 'Connection',
    choices: CONNECTIONS,
    default: templateId
      ? ctx.profiles.find((p) => p.template === templateId)?.connection_types.find((c) => (CONNECTIONS as readonly string[]).includes(c))
      : undefined,
  })) as InitConnection['type'] | undefined;

  let connection: InitConnection | undefined;
  let unit: number | undefined;
  if (connectionType === 'modbus-tcp') {
    const host = await value('--host', o.host, { text: 'Device address (host name or IP)', check: checks.host });
    const port = await value('--port', o.port, { text: 'TCP port', default: '502', check: checks.port });
    unit = Number(await value('--unit', o.unit, { text: 'Unit id', default: '1', check: checks.unit }));
    if (host !== undefined) connection = { type: 'modbus-tcp', host, port: Number(port) };
  } else if (connectionType === 'modbus-rtu') {
    const path = await value('--device', o.device, {
      text: 'Serial line',
      default: prompter ? '/dev/ttyUSB0' : undefined,
      check: checks.device,
    });
    const baud = await value('--baud', o.baud, { text: 'Serial speed (baud)', default: '9600', check: checks.baud });
    unit = Number(await value('--unit', o.unit, { text: 'Unit id', default: '1', check: checks.serialUnit }));
    if (path !== undefined) connection = { type: 'modbus-rtu', path, baud: Number(baud) };
  } else if (connectionType === 'opcua') {
    const endpoint = await value('--endpoint', o.endpoint, {
      text: 'OPC UA endpoint',
      default: prompter ? 'opc.tcp://127.0.0.1:4840' : undefined,
      check: checks.endpoint,
    });
    const mode = await value('--security-mode', o.securityMode, {
      text: 'Security mode',
      choices: ['None', 'Sign', 'SignAndEncrypt'],
      default: 'SignAndEncrypt',
    });
    if (endpoint !== undefined) connection = { type: 'opcua', endpoint, securityMode: mode as 'None' | 'Sign' | 'SignAndEncrypt' };
  }
  if (missing.length > 0 || !templateId || !connection) {
    usageError('init', `needs ${missing.join(', ')}: with no terminal to ask on, give them as options (or run it in a terminal)`);
  }
  const template = ctx.templates.get(templateId)!;
  const prefix =
    { boiler: 'boiler', elevator: 'lift', crane: 'crane', pressure_vessel: 'vessel', lab_analyzer: 'analyzer' }[template.category] ??
    'equipment';
  const equipmentId = (await value('--equipment-id', o.equipmentId, { text: 'Equipment id', default: `${prefix}-1`, check: checks.id }))!;
  const site = (await value('--site', o.site, { text: 'Site id', default: 'my-site', check: checks.id }))!;
  const gatewayId = (await value('--gateway-id', o.gatewayId, { text: 'Gateway id', default: 'gw-1', check: checks.id }))!;

  // The device profile: the one named (`none`: none), else the one for this template and connection
  // type. On a terminal it is asked: a shipped profile may be another controller's map (the simulator's).
  const fitting = ctx.profiles.filter((p) => p.template === template.template && p.connection_types.includes(connection.type));
  let profile = o.profile && o.profile !== 'none' ? ctx.profiles.find((p) => p.profile === o.profile) : undefined;
  if (profile && (profile.template !== template.template || !profile.connection_types.includes(connection.type)))
    usageError(
      'init',
      `--profile ${profile.profile} maps template ${profile.template} over ${profile.connection_types.join(', ')}, not ${template.template} over ${connection.type}`,
    );
  if (!o.profile && fitting.length > 0) {
    for (const p of prompter ? fitting : [])
      io.out(`Device profile ${p.profile}: ${p.vendor} ${p.model}${p.description ? `, ${p.description}` : ''}\n`);
    const id = prompter
      ? await prompter.ask({ text: 'Device profile', choices: [...fitting.map((p) => p.profile), 'none'], default: fitting[0]!.profile })
      : fitting[0]!.profile;
    profile = fitting.find((p) => p.profile === id);
  }

  // The points: the profile's, then those given (which win by name).
  const points = new Map<string, WrittenPoint>();
  const problems: string[] = [];
  for (const p of ctx.pointsGiven) {
    const keys = pointKeys(p.where, connection.type);
    if (typeof keys === 'string') problems.push(`--point ${p.name}: takes ${keys}, not ${JSON.stringify(p.where)}`);
    else points.set(p.name, { name: p.name, keys });
  }
  if (problems.length > 0) usageError('init', problems.join('; '));
  // No profile and nothing given for a Modbus device: its map is in the manual, so ask for it.
  if (!profile && points.size === 0 && connection.type !== 'opcua' && prompter) {
    io.out(`No device profile maps ${template.template} over ${connection.type}: give the address of each point (empty: later).\n`);
    for (const t of template.points) {
      const where = await prompter.ask({
        text: `  ${t.name}${t.description ? ` (${t.description}${t.unit ? `, ${t.unit}` : ''})` : ''}, area:offset[:type]`,
        optional: true,
        check: (v) => {
          const k = pointKeys(v, connection.type);
          return typeof k === 'string' ? k : undefined;
        },
      });
      if (where) points.set(t.name, { name: t.name, keys: pointKeys(where, connection.type) as Record<string, string> });
    }
  }

  const { createLogger } = await import('../log.js');
  const log = createLogger({ level: 'silent', pretty: false });
  const unitOf = (name: string) => template.points.find((t) => t.name === name)?.unit;
  const profilePoints = (profile?.points ?? []).filter((p) => !points.has(p.name));
  const whereOf = (keys: Record<string, unknown>) =>
    'node' in keys ? String(keys.node) : [keys.address, keys.type, keys.byte_order].filter((x) => x !== undefined).join(' ');
  const reads = new Map<string, string>();
  let scanLine = 'Not read: written with --no-scan; the values are read when the gateway runs.';
  // Shown after `Wrote`, unless every point was read.
  let showScan = true;
  /** How many variables the OPC UA browse read, and how many points it matched to a name found more than once. */
  let browsed: number | undefined;
  let ambiguous = 0;

  if (o.scan) {
    if (connection.type === 'opcua') {
      const { browseServer, matchVariables, namesakes } = await import('./scan.js');
      const r = await browseServer({ endpoint: connection.endpoint, security_mode: connection.securityMode }, log);
      if (r.reached) {
        const byNode = new Map(r.vars.map((v) => [v.nodeId, v]));
        const show = (v: { dataType: string; value: unknown; status: string }, name: string) =>
          v.status === 'Good' ? `read ${describeValue(v.value, unitOf(name))} (${v.dataType})` : `read, ${v.status}`;
        // A profile's node the server does not have is looked for by name, as a point with no node.
        const unmapped = template.points
          .map((t) => t.name)
          .filter((n) => !points.has(n) && !profilePoints.some((p) => p.name === n && byNode.has(String(p.node))));
        const found = matchVariables(unmapped, r.vars);
        // A name on several objects (two cars on one server) may be another equipment's: taken, but
        // never silently, or one entry could mix two lifts' points.
        const all = namesakes([...found.keys()], r.vars);
        for (const [name, v] of found) {
          const others = (all.get(name) ?? []).filter((x) => x !== v);
          const note = others.length
            ? `; TODO check: ${others.length} more variable${others.length > 1 ? 's' : ''} of this name, at ${others
                .slice(0, 3)
                .map((x) => x.nodeId)
                .join(', ')}${others.length > 3 ? ', ...' : ''}`
            : '';
          if (note) ambiguous++;
          points.set(name, { name, keys: { node: v.nodeId }, read: `${show(v, name)}${note}` });
        }
        for (const p of profilePoints) {
          const v = byNode.get(String(p.node));
          if (v) reads.set(p.name, show(v, p.name));
        }
        for (const p of points.values()) {
          const v = 'node' in p.keys ? byNode.get(String(p.keys.node)) : undefined;
          if (!p.read) p.read = v ? show(v, p.name) : 'not found by the browse';
        }
        scanLine = `Browsed ${connection.endpoint} on ${new Date().toISOString()}: ${r.vars.length} variables, ${found.size} matched by name.`;
        showScan = false;
        browsed = r.vars.length;
      } else if (!(await goOn(r.why, io, prompter))) return EXIT.failure;
      else scanLine = `Not read: ${r.why}.`;
    } else {
      const { scanModbus } = await import('./scan.js');
      const toRead = [
        ...profilePoints.map((p) => ({ name: p.name, keys: p as Record<string, unknown> })),
        ...[...points.values()].map((p) => ({ name: p.name, keys: p.keys })),
      ].map((p) => {
        const { name: _n, ...keys } = p.keys;
        return { name: p.name, keys, unit: unitOf(p.name) };
      });
      const raw =
        connection.type === 'modbus-tcp'
          ? { type: 'modbus-tcp', host: connection.host, port: connection.port }
          : { type: 'modbus-rtu', path: connection.path, baud_rate: connection.baud };
      const r = await scanModbus(raw, unit ?? 1, toRead, log);
      if (r.reached && (r.answered > 0 || toRead.length === 0)) {
        for (const [name, text] of r.reads) {
          const p = points.get(name);
          if (p) p.read = text;
          else reads.set(name, text);
        }
        // A unit that refuses the addresses answers, but gives no value: said, not counted as read.
        const n = toRead.length;
        const hint = profile ? "is the profile this controller's?" : 'are the addresses right?';
        const got =
          r.valued === n
            ? `${n} of ${n} points gave a value`
            : r.valued === 0
              ? `no point gave a value (${n} refused or failed: see each point in the file; ${hint})`
              : `${r.valued} of ${n} points gave a value (${n - r.valued} refused or failed: see each point in the file)`;
        scanLine = `Read from unit ${unit ?? 1} on ${new Date().toISOString()}: ${got}.`;
        showScan = r.valued < n;
      } else {
        const why = r.reached
          ? `unit ${unit ?? 1} did not answer (${[...r.reads.values()][0] ?? 'no point to read'}): is the unit id right?`
          : r.why;
        if (!(await goOn(why, io, prompter))) return EXIT.failure;
        scanLine = `Not read: ${why}.`;
      }
    }
  }

  const mapped = new Set([...profilePoints.map((p) => p.name), ...points.keys()]);
  if (mapped.size === 0) {
    io.err(
      `gateway init: no point of template ${template.template} has an address (${o.profile === 'none' ? 'no device profile: --profile none' : `no device profile fits ${connection.type}`}${browsed !== undefined ? `, and the browse matched none by name among the ${browsed} variables it read` : ''}); give at least one with --point NAME=WHERE\n`,
    );
    return EXIT.invalid;
  }
  const plan: SitePlan = {
    gatewayId,
    site,
    template,
    profile,
    connection,
    unit,
    equipmentId,
    // A profile point the browse found elsewhere is the entry's own now.
    profilePoints: profilePoints
      .filter((p) => !points.has(p.name))
      .map((p) => ({ name: p.name, where: whereOf(p), read: reads.get(p.name) })),
    // In the template's order, then the points the template does not have.
    points: [...points.values()].sort((a, b) => rank(template, a.name) - rank(template, b.name)),
    missing: template.points.map((t) => t.name).filter((n) => !mapped.has(n)),
    scan: scanLine,
  };
  const text = siteFileText(plan);

  // The file must pass `gateway check`: a file that does not is this command's mistake, never written.
  const { parseSite } = await import('../../config/load.js');
  const { ConfigError } = await import('../../config/errors.js');
  try {
    parseSite(text, { file: o.out, env: {} });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) io.err(`${p.path}: ${p.message}${p.line ? ` (line ${p.line})` : ''}\n`);
    io.err(`gateway init: the file made from these answers does not pass the checks above; nothing written\n`);
    return EXIT.failure;
  }
  const failed = writeSiteFile(o.out, text, o.force === true);
  if (failed) {
    io.err(`${o.out}: ${failed}\n`);
    return EXIT.failure;
  }
  const where =
    connection.type === 'modbus-tcp'
      ? `${connection.host}:${connection.port}`
      : connection.type === 'modbus-rtu'
        ? connection.path
        : connection.endpoint;
  const todo = plan.missing.length;
  io.out(
    `Wrote ${o.out}: ${template.template} ${equipmentId} on ${connection.type} ${where}${profile ? ` with profile ${profile.profile}` : ''}; ${mapped.size} of ${template.points.length} template points mapped${todo ? `, ${todo} to fill in (TODO in the file)` : ''}.\n${showScan ? `${scanLine}\n` : ''}${ambiguous ? `${ambiguous === 1 ? '1 point' : `${ambiguous} points`} matched a name found more than once: check ${ambiguous === 1 ? 'it is' : 'they are'} this equipment's (TODO check in the file).\n` : ''}Next:\n  gateway check ${o.out}\n  gateway run ${o.out}\n`,
  );
  return EXIT.ok;
}

/**
 * Writes the file whole or not at all: the text goes to a new file beside it, which then takes the
 * name (a full disk, a file-size limit or a kill leaves the old file, never half a file). With
 * --force the old file's mode is kept and a symbolic link stays one (the file it points to is
 * replaced); without, a file that appeared meanwhile is not overwritten. Why it failed, or undefined.
 */
function writeSiteFile(out: string, text: string, force: boolean): string | undefined {
  let target = out;
  let mode: number | undefined;
  if (force && existsSync(out)) {
    target = realpathSync(out);
    mode = statSync(target).mode & 0o7777;
  }
  const temporary = join(dirname(target), `.${basename(target)}.init-${process.pid}`);
  try {
    writeFileSync(temporary, text, { mode: 0o644, flag: 'wx', flush: true });
    // The replaced file's mode exactly (the command's umask is 077); a new file gets 0644 less the umask.
    if (mode !== undefined) chmodSync(temporary, mode);
    if (force) renameSync(temporary, target);
    else linkNew(temporary, target);
    return undefined;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return e.code === 'EEXIST' && !force
      ? 'exists; gateway init does not overwrite it without --force'
      : `cannot be written (${e.message.replace(/, \w+ '.*'$/, '')}); nothing written`;
  } finally {
    rmSync(temporary, { force: true });
  }
}

/** The new file under its name unless that name is taken; a file system without hard links (FAT) checks, then renames. */
function linkNew(temporary: string, target: string): void {
  try {
    linkSync(temporary, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    if (existsSync(target)) throw Object.assign(new Error('exists'), { code: 'EEXIST' });
    renameSync(temporary, target);
  }
}

function rank(t: Template, name: string): number {
  const i = t.points.findIndex((p) => p.name === name);
  return i < 0 ? t.points.length : i;
}

/** A device that cannot be read: said in one line; on a terminal the user may have the file anyway. */
async function goOn(why: string, io: CliIo, prompter: Prompter | undefined): Promise<boolean> {
  io.err(`${why.charAt(0).toUpperCase()}${why.slice(1)}\n`);
  if (!prompter) {
    io.err('gateway init: nothing written; --no-scan writes the file without reading the device\n');
    return false;
  }
  const answer = await prompter.ask({ text: 'Write the file with placeholders for the values anyway?', choices: ['y', 'n'], default: 'y' });
  return answer === 'y';
}
