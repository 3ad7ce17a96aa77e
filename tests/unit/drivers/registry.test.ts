// Every driver folder is registered and documented (Telegraf's rule).
import { existsSync, readdirSync, statSync } from 'node:fs';
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
