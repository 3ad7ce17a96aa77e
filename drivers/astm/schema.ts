import { z } from 'zod';
import { duration, identifier, pointName, port, reconnect, size } from '../common/primitives.js';

// Limits that keep one misbehaving peer from taking the gateway's memory or the listener's slots.
const positive = { error: 'expected more than 0' };
const receiveTimeout = duration
  .refine((ms) => ms > 0, positive)
  .prefault('30s')
  .meta({
    description:
      'A session with no frame for this long ends; its unfinished message is dropped whole (E1381: 30 s). A frame begun must also be complete within this time.',
    'x-examples': ['30s'],
  });
const maxMessageSize = size
  .refine((n) => n > 0, positive)
  .prefault('1MiB')
  .meta({
    description:
      'Record text of one message, at most, each record counting 128 characters besides its text (at most 8,192 records in 1 MiB). A longer message is refused: dropped whole, counted, logged once; its frames are NAKed until the analyzer ends the session with EOT.',
    'x-examples': ['1MiB', '4MiB'],
  });
const maxSession = duration
  .refine((ms) => ms > 0, positive)
  .prefault('10m')
  .meta({
    description:
      'One session (ENQ to EOT), at most. A longer session is refused like a message over max_message_size; messages it delivered before are kept.',
    'x-examples': ['10m'],
  });

export const astmConnectionSchema = z
  .strictObject({
    id: identifier.meta({ description: 'Connection id that equipment entries refer to.', examples: ['astm-1'] }),
    type: z.literal('astm-tcp').meta({ description: 'An analyzer speaking ASTM E1381/E1394 (LIS1-A/LIS2-A2) over TCP.' }),
    mode: z.enum(['listen', 'connect']).default('listen').meta({
      description:
        '`listen`: the analyzer connects to the gateway; `connect`: the gateway connects to the analyzer (or to its serial device server).',
    }),
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .meta({ description: 'Address to listen on (listen) or to connect to (connect).', examples: ['0.0.0.0', '10.0.0.21'] }),
    port: port.meta({ description: 'TCP port.', examples: [5100] }),
    receive_timeout: receiveTimeout,
    max_message_size: maxMessageSize,
    max_session: maxSession,
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
          'Listen mode: a connection that brings no accepted frame for this long (silent, line noise, refused frames) is closed; an analyzer connects again when it has results.',
        'x-examples': ['5m', '1h'],
      }),
    reconnect: reconnect.meta({ description: 'Backoff between connection attempts (connect mode).' }),
  })
  .meta({ title: 'astm-tcp connection' });

export const astmSerialConnectionSchema = z
  .strictObject({
    id: identifier.meta({ description: 'Connection id that equipment entries refer to.', examples: ['astm-com1'] }),
    type: z.literal('astm-serial').meta({ description: 'An analyzer speaking ASTM E1381/E1394 on a serial line (RS-232).' }),
    path: z
      .string()
      .min(1)
      .meta({ description: 'Serial device.', examples: ['/dev/ttyUSB0', 'COM3'] }),
    baud_rate: z
      .int()
      .positive()
      .default(9600)
      .meta({ description: 'Baud rate.', examples: [9600, 19200] }),
    data_bits: z
      .union([z.literal(7), z.literal(8)])
      .default(8)
      .meta({ description: 'Data bits.', examples: [8] }),
    parity: z
      .enum(['none', 'even', 'odd'])
      .default('none')
      .meta({ description: 'Parity.', examples: ['none'] }),
    stop_bits: z
      .union([z.literal(1), z.literal(2)])
      .default(1)
      .meta({ description: 'Stop bits.', examples: [1] }),
    receive_timeout: receiveTimeout,
    max_message_size: maxMessageSize,
    max_session: maxSession,
    reconnect: reconnect.meta({ description: 'Backoff between attempts to open the port.' }),
  })
  .meta({ title: 'astm-serial connection' });

export const astmPointSchema = z
  .strictObject({
    name: pointName.meta({ description: 'Point name, unique within the equipment.', examples: ['glucose'] }),
    unit: z
      .string()
      .optional()
      .meta({ description: 'Engineering unit.', examples: ['mmol/L'] }),
    description: z.string().optional().meta({ description: 'Free text shown to users.' }),
  })
  .meta({ title: 'astm point' });

export const astmEquipmentSchema = z
  .strictObject({
    points: z
      .array(astmPointSchema)
      .default([])
      .meta({ description: 'An ASTM analyzer sends results, not polled points; none are needed.' }),
  })
  .meta({ title: 'equipment on an astm-tcp connection' });

export type AstmConnection = z.output<typeof astmConnectionSchema> | z.output<typeof astmSerialConnectionSchema>;
export type AstmEquipment = z.output<typeof astmEquipmentSchema>;

/** Ways the simulated analyzer can misbehave (`none`: it behaves). */
export const ASTM_FAULTS = [
  'none',
  'oversized-frame',
  'endless-frame',
  'garbage',
  'trickle',
  'connection-flood',
  'silence-after-enq',
  'bad-checksums',
  'unread-answers',
] as const;
export type AstmFault = (typeof ASTM_FAULTS)[number];

/** The simulated ASTM analyzer: connects to an astm-tcp listener and sends sessions of results. */
export const astmSimulatorSchema = z
  .strictObject({
    type: z.literal('astm-analyzer').meta({
      description:
        'An analyzer that sends ASTM sessions (several samples, multi-frame records, the first session with one corrupted frame that must be NAKed and resent).',
    }),
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .meta({ description: 'Where the gateway listens (an astm-tcp connection in listen mode).', examples: ['127.0.0.1'] }),
    port: port.meta({ description: 'Port of that listener.', examples: [5100] }),
    name: z
      .string()
      .min(1)
      .default('ChemAnalyzer')
      .meta({ description: 'Sender name in the header record.', examples: ['ChemAnalyzer'] }),
    interval: duration.prefault('20s').meta({ description: 'Time between sessions.', 'x-examples': ['20s'] }),
    samples: z
      .int()
      .min(1)
      .max(50)
      .default(3)
      .meta({ description: 'Samples per session.', examples: [3] }),
    seed: z
      .int()
      .min(0)
      .default(1)
      .meta({ description: 'Seed of the simulated values.', examples: [1] }),
    fault: z
      .enum(ASTM_FAULTS)
      .default('none')
      .meta({
        description:
          'How the analyzer misbehaves, to reproduce field faults (tests can switch it at run time): `none` (a real analyzer); `oversized-frame` (one well-formed frame of fault_bytes of text); `endless-frame` (ENQ, STX, then fault_bytes without a line end); `garbage` (fault_bytes of random bytes); `trickle` (a session one byte per fault_interval); `connection-flood` (fault_connections more connections at once, held silent, beside normal sessions; once per switch to it); `silence-after-enq` (ENQ, then nothing); `bad-checksums` (every frame with a wrong checksum, every attempt); `unread-answers` (fault_bytes of ENQs, each one answered, with a valid frame now and then, never reading the answers).',
        examples: ['none', 'endless-frame'],
      }),
    fault_bytes: size.prefault('1MiB').meta({
      description: 'Bytes an oversized-frame, endless-frame, garbage or unread-answers fault sends.',
      'x-examples': ['1MiB', '150MiB'],
    }),
    fault_interval: duration.prefault('1s').meta({ description: 'Time between the bytes of a trickle fault.', 'x-examples': ['1s'] }),
    fault_connections: z
      .int()
      .min(1)
      .max(10_000)
      .default(1000)
      .meta({ description: 'Connections a connection-flood fault opens.', examples: [1000] }),
  })
  .meta({ title: 'ASTM analyzer simulator' });

export type AstmSimulatorConfig = z.output<typeof astmSimulatorSchema>;
