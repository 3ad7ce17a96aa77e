// `gateway scan modbus`: read registers once and print every decoding of them side by side.
import { EXIT, usageError } from './common.js';

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

export async function scanCommand(o: ScanOptions): Promise<number> {
  if (!o.host && !o.path) return usageError('scan modbus', 'needs --host (Modbus TCP) or --path (serial line)');
  const { isBitArea, MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ, parseAddress } = await import('../../drivers/modbus/address.js');
  const { modbusRtuConnectionSchema, modbusRtuOverTcpConnectionSchema, modbusTcpConnectionSchema } =
    await import('../../drivers/modbus/schema.js');
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
    process.stderr.write(`${problems.join('\n')}\n`);
    return EXIT.invalid;
  }
  const { createLogger } = await import('../log.js');
  const { createModbusLink } = await import('../../drivers/modbus/link.js');
  const { describeRegisters } = await import('../../drivers/modbus/scan.js');
  const log = createLogger({ level: 'warn', pretty: false, destination: process.stderr });
  const link = createModbusLink(connection.data, log);
  try {
    await link.start();
    if (!link.connected) {
      process.stderr.write(`Cannot connect: ${link.downReason}\n`);
      return EXIT.failure;
    }
    const words = await link.read(unit, address.area, address.offset, count);
    const where = o.path ?? `${o.host}:${connection.data.type === 'modbus-rtu' ? '' : String((connection.data as { port: number }).port)}`;
    process.stdout.write(
      `${address.area}:${address.offset}-${address.offset + count - 1} of unit ${unit} at ${where}\n${describeRegisters(address.area, address.offset, words).join('\n')}\n`,
    );
    return EXIT.ok;
  } catch (err) {
    process.stderr.write(`Read failed: ${(err as Error).message}\n`);
    return EXIT.failure;
  } finally {
    await link.stop();
  }
}
