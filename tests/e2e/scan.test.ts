// `gateway scan modbus` against the project's simulator over real Modbus TCP.
import { afterEach, expect, it } from 'vitest';
import { encode } from '../../drivers/modbus/codec.js';
import { createModbusTcpSimulator, RegisterBank, type ModbusSimulator } from '../../drivers/modbus/simulator.js';
import { gatewayAsync } from '../helpers/cli.js';

let sim: ModbusSimulator | undefined;
afterEach(async () => {
  await sim?.stop();
});

it('prints every decoding of the registers, the true one among them', async () => {
  const bank = new RegisterBank();
  bank.set('hr', 200, encode(-273.15, 'float32', 'DCBA'));
  bank.set('co', 0, [1, 0, 1]);
  sim = createModbusTcpSimulator({ devices: new Map([[7, bank]]) });
  await sim.start();
  const r = await gatewayAsync([
    'scan',
    'modbus',
    '--host',
    '127.0.0.1',
    '--port',
    String(sim.port()),
    '--unit',
    '7',
    '--address',
    'hr:200',
    '--count',
    '2',
  ]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`hr:200-201 of unit 7 at 127.0.0.1:${sim.port()}`);
  expect(r.stdout).toMatch(/float32 .*DCBA -273\.149994/);
  const coils = await gatewayAsync([
    'scan',
    'modbus',
    '--host',
    '127.0.0.1',
    '--port',
    String(sim.port()),
    '--unit',
    '7',
    '--address',
    'co:0',
    '--count',
    '3',
  ]);
  expect(coils.stdout).toContain('co:0  true\nco:1  false\nco:2  true');
});

it('says why it cannot read, and rejects bad arguments with exit 2', async () => {
  const bank = new RegisterBank(10);
  sim = createModbusTcpSimulator({ devices: new Map([[1, bank]]) });
  await sim.start();
  const beyond = await gatewayAsync(['scan', 'modbus', '--host', '127.0.0.1', '--port', String(sim.port()), '--address', 'hr:20']);
  expect(beyond.code).toBe(1);
  expect(beyond.stderr).toContain('Read failed: exception 2: illegal data address');
  const bad = await gatewayAsync(['scan', 'modbus', '--host', '127.0.0.1', '--address', 'hr:1.2', '--count', '500']);
  expect(bad.code).toBe(2);
  expect(bad.stderr.trimEnd().split('\n')).toEqual([
    '--address: expected area:offset such as hr:100, ir:0, co:0 or di:0',
    '--count: expected 1-125',
  ]);
});
