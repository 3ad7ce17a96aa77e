// The command line's own contract: every command has --help with its options and an example, and
// nothing a user can type gets a stack trace: an unknown option, a missing one, a stray argument or
// an unknown command is one GW_ERR_USAGE line (and where the help is) with exit 2. The help and
// usage checks run the command line in this process (runCli, the function gateway/cli.ts calls), a
// few checks run it as a user does, in a process of its own.
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../gateway/commands/program.js';
import { CLI, gatewayAsync, killGroup, startCommand } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';
import { writeTestSite } from '../helpers/site.js';

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { out: (t) => (stdout += t), err: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

/** Every command that does something, with what it needs to get past its required parts. */
const COMMANDS: Array<{ path: string; needs: string[] }> = [
  { path: 'run', needs: [] },
  { path: 'check', needs: [] },
  { path: 'config migrate', needs: [] },
  { path: 'init', needs: [] },
  { path: 'influx-writer', needs: [] },
  { path: 'rules test', needs: ['--input', 'r.csv'] },
  { path: 'platform-inbox', needs: ['--port', '1', '--secret', 's'] },
  { path: 'outbox list', needs: [] },
  { path: 'outbox retry', needs: [] },
  { path: 'alarms list', needs: [] },
  ...['ack', 'shelve', 'unshelve', 'out-of-service', 'in-service'].map((a) => ({ path: `alarms ${a}`, needs: ['B-07/rule'] })),
  { path: 'token new', needs: ['--name', 'n', '--role', 'viewer'] },
  { path: 'mqtt user new', needs: ['--name', 'n', '--role', 'reader'] },
  { path: 'audit verify', needs: [] },
  { path: 'report daily', needs: [] },
  { path: 'lab daily', needs: [] },
  { path: 'scan modbus', needs: ['--address', 'hr:0'] },
  { path: 'simulate modbus', needs: [] },
  { path: 'certs list', needs: [] },
  { path: 'certs trust', needs: ['abc123'] },
  { path: 'browse', needs: ['opc.tcp://127.0.0.1:4840'] },
];

/** The commands that only group others. */
const GROUPS = ['config', 'rules', 'outbox', 'alarms', 'token', 'mqtt', 'mqtt user', 'audit', 'report', 'lab', 'scan', 'simulate', 'certs'];

/** One usage line naming the command and the code, then the pointer to its help; never a stack. */
function expectUsageError(r: { code: number | null; stdout: string; stderr: string }, path: string, what: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).not.toMatch(/^ {4}at /m);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(2);
  const prefix = `gateway${path ? ` ${path}` : ''}: `;
  expect(lines[0]!.startsWith(prefix), lines[0]).toBe(true);
  expect(lines[0]!.endsWith(' (GW_ERR_USAGE)'), lines[0]).toBe(true);
  // What is wrong comes first, in plain words (not commander's "error: ...").
  expect(lines[0]!.slice(prefix.length)).toMatch(new RegExp(`^${what.source}`));
  expect(lines[1]).toBe(`See \`gateway${path ? ` ${path}` : ''} --help\` for its options and examples.`);
}

describe('gateway --help', () => {
  it('lists every command, and the version is there', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    for (const name of [
      'run',
      'check',
      'config',
      'init',
      'influx-writer',
      'rules',
      'platform-inbox',
      'outbox',
      'alarms',
      'token',
      'mqtt',
      'audit',
      'report',
      'lab',
      'scan',
      'simulate',
      'certs',
      'browse',
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    }
    const version = await cli(['--version']);
    expect(version).toMatchObject({ code: 0, stdout: expect.stringMatching(/^\d+\.\d+\.\d+\n$/) });
  });

  it.each(COMMANDS.map((c) => c.path))('gateway %s --help shows its options, their defaults and an example', async (path) => {
    const r = await cli([...path.split(' '), '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`Usage: gateway ${path} `);
    expect(r.stdout).toMatch(/\nOptions:\n {2}-/);
    expect(r.stdout).toMatch(new RegExp(`\\nExamples:\\n {2}\\$ .*gateway ${path}`));
    // `gateway help run`, `gateway alarms help ack` say the same.
    const words = path.split(' ');
    expect((await cli([...words.slice(0, -1), 'help', words.at(-1)!])).stdout).toBe(r.stdout);
  });

  it('every command that groups others lists them in its help', async () => {
    for (const group of GROUPS) {
      const r = await cli([...group.split(' '), '--help']);
      expect(r.code, group).toBe(0);
      expect(r.stdout, group).toContain('Commands:');
      for (const c of COMMANDS.filter((c) => c.path.startsWith(`${group} `) && c.path.split(' ').length === group.split(' ').length + 1)) {
        expect(r.stdout, group).toMatch(new RegExp(`^  ${c.path.split(' ').at(-1)} `, 'm'));
      }
    }
  });

  it('shows the defaults of the options that have one', async () => {
    expect((await cli(['simulate', 'modbus', '--help'])).stdout).toMatch(/--port <port> +the TCP port to listen on \(default: "5020"\)/);
    expect((await cli(['run', '--help'])).stdout).toMatch(/-c, --config <file> +the site file \(default: the demo, config\/demo.yaml\)/);
    expect((await cli(['scan', 'modbus', '--help'])).stdout).toMatch(/--count <n> +how many registers or bits \(default: "10"\)/);
  });
});

describe('a command line the gateway does not understand', () => {
  it.each(COMMANDS)('gateway $path with an unknown option: one GW_ERR_USAGE line, exit 2', async ({ path, needs }) => {
    expectUsageError(await cli([...path.split(' '), ...needs, '--no-such-option']), path, /unknown option '--no-such-option'/);
  });

  it.each(COMMANDS)('gateway $path with stray arguments: one GW_ERR_USAGE line, exit 2', async ({ path, needs }) => {
    // Two: a command that takes an optional site file takes the first.
    expectUsageError(await cli([...path.split(' '), ...needs, 'stray-1', 'stray-2']), path, /too many arguments/);
  });

  it.each([
    ['token new', ['--name', 'n'], /required option '--role <role>' not specified/],
    ['mqtt user new', ['--role', 'reader'], /required option '--name <name>' not specified/],
    ['platform-inbox', ['--port', '8787'], /required option '--secret <secret>' not specified/],
    ['scan modbus', ['--host', '127.0.0.1'], /required option '--address <area:offset>' not specified/],
    ['rules test', ['site.yaml'], /required option '--input <csv>' not specified/],
    ['alarms ack', [], /missing required argument 'alarm'/],
    ['browse', [], /missing required argument 'endpoint'/],
    ['run', ['--config'], /option '-c, --config <file>' argument missing/],
  ] as const)('gateway %s without what it needs: one GW_ERR_USAGE line, exit 2', async (path, args, what) => {
    expectUsageError(await cli([...path.split(' '), ...args]), path, what);
  });

  it('an unknown command, a misspelt option and a group without its command: one line each, exit 2', async () => {
    expectUsageError(await cli(['nonsense']), '', /unknown command 'nonsense'/);
    expectUsageError(await cli(['run', '--confg', 'site.yaml']), 'run', /unknown option '--confg' \(did you mean --config\?\)/);
    expectUsageError(await cli(['alarms']), 'alarms', /needs one of its commands: list, ack, shelve, unshelve, out-of-service, in-service/);
    expectUsageError(await cli(['alarms', 'snooze', 'B-07/rule']), 'alarms', /unknown command 'snooze'/);
  });

  it('the site file given as FILE and as -c, differently: one GW_ERR_USAGE line, exit 2', async () => {
    for (const path of ['run', 'influx-writer', 'check', 'outbox list', 'certs list', 'audit verify']) {
      expectUsageError(
        await cli([...path.split(' '), 'a.yaml', '-c', 'b.yaml']),
        path,
        /the site file is given twice and differently \("a.yaml" and -c "b.yaml"\)/,
      );
    }
  });
});

describe('what a hostile review typed', () => {
  it('gateway --version with anything else: a usage error, not the version', async () => {
    expectUsageError(await cli(['--version', 'extra']), '', /--version takes no command and no argument, not "--version extra"/);
    expectUsageError(await cli(['run', '-v']), '', /--version takes no command and no argument, not "run -v"/);
  });

  it('gateway token new refuses an empty or blank --name (the audit journal records it for every action)', async () => {
    for (const name of ['', '   ']) {
      expectUsageError(
        await cli(['token', 'new', '--name', name, '--role', 'viewer']),
        'token new',
        new RegExp(`--name takes who or what uses the token, not "${name}"`),
      );
    }
  });

  it('numeric options take whole numbers in their range, checked before anything runs', async () => {
    for (const depth of ['-5', '0', '21', '2.5', 'four', '']) {
      expectUsageError(
        await cli(['browse', 'opc.tcp://127.0.0.1:1', '--depth', depth]),
        'browse',
        new RegExp(`--depth takes a whole number from 1 to 20, not "${depth}"`),
      );
    }
    for (const [path, args, what] of [
      ['alarms shelve', ['B-07/rule', '--minutes', '1.5'], '--minutes takes a whole number from 1 to 1440, not "1.5"'],
      ['outbox retry', ['--seq', '-1'], '--seq takes a whole number of at least 1, not "-1"'],
      ['platform-inbox', ['--port', '70000', '--secret', 's'], '--port takes a whole number from 1 to 65535, not "70000"'],
    ] as const) {
      expectUsageError(await cli([...path.split(' '), ...args]), path, new RegExp(what.replace(/[.]/g, '\\.')));
    }
  });

  it('gateway audit verify takes the site file as FILE, as the other commands do, and names a journal given there', async () => {
    const site = writeTestSite();
    const dataDir = /data_dir: (\S+) \}/.exec(readFileSync(site, 'utf8'))![1]!;
    const r = await cli(['audit', 'verify', site]);
    expect(r, r.stderr).toMatchObject({ code: 0, stdout: `${join(dataDir, 'audit.jsonl')}: 0 entries, the chain is intact\n` });
    expectUsageError(
      await cli(['audit', 'verify', join(dataDir, 'audit.jsonl')]),
      'audit verify',
      /FILE is the site file \(the same as -c FILE\); give a journal with --file ".*audit.jsonl"/,
    );
  });

  it('a folder where a file is expected: one usage line naming the option, not EISDIR', async () => {
    const folder = tmpdir();
    for (const [path, args, what] of [
      ['audit verify', ['--file', folder], '--file'],
      ['check', [folder], 'FILE'],
      ['check', ['-c', folder], '--config'],
      ['certs list', [folder], 'FILE'],
      ['rules test', ['site.yaml', '--input', folder], '--input'],
      ['platform-inbox', ['--port', '1', '--secret', 's', '--out', folder], '--out'],
    ] as const) {
      expectUsageError(await cli([...path.split(' '), ...args]), path, new RegExp(`${what} takes a file, not the folder "${folder}"`));
    }
  });
});

describe('the gateway command as a user runs it', () => {
  it('says the same in a process of its own: no stack for a usage error or an unexpected failure', async () => {
    const [nonsense, unknown, broken, debug] = await Promise.all([
      gatewayAsync(['nonsense']),
      gatewayAsync(['check', '--no-such-option']),
      // A file where a folder of the journal's path should be: not a case the command expects.
      gatewayAsync(['audit', 'verify', '--file', 'package.json/audit.jsonl']),
      gatewayAsync(['audit', 'verify', '--file', 'package.json/audit.jsonl'], { GATEWAY_DEBUG: '1' }),
    ]);
    expectUsageError(nonsense, '', /unknown command 'nonsense'/);
    expectUsageError(unknown, 'check', /unknown option '--no-such-option'/);
    expect(broken.code).toBe(1);
    expect(broken.stderr).not.toMatch(/^ {4}at /m);
    expect(broken.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(broken.stderr).toMatch(/^gateway audit verify: .*\([A-Z_]+\)/);
    // Asked for, the stack is there (when the failure was an unexpected one).
    if (broken.stderr.includes('unexpected error')) expect(debug.stderr).toMatch(/^ {4}at /m);
  }, 60_000);

  it('gateway run FILE runs the site as gateway run -c FILE does', async () => {
    const file = writeTestSite({ port: await freePort() });
    for (const args of [
      ['run', file],
      ['run', '-c', file],
      ['run', file, '-c', join(file, '..', 'site.yaml')],
    ]) {
      const running = startCommand(process.execPath, ['--import', 'tsx', CLI, ...args]);
      try {
        await expect
          .poll(() => running.output(), { timeout: 30_000 })
          .toContain(`Gateway gw-test is running site "test-site" from ${file}`);
        expect(await running.interrupt()).toMatchObject({ code: 0 });
      } finally {
        killGroup(running);
      }
    }
  }, 120_000);
});
