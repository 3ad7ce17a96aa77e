// The drivers' commands as the command line takes them: the `commands` of the registry's definitions
// (drivers/index.ts), listed here once more so that the command line can register them without
// loading the registry. The registry loads zod and every driver's schemas, which `gateway --help`,
// `gateway --version` and `gateway token new` must not (tests/integration/light-commands.test.ts):
// a driver's commands live in a light module of its folder (cli.ts: types at the top, the work
// imported when a command runs) that both its definition and this list import. A test
// (tests/unit/drivers/commands.test.ts) fails when this list and the registry's definitions differ,
// so a driver folder's commands are declared in its definition, and the command line learns them
// from the registry alone.
import type { DriverCommands } from './commands.js';
import { modbusCommands } from './modbus/cli.js';
import { opcuaCommands } from './opcua/cli.js';

/** Every driver's commands, in the registry's order. */
export const DRIVER_COMMANDS: readonly DriverCommands[] = [modbusCommands, opcuaCommands];
