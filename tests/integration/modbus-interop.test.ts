// The Modbus driver against servers that are not ours: pymodbus over Modbus TCP, and our RTU
// simulator behind a socat TCP-to-serial bridge (a serial device server) for modbus-rtu-over-tcp.
// And our simulator against a client that is not ours (modbus-serial), so both ends of our own
// frame layer are checked against another implementation.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSite } from '../../config/load.js';
import { BYTE_ORDERS, REGISTER_COUNT, type ByteOrder, type DataType } from '../../drivers/modbus/codec.js';
import { modbusRtuOverTcpDriver, modbusTcpDriver } from '../../drivers/modbus/index.js';
import * as modbusSerial from 'modbus-serial';
import type { ModbusRTU } from 'modbus-serial/ModbusRTU.js';
import { createModbusRtuSimulator, createModbusTcpSimulator, RegisterBank } from '../../drivers/modbus/simulator.js';
import { startPtyPair } from '../helpers/socat.js';
import type { DriverDefinition, Reading } from '../../drivers/types.js';
import { ROOT } from '../helpers/cli.js';
import { decodingCases, expectCases, expectedOf, NUMBER_SAMPLES, type DecodingCase } from '../helpers/modbus-cases.js';
import { freePort } from '../helpers/processes.js';

const silent = pino({ level: 'silent' });

describe('Modbus interoperability', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });

  const readOnce = async (definition: DriverDefinition, connection: string, unit: number, points: string[]): Promise<Reading[]> => {
    const cfg = parseSite(
      `version: 1
gateway: { id: g, site: s }
connections: [${connection}]
equipment:
  - { id: dev, category: other, connection: c, unit_id: ${unit}, poll_interval: 300ms, points: [${points.join(', ')}] }
`,
      { env: {} },
    );
    const batches: Reading[][] = [];
    const d = definition.create(cfg.connections[0]!, cfg.equipment, { log: silent, sink: (b) => batches.push(b), dataDir: '/nonexistent' });
    cleanup.push(() => d.stop());
    await d.init();
    await d.start();
    // The first complete read (every point, all good): a device may still be coming up when the first poll goes out.
    const complete = (b: Reading[]) => b.length === points.length && b.every((r) => r.quality === 'good');
    await expect.poll(() => batches.some(complete), { timeout: 8000 }).toBe(true);
    return batches.find(complete)!;
  };

  /** Debian's pymodbus serving `spec` (see the fixture); resolves with its port once it listens. */
  const pymodbusServer = async (spec: Record<string, unknown>): Promise<number> => {
    const port = await freePort();
    const server = spawn('/usr/bin/python3', [join(ROOT, 'tests', 'fixtures', 'pymodbus-server.py'), String(port), JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanup.push(async () => server.kill('SIGKILL'));
    let stderr = '';
    server.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise((resolve, reject) => {
      server.stdout.once('data', resolve);
      server.once('exit', (code) => reject(new Error(`pymodbus server exited with ${code}: ${stderr}`)));
    });
    return port;
  };
  const tcpConnection = (port: number) =>
    `{ id: c, type: modbus-tcp, host: 127.0.0.1, port: ${port}, timeout: 1s, reconnect: { initial_delay: 200ms } }`;

  it('reads every type and byte order exactly from a pymodbus server', async () => {
    const { writes, points, cases } = decodingCases();
    const spec: Record<string, unknown> = { unit: 9, hr: {}, ir: {}, co: {}, di: {} };
    for (const w of writes) (spec[w.area] as Record<string, number[]>)[String(w.offset)] = w.words;
    const port = await pymodbusServer(spec);
    expectCases(await readOnce(modbusTcpDriver, tcpConnection(port), 9, points), cases);
  });

  it("reads every type and byte order as pymodbus's own payload builder lays them out, not only as our encoder does", async () => {
    // The registers come from pymodbus's BinaryPayloadBuilder (Debian's pymodbus 3.0): a byte-order
    // mistake shared by our encoder and decoder would pass the test above, and fails this one.
    const build: Array<{ offset: number; type: string; order: string; value: number | string }> = [];
    const points: string[] = [];
    const cases: DecodingCase[] = [];
    let at = 0;
    const add = (type: Exclude<DataType, 'bool'>, order: ByteOrder, value: number | string, registers: number, extra = '') => {
      const name = `${type}_${order.toLowerCase()}`;
      build.push({ offset: at, type, order, value });
      points.push(`{ name: ${name}, address: "hr:${at}", type: ${type}, byte_order: ${order}${extra} }`);
      cases.push({ point: name, expect: expectedOf(type, value) });
      at += registers + 1;
    };
    for (const [type, value] of NUMBER_SAMPLES) for (const order of BYTE_ORDERS) add(type, order, value, REGISTER_COUNT[type]);
    for (const order of BYTE_ORDERS) add('string', order, 'SN-0042-A', 5, ', length: 5');
    expect(cases).toHaveLength((NUMBER_SAMPLES.length + 1) * BYTE_ORDERS.length);
    const port = await pymodbusServer({ unit: 9, build });
    expectCases(await readOnce(modbusTcpDriver, tcpConnection(port), 9, points), cases);
  });

  it('reads through a serial device server with modbus-rtu-over-tcp', async () => {
    const { writes, points, cases } = decodingCases();
    const bank = new RegisterBank();
    for (const w of writes) bank.set(w.area, w.offset, w.words);
    const dir = mkdtempSync(join(tmpdir(), 'gw-rtutcp-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    const tty = join(dir, 'device-tty');
    // socat plays the serial device server: TCP on one side, a serial line (pseudo-terminal) on the other.
    const bridge = spawn('socat', [`tcp-listen:${port},bind=127.0.0.1,reuseaddr,fork`, `pty,raw,echo=0,link=${tty}`], { stdio: 'ignore' });
    cleanup.push(async () => bridge.kill('SIGKILL'));
    // The pty exists once a TCP client connects; the driver connects first, then the device opens its end.
    const batchPromise = readOnce(
      modbusRtuOverTcpDriver,
      `{ id: c, type: modbus-rtu-over-tcp, host: 127.0.0.1, port: ${port}, timeout: 1s, reconnect: { initial_delay: 200ms } }`,
      4,
      points,
    );
    await expect.poll(() => import('node:fs').then((fs) => fs.existsSync(tty)), { timeout: 5000 }).toBe(true);
    const device = createModbusRtuSimulator({ path: tty, devices: new Map([[4, bank]]) });
    await device.start();
    cleanup.push(() => device.stop());
    expectCases(await batchPromise, cases);
  });

  it('our simulator answers an independent client (modbus-serial) over TCP and RTU, reads and writes', async () => {
    const bank = new RegisterBank(1000);
    bank.set('hr', 10, [1, 2, 0xffff]);
    bank.set('ir', 3, [42]);
    bank.set('co', 0, [1, 0, 1, 1, 0, 0, 0, 0, 1]);
    bank.set('di', 5, [1]);
    const tcp = createModbusTcpSimulator({ devices: new Map([[3, bank]]) });
    await tcp.start();
    cleanup.push(() => tcp.stop());
    const dir = mkdtempSync(join(tmpdir(), 'gw-interop-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const pty = await startPtyPair(dir);
    cleanup.push(() => pty.stop());
    const rtu = createModbusRtuSimulator({ path: pty.b, baudRate: 19200, devices: new Map([[3, bank]]) });
    await rtu.start();
    cleanup.push(() => rtu.stop());

    const Client = modbusSerial.default as unknown as new () => ModbusRTU;
    for (const connect of [
      (c: ModbusRTU) => c.connectTCP('127.0.0.1', { port: tcp.port() }),
      (c: ModbusRTU) => c.connectRTUBuffered(pty.a, { baudRate: 19200 }),
    ]) {
      const client = new Client();
      await connect(client);
      cleanup.push(() => new Promise<void>((r) => client.close(() => r())));
      client.setID(3);
      client.setTimeout(1000);
      expect((await client.readHoldingRegisters(10, 3)).data).toEqual([1, 2, 0xffff]);
      expect((await client.readInputRegisters(3, 1)).data).toEqual([42]);
      expect((await client.readCoils(0, 9)).data.slice(0, 9)).toEqual([true, false, true, true, false, false, false, false, true]);
      expect((await client.readDiscreteInputs(5, 1)).data[0]).toBe(true);
      await client.writeRegisters(20, [7, 8]);
      await client.writeRegister(22, 9);
      expect((await client.readHoldingRegisters(20, 3)).data).toEqual([7, 8, 9]);
      await expect(client.readHoldingRegisters(999, 5)).rejects.toMatchObject({ modbusCode: 2 });
    }
  });
});
