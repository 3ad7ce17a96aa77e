// Every driver folder is registered and documented (Telegraf's rule).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { DRIVERS } from '../../../drivers/index.js';

const root = join(import.meta.dirname, '..', '..', '..', 'drivers');
const NOT_DRIVERS = new Set(['common']);
const folders = readdirSync(root).filter((f) => statSync(join(root, f)).isDirectory() && !NOT_DRIVERS.has(f));

it('registers every driver folder', () => {
  const registered = DRIVERS.map((d) => d.type);
  // A folder may serve several connection types (modbus: modbus-tcp, modbus-rtu...).
  for (const f of folders)
    expect(
      registered.some((t) => t === f || t.startsWith(`${f}-`)),
      `drivers/${f} is not in drivers/index.ts`,
    ).toBe(true);
  expect(new Set(registered).size).toBe(registered.length);
});

it.each(folders)('drivers/%s has a README and a schema', (f) => {
  expect(existsSync(join(root, f, 'README.md'))).toBe(true);
  expect(existsSync(join(root, f, 'schema.ts'))).toBe(true);
});

it('nothing outside drivers/ names a driver or simulator type: the gateway learns a driver only from its definition', () => {
  const types = [...DRIVERS.map((d) => d.type), ...DRIVERS.flatMap((d) => d.simulators.map((s) => s.type))];
  const quoted = new RegExp(`['"\`](?:${types.map((t) => t.replace(/[-]/g, '\\-')).join('|')})['"\`]`);
  const sources = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? sources(join(dir, e.name)) : /\.(ts|js)$/.test(e.name) ? [join(dir, e.name)] : [],
    );
  const repo = join(root, '..');
  // `gateway init` writes a first connection entry for the protocols it can read a device with
  // (Modbus TCP and RTU, OPC UA), and its site file goes through the drivers' schemas before it is
  // written; it is the one place outside drivers/ that names them.
  const INIT = join(repo, 'gateway', 'init');
  const offenders = ['gateway', 'config', 'rules']
    .flatMap((d) => sources(join(repo, d)))
    .filter((file) => !file.startsWith(INIT) && file !== join(repo, 'gateway', 'commands', 'init.ts'))
    .flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .flatMap((line, i) => (quoted.test(line) ? [`${file.slice(repo.length + 1)}:${i + 1}: ${line.trim()}`] : [])),
    );
  expect(offenders).toEqual([]);
});
