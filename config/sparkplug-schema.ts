// The `sparkplug:` section: the gateway as a Sparkplug B edge node (docs/sparkplug.md).
import { z } from 'zod';
import { duration } from '../drivers/common/primitives.js';

/** Sparkplug ids are topic levels: no `+`, `#` or `/` (Sparkplug 3.0, 4.1.1); kept to id characters here. */
const sparkplugId = z
  .string({ error: 'expected a Sparkplug id (letters, digits, "-", "_", ".", ":")' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/, {
    error: 'expected an id of at most 64 letters, digits, "-", "_", "." or ":" starting with a letter or digit (no "+", "#" or "/")',
  });

const BROKER_URL = /^(mqtts?|wss?|tcp|ssl):\/\/[^\s]+$/;

export const sparkplugSection = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .meta({ description: 'Run the Sparkplug B edge node. `false` keeps the section but starts nothing.' }),
    group_id: sparkplugId.optional().meta({
      description: "Sparkplug group id, the topic's second level; defaults to `<gateway.site>`.",
      examples: ['plant-3'],
    }),
    edge_node_id: sparkplugId.optional().meta({
      description: 'Sparkplug edge node id; defaults to `<gateway.id>`. Each equipment is a device of this node, its id the device id.',
      examples: ['gw-sh-001'],
    }),
    broker: z
      .union([
        z.literal('gateway'),
        z.string().regex(BROKER_URL, { error: 'expected "gateway" or a broker URL such as mqtt://host:1883 or mqtts://host:8883' }),
      ])
      .default('gateway')
      .meta({
        description:
          "`gateway`: the gateway's own broker (the embedded one, or mqtt.broker with mqtt's credentials and TLS files). A URL: a broker of its own (the SCADA's), with the user, password and CA below.",
        examples: ['gateway', 'mqtts://scada.example.org:8883'],
      }),
    username: z
      .string()
      .optional()
      .meta({ description: 'With a broker URL: the user name the edge node logs in with.', examples: ['edge'] }),
    password: z
      .string()
      .optional()
      .meta({
        description: 'With a broker URL: its password. Use ${ENV_VAR} rather than writing it in the file.',
        examples: ['${SPB_PASSWORD}'],
      }),
    ca: z
      .string()
      .optional()
      .meta({
        description: "With an mqtts:// broker URL: PEM file of the CA that signed the broker's certificate.",
        examples: ['/etc/gateway/scada-ca.pem'],
      }),
    primary_host_id: sparkplugId.optional().meta({
      description:
        "The primary host application (Ignition's, say). When set, the node waits for its `spBv1.0/STATE/<id>` to say online before its births, and while the host is offline readings are stored and forwarded, as during a broker outage. Leave out to publish whenever the broker is reachable.",
      examples: ['IgnitionTarget'],
    }),
    max_stored: z
      .int()
      .min(1000)
      .max(50_000_000)
      .default(1_000_000)
      .meta({
        description:
          'Readings kept (`sparkplug-queue.db` in the data folder, about 100 bytes each) while the broker or the primary host is away, sent as historical DDATA when they are back. When full, the oldest go, counted (`gateway_sparkplug_dropped_total`) and logged.',
        examples: [1000000],
      }),
    rebirth_interval: duration.prefault('2s').meta({
      description:
        'Rebirths (an NCMD `Node Control/Rebirth`, or a device whose metrics changed) happen at most once in this time; requests within it are served by one rebirth at its end.',
      'x-examples': ['2s'],
    }),
  })
  .refine((s) => s.broker !== 'gateway' || (s.username === undefined && s.password === undefined && s.ca === undefined), {
    error: "username, password and ca go with a broker URL; with `broker: gateway` the node logs in as the gateway's MQTT client does",
    path: ['broker'],
  })
  .optional()
  .meta({
    description:
      'The gateway as a Sparkplug B edge node (SCADA such as Ignition): births, data and deaths per equipment, alarms as metrics, store and forward (docs/sparkplug.md).',
  });

export type SparkplugSection = z.output<typeof sparkplugSection>;
