// The light commands start without loading the gateway: --version and every --help import nothing
// but node's own modules and the argument parser (commander), `token new` and `mqtt user new` no
// other package, `check` only the config loader's (zod, yaml). A static import of a heavy package
// back in gateway/cli.ts, a command module, a driver's commands, the config loader or the driver
// registry fails here.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FAULTS } from '../../drivers/modbus/simulator.js';
import { CLI, ROOT } from '../helpers/cli.js';
import { packagesBeyond, traceSync, type Traced } from '../helpers/modules.js';

/** What tsx loads to run the sources: not the command's. */
let baseline: Traced;
beforeAll(() => {
  baseline = traceSync(['--input-type=module', '--eval', '']);
  expect(baseline.code).toBe(0);
});

const gateway = (...args: string[]) => traceSync([CLI, ...args]);

/** The argument parser: the one package every command line loads. */
const PARSER = ['@commander-js/extra-typings', 'commander'];
/**
 * The command line and the command modules, which --help reads: every module of gateway/commands
 * (each command's declaration, its work imported when it runs), the drivers' commands (drivers/cli.ts
 * and each driver folder's cli.ts), the two helpers of the gateway that import nothing (run.ts's
 * redact, common.ts's package root), and the duration parser of options such as `rules test --tail`.
 */
const DEFINITIONS = [
  'gateway/cli.ts',
  ...readdirSync(join(ROOT, 'gateway', 'commands')).map((f) => `gateway/commands/${f}`),
  'drivers/cli.ts',
  ...readdirSync(join(ROOT, 'drivers'), { withFileTypes: true })
    .filter((d) => d.isDirectory() && readdirSync(join(ROOT, 'drivers', d.name)).includes('cli.ts'))
    .map((d) => `drivers/${d.name}/cli.ts`),
  'gateway/redact.ts',
  'gateway/package-root.ts',
  'drivers/common/duration.ts',
].sort();

/** The project files `r` loaded are the definitions, `extra` and nothing else (a few definitions may not load). */
function expectDefinitions(r: Traced, ...extra: string[]): void {
  expect([...r.files].filter((f) => !DEFINITIONS.includes(f) && !extra.includes(f))).toEqual([]);
  for (const f of ['gateway/cli.ts', 'gateway/commands/program.ts', 'drivers/cli.ts', ...extra]) expect(r.files).toContain(f);
}

describe('gateway light commands', () => {
  it.each(['--version', '--help', 'run --help', 'check --help', 'token new --help', 'simulate modbus --help', 'alarms ack --help'])(
    'gateway %s loads nothing but node built-ins and the argument parser',
    (command) => {
      const r = gateway(...command.split(' '));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(packagesBeyond(r, baseline)).toEqual(PARSER);
      expectDefinitions(r);
    },
  );

  it('gateway token new loads no package', () => {
    const r = gateway('token', 'new', '--name', 'x', '--role', 'viewer');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/hash: "sha256:[0-9a-f]{64}"/);
    expect(packagesBeyond(r, baseline)).toEqual(PARSER);
    expectDefinitions(r, 'gateway/http/tokens.ts');
  });

  it('gateway mqtt user new loads no package', () => {
    const r = gateway('mqtt', 'user', 'new', '--name', 'scada-1', '--role', 'reader');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/hash: "sha256:[0-9a-f]{64}"/);
    expect(packagesBeyond(r, baseline)).toEqual(PARSER);
    expectDefinitions(r, 'gateway/mqtt/users.ts');
  });

  it('gateway check loads the config loader (zod, yaml) and no driver, broker, database or HTTP package', () => {
    const r = gateway('check', 'config/demo.yaml');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // The trace sees packages: the loader's are there.
    expect(packagesBeyond(r, baseline)).toEqual([...PARSER, 'yaml', 'zod']);
    // The registry's schemas, never a driver's implementation.
    expect([...r.files].filter((f) => /^drivers\/[^/]+\/(driver|link|simulator|certs)\.ts$/.test(f))).toEqual([]);
  });

  it("names every fault mode of the Modbus simulator in simulate modbus's help (written out there to keep the help light)", () => {
    const help = gateway('simulate', 'modbus', '--help').stdout;
    const modes = /MODE: ([\s\S]*?)\n\n/.exec(help)?.[1]?.split(/,\s*/);
    expect(modes).toEqual([...FAULTS]);
  });
});
