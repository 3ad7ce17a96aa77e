#!/usr/bin/env -S node --optimize-for-size
// The `gateway` command. The command line is parsed by commander (gateway/commands/program.ts), chosen
// over yargs and citty because it has no dependencies of its own and loads in a few milliseconds
// (--help must stay light: tests/integration/light-commands.test.ts), gives every subcommand its own
// help with defaults and examples (addHelpText), reports unknown options and stray arguments with an
// error we can reword (exitOverride), and is typed by @commander-js/extra-typings. It has no shell
// completion; yargs has, at the price of more packages and a slower start, which every --help and
// `token new` would pay.
//
// Only node's own modules, commander and the command definitions are loaded at start: each command
// imports what it needs when it runs (the config loader takes zod and yaml, a running gateway only
// the packages of the parts its site file configures).
import { runCli, DEBUG_VARIABLE } from './commands/program.js';

export { EXIT, packageRoot } from './commands/common.js';

/**
 * A failure outside any command (an error thrown from a callback): one line, never a raw stack, and
 * no credentials of a URL it may quote.
 */
let dying = false;
function fatal(what: string, err: unknown): void {
  // The first failure is the one to report; the process ends within milliseconds of it.
  if (dying) return;
  dying = true;
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as { code?: unknown }).code;
  const line = `gateway: ${what}: ${e.message.split('\n')[0]} (${typeof code === 'string' ? code : e.name})${process.env[DEBUG_VARIABLE] ? `\n${e.stack}` : ''}\n`;
  import('./redact.js')
    .then(
      ({ redact }) => process.stderr.write(redact(line)),
      () => process.stderr.write(line),
    )
    .finally(() => process.exit(1));
}

// Whatever a command creates (the data folder, databases, spools, the audit journal and its key, OPC
// UA keys, an inbox's files) is its user's alone: 0700 folders, 0600 files (gateway/data-dir.ts).
process.umask(0o077);

// `gateway run` logs these and exits on handlers of its own, through the gateway's log (where an
// operator looks, stack included); the other commands have only these.
process.on('uncaughtException', (err) => {
  if (process.listenerCount('uncaughtException') === 1) fatal('unexpected error', err);
});
process.on('unhandledRejection', (reason) => {
  if (process.listenerCount('unhandledRejection') === 1) fatal('unhandled promise rejection', reason);
});

runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => fatal('unexpected error', err),
);
