// The command line registers the drivers' commands from drivers/cli.ts, a light list that spares
// --help the registry's schemas: it must hold exactly the commands the registry's definitions declare.
import { expect, it } from 'vitest';
import { DRIVER_COMMANDS } from '../../../drivers/cli.js';
import { DRIVERS } from '../../../drivers/index.js';

it("lists every driver definition's commands, once each, in the registry's order, and nothing else", () => {
  const declared = [...new Set(DRIVERS.flatMap((d) => (d.commands ? [d.commands] : [])))];
  expect(declared.length).toBeGreaterThan(0);
  expect(DRIVER_COMMANDS).toEqual(declared);
  // The same objects, not look-alikes: a definition's commands are what the command line registers.
  DRIVER_COMMANDS.forEach((c, i) => expect(c).toBe(declared[i]));
});
