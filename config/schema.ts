// The site file's schema: the single source of truth for validation, defaults, TypeScript types,
// the exported JSON Schema (config/site.schema.json) and the reference (docs/configuration.md).
// Connection and equipment entries are validated in two steps: the keys every entry has, here,
// then the driver's own keys by the driver that the entry's connection names (drivers/*/schema.ts).
import { z } from 'zod';
import { DRIVER_SIMULATORS, DRIVERS } from '../drivers/index.js';
import type { ConnectionConfig, EquipmentConfig } from '../drivers/types.js';
import { duration, identifier, port, reconnect, size } from '../drivers/common/primitives.js';
import { rulesSection, type RuleConfig } from './rules-schema.js';
import { httpSection, type HttpSection } from './http-schema.js';
import { labSection, type LabSection } from './lab-daily-schema.js';
import { isValidTopicFilter } from '../gateway/mqtt/acl.js';
import { MQTT_ROLES, MQTT_USER_NAME, PASSWORD_HASH } from '../gateway/mqtt/users.js';
import { platformInboxSimulatorSchema, platformSection, type PlatformSection } from './platform-schema.js';
import { qcSchema, type QcConfig } from './lab-schema.js';
import { SITE_FILE_VERSION } from './site-version.js';
import { sparkplugSection, type SparkplugSection } from './sparkplug-schema.js';
import {
  certificateSchema,
  consequence,
  inspectionSchema,
  maintenanceSchema,
  reportSection,
  riskSection,
  timeZone,
  type AdministrativeDates,
  type FactorOverrides,
  type ReportSection,
  type RiskSection,
} from './risk-schema.js';

/** Special-equipment categories (TSG 08 catalogue, by the first character of the code) plus lab and other. */
export const CATEGORY_BY_CODE = {
  '1': 'boiler',
  '2': 'pressure_vessel',
  '3': 'elevator',
  '4': 'crane',
  '5': 'vehicle',
  '6': 'amusement_ride',
  '7': 'pressure_piping_component',
  '8': 'pressure_piping',
  '9': 'ropeway',
  F: 'safety_accessory',
} as const;

export const CATEGORIES = [...Object.values(CATEGORY_BY_CODE), 'lab_analyzer', 'other'] as const;
export type Category = (typeof CATEGORIES)[number];

/** Equipment code (18 characters) or older registration code (20 digits); the category is in the first character. */
export const EQUIPMENT_CODE = /^(?:[0-9A-Z]{4}\d{14}|\d{20})$/;

export function categoryFromCode(code: string): Category | undefined {
  return CATEGORY_BY_CODE[code.charAt(0) as keyof typeof CATEGORY_BY_CODE];
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

const gatewaySection = z
  .strictObject({
    id: identifier.meta({ description: 'Id of this gateway, unique across the platform.', examples: ['gw-sh-001'] }),
    site: identifier.meta({
      description: 'Site id; the second level of every MQTT topic and a tag in InfluxDB.',
      examples: ['shanghai-plant-3'],
    }),
    data_dir: z
      .string()
      .min(1)
      .default('./.data')
      .meta({
        description:
          'Folder for state that must survive a restart (spool, outbox, certificates). Relative paths are relative to the working directory.',
        examples: ['./.data', '/var/lib/gateway'],
      }),
    log_level: z
      .enum(LOG_LEVELS)
      .default('info')
      .meta({ description: 'Least severe log level written.', examples: ['info', 'debug'] }),
    memory_budget: size
      .refine((n) => n >= 32 * 1024 ** 2, { error: 'expected at least 32MiB' })
      .prefault('256MiB')
      .meta({
        description:
          'Memory (resident set) the gateway is meant to stay under on this box. /metrics shows it beside the use; the log warns when the process passes memory_warn_at of it.',
        'x-examples': ['256MiB', '1GiB'],
      }),
    memory_warn_at: z
      .number()
      .min(0.1)
      .max(1)
      .default(0.8)
      .meta({
        description: 'Share of memory_budget at which the log warns (and warns again every 10 minutes while above).',
        examples: [0.8],
      }),
    timezone: timeZone,
  })
  .meta({ description: 'Who this gateway is and where it keeps its state.' });

/** MQTT's own bound: a remaining length of at most 268,435,455 bytes. */
const MQTT_MAX_PACKET = 256 * 1024 * 1024;

const BROKER_URL = /^(mqtts?|wss?|tcp|ssl):\/\/[^\s]+$/;

const topicFilter = z
  .string()
  .refine(isValidTopicFilter, { error: 'expected an MQTT topic filter: "+" and "#" fill a whole level, "#" only as the last one' })
  .meta({ examples: ['lims/orders/#', 'site/+/alerts'] });

const mqttUser = z
  .strictObject({
    name: z
      .string()
      .regex(MQTT_USER_NAME, {
        error: 'expected a user name of at most 64 letters, digits, "-", "_", "." or "@", starting with a letter or digit',
      })
      .meta({ description: 'What the client sends as its user name, or the CN of its client certificate.', examples: ['historian'] }),
    role: z
      .enum(MQTT_ROLES)
      .meta({ description: 'What it may do: reader, lab, writer, or custom (its own filters).', examples: ['reader'] }),
    hash: z
      .string()
      .regex(PASSWORD_HASH, {
        error: 'expected sha256:<64 hex digits>: the hash `gateway mqtt user new` prints, never the password itself',
      })
      .optional()
      .meta({
        description:
          'SHA-256 of the password, as `gateway mqtt user new` prints it. Leave out for a user that logs in by client certificate only.',
        examples: ['sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'],
      }),
    subscribe: z
      .array(topicFilter)
      .optional()
      .meta({ description: 'custom only: topic filters it may subscribe to.', examples: [['lims/#']] }),
    publish: z
      .array(topicFilter)
      .optional()
      .meta({
        description:
          'custom only: topic filters it may publish to. Never reaches under `<topic_prefix>/<site>/` or `$SYS`, whatever the filter.',
        examples: [['lims/orders/#']],
      }),
  })
  .refine((u) => u.role === 'custom' || (u.subscribe === undefined && u.publish === undefined), {
    error: 'only a custom user has subscribe and publish lists (a role has its own)',
    path: ['role'],
  });

const mqttTls = z
  .strictObject({
    port: port.meta({ description: 'Port of the TLS listener.', examples: [8883] }),
    cert: z
      .string()
      .min(1)
      .meta({ description: 'PEM certificate of the broker.', examples: ['/etc/gateway/broker.pem'] }),
    key: z
      .string()
      .min(1)
      .meta({ description: 'PEM private key that goes with cert.', examples: ['/etc/gateway/broker.key'] }),
    ca: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'PEM file of the CA whose client certificates are accepted.', examples: ['/etc/gateway/clients-ca.pem'] }),
    client_certificates: z
      .enum(['off', 'optional', 'required'])
      .default('off')
      .meta({
        description:
          '`off`: clients log in with a user name and password. `optional`: a client may present a certificate signed by `ca` instead; its subject CN names the mqtt.users entry it logs in as (a certificate that does not verify, or names no user, is refused). `required`: every client of this listener presents one.',
        examples: ['optional'],
      }),
  })
  .refine((t) => t.client_certificates === 'off' || t.ca !== undefined, {
    error: 'client certificates need a ca to verify them',
    path: ['client_certificates'],
  });

const mqttSection = z
  .strictObject({
    broker: z
      .union([
        z.literal('embedded'),
        z.string().regex(BROKER_URL, { error: 'expected "embedded" or a broker URL such as mqtt://host:1883 or mqtts://host:8883' }),
      ])
      .default('embedded')
      .meta({
        description:
          'Where telemetry goes: `embedded` runs an MQTT broker inside the gateway; a URL connects to an external broker (Mosquitto, EMQX...).',
        examples: ['embedded', 'mqtt://10.0.0.2:1883', 'mqtts://broker.example.org:8883'],
      }),
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .meta({
        description:
          'Address the embedded broker listens on. Anything but loopback exposes it to the network: only mqtt.users (and the gateway) get in from elsewhere then.',
        examples: ['127.0.0.1', '0.0.0.0'],
      }),
    port: port.default(1883).meta({ description: 'Port the embedded broker listens on.', examples: [1883] }),
    topic_prefix: z
      .string()
      .regex(/^[^#+/\s][^#+\s]*[^#+/\s]$|^[^#+/\s]$/, {
        error: 'expected topic levels without wildcards, spaces or a leading/trailing "/"',
      })
      .default('gw')
      .meta({ description: 'First topic level of everything the gateway publishes.', examples: ['gw', 'factory/gw'] }),
    username: z
      .string()
      .optional()
      .meta({
        description:
          "External broker: the user name the gateway logs in with. Embedded broker: one more user, kept for older site files, who may subscribe to everything but `$SYS` and publish outside `<topic_prefix>/<site>/`; prefer mqtt.users (the gateway's own clients log in with a secret of their own).",
        examples: ['gateway'],
      }),
    password: z
      .string()
      .optional()
      .meta({
        description: 'Password that goes with username. Use ${ENV_VAR} rather than writing it in the file.',
        examples: ['${MQTT_PASSWORD}'],
      }),
    client_id: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'MQTT client id of the gateway; defaults to `<gateway.id>`.', examples: ['gw-sh-001'] }),
    keepalive: duration.prefault('30s').meta({
      description: "MQTT keepalive; the broker publishes the gateway's Last Will (offline) after 1.5 times this without traffic.",
      'x-examples': ['30s'],
    }),
    ca: z
      .string()
      .optional()
      .meta({
        description: "PEM file of the CA that signed an external broker's certificate (mqtts://).",
        examples: ['/etc/gateway/ca.pem'],
      }),
    cert: z
      .string()
      .optional()
      .meta({ description: 'PEM client certificate for brokers that require mutual TLS.', examples: ['/etc/gateway/client.pem'] }),
    key: z
      .string()
      .optional()
      .meta({ description: 'PEM private key that goes with cert.', examples: ['/etc/gateway/client.key'] }),
    reject_unauthorized: z
      .boolean()
      .default(true)
      .meta({ description: 'Refuse a broker certificate that does not verify. Turn off only for a test bench.' }),
    max_pending: z
      .int()
      .min(100)
      .default(10_000)
      .meta({
        description:
          "Telemetry messages sent and awaiting the broker's acknowledgement, at most. Embedded broker: beyond it new telemetry is dropped, counted and logged. External broker: beyond it messages wait in the outgoing queue on disk. Alarms and status are never dropped.",
        examples: [10000],
      }),
    max_queue_size: size.prefault('1GiB').meta({
      description:
        'External broker only: disk space of the outgoing queue (`mqtt-queue.db` in the data folder), where telemetry the broker has not acknowledged waits, across outages and restarts. When full, the oldest messages are dropped, counted and logged.',
      'x-examples': ['1GiB', '200MiB'],
    }),
    max_packet_size: size
      .refine((n) => n >= 1024 && n <= MQTT_MAX_PACKET, { error: `expected a size from 1KiB to 256MiB (MQTT's own limit)` })
      .prefault('1MiB')
      .meta({
        description:
          "Largest MQTT packet the gateway takes: the embedded broker closes the connection of a client that sends a bigger one, and the gateway's own clients (telemetry, InfluxDB writer, platform uplink) close theirs to a broker that does; either is refused as soon as the packet's header announces its size, before it is buffered. The gateway does not publish telemetry or alarm lists bigger than this (counted and logged). The default leaves room for an equipment with several long OPC UA strings (max_value_size, 64 KiB) and for the active alarm list of a flood (about 2,500 alarms).",
        'x-examples': ['1MiB', '256KiB'],
      }),
    max_connections: z
      .int()
      .min(1)
      .max(100_000)
      .default(100)
      .meta({
        description:
          'Embedded broker only: client connections it accepts at once; beyond that a new connection is closed at once. With max_packet_size this bounds what clients can make the broker buffer.',
        examples: [100],
      }),
    users: z
      .array(mqttUser)
      .default([])
      .superRefine((users, ctx) => {
        const seen = new Set<string>();
        users.forEach((u, i) => {
          if (seen.has(u.name)) ctx.addIssue({ code: 'custom', message: `user "${u.name}" is listed twice`, path: [i, 'name'] });
          seen.add(u.name);
        });
      })
      .meta({
        description:
          "Embedded broker only: who may connect, each with a role. `reader` subscribes to the site's telemetry, status and alarms; `lab` to its lab results; `writer` to what `gateway influx-writer` reads (telemetry and alarms, shared subscriptions included); `custom` to exactly its `subscribe` filters and publishes to its `publish` filters. Nobody but the gateway itself publishes under `<topic_prefix>/<site>/`, subscribes to `$SYS` or uses the gateway's client ids. `gateway mqtt user new --name N --role R` prints a password and the lines to add here.",
      }),
    anonymous: z
      .enum(['off', 'loopback'])
      .optional()
      .meta({
        description:
          "Embedded broker only: clients without credentials. `loopback` lets them in from this machine only, read-only: they subscribe to the site's topics (telemetry, status, alarms, lab results), never to `$SYS`, and publish nothing; `off` refuses them. Default: `loopback`, or `off` when mqtt.password is set (it used to be required of every client).",
        examples: ['loopback', 'off'],
      }),
    tls: mqttTls.optional().meta({
      description:
        'Embedded broker only: a second listener, MQTT over TLS, on mqtt.host. With a `ca`, clients may authenticate by certificate.',
    }),
    max_retained_size: size
      .refine((n) => n >= 1 && n <= MQTT_MAX_PACKET, { error: 'expected a size up to 256MiB' })
      .prefault('64KiB')
      .meta({
        description:
          'Embedded broker only: largest retained message a client other than the gateway may publish; a bigger one is refused (counted, and the client disconnected).',
        'x-examples': ['64KiB'],
      }),
    max_retained: z
      .int()
      .min(0)
      .max(1_000_000)
      .default(100)
      .meta({
        description:
          'Embedded broker only: topics with a retained message from clients other than the gateway, at most; a retained publish to one more topic is refused (counted, and the client disconnected). With max_retained_size this bounds what clients can make the broker keep.',
        examples: [100],
      }),
    max_publish_rate: z
      .int()
      .min(1)
      .max(1_000_000)
      .default(100)
      .meta({
        description:
          "Embedded broker only: messages a second one client other than the gateway may publish (a burst of one second's worth is allowed). Beyond it messages are dropped and counted; a client that has more dropped within 10 s than it may send in 10 s is disconnected.",
        examples: [100],
      }),
    reconnect,
  })
  .refine((m) => (m.cert === undefined) === (m.key === undefined), { error: 'cert and key go together', path: ['cert'] })
  .refine((m) => m.password === undefined || m.username !== undefined, { error: 'password needs a username', path: ['username'] })
  .superRefine((m, ctx) => {
    const byCertificate = m.tls?.ca !== undefined && m.tls.client_certificates !== 'off';
    m.users.forEach((u, i) => {
      if (u.hash === undefined && !byCertificate)
        ctx.addIssue({
          code: 'custom',
          message:
            'a user without a hash can only log in by client certificate: set mqtt.tls.ca and client_certificates (optional or required), or give a hash',
          path: ['users', i, 'hash'],
        });
      if (m.username !== undefined && u.name === m.username)
        ctx.addIssue({ code: 'custom', message: `"${u.name}" is mqtt.username already`, path: ['users', i, 'name'] });
    });
  })
  .prefault({})
  .meta({ description: 'The MQTT telemetry backbone: the embedded broker or an external one.' });

const HTTP_URL = /^https?:\/\/[^\s]+$/;

const influxCommon = {
  url: z
    .string()
    .regex(HTTP_URL, { error: 'expected an http:// or https:// URL' })
    .meta({
      description: 'Base URL of the InfluxDB server (or of any server with the same write endpoint).',
      examples: ['http://127.0.0.1:8086'],
    }),
  batch_size: z
    .int()
    .min(1)
    .max(100_000)
    .default(5000)
    .meta({ description: 'Lines per write request, at most.', examples: [5000] }),
  flush_interval: duration
    .prefault('1s')
    .meta({ description: 'Longest time a line waits for its batch to fill before it is sent anyway.', 'x-examples': ['1s', '200ms'] }),
  gzip: z.boolean().default(true).meta({ description: 'Compress write requests.' }),
  timeout: duration
    .prefault('10s')
    .meta({ description: 'How long one write request may take before it counts as failed and is retried.', 'x-examples': ['10s'] }),
  max_spool_size: size.prefault('1GiB').meta({
    description:
      'Disk space the spool may use for telemetry InfluxDB has not accepted yet. When full, the oldest lines are dropped, counted and logged.',
    'x-examples': ['1GiB', '200MiB'],
  }),
  shared_subscription_group: identifier.default('influx-writers').meta({
    description:
      "With an external broker, writers subscribe as `$share/<group>/...`, so several `gateway influx-writer` processes split one site's telemetry.",
    examples: ['influx-writers'],
  }),
  reconnect,
};

const influxV2 = z
  .strictObject({
    api: z.literal('v2').meta({ description: 'InfluxDB 2.x and 3.x (`/api/v2/write`), through the official client.' }),
    ...influxCommon,
    token: z
      .string()
      .default('')
      .meta({ description: 'API token. Use ${ENV_VAR} rather than writing it in the file.', examples: ['${INFLUX_TOKEN}'] }),
    org: z
      .string()
      .min(1)
      .meta({ description: 'Organisation (InfluxDB 2.x); any non-empty name for servers that ignore it.', examples: ['site'] }),
    bucket: z
      .string()
      .min(1)
      .meta({ description: 'Bucket (or database) written to.', examples: ['telemetry'] }),
  })
  .meta({ title: 'InfluxDB 2.x / 3.x' });

const influxV1 = z
  .strictObject({
    api: z.literal('v1').meta({ description: 'InfluxDB 1.x (`/write`).' }),
    ...influxCommon,
    database: z
      .string()
      .min(1)
      .meta({ description: 'Database written to.', examples: ['telemetry'] }),
    retention_policy: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'Retention policy; the database default when absent.', examples: ['autogen'] }),
    username: z
      .string()
      .optional()
      .meta({ description: 'User name, when the server requires authentication.', examples: ['gateway'] }),
    password: z
      .string()
      .optional()
      .meta({ description: 'Password that goes with username. Use ${ENV_VAR}.', examples: ['${INFLUX_PASSWORD}'] }),
  })
  .refine((c) => c.password === undefined || c.username !== undefined, { error: 'password needs a username', path: ['username'] })
  .meta({ title: 'InfluxDB 1.x' });

const influxSection = z
  .discriminatedUnion('api', [influxV2, influxV1], { error: 'expected api: v2 (InfluxDB 2.x, 3.x) or api: v1 (InfluxDB 1.x)' })
  .optional()
  .meta({
    description:
      'Where telemetry is stored. Absent: telemetry stays on MQTT only. What InfluxDB has not accepted waits in a spool on disk (`<data_dir>/influx-spool.db`).',
  });

const equipmentBaseShape = {
  id: identifier.meta({ description: 'Equipment id, unique in the site; used in topics and as a tag.', examples: ['B-07'] }),
  name: z
    .string()
    .optional()
    .meta({ description: 'Name shown to people.', examples: ['No.7 steam boiler'] }),
  code: z
    .string()
    .regex(EQUIPMENT_CODE, { error: 'expected an 18-character equipment code or a 20-digit registration code' })
    .optional()
    .meta({
      description:
        'Special-equipment code (设备代码, 18 characters) or registration code (注册代码, 20 digits); the category follows from its first character.',
      examples: ['10003101012019000117'],
    }),
  category: z
    .enum(CATEGORIES)
    .optional()
    .meta({
      description: 'Equipment category; the InfluxDB measurement. Derived from code when absent; required without a code.',
      examples: ['boiler', 'elevator'],
    }),
  connection: identifier.meta({ description: 'Id of the connection the equipment is read through.', examples: ['boiler-plc'] }),
  poll_interval: duration
    .prefault('1s')
    .meta({ description: 'How often the equipment is read (for polling drivers).', 'x-examples': ['1s', '500ms'] }),
  description: z.string().optional().meta({ description: 'Free text shown to users.' }),
  template: identifier.optional().meta({
    description:
      "Equipment template from config/templates (`boiler-steam`, `elevator-traction`...): its points' units, its limits and its rules. The entry gives the points' addresses and may override limits.",
    examples: ['boiler-steam'],
  }),
  profile: identifier.optional().meta({
    description:
      "Device profile from profiles/ (`<vendor>-<model>`, see docs/profiles.md): the controller model's addresses of its template's points, in the driver's keys. The entry's points come from it; a `points:` entry of the same name changes the keys it gives, one of another name is added. The template is the profile's when the entry names none.",
    examples: ['gateway-sim-steam-boiler'],
  }),
  disabled_rules: z
    .array(identifier)
    .default([])
    .meta({
      description: 'Rules of the template that this equipment does not get (for example because it lacks the point they read).',
      examples: [['flue-o2-low']],
    }),
  limits: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, { error: 'expected a limit name of letters, digits and "_"' }),
      z.union([z.number(), z.boolean(), z.string()]),
    )
    .default({})
    .meta({
      description: 'Named limits and parameters of this equipment that rules use by name (`design_pressure`, `drum_level_lo`).',
      examples: [{ design_pressure: 1.25, drum_level_lo: -50 }],
    }),
  inspection: inspectionSchema.optional(),
  maintenance: maintenanceSchema.optional(),
  certificate: certificateSchema.optional(),
  consequence: consequence.optional().meta({
    description:
      "Consequence class of a failure of this equipment, 1 (minor) to 4 (catastrophic), for its risk level (docs/risk.md); default: its template's, else by category.",
    examples: [4],
  }),
  qc: qcSchema.optional(),
};

/** The keys every equipment entry has, whatever its connection; the rest are its driver's. */
export const EQUIPMENT_BASE_KEYS: readonly string[] = Object.keys(equipmentBaseShape);

/** What every equipment entry has; the rest of the entry belongs to its connection's driver. */
export const equipmentBase = z.looseObject(equipmentBaseShape);

/** What every connection entry has; the rest belongs to the driver named by type. */
export const connectionBase = z.looseObject({
  id: identifier,
  type: z.enum(DRIVERS.map((d) => d.type) as [string, ...string[]], {
    error: `expected one of the connection types: ${DRIVERS.map((d) => d.type).join(', ')}`,
  }),
});

const alarmsSection = z
  .strictObject({
    chattering: z
      .strictObject({
        activations: z
          .int()
          .min(2)
          .max(1000)
          .default(3)
          .meta({
            description:
              "An alarm raised (annunciated) this many times within `window` is flagged chattering (ISA-18.2 with EEMUA 191's figures: 3 in 60 s). Clears do not count.",
            examples: [3],
          }),
        window: duration.prefault('60s').meta({ description: 'The window the activations are counted in.', 'x-examples': ['60s'] }),
      })
      .prefault({})
      .meta({ description: 'When one alarm is flagged as chattering (an alarm-health event, kept local).' }),
    operators: z
      .int()
      .min(1)
      .default(1)
      .meta({
        description: "Operators who watch this site's alarms at once: ISA-18.2's alarm rates (the KPIs, docs/risk.md) are per operator.",
        examples: [1],
      }),
  })
  .prefault({})
  .meta({ description: 'Alarm management settings of the site.' });

const siteShape = {
  version: z
    .literal(SITE_FILE_VERSION, {
      // `version: "2"` (as a Docker Compose file has it) is text: "expected 2" would puzzle whoever wrote 2.
      error: (issue) =>
        typeof issue.input === 'string' && /^\s*[0-9]+\s*$/.test(issue.input)
          ? `expected a whole number, not text: write it without quotes (${SITE_FILE_VERSION} is the current site-file version)`
          : `expected ${SITE_FILE_VERSION}, the current site-file version (a version 1 file is read too, and \`gateway config migrate\` rewrites it)`,
    })
    .meta({
      description:
        'Site-file format version: 2. A version 1 file is read too (a note says what changed; `gateway config migrate` rewrites it); a file for a newer gateway is refused. docs/upgrades.md lists the versions.',
    }),
  gateway: gatewaySection,
  mqtt: mqttSection,
  influx: influxSection,
  simulators: z
    // The drivers' simulators, and the gateway's own stand-in for the central platform.
    .array(z.discriminatedUnion('type', [platformInboxSimulatorSchema, ...DRIVER_SIMULATORS.map((s) => s.schema)]))
    .default([])
    .meta({
      description:
        'Simulated devices the gateway starts before its drivers, for the demo, training and acceptance tests. Leave out on a real site.',
    }),
  rules: rulesSection,
  alarms: alarmsSection,
  platform: platformSection,
  http: httpSection,
  risk: riskSection,
  report: reportSection,
  lab: labSection,
  sparkplug: sparkplugSection,
};

/** The first validation step: sections and the keys all entries share. */
export const siteBaseSchema = z.strictObject({
  ...siteShape,
  connections: z.array(connectionBase).min(1, { error: 'expected at least one connection' }),
  equipment: z.array(equipmentBase).min(1, { error: 'expected at least one equipment entry' }),
});

/** The whole document with every driver's keys: for the JSON Schema and the reference only. */
export function documentSchema() {
  const connections = DRIVERS.map((d) => d.connectionSchema);
  const equipment = DRIVERS.map((d) =>
    z.strictObject({ ...equipmentBaseShape, ...d.equipmentSchema.shape }).meta({ title: `equipment on a ${d.type} connection` }),
  );
  const one = <T extends z.ZodType>(list: T[]) => (list.length === 1 ? list[0]! : z.union(list));
  return z
    .strictObject({
      ...siteShape,
      connections: z
        .array(one(connections))
        .min(1)
        .meta({ description: 'How the gateway reaches devices: one entry per PLC, serial bus, OPC UA server or simulator.' }),
      equipment: z.array(one(equipment)).min(1).meta({ description: 'The monitored equipment, each read through one connection.' }),
    })
    .meta({ title: 'Site file', description: 'One file describes one site: its gateway, MQTT, connections and equipment.' });
}

export type SimulatorConfig = { type: string; host: string; port: number } & Record<string, unknown>;
export type GatewaySection = z.output<typeof gatewaySection>;
export type MqttSection = z.output<typeof mqttSection>;
export type InfluxSection = z.output<typeof influxV2> | z.output<typeof influxV1>;

export interface SiteConfig {
  version: typeof SITE_FILE_VERSION;
  gateway: GatewaySection;
  mqtt: MqttSection;
  influx?: InfluxSection | undefined;
  /** Each as its simulator's schema outputs it (drivers/types.ts defineSimulator). */
  simulators: SimulatorConfig[];
  rules: RuleConfig[];
  alarms: z.output<typeof alarmsSection>;
  platform?: PlatformSection | undefined;
  http?: HttpSection | undefined;
  risk: RiskSection;
  report: ReportSection;
  lab: LabSection;
  sparkplug?: SparkplugSection | undefined;
  connections: ConnectionConfig[];
  equipment: Array<EquipmentConfig & { category: Category; qc?: QcConfig | undefined } & LoadedRiskKeys>;
}

/** What the loader adds to each equipment for risk judgement: its effective consequence class and its template's weights. */
export interface LoadedRiskKeys extends AdministrativeDates {
  consequence: number;
  risk_factors?: FactorOverrides | undefined;
}
