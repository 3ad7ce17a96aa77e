// The light commands start without loading the gateway: --version and every --help import nothing
// but node's own modules, `token new` no package, `check` only the config loader's (zod, yaml). A
// static import of a heavy package back in gateway/cli.ts, the config loader or the driver registry
// fails here.
import { beforeAll, describe, expect, it } from 'vitest';
import { SIMULATE_USAGE } from '../../drivers/modbus/simulate-command.js';
import { CLI } from '../helpers/cli.js';
import { packagesBeyond, traceSync, type Traced } from '../helpers/modules.js';

/** What tsx loads to run the sources: not the command's. */
let baseline: Traced;
beforeAll(() => {
  baseline = traceSync(['--input-type=module', '--eval', '']);
  expect(baseline.code).toBe(0);
});

const gateway = (...args: string[]) => traceSync([CLI, ...args]);

describe('gateway light commands', () => {
  it.each(['--version', '--help', 'run --help', 'check --help', 'token --help', 'simulate --help'])('gateway %s loads nothing but node built-ins', (command) => {
    const r = gateway(...command.split(' '));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(packagesBeyond(r, baseline)).toEqual([]);
    expect([...r.files]).toEqual(['gateway/cli.ts']);
  });

  it('gateway token new loads no package', () => {
    const r = gateway('token', 'new', '--name', 'x', '--role', 'viewer');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/hash: "sha256:[0-9a-f]{64}"/);
    expect(packagesBeyond(r, baseline)).toEqual([]);
    expect([...r.files].sort()).toEqual(['gateway/cli.ts', 'gateway/http/tokens.ts']);
  });

  it('gateway check loads the config loader (zod, yaml) and no driver, broker, database or HTTP package', () => {
    const r = gateway('check', 'config/demo.yaml');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // The trace sees packages: the loader's are there.
    expect(packagesBeyond(r, baseline)).toEqual(['yaml', 'zod']);
    // The registry's schemas, never a driver's implementation.
    expect([...r.files].filter((f) => /^drivers\/[^/]+\/(driver|link|simulator|certs)\.ts$/.test(f))).toEqual([]);
  });

  it("prints simulate's usage as drivers/modbus/simulate-command.ts has it", () => {
    expect(gateway('simulate', '--help').stdout).toBe(`Usage:\n${SIMULATE_USAGE}\n`);
  });
});
