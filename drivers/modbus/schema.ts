import { z } from 'zod';
import { duration, identifier, pointName, port, reconnect } from '../common/primitives.js';
import { ADDRESS_PATTERN, isBitArea, MAX_REGISTERS_PER_READ, parseAddress } from './address.js';
import { BYTE_ORDERS, REGISTER_COUNT, TYPES } from './codec.js';
import { scenarioSchema } from '../sim/schema.js';

const timeout = duration
  .prefault('1s')
  .meta({ description: 'How long to wait for an answer before the request counts as a timeout.', 'x-examples': ['1s', '300ms'] });

/** Planning and failure handling, the same for every Modbus connection type. */
const common = {
  id: identifier.meta({ description: 'Connection id that equipment entries refer to.', examples: ['boiler-plc'] }),
  timeout,
  max_gap: z
    .int()
    .min(0)
    .max(124)
    .default(16)
    .meta({
      description:
        'Unused registers a request may read to join two points into one request (coils and discrete inputs: 16 times as many bits).',
      examples: [16, 0],
    }),
  max_registers_per_read: z
    .int()
    .min(1)
    .max(MAX_REGISTERS_PER_READ)
    .default(MAX_REGISTERS_PER_READ)
    .meta({ description: 'Registers per request at most, for devices that refuse long reads.', examples: [125, 32] }),
  failures_before_backoff: z
    .int()
    .min(1)
    .default(3)
    .meta({
      description:
        'Consecutive failed polls after which a unit id is polled only every backoff_poll_interval, so it cannot slow the others.',
      examples: [3],
    }),
  timeouts_before_reset: z
    .int()
    .min(1)
    .max(1000)
    .default(3)
    .meta({
      description:
        'Requests in a row that got no answer of their own (timeouts, or an answer carrying another transaction id) after which the gateway closes the TCP connection and opens it again (on a serial line: drops what the port holds). A byte stream that cannot be split into frames is reset at once.',
      examples: [3, 10],
    }),
  backoff_poll_interval: duration
    .prefault('10s')
    .meta({ description: 'Poll interval of a unit id that keeps failing, until it answers again.', 'x-examples': ['10s', '1m'] }),
  reconnect,
};

export const modbusTcpConnectionSchema = z
  .strictObject({
    ...common,
    type: z.literal('modbus-tcp').meta({ description: 'Modbus TCP (PLC, gateway or device on Ethernet).' }),
    host: z
      .string()
      .min(1)
      .meta({ description: 'Host name or address of the Modbus TCP server.', examples: ['10.0.0.5'] }),
    port: port.default(502).meta({ description: 'TCP port.', examples: [502] }),
    max_in_flight: z
      .int()
      .min(1)
      .max(16)
      .default(1)
      .meta({
        description: 'Requests outstanding at once on the connection; 1 suits most devices and every serial gateway.',
        examples: [1, 4],
      }),
  })
  .meta({ title: 'modbus-tcp connection' });

export const modbusRtuOverTcpConnectionSchema = z
  .strictObject({
    ...common,
    type: z
      .literal('modbus-rtu-over-tcp')
      .meta({ description: 'Modbus RTU frames through a serial device server (transparent TCP to RS-485).' }),
    host: z
      .string()
      .min(1)
      .meta({ description: 'Host name or address of the serial device server.', examples: ['10.0.0.20'] }),
    port: port.meta({ description: 'TCP port of the serial port on the device server.', examples: [4001, 502] }),
  })
  .meta({ title: 'modbus-rtu-over-tcp connection' });

export const modbusRtuConnectionSchema = z
  .strictObject({
    ...common,
    type: z
      .literal('modbus-rtu')
      .meta({ description: 'Modbus RTU on a local serial port (RS-485/RS-232); one request at a time on the bus.' }),
    path: z
      .string()
      .min(1)
      .meta({ description: 'Serial device.', examples: ['/dev/ttyUSB0', '/dev/ttyS1'] }),
    baud_rate: z
      .int()
      .positive()
      .default(9600)
      .meta({ description: 'Bits per second.', examples: [9600, 19200] }),
    parity: z
      .enum(['none', 'even', 'odd'])
      .default('none')
      .meta({ description: 'Parity bit.', examples: ['even'] }),
    data_bits: z
      .union([z.literal(7), z.literal(8)])
      .default(8)
      .meta({ description: 'Data bits per character.', examples: [8] }),
    stop_bits: z
      .union([z.literal(1), z.literal(2)])
      .default(1)
      .meta({ description: 'Stop bits.', examples: [1] }),
  })
  .meta({ title: 'modbus-rtu connection' });

export const modbusPointSchema = z
  .strictObject({
    name: pointName.meta({ description: 'Point name, unique within the equipment.', examples: ['steam_pressure'] }),
    address: z
      .string()
      .regex(ADDRESS_PATTERN, { error: 'expected area:offset[.bit] such as hr:100, ir:3, co:0, di:12 or hr:130.2 (0-based offsets)' })
      .meta({
        description:
          'Where the point is: area `hr` (holding register), `ir` (input register), `co` (coil) or `di` (discrete input), a 0-based offset, and for a bit of a register `.bit` (0 = least significant).',
        examples: ['hr:100', 'di:0', 'hr:130.2'],
      }),
    type: z
      .enum(TYPES)
      .optional()
      .meta({
        description: 'Data type; `bool` for coils and discrete inputs (the default there), required for registers.',
        examples: ['float32', 'int16', 'bool'],
      }),
    byte_order: z
      .enum(BYTE_ORDERS)
      .optional()
      .meta({ description: "Byte order of multi-register values; defaults to the equipment's byte_order.", examples: ['ABCD', 'CDAB'] }),
    length: z
      .int()
      .min(1)
      .max(MAX_REGISTERS_PER_READ)
      .optional()
      .meta({ description: 'Length of a string in registers (two characters each).', examples: [8] }),
    scale: z
      .number()
      .optional()
      .meta({ description: 'Engineering value = raw × scale + offset.', examples: [0.01, 0.1] }),
    offset: z
      .number()
      .optional()
      .meta({ description: 'Added after scale.', examples: [-40] }),
    unit: z
      .string()
      .optional()
      .meta({ description: 'Engineering unit.', examples: ['MPa', '°C'] }),
    poll_interval: duration
      .optional()
      .meta({ description: "Poll this point at its own interval instead of the equipment's.", 'x-examples': ['5s', '1m'] }),
    description: z.string().optional().meta({ description: 'Free text shown to users.' }),
  })
  .meta({ title: 'Modbus point' });

export type ModbusPoint = z.output<typeof modbusPointSchema>;

/** A lab analyzer's result block, read when its trigger point changes. */
export const modbusResultsSchema = z
  .strictObject({
    trigger: pointName.meta({
      description:
        'A point of this equipment: a result counter (a new result each time it changes) or a ready flag (a new result each time it turns true).',
      examples: ['result_counter'],
    }),
    kind: z.enum(['counter', 'flag']).default('counter').meta({
      description:
        '`counter`: the result id is the instrument and its counter (a jump of more than one is reported as a gap; a reset to 0 starts a new series); `flag`: the result id is a hash of the content.',
    }),
    sample_id: z
      .strictObject({
        address: z
          .string()
          .regex(ADDRESS_PATTERN, { error: 'expected an address such as hr:100' })
          .meta({ description: 'First register of the sample id text.', examples: ['hr:10'] }),
        length: z
          .int()
          .min(1)
          .max(32)
          .meta({ description: 'Registers (two characters each).', examples: [10] }),
        byte_order: z
          .enum(BYTE_ORDERS)
          .default('ABCD')
          .meta({ description: 'Byte order of the text registers.', examples: ['ABCD'] }),
      })
      .meta({ description: 'Where the sample id is, as text.' }),
    analytes: z
      .array(
        modbusPointSchema
          .omit({ poll_interval: true })
          .extend({
            reference: z
              .strictObject({ lo: z.number().optional(), hi: z.number().optional() })
              .optional()
              .meta({ description: 'Reference range: a value outside it gets the flag L or H.' }),
          })
          .meta({ title: 'analyte' }),
      )
      .min(1)
      .meta({ description: 'The values of the block, one per analyte: `name` is the analyte, the other keys as for points.' }),
  })
  .meta({ description: 'Lab analyzer results: a block of registers read each time the trigger point shows a new result.' });

export const modbusEquipmentSchema = z
  .strictObject({
    unit_id: z
      .int()
      .min(0)
      .max(255)
      .default(1)
      .meta({ description: 'Modbus unit (slave) id of the device on its connection.', examples: [1, 3] }),
    byte_order: z
      .enum(BYTE_ORDERS)
      .default('ABCD')
      .meta({ description: 'Default byte order of the points of this equipment.', examples: ['ABCD', 'CDAB'] }),
    points: z.array(modbusPointSchema).min(1).meta({ description: 'Points read from the device.' }),
    results: modbusResultsSchema.optional(),
  })
  .superRefine(
    (eq, ctx) => {
      if (!Array.isArray(eq.points)) return;
      if (eq.results && typeof eq.results.trigger === 'string' && !eq.points.some((p) => p?.name === eq.results!.trigger)) {
        ctx.addIssue({
          code: 'custom',
          path: ['results', 'trigger'],
          message: `no point "${eq.results.trigger}" on this equipment; the trigger is one of its points`,
        });
      }
      eq.points.forEach((p, i) => {
        if (typeof p !== 'object' || p === null || typeof p.address !== 'string') return;
        const at = (key: string) => ['points', i, key];
        const issue = (key: string, message: string) => ctx.addIssue({ code: 'custom', path: at(key), message });
        const a = parseAddress(p.address);
        if (!a) {
          if (ADDRESS_PATTERN.test(p.address)) issue('address', 'offset over 65535');
          return;
        }
        const type = p.type ?? (isBitArea(a.area) ? 'bool' : undefined);
        if (isBitArea(a.area)) {
          if (a.bit !== undefined) issue('address', `${a.area} addresses are single bits and take no bit index`);
          if (type !== 'bool')
            issue('type', `a ${a.area === 'co' ? 'coil' : 'discrete input'} is a single bit: type must be bool, not ${type}`);
        } else {
          if (type === undefined)
            issue('type', 'required for a register point (bool, int16, uint16, int32, uint32, int64, uint64, float32, float64, string)');
          if (a.bit !== undefined && a.bit > 15) issue('address', `bit index ${a.bit} is over 15`);
          if (a.bit !== undefined && type !== undefined && type !== 'bool')
            issue('type', 'a bit of a register is a bool: type must be bool');
        }
        if (type === 'string' && p.length === undefined) issue('length', 'a string needs its length in registers');
        if (type !== 'string' && p.length !== undefined) issue('length', 'only a string takes a length');
        if ((type === 'bool' || type === 'string') && (p.scale !== undefined || p.offset !== undefined))
          issue(p.scale !== undefined ? 'scale' : 'offset', `scale and offset apply to numbers, not to a ${type}`);
        const count = type === 'string' ? (p.length ?? 1) : type === undefined || isBitArea(a.area) ? 1 : REGISTER_COUNT[type];
        if (a.offset + count > 65536) issue('address', `the point runs past the last register (offset ${a.offset} + ${count} registers)`);
      });
    },
    { when: () => true },
  );

export type ModbusEquipment = z.output<typeof modbusEquipmentSchema>;
export type ModbusTcpConnection = z.output<typeof modbusTcpConnectionSchema>;
export type ModbusRtuConnection = z.output<typeof modbusRtuConnectionSchema>;
export type ModbusRtuOverTcpConnection = z.output<typeof modbusRtuOverTcpConnectionSchema>;
export type ModbusConnection = ModbusTcpConnection | ModbusRtuConnection | ModbusRtuOverTcpConnection;

/** A simulated Modbus device the gateway starts itself (demo, training, acceptance tests). */
export const modbusSimulatorSchema = z
  .strictObject({
    type: z
      .literal('modbus-boiler')
      .meta({ description: 'A steam boiler behind a Modbus TCP server (register map in drivers/modbus/README.md).' }),
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .meta({ description: 'Address the simulator listens on.', examples: ['127.0.0.1'] }),
    port: port.meta({ description: 'TCP port the simulator listens on.', examples: [5020] }),
    unit_id: z
      .int()
      .min(0)
      .max(255)
      .default(1)
      .meta({ description: 'Unit id the simulated boiler answers to.', examples: [1] }),
    seed: z
      .int()
      .min(0)
      .default(1)
      .meta({ description: 'Seed of the simulated noise.', examples: [7] }),
    scenario: scenarioSchema,
  })
  .meta({ title: 'Modbus boiler simulator' });

export type ModbusSimulatorConfig = z.output<typeof modbusSimulatorSchema>;
