// The site file `gateway init` writes: a text made line by line, so that each section carries the
// comment that explains it and each point the value read from the device (a YAML library keeps
// comments only where its model allows them). Every value written goes through `scalar`, and the
// whole text is checked by the site loader before it is written.
import type { Profile } from '../../config/profiles.js';
import { SITE_FILE_VERSION } from '../../config/site-version.js';
import type { Template } from '../../config/templates.js';

export type InitConnection =
  | { type: 'modbus-tcp'; host: string; port: number }
  | { type: 'modbus-rtu'; path: string; baud: number }
  | { type: 'opcua'; endpoint: string; securityMode: 'None' | 'Sign' | 'SignAndEncrypt' };

/** A point the entry lists itself (given with --point, or found by the browse). */
export interface WrittenPoint {
  name: string;
  /** The driver's keys besides the name: address and type, or node. */
  keys: Record<string, string | number>;
  /** What the scan read (`1.25 MPa`), or why it read nothing. */
  read?: string | undefined;
}

export interface SitePlan {
  gatewayId: string;
  site: string;
  template: Template;
  profile?: Profile | undefined;
  connection: InitConnection;
  unit?: number | undefined;
  equipmentId: string;
  /** What the profile gives, each with where it is and what was read. */
  profilePoints: Array<{ name: string; where: string; read?: string | undefined }>;
  points: WrittenPoint[];
  /** The template's points nobody knows the address of. */
  missing: string[];
  /** One line on what the scan did, for the equipment's comment. */
  scan: string;
}

/** A YAML scalar: plain where that reads back as the same string, double-quoted (JSON) otherwise. */
export function scalar(v: string | number | boolean): string {
  if (typeof v !== 'string') return String(v);
  const plain =
    /^[A-Za-z_/.](?:[A-Za-z0-9_./ -]*[A-Za-z0-9_./-])?$/.test(v) &&
    !/^(true|false|yes|no|on|off|null|y|n|\.inf|\.nan)$/i.test(v) &&
    !/^[-+]?(\.\d|\d)/.test(v);
  // JSON's double quotes are YAML's too; what JSON leaves as it is (bidi controls, U+2028) is escaped as well.
  return plain ? v : JSON.stringify(v).replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Text from a device (a string value, a browse name), safe in a one-line comment: control and bidi
 * characters as \uXXXX, at most `max` characters.
 */
export function commentText(text: string, max = 60): string {
  const safe = text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return safe.length > max ? `${safe.slice(0, max)}...` : safe;
}

// eslint-disable-next-line no-control-regex -- the control characters are what is replaced
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/** A value read from a device, as a comment shows it: numbers to 6 significant digits. */
export function describeValue(value: unknown, unit?: string): string {
  if (value === null || value === undefined) return 'no value';
  const text =
    typeof value === 'number'
      ? Number.isInteger(value)
        ? String(value)
        : String(Number(value.toPrecision(6)))
      : typeof value === 'string'
        ? JSON.stringify(commentText(value))
        : commentText(typeof value === 'object' ? JSON.stringify(value) : String(value as boolean));
  return unit && typeof value === 'number' ? `${text} ${unit}` : text;
}

/** The points a rule of a template reads: the names in its `when`, and every `point:` of its parts. */
export function pointsOfRule(rule: unknown, pointNames: ReadonlySet<string>): Set<string> {
  const out = new Set<string>();
  const walk = (v: unknown, key: string): void => {
    if (typeof v === 'string') {
      if (key === 'point' && pointNames.has(v)) out.add(v);
      if (key === 'when') for (const name of v.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []) if (pointNames.has(name)) out.add(name);
    } else if (Array.isArray(v)) v.forEach((x) => walk(x, key));
    else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  walk(rule, '');
  return out;
}

/** The template's rules that read a point the entry does not have: the entry's `disabled_rules`. */
export function rulesWithoutPoints(template: Template, present: ReadonlySet<string>): Array<{ id: string; needs: string[] }> {
  const names = new Set(template.points.map((p) => p.name));
  return template.rules.flatMap((r) => {
    const needs = [...pointsOfRule(r, names)].filter((p) => !present.has(p));
    return needs.length > 0 ? [{ id: r.id, needs }] : [];
  });
}

const CONNECTION_ID = { 'modbus-tcp': 'plc', 'modbus-rtu': 'plc', opcua: 'controller' } as const;

function connectionLines(c: InitConnection): string[] {
  const id = CONNECTION_ID[c.type];
  switch (c.type) {
    case 'modbus-tcp':
      return [
        '# How the gateway reaches the device. Modbus TCP: the controller (or its serial gateway) at host:port;',
        '# timeout is how long it waits for an answer.',
        'connections:',
        `  - id: ${id}`,
        '    type: modbus-tcp',
        `    host: ${scalar(c.host)}`,
        `    port: ${c.port}`,
        '    timeout: 1s',
      ];
    case 'modbus-rtu':
      return [
        '# How the gateway reaches the device. Modbus RTU on a serial line (RS-485): the line and its',
        '# settings must be those of the controller (see its manual: often 9600 8N1).',
        'connections:',
        `  - id: ${id}`,
        '    type: modbus-rtu',
        `    path: ${scalar(c.path)}`,
        `    baud_rate: ${c.baud}`,
        '    parity: none',
        '    timeout: 1s',
      ];
    case 'opcua':
      return [
        '# How the gateway reaches the device: an OPC UA server.',
        ...(c.securityMode === 'None'
          ? ['# security_mode None sends everything in clear: use Sign or SignAndEncrypt where the server offers them.']
          : [
              "# With Sign or SignAndEncrypt the server's certificate must be trusted once:",
              '# `gateway certs list -c FILE`, then `gateway certs trust <thumbprint> -c FILE`.',
            ]),
        'connections:',
        `  - id: ${id}`,
        '    type: opcua',
        `    endpoint: ${scalar(c.endpoint)}`,
        `    security_mode: ${c.securityMode}`,
      ];
  }
}

function where(keys: Record<string, string | number>): string {
  return Object.entries(keys)
    .map(([k, v]) => `${k}: ${scalar(v)}`)
    .join(', ');
}

function todoFor(name: string, template: Template, c: InitConnection): string {
  const p = template.points.find((t) => t.name === name);
  const what = `${p?.description ?? name}${p?.unit ? ` (${p.unit})` : ''}`;
  return c.type === 'opcua'
    ? `#   - { name: ${name}, node: TODO }   # TODO ${what}: its NodeId (gateway browse ENDPOINT lists them)`
    : `#   - { name: ${name}, address: TODO, type: TODO }   # TODO ${what}: its address (hr:N, ir:N, co:N, di:N, hr:N.bit) and type, from the controller's manual (gateway scan modbus shows the registers)`;
}

/** The site file's text. */
export function siteFileText(plan: SitePlan, now = new Date()): string {
  const t = plan.template;
  const c = plan.connection;
  const present = new Set([...plan.profilePoints.map((p) => p.name), ...plan.points.map((p) => p.name)]);
  const disabled = rulesWithoutPoints(t, present);
  const lines: string[] = [
    `# Site file written by \`gateway init\` on ${now.toISOString().slice(0, 10)}: one ${t.name.toLowerCase()} (template ${t.template}).`,
    '# Check it with `gateway check FILE` and run it with `gateway run FILE`. Every key is described in',
    '# docs/configuration.md; docs/getting-started.md says what to do next.',
    `version: ${SITE_FILE_VERSION}`,
    '',
    '# This gateway: its id, and the site id that is the second level of every MQTT topic',
    '# (gw/<site>/<equipment>/...). The data folder keeps what must survive a restart (the store, the',
    '# outgoing queues, certificates, the audit journal); a relative path is from the working directory.',
    'gateway:',
    `  id: ${scalar(plan.gatewayId)}`,
    `  site: ${scalar(plan.site)}`,
    '  data_dir: ./.data',
    '',
    '# Readings and alarms are published on MQTT. The gateway runs its own broker here, on this machine',
    "# only; to publish to the site's broker instead, set broker: external with its host and port.",
    'mqtt:',
    '  broker: embedded',
    '  host: 127.0.0.1',
    '  port: 1883',
    '',
    ...connectionLines(c),
    '',
    `# The equipment. Its template (config/templates/${t.template}.yaml) gives the points' units, the`,
    '# limits and the alarm rules; set the limits to the nameplate and the inspection report.',
    `# ${commentText(plan.scan, 200)}`,
    'equipment:',
    `  - id: ${scalar(plan.equipmentId)}`,
    `    name: ${scalar(t.name)}`,
    `    template: ${t.template}`,
    `    connection: ${CONNECTION_ID[c.type]}`,
  ];
  if (c.type !== 'opcua') lines.push(`    unit_id: ${plan.unit ?? 1}`);
  lines.push('    poll_interval: 1s');
  const limits = Object.entries(t.limits);
  if (limits.length > 0) {
    lines.push("    # The template's limits, with its defaults: change them to this equipment's figures.", '    limits:');
    for (const [k, v] of limits) lines.push(`      ${k}: ${scalar(v)}`);
  }
  if (plan.profile) {
    lines.push(
      `    # Where the controller keeps the points: the device profile ${plan.profile.file} (${commentText(`${plan.profile.vendor} ${plan.profile.model}`)}).`,
      '    # A points: entry of the same name changes a point; one of another name adds it.',
      `    profile: ${plan.profile.profile}`,
    );
    for (const p of plan.profilePoints)
      lines.push(`    #   ${p.name} at ${commentText(p.where, 80)}${p.read ? `: ${commentText(p.read, 120)}` : ''}`);
  }
  if (disabled.length > 0) {
    lines.push('    # Rules of the template that read a point this entry does not have yet; remove them from here once it has.');
    lines.push('    disabled_rules:');
    for (const d of disabled) lines.push(`      - ${d.id}   # needs ${d.needs.join(', ')}`);
  }
  if (plan.points.length > 0 || plan.missing.length > 0) {
    lines.push(plan.points.length > 0 ? '    points:' : '    # points:');
    for (const p of plan.points)
      lines.push(`      - { name: ${p.name}, ${where(p.keys)} }${p.read ? `   # ${commentText(p.read, 240)}` : ''}`);
    for (const name of plan.missing) lines.push(`    ${todoFor(name, t, c)}`);
  }
  lines.push('');
  return lines.join('\n');
}
