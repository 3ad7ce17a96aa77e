// What a driver's commands (`gateway scan modbus`, `gateway browse`, `gateway certs ...`) receive from
// the command line: they are registered on the `gateway` program by the driver's definition, and the
// command line gives them its conventions (exit codes, examples, the site-file option).
import type { Command, Option } from '@commander-js/extra-typings';

export interface DriverCliContext {
  /** Ends the command with this exit code (0 done, 1 failed, 2 not understood). */
  done(code: number): void;
  /** The "Examples:" block of a command's help. */
  examples(...lines: string[]): string;
  /** `-c, --config <file>`: the site file. */
  configOption(): Option<'-c, --config <file>'>;
}

/** A driver's commands. Their work is imported when they run, so that --help stays light. */
export interface DriverCommands {
  register(program: Command, cli: DriverCliContext): void;
}
