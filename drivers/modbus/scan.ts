// The register scanner (`gateway scan modbus`, declared in cli.ts): every decoding of a block of
// registers side by side, so a user can find the type and byte order of an undocumented device.
import type { DriverCliContext } from '../commands.js';
import { type Area, isBitArea, MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ, parseAddress } from './address.js';
import { BYTE_ORDERS, decode, type DataType } from './codec.js';

const WIDE: Array<{ type: DataType; registers: number }> = [
  { type: 'int32', registers: 2 },
  { type: 'uint32', registers: 2 },
  { type: 'float32', registers: 2 },
  { type: 'int64', registers: 4 },
  { type: 'uint64', registers: 4 },
  { type: 'float64', registers: 4 },
];

const fmt = (v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(9)).toString() : String(v));

/** Lines describing `words` read from `area` at `start`: one block per register offset. */
export function describeRegisters(area: Area, start: number, words: number[]): string[] {
  if (isBitArea(area)) return words.map((w, i) => `${area}:${start + i}  ${w ? 'true' : 'false'}`);
  const lines: string[] = [];
  words.forEach((w, i) => {
    const at = `${area}:${start + i}`;
    const text = String.fromCharCode(w >> 8, w & 0xff).replace(/[^\x20-\x7e]/g, '.');
    lines.push(
      `${at.padEnd(9)} 0x${w.toString(16).padStart(4, '0')}  int16 ${fmt(decode([w], 'int16', 'ABCD'))}  uint16 ${w}  bits ${w.toString(2).padStart(16, '0')}  text "${text}"`,
    );
    for (const { type, registers } of WIDE) {
      if (i + registers > words.length) continue;
      const slice = words.slice(i, i + registers);
      const cells = BYTE_ORDERS.map((o) => `${o} ${fmt(decode(slice, type, o))}`.padEnd(type.endsWith('64') ? 27 : 21));
      lines.push(`          ${type.padEnd(8)}${cells.join(' ')}`.trimEnd());
    }
  });
  return lines;
}

/** The options of `gateway scan modbus`, as given on its command line. */
export interface ScanOptions {
  host?: string | undefined;
  port?: string | undefined;
  path?: string | undefined;
  rtuOverTcp?: boolean | undefined;
  baudRate?: string | undefined;
  parity?: string | undefined;
  dataBits?: string | undefined;
  stopBits?: string | undefined;
  unit: string;
  address: string;
  count: string;
  timeout: string;
}

/** Reads the registers once and prints them; resolves with the exit code. */
export async function scanModbus(o: ScanOptions, cli: DriverCliContext): Promise<number> {
  if (!o.host && !o.path) return cli.usageError('scan modbus', 'needs --host (Modbus TCP) or --path (serial line)');
  // The schemas load zod: only once the command runs.
  const { modbusRtuConnectionSchema, modbusRtuOverTcpConnectionSchema, modbusTcpConnectionSchema } = await import('./schema.js');
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const raw = o.path
    ? {
        id: 'scan',
        type: 'modbus-rtu',
        path: o.path,
        baud_rate: num(o.baudRate),
        parity: o.parity,
        data_bits: num(o.dataBits),
        stop_bits: num(o.stopBits),
        timeout: o.timeout,
      }
    : { id: 'scan', type: o.rtuOverTcp ? 'modbus-rtu-over-tcp' : 'modbus-tcp', host: o.host, port: num(o.port) ?? 502, timeout: o.timeout };
  const schema = o.path ? modbusRtuConnectionSchema : o.rtuOverTcp ? modbusRtuOverTcpConnectionSchema : modbusTcpConnectionSchema;
  const connection = schema.safeParse(Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)));
  const address = parseAddress(o.address);
  const unit = Number(o.unit);
  const count = Number(o.count);
  const limit = address && isBitArea(address.area) ? MAX_BITS_PER_READ : MAX_REGISTERS_PER_READ;
  const problems = [
    ...(connection.success ? [] : connection.error.issues.map((i) => `--${String(i.path[0] ?? '').replace(/_/g, '-')}: ${i.message}`)),
    ...(address && address.bit === undefined ? [] : ['--address: expected area:offset such as hr:100, ir:0, co:0 or di:0']),
    ...(Number.isInteger(unit) && unit >= 0 && unit <= 255 ? [] : ['--unit: expected 0-255']),
    ...(Number.isInteger(count) && count >= 1 && count <= limit ? [] : [`--count: expected 1-${limit}`]),
  ];
  if (problems.length > 0 || !connection.success || !address) {
    cli.err(`${problems.join('\n')}\n`);
    return cli.exit.invalid;
  }
  const { createModbusLink } = await import('./link.js');
  const link = createModbusLink(connection.data, await cli.logger());
  try {
    await link.start();
    if (!link.connected) {
      cli.err(`Cannot connect: ${link.downReason}\n`);
      return cli.exit.failure;
    }
    const words = await link.read(unit, address.area, address.offset, count);
    const where = o.path ?? `${o.host}:${connection.data.type === 'modbus-rtu' ? '' : String((connection.data as { port: number }).port)}`;
    cli.out(
      `${address.area}:${address.offset}-${address.offset + count - 1} of unit ${unit} at ${where}\n${describeRegisters(address.area, address.offset, words).join('\n')}\n`,
    );
    return cli.exit.ok;
  } catch (err) {
    cli.err(`Read failed: ${(err as Error).message}\n`);
    return cli.exit.failure;
  } finally {
    await link.stop();
  }
}
