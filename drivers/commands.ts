// What a driver's commands (`gateway scan modbus`, `gateway browse`, `gateway certs ...`) receive from
// the command line. A driver declares them in its definition (`commands:`, drivers/types.ts); the
// command line registers them on the `gateway` program and gives them its conventions (exit codes,
// examples, the site-file option, checks of option values) and what they may need of the gateway,
// which a driver never imports (lint): the site file's data folder, a logger, the audit journal.
import type { Argument, Command, Option } from '@commander-js/extra-typings';
import type { Logger } from 'pino';

/** An entry of the gateway's audit journal; who made the decision is filled in by the command line (the OS user). */
export interface DriverAuditEntry {
  action: string;
  target: string;
  /** `done`, or `refused: why`. */
  outcome: string;
  detail?: string;
}

export interface DriverCliContext {
  /** Ends the command with this exit code (one of `exit`). */
  done(code: number): void;
  readonly exit: { readonly ok: 0; readonly failure: 1; readonly invalid: 2 };
  /** Standard output and error (a test running the command line in-process gives its own). */
  out(text: string): void;
  err(text: string): void;
  /** The "Examples:" block of a command's help. */
  examples(...lines: string[]): string;
  /**
   * The command `name` under `gateway` that groups others (`scan`, `simulate`): created with this
   * description by the first driver that asks for it, shared by the next ones.
   */
  group(name: string, description: string): Command;
  /** `[file]`: the site file given positionally. */
  siteArgument(): Argument<'[file]', undefined, string>;
  /** `-c, --config <file>`: the site file (the demo's when none is given). */
  configOption(description?: string): Option<'-c, --config <file>', undefined, undefined, string>;
  /** The site file given as FILE or -c FILE (both, differently, is a usage error); undefined when neither is. */
  siteFileOf(command: string, positional: string | undefined, option: string | undefined): string | undefined;
  /** An option value check: a whole number from `min` to `max` (a usage error otherwise, while parsing). */
  integer(min: number, max: number): (value: string) => string;
  /** Refuses the command line: one GW_ERR_USAGE line naming `command` (`scan modbus`), exit 2. */
  usageError(command: string, what: string): never;
  /**
   * The site file (the demo's when undefined), loaded and checked: its data folder, or undefined once
   * its problems are printed (the command then ends with exit.invalid).
   */
  loadSite(file: string | undefined): Promise<{ dataDir: string } | undefined>;
  /** A logger for the libraries the command uses: warnings and errors, one line each, on standard error. */
  logger(): Promise<Logger>;
  /** The audit journal of a data folder, for the security decisions a command makes (trusting a certificate). */
  auditJournal(dataDir: string): Promise<{ append(entry: DriverAuditEntry): void }>;
  /** Standard input, for commands that take control lines while they run. */
  input: NodeJS.ReadableStream;
  /** Resolves when the process is asked to stop (SIGINT, SIGTERM); call it before starting anything. */
  stopped(): Promise<void>;
}

/** A driver's commands. Their work is imported when they run, so that --help stays light. */
export interface DriverCommands {
  register(program: Command, cli: DriverCliContext): void;
}
