import { z } from 'zod';
import { duration, identifier, pointName, port, reconnect, size } from '../common/primitives.js';

export const SECURITY_MODES = ['None', 'Sign', 'SignAndEncrypt'] as const;
export const SECURITY_POLICIES = ['None', 'Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss'] as const;

const userSchema = z
  .discriminatedUnion('type', [
    z.strictObject({ type: z.literal('anonymous').meta({ description: 'No user identity.' }) }),
    z.strictObject({
      type: z.literal('username').meta({ description: 'User name and password.' }),
      username: z
        .string()
        .min(1)
        .meta({ description: 'User name.', examples: ['gateway'] }),
      password: z.string().meta({ description: 'Password; use ${ENV_VAR}.', examples: ['${OPCUA_PASSWORD}'] }),
    }),
    z.strictObject({
      type: z.literal('certificate').meta({ description: 'An X.509 user certificate.' }),
      certificate_file: z
        .string()
        .min(1)
        .meta({ description: 'PEM user certificate.', examples: ['/etc/gateway/user.pem'] }),
      private_key_file: z
        .string()
        .min(1)
        .meta({ description: 'PEM private key of the user certificate.', examples: ['/etc/gateway/user.key'] }),
    }),
  ])
  .default({ type: 'anonymous' })
  .meta({ description: 'User identity for the session: anonymous (default), username/password or an X.509 certificate.' });

export const opcuaConnectionSchema = z
  .strictObject({
    id: identifier.meta({ description: 'Connection id that equipment entries refer to.', examples: ['lift-ctl'] }),
    type: z.literal('opcua').meta({ description: 'OPC UA client (subscriptions or polling).' }),
    endpoint: z
      .string()
      .regex(/^opc\.tcp:\/\/[^\s/]+(:\d+)?(\/.*)?$/, { error: 'expected an endpoint URL such as opc.tcp://10.0.0.9:4840' })
      .meta({ description: 'Endpoint URL of the server.', examples: ['opc.tcp://10.0.0.9:4840'] }),
    security_mode: z
      .enum(SECURITY_MODES)
      .default('SignAndEncrypt')
      .meta({
        description: 'Message security. SignAndEncrypt by default; None sends everything in clear.',
        examples: ['SignAndEncrypt', 'None'],
      }),
    security_policy: z
      .enum(SECURITY_POLICIES)
      .optional()
      .meta({
        description: 'Security policy; Basic256Sha256 by default with Sign or SignAndEncrypt; None only with security_mode None.',
        examples: ['Basic256Sha256', 'Aes256_Sha256_RsaPss'],
      }),
    user: userSchema,
    trust_unknown_certificates: z.boolean().default(false).meta({
      description:
        'Accept a server certificate nobody trusted. Off by default: an unknown certificate is rejected and lands in the rejected folder until `gateway certs trust`. When on, a warning is logged at every start.',
    }),
    request_timeout: duration.prefault('5s').meta({ description: 'How long a request may take.', 'x-examples': ['5s'] }),
    session_timeout: duration.prefault('60s').meta({ description: 'Session timeout asked of the server.', 'x-examples': ['60s'] }),
    max_value_size: size
      .refine((n) => n >= 1024 && n <= 16 * 1024 * 1024, { error: 'expected a size from 1KiB to 16MiB' })
      .prefault('64KiB')
      .meta({
        description:
          'Largest value of one point: a String, ByteString, XmlElement or LocalizedText, an array (all its elements), an ExtensionObject (its encoding). A bigger value is a reading of quality bad with the reason `value of N bytes, at most M`, never a value, and is counted (oversizedValues).',
        'x-examples': ['64KiB', '1MiB'],
      }),
    max_message_size: size
      .refine((n) => n >= 64 * 1024 && n <= 256 * 1024 * 1024, { error: 'expected a size from 64KiB to 256MiB' })
      .prefault('16MiB')
      .meta({
        description:
          'Largest OPC UA message the client takes (asked of the server in its Hello, and held to whatever the server acknowledges), in chunks of at most 64 KiB. A Read whose answer would be bigger is split until the point that does not fit stands alone; that point is bad with BadTcpMessageTooLarge.',
        'x-examples': ['16MiB'],
      }),
    reconnect,
  })
  .superRefine((c, ctx) => {
    if (c.max_value_size > c.max_message_size)
      ctx.addIssue({ code: 'custom', path: ['max_value_size'], message: 'must not be larger than max_message_size' });
    const policy = c.security_policy ?? (c.security_mode === 'None' ? 'None' : 'Basic256Sha256');
    if (c.security_mode === 'None' && policy !== 'None')
      ctx.addIssue({ code: 'custom', path: ['security_policy'], message: 'security_mode None takes security_policy None' });
    if (c.security_mode !== 'None' && policy === 'None')
      ctx.addIssue({
        code: 'custom',
        path: ['security_policy'],
        message: `security_mode ${c.security_mode} needs a security policy other than None`,
      });
  })
  .meta({ title: 'opcua connection' });

export const opcuaPointSchema = z
  .strictObject({
    name: pointName.meta({ description: 'Point name, unique within the equipment.', examples: ['floor'] }),
    node: z
      .string()
      .min(1)
      .refine((s) => /^(ns=\d+;)?[isgb]=.+$/.test(s) || /^\/(\d+:)?[^/]+(\/(\d+:)?[^/]+)*$/.test(s), {
        error: 'expected a NodeId (ns=2;s=Lift3.Floor, i=2258) or a browse path from Objects (/2:Lift3/2:Floor)',
      })
      .meta({
        description: 'NodeId of the variable, or a browse path from the Objects folder with namespace-qualified names.',
        examples: ['ns=2;s=Lift3.Floor', '/2:Lift3/2:Floor'],
      }),
    unit: z
      .string()
      .optional()
      .meta({ description: 'Engineering unit.', examples: ['m/s'] }),
    deadband: z
      .number()
      .min(0)
      .optional()
      .meta({ description: 'Report a change only beyond this much (see deadband_type).', examples: [0.5] }),
    deadband_type: z
      .enum(['absolute', 'percent'])
      .default('absolute')
      .meta({ description: "absolute: in the value's unit; percent: of the EURange the server gives.", examples: ['percent'] }),
    sampling_interval: duration
      .optional()
      .meta({ description: "Sampling interval of this point; defaults to the equipment's poll_interval.", 'x-examples': ['250ms'] }),
    description: z.string().optional().meta({ description: 'Free text shown to users.' }),
  })
  .meta({ title: 'OPC UA point' });

const NODE_ID = /^(ns=\d+;)?[isgb]=.+$/;

/** A lab analyzer's result nodes, read when its trigger point shows a new result. */
export const opcuaResultsSchema = z
  .strictObject({
    trigger: pointName.meta({ description: 'A point of this equipment: a result counter or a ready flag.', examples: ['result_counter'] }),
    kind: z
      .enum(['counter', 'flag'])
      .default('counter')
      .meta({ description: '`counter`: result ids from the counter (gaps and resets reported); `flag`: ids from the content.' }),
    sample_id: z
      .strictObject({
        node: z
          .string()
          .regex(NODE_ID, { error: 'expected a NodeId such as ns=2;s=Analyzer.SampleId' })
          .meta({ description: 'NodeId of the sample id (a String).', examples: ['ns=1;s=LA1.SampleId'] }),
      })
      .meta({ description: 'Where the sample id is.' }),
    analytes: z
      .array(
        z.strictObject({
          name: pointName.meta({ description: 'Analyte.', examples: ['GLU'] }),
          node: z
            .string()
            .regex(NODE_ID, { error: 'expected a NodeId such as ns=2;s=Analyzer.GLU' })
            .meta({ description: 'NodeId of its value.', examples: ['ns=1;s=LA1.GLU'] }),
          unit: z
            .string()
            .optional()
            .meta({ description: 'Unit.', examples: ['mmol/L'] }),
          reference: z
            .strictObject({ lo: z.number().optional(), hi: z.number().optional() })
            .optional()
            .meta({ description: 'Reference range: a value outside it gets the flag L or H.' }),
        }),
      )
      .min(1)
      .meta({ description: 'One node per analyte.' }),
  })
  .meta({ description: 'Lab analyzer results: nodes read each time the trigger point shows a new result.' });

export const opcuaEquipmentSchema = z
  .strictObject({
    mode: z
      .enum(['subscription', 'poll'])
      .default('subscription')
      .meta({
        description:
          'subscription: the server reports changes (one subscription per publishing interval); poll: one Read request per poll_interval, for servers without subscriptions.',
        examples: ['poll'],
      }),
    points: z.array(opcuaPointSchema).min(1).meta({ description: 'Variables read from the server.' }),
    results: opcuaResultsSchema.optional(),
    lads: z
      .strictObject({
        result_set: z
          .string()
          .regex(NODE_ID, { error: 'expected a NodeId such as ns=3;i=5012' })
          .meta({
            description: "NodeId of the functional unit's ProgramManager/ResultSet.",
            examples: ['ns=1;s=Analyzer.FU1.ProgramManager.ResultSet'],
          }),
      })
      .optional()
      .meta({
        description:
          "OPC UA LADS device (OPC 30500-1): the Result objects that appear in the program manager's ResultSet are read as lab results (Samples, Stopped, User, VariableSet), every poll_interval.",
      }),
  })
  .superRefine((eq, ctx) => {
    if (eq.results && Array.isArray(eq.points) && !eq.points.some((p) => p?.name === eq.results!.trigger)) {
      ctx.addIssue({
        code: 'custom',
        path: ['results', 'trigger'],
        message: `no point "${eq.results.trigger}" on this equipment; the trigger is one of its points`,
      });
    }
  });

/** The elevator simulator the gateway can start itself (demo, tests). */
export const opcuaSimulatorSchema = z
  .strictObject({
    type: z.literal('opcua-elevator').meta({ description: 'A traction elevator behind an OPC UA server (drivers/opcua/README.md).' }),
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .meta({ description: 'Address the simulator listens on.', examples: ['127.0.0.1'] }),
    port: port.meta({ description: 'TCP port of the simulator.', examples: [4840] }),
    id: identifier
      .default('Lift3')
      .meta({ description: 'Browse name of the elevator object; NodeIds are ns=1;s=<id>.<Variable>.', examples: ['Lift3'] }),
    security: z
      .enum(['none', 'secure', 'all'])
      .default('all')
      .meta({ description: 'Endpoints offered: none, secure (Sign, SignAndEncrypt) or all.', examples: ['all'] }),
    seed: z
      .int()
      .min(0)
      .default(1)
      .meta({ description: 'Seed of the simulated trips.', examples: [3] }),
    scenario: z
      .strictObject({
        normal: duration
          .prefault('60s')
          .meta({ description: 'Normal trips in one cycle (split in three parts around the faults).', 'x-examples': ['60s'] }),
        trapped: duration
          .prefault('40s')
          .meta({ description: 'Stopped outside the door zone, door closed, passenger inside.', 'x-examples': ['40s'] }),
        ucmp: duration.prefault('5s').meta({ description: 'Moving with the door open.', 'x-examples': ['5s'] }),
        power_loss: duration.prefault('15s').meta({ description: 'Main power off.', 'x-examples': ['15s'] }),
        repeat: z.boolean().default(true).meta({ description: 'Start the cycle again.' }),
      })
      .prefault({})
      .meta({ description: 'Timing of the elevator scenario.' }),
  })
  .meta({ title: 'OPC UA elevator simulator' });

export type OpcuaConnection = z.output<typeof opcuaConnectionSchema>;
export type OpcuaEquipment = z.output<typeof opcuaEquipmentSchema>;
export type OpcuaPoint = z.output<typeof opcuaPointSchema>;
export type OpcuaSimulatorConfig = z.output<typeof opcuaSimulatorSchema>;
