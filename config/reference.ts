// The JSON Schema (config/site.schema.json) and the configuration reference (docs/configuration.md),
// both generated from config/schema.ts by `npm run generate`; a test fails when either is stale.
import { z } from 'zod';
import { DRIVERS } from '../drivers/index.js';
import { documentSchema, EQUIPMENT_BASE_KEYS } from './schema.js';

type Json = Record<string, unknown> & {
  type?: string | string[];
  properties?: Record<string, Json>;
  required?: string[];
  items?: Json;
  anyOf?: Json[];
  description?: string;
  title?: string;
  default?: unknown;
  examples?: unknown[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  pattern?: string;
};

/** JSON Schema of a zod schema as users write it (input side). */
function toJson(schema: z.ZodType): Json {
  return renameExamples(z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12' })) as Json;
}

// zod leaves out `examples` of values it transforms (durations): the schemas spell them `x-examples`.
function renameExamples(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(renameExamples);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k === 'x-examples' ? 'examples' : k, renameExamples(v)]));
}

export function siteJsonSchema(): Json {
  return { ...toJson(documentSchema()), $id: 'site.schema.json' };
}

export function siteJsonSchemaText(): string {
  return `${JSON.stringify(siteJsonSchema(), null, 2)}\n`;
}

interface Row {
  key: string;
  type: string;
  required: boolean;
  default: string;
  description: string;
  examples: string;
}

function typeOf(s: Json): string {
  if (s.format === 'duration') return 'duration';
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((v) => String(v)).join(' | ');
  if (s.anyOf) return [...new Set(s.anyOf.map(typeOf))].join(' or ');
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'any'}`;
  if (s.type === 'object') return 'mapping';
  return Array.isArray(s.type) ? s.type.join(' or ') : (s.type ?? 'any');
}

const cell = (v: string) => v.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (v: unknown) => (v === undefined ? '' : `\`${typeof v === 'string' ? v : JSON.stringify(v)}\``);

/** Rows for every key below an object schema, nested mappings flattened with dots. */
function rows(schema: Json, prefix: string, out: Row[]): Row[] {
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    const isObject = prop.type === 'object' && prop.properties;
    out.push({
      key: path,
      type: typeOf(prop),
      required: (schema.required ?? []).includes(key),
      default: isObject ? '' : code(prop.default),
      description: prop.description ?? '',
      examples: (prop.examples ?? []).map(code).join(', '),
    });
    if (isObject) rows(prop, path, out);
  }
  return out;
}

function table(list: Row[]): string {
  const lines = ['| key | type | required | default | description | examples |', '| --- | --- | --- | --- | --- | --- |'];
  for (const r of list)
    lines.push(
      `| \`${r.key}\` | ${cell(r.type)} | ${r.required ? 'yes' : ''} | ${cell(r.default)} | ${cell(r.description)} | ${cell(r.examples)} |`,
    );
  return lines.join('\n');
}

/** Every key of the schema, for the test that wants a description on each. */
export function allRows(): Row[] {
  const doc = siteJsonSchema();
  const out = rows(doc, '', []);
  for (const d of DRIVERS) {
    rows(toJson(d.connectionSchema), `connections[] (${d.type})`, out);
    rows(toJson(d.equipmentSchema), `equipment[] (${d.type})`, out);
    rows(toJson(d.pointSchema), `points[] (${d.type})`, out);
  }
  return out;
}

export function referenceMarkdown(): string {
  const doc = siteJsonSchema();
  const props = doc.properties ?? {};
  const equipmentItem = (props.equipment?.items?.anyOf?.[0] ?? props.equipment?.items) as Json;
  const baseKeys = EQUIPMENT_BASE_KEYS;
  const baseEquipment: Json = {
    properties: Object.fromEntries(baseKeys.map((k) => [k, equipmentItem.properties![k]!])),
    required: (equipmentItem.required ?? []).filter((k) => baseKeys.includes(k)),
  };
  const parts = [
    '# Site file reference',
    '',
    '<!-- Generated from config/schema.ts by `npm run generate`; do not edit by hand. -->',
    '',
    'One YAML file describes one site. Check it with `gateway check FILE`: every problem is reported at once as',
    '`path: message (line N)` and the exit code is 2. The machine-readable JSON Schema is `config/site.schema.json`',
    '(editors with YAML language support validate and complete against it).',
    '',
    '- `${NAME}` is replaced by the environment variable NAME (an error when it is not set); `${NAME:-default}` uses',
    '  the default when NAME is unset or empty, `${NAME-default}` only when unset; `$$` is a literal `$`. A value',
    '  written without quotes that becomes a number or true/false takes that type; quote it to keep text.',
    '- Durations are strings: `500ms`, `5s`, `2m`, `1h`.',
    '- Keys are snake_case. Unknown keys are errors, so a typo is never silently ignored.',
    '',
    '## Top level',
    '',
    table(rows({ properties: { version: props.version! }, required: ['version'] }, '', [])),
    '',
    '## gateway',
    '',
    props.gateway?.description ?? '',
    '',
    table(rows(props.gateway!, 'gateway', [])),
    '',
    '## mqtt',
    '',
    props.mqtt?.description ?? '',
    '',
    table(rows(props.mqtt!, 'mqtt', [])),
    '',
    '## influx',
    '',
    props.influx?.description ?? '',
    'Two forms, chosen by `api`:',
    '',
    ...((props.influx?.oneOf ?? props.influx?.anyOf ?? []) as Json[]).flatMap((variant) => [
      `### ${variant.title ?? 'influx'}`,
      '',
      table(rows(variant, 'influx', [])),
      '',
    ]),
    '## platform',
    '',
    props.platform?.description ?? '',
    'The request and answer contract is in [platform-contract.md](platform-contract.md).',
    '',
    table(rows(props.platform!, 'platform', [])),
    '',
    '## http',
    '',
    props.http?.description ?? '',
    'Tokens are stored as SHA-256 hashes: `gateway token new --name N --role R` makes one and prints the line to add.',
    '',
    table(rows(props.http!, 'http', [])),
    '',
    '## simulators',
    '',
    props.simulators?.description ?? '',
    '',
    ...((props.simulators?.items?.oneOf ?? props.simulators?.items?.anyOf ?? []) as Json[]).flatMap((variant) => [
      `### ${variant.title ?? 'simulator'}`,
      '',
      table(rows(variant, 'simulators[]', [])),
      '',
    ]),
    '## connections',
    '',
    props.connections?.description ?? '',
    'Every entry has an `id` and a `type`; the other keys depend on the type.',
    '',
    '## equipment',
    '',
    props.equipment?.description ?? '',
    'Every entry has the keys below; the others, `points` included, depend on the type of its connection.',
    '',
    table(rows(baseEquipment, 'equipment[]', [])),
    '',
    '## rules',
    '',
    props.rules?.description ?? '',
    'Each rule has exactly one of `when`, `limits`, `rate`, `stale`, `codes`; each applies to every equipment its',
    '`equipment` selects, and each (rule, equipment) pair is an alarm of its own, `<equipment>/<rule id>`. Expressions',
    "name the equipment's points and limits; `gateway check` reports an unknown name or a syntax error with its column.",
    'A point without a good reading makes its rules uncertain: they neither raise nor clear on it.',
    '',
    table(rows((props.rules?.items ?? {}) as Json, 'rules[]', [])),
    '',
    '## alarms',
    '',
    props.alarms?.description ?? '',
    '',
    table(rows(props.alarms!, 'alarms', [])),
    '',
    '## risk',
    '',
    props.risk?.description ?? '',
    'Every factor, the matrix and worked examples are in [risk.md](risk.md).',
    '',
    table(rows(props.risk!, 'risk', [])),
    '',
    '## report',
    '',
    props.report?.description ?? '',
    '',
    table(rows(props.report!, 'report', [])),
    '',
    '## lab',
    '',
    props.lab?.description ?? '',
    'The lab-results path, the daily summary and what the platform receives are in [labs.md](labs.md).',
    '',
    table(rows(props.lab!, 'lab', [])),
    '',
    '## sparkplug',
    '',
    props.sparkplug?.description ?? '',
    'Topics, metrics, store and forward and the primary host are in [sparkplug.md](sparkplug.md).',
    '',
    table(rows(props.sparkplug!, 'sparkplug', [])),
    '',
  ];
  for (const d of DRIVERS) {
    parts.push(
      `## Connection type \`${d.type}\``,
      '',
      d.summary,
      '',
      '### Connection',
      '',
      table(rows(toJson(d.connectionSchema), 'connections[]', [])),
      '',
      '### Equipment keys',
      '',
      table(rows(toJson(d.equipmentSchema), 'equipment[]', [])),
      '',
      '### Points',
      '',
      table(rows(toJson(d.pointSchema), 'points[]', [])),
      '',
    );
  }
  return `${parts
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}
