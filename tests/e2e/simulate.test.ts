// `gateway simulate modbus`: a device whose faults a user switches while it runs, read by
// `gateway scan modbus` as a user would.
import { spawn } from 'node:child_process';
import { afterEach, expect, it } from 'vitest';
import { CLI, gatewayAsync, gatewaySync, ROOT } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';

const stops: Array<() => void> = [];
afterEach(() => {
  while (stops.length) stops.pop()!();
});

it('misbehaves on demand, as typed on its standard input, and behaves again', async () => {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'simulate', 'modbus', '--port', String(port), '--device', 'bank'], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  stops.push(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await expect.poll(() => out, { timeout: 15_000 }).toContain(`Modbus TCP on 127.0.0.1:${port}, unit 1 (bank)`);
  const scan = () =>
    gatewayAsync([
      'scan',
      'modbus',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--address',
      'hr:0',
      '--count',
      '2',
      '--timeout',
      '500ms',
    ]);

  expect((await scan()).stdout).toContain('hr:0-1 of unit 1');
  child.stdin.write('fault wrong-byte-count\n');
  await expect.poll(() => out).toContain('fault: wrong-byte-count');
  const refused = await scan();
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain('Read failed: byte count 0, expected 4');
  child.stdin.write('fault huge-length\n');
  await expect.poll(() => out).toContain('fault: huge-length');
  expect((await scan()).stderr).toContain('Read failed: framing error: MBAP length 65535, expected 2-254');
  child.stdin.write('fault none\nstatus\n');
  await expect.poll(() => out).toMatch(/unit 1: answering, fault none, .* \d+ requests/);
  expect((await scan()).code).toBe(0);
  child.stdin.write('fault bogus\n');
  await expect.poll(() => out).toContain('unknown fault "bogus"');

  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGINT');
  expect(await exited).toBe(0);
});

it('says what is wrong with its arguments, and every command has --help', async () => {
  const bad = gatewaySync(['simulate', 'modbus', '--fault', 'sometimes', '--unit', '300']);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('--unit: expected 0-255');
  expect(bad.stderr).toContain('--fault: expected one of wrong-byte-count');
  // The help is answered before any command runs, the same way for every command: three of them.
  const commands = ['scan', 'simulate', 'platform-inbox'];
  const helps = await Promise.all(commands.map((c) => gatewayAsync([c, '--help'])));
  commands.forEach((command, i) => {
    expect(helps[i]!.code, command).toBe(0);
    expect(helps[i]!.stdout, command).toContain(`gateway ${command}`);
  });
  const unknown = gatewaySync(['scan', '--no-such-option']);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain("gateway scan: unknown option '--no-such-option' (GW_ERR_USAGE)");
  expect(unknown.stderr).toContain('(GW_ERR_USAGE)');
  expect(unknown.stderr).not.toMatch(/\n\s+at /);
}, 60_000);
