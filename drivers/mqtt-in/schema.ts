import { z } from 'zod';
import { duration, identifier, pointName, port, reconnect, size } from '../common/primitives.js';
import { parsePath, type PathStep } from './path.js';
import { isTopicName, topicFilterProblem } from './topic.js';
import { TIMESTAMP_FORMATS, VALUE_TYPES } from './values.js';

/** Bytes of a payload a `pattern` is applied to, at most: a regular expression's time grows with its input. */
export const MAX_PATTERN_INPUT = 1024;
const MAX_PATTERN_LENGTH = 256;
/** Time one pattern may take on one payload, at most (pattern.ts enforces it). */
export const PATTERN_TIMEOUT_MS = 50;

const topicFilter = z
  .string()
  .superRefine((f, ctx) => {
    const problem = topicFilterProblem(f);
    if (problem) ctx.addIssue({ code: 'custom', message: `expected ${problem}` });
  })
  .meta({ examples: ['zigbee2mqtt/boiler-room-sensor', 'tele/+/SENSOR', 'lab/fridge-2/#'] });

/** A path, checked and split into its steps when the site file is loaded. */
const jsonPath = z
  .string()
  .transform((text, ctx): PathStep[] => {
    const steps = parsePath(text);
    if (typeof steps !== 'string') return steps;
    ctx.addIssue({ code: 'custom', message: `expected a path such as temperature, sensors[0].value or ENERGY.Power: ${steps}` });
    return z.NEVER;
  })
  .meta({ 'x-examples': ['temperature', 'sensors[0].value', 'ENERGY.Power'] });

/** Why a pattern cannot be used, or undefined. */
function patternProblem(source: string): string | undefined {
  if (source.length > MAX_PATTERN_LENGTH) return `a pattern of at most ${MAX_PATTERN_LENGTH} characters`;
  let re: RegExp;
  try {
    re = new RegExp(source);
  } catch (err) {
    return `a valid regular expression (${(err as Error).message})`;
  }
  // The groups a regular expression has: those of an alternative that always matches the empty text.
  const groups = new RegExp(`${re.source}|`).exec('')!.length - 1;
  if (groups !== 1) return `a regular expression with exactly one capture group (this one has ${groups}); use (?:...) for the others`;
  // A quantified group that itself ends with a quantifier, (a+)+ or (\d*)*, backtracks exponentially on input that nearly matches.
  if (/[+*}]\)[+*{]/.test(source))
    return 'a regular expression without a quantified group ending in a quantifier ((a+)+ can take exponential time)';
  return undefined;
}

const timestampSchema = z
  .strictObject({
    path: jsonPath.meta({ description: 'Where the time is in the payload.', 'x-examples': ['time', 'Time', 'last_seen'] }),
    format: z.enum(TIMESTAMP_FORMATS).meta({
      description:
        '`epoch_s` (seconds since 1970, decimals allowed), `epoch_ms` (milliseconds), `iso8601` (date, time and zone: 2026-05-01T10:00:00Z, 2026-05-01T12:00:00+02:00; a time without a zone is refused).',
      examples: ['iso8601', 'epoch_s'],
    }),
  })
  .meta({
    description:
      "The time the device took the value (the source time). A message whose time cannot be read, or is before 2000-01-01 or more than a day ahead of the gateway's clock (a wrong format), gives readings of uncertain quality without a source time. A retained message is good only with a source time no older than stale_after (5 minutes without it).",
  });

const qualityValues = z.array(z.union([z.string(), z.number(), z.boolean()])).default([]);
const qualitySchema = z
  .strictObject({
    path: jsonPath.meta({ description: 'Where the device states its status in the payload.', 'x-examples': ['status', 'state.quality'] }),
    good: qualityValues.meta({ description: 'Values meaning the reading is good.', examples: [['ok', 0]] }),
    uncertain: qualityValues.meta({ description: 'Values meaning uncertain (kept, marked).', examples: [['calibrating']] }),
    bad: qualityValues.meta({ description: 'Values meaning bad (the value is dropped).', examples: [['error', 'sensor_fault']] }),
  })
  .meta({
    description:
      'Quality from a field of the payload. A value listed nowhere, or a message without the field, gives bad quality with the value quoted in the reason. A status of bad counts also in a message without the value (the points it covers become bad); one of uncertain makes the last value uncertain.',
  });

const staleAfter = duration
  .refine((ms) => ms > 0, { error: 'expected more than 0' })
  .meta({
    description:
      'A point that has had no value for this long becomes bad with reason "stale" (also from the start, when nothing came). Set it wherever the device publishes periodically: without it a dead sensor\'s last value stays good (a warning at start names equipment without any). Leave out only for values published on change that may stay silent for long.',
    'x-examples': ['5m', '90s'],
  });

export const mqttInPointSchema = z
  .strictObject({
    name: pointName.meta({ description: 'Point name, unique within the equipment.', examples: ['temperature'] }),
    path: jsonPath.optional().meta({
      description:
        'Where the value is in a JSON payload: keys separated by dots, array indexes in brackets, keys with dots or brackets quoted (["a.b"]). Defaults to the point name; leave out when a pattern is given. A message without it does not change the point.',
      examples: ['temperature', 'sensors[0].value', 'ENERGY.Power'],
    }),
    pattern: z
      .string()
      .superRefine((p, ctx) => {
        const problem = patternProblem(p);
        if (problem) ctx.addIssue({ code: 'custom', message: `expected ${problem}` });
      })
      .optional()
      .meta({
        description: `For plain (not JSON) payloads: a regular expression with one capture group, the value. Applied to payloads of at most ${MAX_PATTERN_INPUT} bytes, for at most ${PATTERN_TIMEOUT_MS} ms each (a longer match gives bad quality, "pattern took over ${PATTERN_TIMEOUT_MS} ms"); a payload it does not match does not change the point.`,
        examples: ['^(-?\\d+(?:\\.\\d+)?)$', 'T=(\\S+)'],
      }),
    topic: topicFilter.optional().meta({
      description: "Read this point from messages on this topic filter instead of the equipment's topic.",
      examples: ['shellies/plug-1/relay/0/power'],
    }),
    type: z
      .enum(VALUE_TYPES)
      .default('number')
      .meta({
        description:
          'Value type. `number`: a JSON number or a decimal in text; `boolean`: true/false, "ON"/"OFF", "on"/"off", 1/0; `string`: text (numbers and booleans are written out). Anything else is bad quality with the value quoted.',
        examples: ['number', 'boolean'],
      }),
    unit: z
      .string()
      .optional()
      .meta({ description: 'Engineering unit (after scaling).', examples: ['°C', 'W'] }),
    scale: z
      .number()
      .default(1)
      .meta({ description: 'Numbers: multiplied by this first.', examples: [0.1] }),
    offset: z
      .number()
      .default(0)
      .meta({ description: 'Numbers: added after scaling.', examples: [-273.15] }),
    timestamp: timestampSchema.optional().meta({ description: "Source time of this point; overrides the equipment's." }),
    quality: qualitySchema.optional().meta({ description: "Quality of this point from the payload; overrides the equipment's." }),
    stale_after: staleAfter.optional(),
    description: z.string().optional().meta({ description: 'Free text shown to users.' }),
  })
  .superRefine((p, ctx) => {
    if (p.pattern !== undefined && p.path !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['pattern'],
        message: 'a point has a path (JSON payloads) or a pattern (plain payloads), not both',
      });
    if (p.type !== 'number' && (p.scale !== 1 || p.offset !== 0))
      ctx.addIssue({ code: 'custom', path: ['scale'], message: 'scale and offset apply to numbers only' });
  })
  .meta({ title: 'mqtt-in point' });

export const mqttInEquipmentSchema = z
  .strictObject({
    topic: topicFilter.meta({
      description: 'Topic filter of the messages this equipment publishes; `+` and `#` as in MQTT.',
      examples: ['zigbee2mqtt/boiler-room-sensor', 'tele/plug-4/SENSOR'],
    }),
    timestamp: timestampSchema.optional(),
    quality: qualitySchema.optional(),
    stale_after: staleAfter.optional(),
    points: z.array(mqttInPointSchema).min(1).meta({ description: "Values read from the equipment's messages." }),
  })
  .meta({ title: 'equipment on an mqtt-in connection' });

export const mqttInConnectionSchema = z
  .strictObject({
    id: identifier.meta({ description: 'Connection id that equipment entries refer to.', examples: ['site-broker'] }),
    type: z
      .literal('mqtt-in')
      .meta({ description: 'Devices that publish to an MQTT broker (Zigbee2MQTT, Shelly, Tasmota, vendor gateways).' }),
    url: z
      .string()
      .regex(/^mqtts?:\/\/[^/\s]+\/?$/, { error: 'expected mqtt://host[:port] or mqtts://host[:port]' })
      .meta({
        description: 'The broker: mqtt:// (port 1883 by default) or mqtts:// (TLS, 8883).',
        examples: ['mqtt://10.0.0.30:1883', 'mqtts://broker.lan'],
      }),
    username: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'User name at the broker.', examples: ['gateway'] }),
    password: z
      .string()
      .optional()
      .meta({
        description: 'Password that goes with username. Use ${ENV_VAR} rather than writing it in the file.',
        examples: ['${SENSORS_MQTT_PASSWORD}'],
      }),
    client_id: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .meta({ description: 'MQTT client id; a random one when left out (required with clean: false).', examples: ['gw-sh-001-sensors'] }),
    keepalive: duration
      .refine((ms) => ms >= 1000 && ms <= 65_535_000, { error: 'expected between 1s and 65535s' })
      .prefault('30s')
      .meta({ description: 'MQTT keepalive: a broker silent for 1.5 times this is taken as gone.', 'x-examples': ['30s'] }),
    clean: z.boolean().default(true).meta({
      description:
        '`true`: a new session on each connection. `false`: the broker keeps the subscriptions and QoS 1/2 messages while the gateway is away.',
    }),
    qos: z
      .union([z.literal(0), z.literal(1), z.literal(2)])
      .default(1)
      .meta({ description: 'QoS of the subscriptions.', examples: [0, 1] }),
    protocol_version: z
      .union([z.literal(4), z.literal(5)])
      .default(4)
      .meta({
        description:
          '4 (MQTT 3.1.1) is spoken by every broker (the embedded one included); a message over max_payload_size is refused when it arrives. 5 (MQTT 5): the broker is also told the largest packet the gateway takes (max_payload_size + 64 KiB) and drops bigger messages itself, before they cross the network.',
        examples: [4, 5],
      }),
    max_payload_size: size
      .refine((n) => n > 0 && n <= 16 * 1024 * 1024, { error: 'expected more than 0 and at most 16MiB' })
      .prefault('64KiB')
      .meta({
        description:
          'Bytes of one message payload, at most. A bigger one is refused (counted, its equipment\'s points bad with reason "payload too large"), never parsed.',
        'x-examples': ['64KiB', '1MiB'],
      }),
    ca: z
      .string()
      .optional()
      .meta({
        description: "PEM file of the CA that signed the broker's certificate (mqtts://).",
        examples: ['/etc/gateway/sensors-ca.pem'],
      }),
    cert: z
      .string()
      .optional()
      .meta({ description: 'PEM client certificate, for brokers that require mutual TLS.', examples: ['/etc/gateway/sensors-client.pem'] }),
    key: z
      .string()
      .optional()
      .meta({ description: 'PEM private key that goes with cert.', examples: ['/etc/gateway/sensors-client.key'] }),
    reject_unauthorized: z
      .boolean()
      .default(true)
      .meta({ description: 'Refuse a broker certificate that does not verify. Turn off only for a test bench.' }),
    reconnect,
  })
  .refine((c) => (c.cert === undefined) === (c.key === undefined), { error: 'cert and key go together', path: ['cert'] })
  .refine((c) => c.clean || c.client_id !== undefined, {
    error: 'a persistent session (clean: false) needs a client_id',
    path: ['client_id'],
  })
  .meta({ title: 'mqtt-in connection' });

export type MqttInConnection = z.output<typeof mqttInConnectionSchema>;
export type MqttInEquipment = z.output<typeof mqttInEquipmentSchema>;
export type MqttInPoint = z.output<typeof mqttInPointSchema>;

/** Ways the simulated publisher misbehaves, so the driver's refusals show. */
export const PUBLISHER_FAULTS = ['none', 'malformed', 'oversized', 'wrong-type'] as const;

/** Devices that publish JSON to a broker, as Zigbee2MQTT and Tasmota do. */
export const mqttPublisherSchema = z
  .strictObject({
    type: z.literal('mqtt-sensor-publisher').meta({
      description:
        'Publishes JSON like Zigbee2MQTT (temperature, humidity, battery, linkquality) and Tasmota (an ENERGY object) to a broker on a schedule (drivers/mqtt-in/README.md).',
    }),
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .meta({ description: 'Address of the broker.', examples: ['127.0.0.1'] }),
    port: port.meta({ description: 'MQTT port of the broker.', examples: [1883] }),
    username: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'User name at the broker.', examples: ['demo-sensors'] }),
    password: z
      .string()
      .optional()
      .meta({ description: 'Password that goes with username.', examples: ['${SENSORS_PASSWORD}'] }),
    sensor_topic: z
      .string()
      .refine(isTopicName, { error: 'expected a topic without wildcards' })
      .default('zigbee2mqtt/boiler-room-sensor')
      .meta({ description: 'Topic of the Zigbee2MQTT-style environmental sensor.', examples: ['zigbee2mqtt/boiler-room-sensor'] }),
    energy_topic: z
      .string()
      .refine(isTopicName, { error: 'expected a topic without wildcards' })
      .optional()
      .meta({
        description: 'Topic of the Tasmota-style energy meter (`tele/<device>/SENSOR`); none when left out.',
        examples: ['tele/boiler-pump/SENSOR'],
      }),
    interval: duration
      .refine((ms) => ms >= 50, { error: 'expected at least 50ms' })
      .prefault('5s')
      .meta({ description: 'Time between messages of each device.', 'x-examples': ['5s', '200ms'] }),
    seed: z
      .int()
      .min(0)
      .default(1)
      .meta({ description: 'Seed of the simulated values: the same seed gives the same values.', examples: [1] }),
    fault: z
      .enum(PUBLISHER_FAULTS)
      .default('none')
      .meta({
        description:
          'Every fault_every-th sensor message misbehaves: `malformed` (cut-off JSON), `oversized` (a valid JSON document of fault_bytes), `wrong-type` (temperature as "warm"); `none`: never.',
        examples: ['none', 'malformed'],
      }),
    fault_every: z
      .int()
      .min(1)
      .default(10)
      .meta({ description: 'How often the fault comes, in sensor messages.', examples: [10] }),
    fault_bytes: size.prefault('96KiB').meta({
      description:
        'Size of an oversized message: more than the max_payload_size of a driver (64 KiB by default), less than what an MQTT 5 broker would drop before it reaches the driver (max_payload_size + 64 KiB).',
      'x-examples': ['96KiB'],
    }),
  })
  .meta({ title: 'MQTT sensor publisher simulator' });

export type MqttPublisherConfig = z.output<typeof mqttPublisherSchema>;
