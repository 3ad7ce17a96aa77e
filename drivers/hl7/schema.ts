import { z } from 'zod';
import { duration, identifier, pointName, port, reconnect, size } from '../common/primitives.js';

/** The character sets the driver decodes, by their Node/WHATWG names. */
export const CHARSETS = ['utf-8', 'gb18030', 'gbk', 'latin1'] as const;
export type Charset = (typeof CHARSETS)[number];

/** Where the sample id may be read from: the specimen (2.5+), the filler or the placer order number. */
export const SAMPLE_ID_FIELDS = ['SPM-2', 'OBR-3', 'OBR-2'] as const;
export type SampleIdField = (typeof SAMPLE_ID_FIELDS)[number];

const positive = { error: 'expected more than 0' };

export const hl7ConnectionSchema = z
  .strictObject({
    id: identifier.meta({ description: 'Connection id that equipment entries refer to.', examples: ['hl7-1'] }),
    type: z.literal('hl7-mllp').meta({ description: 'An analyzer or lab middleware sending HL7 v2 ORU^R01 results over MLLP (TCP).' }),
    mode: z.enum(['listen', 'connect']).default('listen').meta({
      description: '`listen`: the analyzer connects to the gateway; `connect`: the gateway connects to the analyzer (or its middleware).',
    }),
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .meta({ description: 'Address to listen on (listen) or to connect to (connect).', examples: ['0.0.0.0', '10.0.0.31'] }),
    port: port.meta({ description: 'TCP port.', examples: [2575] }),
    charset: z
      .enum(CHARSETS)
      .default('utf-8')
      .meta({
        description:
          'Character set of a message whose MSH-18 is empty. A message that names its own (UNICODE UTF-8, GB 18030-2000, GBK, 8859/1, ASCII) is read in that one.',
        examples: ['utf-8', 'gb18030'],
      }),
    sample_id: z
      .array(z.enum(SAMPLE_ID_FIELDS))
      .min(1)
      .default(['SPM-2', 'OBR-3', 'OBR-2'])
      .meta({
        description:
          "Where a result's sample id is read, the first field that has one: `SPM-2` (the specimen, v2.5 on), `OBR-3` (filler order number: the analyzer's sample id), `OBR-2` (placer order number: the LIS's).",
        examples: [['OBR-2', 'OBR-3']],
      }),
    control_flag: z
      .strictObject({
        field: z
          .string()
          .regex(/^[A-Z][A-Z0-9]{2}-\d{1,3}(\.\d{1,2})?$/, { error: 'expected an HL7 field such as MSH-16 or OBR-11.1' })
          .meta({ description: 'The field (SEG-n or SEG-n.c) whose value marks a quality-control message.', examples: ['MSH-16'] }),
        values: z
          .array(z.string().min(1))
          .min(1)
          .meta({ description: 'Values of that field that mean a control sample.', examples: [['2'], ['Q', 'QC']] }),
      })
      .optional()
      .meta({
        description:
          "How the instrument marks its quality-control results, besides SPM-11 (specimen role) = Q, which always does. Some analyzers use a header field: check the instrument's HL7 interface manual. Control samples are also recognised by their sample id (the QC settings).",
      }),
    receive_timeout: duration
      .refine((ms) => ms > 0, positive)
      .prefault('30s')
      .meta({
        description:
          'A frame begun (VT) must end (FS CR) within this time; an unfinished one is dropped unanswered, and the sender sends it again.',
        'x-examples': ['30s'],
      }),
    max_message_size: size
      .refine((n) => n > 0, positive)
      .prefault('1MiB')
      .meta({
        description: 'One message, at most, in bytes. A longer one is skipped up to its end, answered AR, counted and logged.',
        'x-examples': ['1MiB', '4MiB'],
      }),
    max_connections: z
      .int()
      .min(1)
      .default(4)
      .meta({
        description:
          'Listen mode: connections open at once, at most. One more is closed as it arrives; refusals are counted and logged at most once a minute.',
        examples: [4, 1],
      }),
    idle_timeout: duration
      .refine((ms) => ms > 0, positive)
      .prefault('5m')
      .meta({
        description:
          'Listen mode: a connection that brings no message for this long is closed; an analyzer connects again when it has results.',
        'x-examples': ['5m', '1h'],
      }),
    reconnect: reconnect.meta({ description: 'Backoff between connection attempts (connect mode).' }),
  })
  .meta({ title: 'hl7-mllp connection' });

export type Hl7Connection = z.output<typeof hl7ConnectionSchema>;

export const hl7PointSchema = z
  .strictObject({
    name: pointName.meta({ description: 'Point name, unique within the equipment.', examples: ['GLU'] }),
    unit: z
      .string()
      .optional()
      .meta({ description: 'Engineering unit.', examples: ['mmol/L'] }),
    description: z.string().optional().meta({ description: 'Free text shown to users.' }),
  })
  .meta({ title: 'hl7 point' });

export const hl7EquipmentSchema = z
  .strictObject({
    points: z.array(hl7PointSchema).default([]).meta({
      description: 'An HL7 analyzer sends results, not polled points; a point named after an analyte also gets its results as readings.',
    }),
  })
  .meta({ title: 'equipment on an hl7-mllp connection' });

/** Ways the simulated analyzer can misbehave, to test the gateway (`none`: it behaves). */
export const HL7_FAULTS = ['none', 'split', 'two-in-one', 'bad-message', 'duplicate'] as const;
export type Hl7Fault = (typeof HL7_FAULTS)[number];

const control = z.strictObject({
  mean: z.number().meta({ description: 'Target mean of the control.', examples: [5.0] }),
  sd: z
    .number()
    .positive()
    .meta({ description: 'Its standard deviation.', examples: [0.1] }),
});

/** The simulated HL7 analyzer: connects to an hl7-mllp listener and sends ORU^R01 results. */
export const hl7SimulatorSchema = z
  .strictObject({
    type: z.literal('hl7-analyzer').meta({
      description:
        'An analyzer that sends ORU^R01 messages over MLLP: patient samples and a run of control samples (QC1-n, QC2-n) in each, waiting for each ACK and sending a message again until it is acknowledged.',
    }),
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .meta({ description: 'Where the gateway listens (an hl7-mllp connection in listen mode).', examples: ['127.0.0.1'] }),
    port: port.meta({ description: 'Port of that listener.', examples: [2575] }),
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,20}$/, { error: 'expected 1-20 letters, digits, "_", "." or "-"' })
      .default('ChemHL7')
      .meta({ description: 'Sending application (MSH-3).', examples: ['ChemHL7'] }),
    version: z
      .enum(['2.3.1', '2.5.1'])
      .default('2.5.1')
      .meta({
        description: 'HL7 version of its messages; 2.5.1 messages carry an SPM segment with the specimen role (Q for controls).',
        examples: ['2.5.1'],
      }),
    charset: z
      .enum(['utf-8', 'gb18030'])
      .default('utf-8')
      .meta({ description: 'Character set of its messages (MSH-18); the analyte names are Chinese.', examples: ['gb18030'] }),
    interval: duration.prefault('20s').meta({ description: 'Time between messages.', 'x-examples': ['20s'] }),
    samples: z
      .int()
      .min(0)
      .max(50)
      .default(2)
      .meta({ description: 'Patient samples per message.', examples: [2] }),
    seed: z
      .int()
      .min(0)
      .default(1)
      .meta({ description: 'Seed of the simulated values.', examples: [1] }),
    controls: z
      .record(z.string().regex(/^[A-Z][A-Z0-9]{0,15}$/), z.partialRecord(z.enum(['1', '2', '3']), control))
      .default({ GLU: { '1': { mean: 5.0, sd: 0.1 }, '2': { mean: 15.0, sd: 0.3 } } })
      .meta({
        description:
          'Control materials by analyte and level: each message carries one control run, a sample QC<level>-<run> per level, values drawn from a normal distribution around the mean.',
        examples: [{ GLU: { '1': { mean: 5.0, sd: 0.1 }, '2': { mean: 15.0, sd: 0.3 } } }],
      }),
    control_noise: z
      .number()
      .min(0)
      .max(3)
      .default(1)
      .meta({
        description:
          'Spread of the controls that are not shifted, in standard deviations: 1 as real controls (a 1-2s warning in about one control of 20, now and then a rejection by chance); 0.5 for a demo whose only rejection is the shifted one (a 10x by chance, ten controls on one side of the mean, stays possible).',
        examples: [1, 0.5],
      }),
    qc_shift: z
      .strictObject({
        from: z
          .int()
          .min(1)
          .meta({ description: 'First control run (1-based) shifted.', examples: [3] }),
        runs: z
          .int()
          .min(1)
          .default(1)
          .meta({ description: 'Runs shifted (one run of two levels is one 2-2s rejection).', examples: [1, 2] }),
        sd: z
          .number()
          .default(2.5)
          .meta({ description: 'Shift, in standard deviations (+2.5: a 2-2s rejection).', examples: [2.5] }),
      })
      .optional()
      .meta({
        description:
          'Shifts the controls of some runs on every level, as a drifting reagent does; a shifted control sits within 0.4 SD of the shift. The default +2.5 SD gives a 2-2s rejection (two controls in a row, or both levels of a run, beyond 2 SD) and never 1-3s.',
      }),
    fault: z
      .enum(HL7_FAULTS)
      .default('none')
      .meta({
        description:
          'How the analyzer misbehaves (tests switch it at run time): `none`; `split` (each message written in small pieces); `two-in-one` (two messages in one write); `bad-message` (before each message one whose NM value is not a number, to be answered AE); `duplicate` (each message sent again with its control id once acknowledged).',
        examples: ['none', 'split'],
      }),
    ack_timeout: duration
      .prefault('10s')
      .meta({ description: 'No ACK for this long: the message is sent again (on a new connection).', 'x-examples': ['10s'] }),
  })
  .meta({ title: 'HL7 analyzer simulator' });

export type Hl7SimulatorConfig = z.output<typeof hl7SimulatorSchema>;
