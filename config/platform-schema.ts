// The `platform:` section: where incidents go (the central warning platform), and how.
import { z } from 'zod';
import { duration, port, reconnect } from '../drivers/common/primitives.js';
import { level } from './rules-schema.js';

const HTTP_URL = /^https?:\/\/[^\s]+$/;

export const platformSection = z
  .strictObject({
    url: z
      .string()
      .regex(HTTP_URL, { error: 'expected an http:// or https:// URL' })
      .meta({
        description: 'Where incidents and heartbeats are POSTed (docs/platform-contract.md).',
        examples: ['https://warning.example.org/api/incidents'],
      }),
    secret: z
      .string()
      .min(16, { error: 'expected a shared secret of at least 16 characters' })
      .meta({
        description: 'Shared secret of the HMAC-SHA256 signature. Use ${PLATFORM_SECRET} rather than writing it in the file.',
        examples: ['${PLATFORM_SECRET}'],
      }),
    heartbeat_interval: duration
      .prefault('30s')
      .meta({ description: 'How often a heartbeat (last seq, pending, active incidents) is sent.', 'x-examples': ['30s'] }),
    timeout: duration.prefault('10s').meta({ description: 'A request without an answer after this is retried.', 'x-examples': ['10s'] }),
    max_in_flight: z
      .int()
      .min(1)
      .max(64)
      .default(1)
      .meta({
        description: "Events sent before the first is answered. 1 keeps the platform's arrival order equal to seq order.",
        examples: [1, 4],
      }),
    min_level: level.default('blue').meta({ description: 'Incidents below this level stay local.', examples: ['yellow'] }),
    ca: z
      .string()
      .optional()
      .meta({
        description: "PEM file of the CA that signed the platform's certificate (https://).",
        examples: ['/etc/gateway/platform-ca.pem'],
      }),
    cert: z
      .string()
      .optional()
      .meta({ description: 'PEM client certificate, for platforms that require mutual TLS.', examples: ['/etc/gateway/client.pem'] }),
    key: z
      .string()
      .optional()
      .meta({ description: 'PEM private key that goes with cert.', examples: ['/etc/gateway/client.key'] }),
    mqtt_url: z
      .string()
      .regex(/^(mqtts?|wss?):\/\/[^\s]+$/, { error: 'expected an mqtt:// or mqtts:// URL' })
      .optional()
      .meta({
        description: 'Also publish every incident to this central broker (QoS 1, persistent session), for platforms that take MQTT.',
        examples: ['mqtts://broker.warning.example.org:8883'],
      }),
    mqtt_topic: z
      .string()
      .default('incidents/{gateway}')
      .meta({ description: 'Topic on the central broker; `{gateway}` and `{site}` are filled in.', examples: ['incidents/{gateway}'] }),
    reconnect: reconnect.meta({
      description: 'Backoff between attempts while the platform cannot take events (a `Retry-After` answer is honoured).',
    }),
    allow_insecure: z
      .boolean()
      .optional()
      .meta({
        description:
          'Off (the default): refuse an unencrypted `url` (http://) or `mqtt_url` (mqtt://, ws://) to a host other than this machine (127.0.0.0/8, ::1, localhost) as a config error, because incidents, heartbeats and the signatures travel readable by anyone on the way. true: accept it, with a warning at each start.',
        examples: [false],
      }),
  })
  .refine((p) => (p.cert === undefined) === (p.key === undefined), { error: 'cert and key go together', path: ['cert'] })
  .superRefine((p, ctx) => {
    if (p.allow_insecure) return;
    for (const key of ['url', 'mqtt_url'] as const) {
      const url = p[key];
      if (url !== undefined && insecureRemote(url)) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `an unencrypted URL to ${hostOf(url)}, which is not this machine: use ${key === 'url' ? 'https://' : 'mqtts:// or wss://'}, or set platform.allow_insecure: true`,
        });
      }
    }
  })
  .optional()
  .meta({
    description:
      'The central warning platform: every incident event is committed to a durable outbox (in `<data_dir>/gateway.db`) and POSTed, signed, in seq order, until the platform answers 2xx.',
  });

export type PlatformSection = NonNullable<z.output<typeof platformSection>>;

/** The host of a URL as written (brackets of an IPv6 address removed), or the URL itself when it cannot be parsed. */
function hostOf(url: string): string {
  try {
    return new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return url;
  }
}

/** This machine: 127.0.0.0/8, ::1 (and its IPv4-mapped form), localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.replace(/^::ffff:/, '');
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** An unencrypted scheme (http, mqtt, ws) to a host other than this machine. */
export function insecureRemote(url: string): boolean {
  const scheme = /^([a-z]+):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme !== 'http' && scheme !== 'mqtt' && scheme !== 'ws') return false;
  return !isLoopbackHost(hostOf(url));
}

/** The reference receiver started by the gateway itself: the demo's stand-in for the platform. */
export const platformInboxSimulatorSchema = z
  .strictObject({
    type: z.literal('platform-inbox').meta({
      description:
        'The reference platform receiver (`gateway platform-inbox`): verifies signatures, de-duplicates, reports seq gaps, logs each incident as a line.',
    }),
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .meta({ description: 'Address it listens on.', examples: ['127.0.0.1'] }),
    port: port.meta({ description: 'TCP port it listens on.', examples: [8787] }),
    secret: z
      .string()
      .min(16, { error: 'expected a shared secret of at least 16 characters' })
      .meta({ description: 'The shared secret it verifies signatures with.', examples: ['${PLATFORM_SECRET}'] }),
    out: z
      .string()
      .optional()
      .meta({ description: 'Append accepted incidents to this file as JSON lines.', examples: ['./.data/inbox.jsonl'] }),
    state: z
      .string()
      .optional()
      .meta({
        description:
          'Where it keeps the ids it has taken, so that a restart still recognises a resent event as a duplicate. Default: `<data_dir>/platform-inbox-<port>.db`.',
        examples: ['./.data/platform-inbox.db'],
      }),
  })
  .meta({ title: 'Platform inbox' });

export type PlatformInboxSimulatorConfig = z.output<typeof platformInboxSimulatorSchema>;
