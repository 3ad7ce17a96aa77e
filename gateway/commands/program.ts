// The `gateway` command line: global options (help, version), the registry of command modules, and
// what every command line ends with (one usage line and exit 2 for what the gateway does not
// understand, exit codes, one line and no stack for a failure). Each command is a module of its own
// (gateway/commands/*.ts: its declaration, its work imported when it runs); the drivers' commands
// come from their definitions (drivers/cli.ts). --help and --version load the declarations,
// common.ts and commander only.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, type CommanderError } from '@commander-js/extra-typings';
import { DRIVER_COMMANDS } from '../../drivers/cli.js';
import { command as alarms } from './alarms.js';
import { command as audit } from './audit.js';
import { command as check } from './check.js';
import { command as config } from './config.js';
import { EXIT, packageRoot, usageError, UsageError, usageLine } from './common.js';
import { type CliCommand, type CliIo, examples } from './declare.js';
import { driverCliContext } from './driver-context.js';
import { command as grafana } from './grafana.js';
import { command as influxWriter } from './influx-writer.js';
import { command as init } from './init.js';
import { command as lab } from './lab.js';
import { command as mqttUser } from './mqtt-user.js';
import { command as outbox } from './outbox.js';
import { command as platformInbox } from './platform-inbox.js';
import { command as report } from './report.js';
import { command as rules } from './rules.js';
import { command as run } from './run.js';
import { command as token } from './token.js';

export type { CliIo } from './declare.js';

/** The gateway's own commands, in the order of `gateway --help`; the drivers' commands follow. */
const COMMANDS: readonly CliCommand[] = [
  run,
  check,
  config,
  init,
  influxWriter,
  grafana,
  rules,
  platformInbox,
  outbox,
  alarms,
  report,
  lab,
  token,
  mqttUser,
  audit,
];

const PROCESS_IO: CliIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

/** Set in the environment, an unexpected error prints its stack as well as its one line. */
export const DEBUG_VARIABLE = 'GATEWAY_DEBUG';

/** A commander exit (help, version, usage error) from the command named by `path`. */
class CliExit extends Error {
  constructor(
    readonly path: string,
    readonly exit: CommanderError,
    /** The names of the command's own subcommands. */
    readonly subcommands: string[],
  ) {
    super(exit.message);
  }
}

/** The command's name as typed after `gateway` (`alarms ack`), empty for gateway itself. */
function pathOf(command: { name(): string; parent: unknown }): string {
  const names: string[] = [];
  for (let c = command as { name(): string; parent: unknown } | null; c && c.parent; c = c.parent as typeof c) names.unshift(c.name());
  return names.join(' ');
}

/**
 * What commander says is wrong, in the gateway's words: one line, without its "error: " and its
 * final period. A value refused by a check of declare.ts reads as the command's own checks do
 * (`--depth takes a whole number from 1 to 20, not "-5"`).
 */
function reword(exit: CommanderError): string {
  const message = exit.message.replace(/^error: /, '').replace(/\.$/, '');
  const option = /^option '(?:-\w, )?(\S+)[^']*' argument '[\s\S]*' is invalid\. ([\s\S]*)$/.exec(message);
  if (option) return `${option[1]} ${option[2]}`;
  const argument = /^command-argument value '[\s\S]*' is invalid for argument '(\S+)'\. ([\s\S]*)$/.exec(message);
  if (argument) return `${argument[1]!.toUpperCase()} ${argument[2]}`;
  return message.replace(/\s*\n\s*/g, ' ').replace(/\(Did you mean/, '(did you mean');
}

/**
 * Parses `argv` (without node and the script) and runs the command; resolves with its exit code:
 * 0 done, 1 failed, 2 not understood (GW_ERR_USAGE, one line and where the help is, never a stack).
 */
export async function runCli(argv: string[], io: CliIo = PROCESS_IO): Promise<number> {
  let code: number = EXIT.ok;
  let current = '';
  // Help asked for with a mistake (a command without its subcommand) goes here and is printed only
  // for `gateway` alone; a subcommand's mistake is one line.
  let errHelp = '';
  const cli = {
    done: (c: number) => {
      code = c;
    },
    io,
  };
  const version = (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;

  const program = new Command('gateway');
  // Listened for before commander's own listener, which prints the version and ends the parse:
  // `gateway --version extra` is a mistake, not a request for the version.
  program.on('option:version', () => {
    if (argv.length > 1) usageError('', `--version takes no command and no argument, not "${argv.join(' ')}"`);
  });
  program
    .description('Edge gateway for special equipment and lab instruments: Modbus/OPC UA in, MQTT and InfluxDB out, local alarm rules.')
    .version(version, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show the help of a command')
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => (errHelp += s),
      // Errors are printed by runCli, one line naming the command.
      outputError: () => undefined,
    })
    .addHelpText(
      'after',
      `${examples('gateway run site.yaml', 'gateway check site.yaml', 'gateway alarms --help')}\n\nEach command has its own help: gateway COMMAND --help.`,
    );
  program.hook('preAction', (_root, action) => {
    current = pathOf(action);
  });

  for (const command of COMMANDS) command.register(program, cli);
  // A driver's commands are registered the same way, from its definition: the CLI names no driver.
  const driverCli = driverCliContext(program, cli);
  for (const commands of DRIVER_COMMANDS) commands.register(program, driverCli);

  // Every command reports its own commander exits, so the usage line names it.
  const withExits = (command: Command<unknown[], Record<string, unknown>>): void => {
    const path = pathOf(command);
    command.exitOverride((err) => {
      throw new CliExit(
        path,
        err,
        command.commands.map((c) => c.name()),
      );
    });
    for (const sub of command.commands) withExits(sub as unknown as Command<unknown[], Record<string, unknown>>);
  };
  withExits(program as unknown as Command<unknown[], Record<string, unknown>>);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CliExit) {
      // Help and version.
      if (err.exit.exitCode === 0) return EXIT.ok;
      if (err.exit.code === 'commander.help') {
        // A command that takes a subcommand, without one: its help for `gateway` alone, else a line.
        if (err.path === '') io.err(errHelp);
        else io.err(`${usageLine(err.path, `needs one of its commands: ${err.subcommands.join(', ')}`)}\n`);
        return EXIT.invalid;
      }
      // Commander's message is "error: what" and a suggestion on its own line: one line of it.
      io.err(`${usageLine(err.path, reword(err.exit))}\n`);
      return EXIT.invalid;
    }
    if (err instanceof UsageError) {
      io.err(`${usageLine(err.command, err.what)}\n`);
      return EXIT.invalid;
    }
    // A failure nobody expected: one line with its code, the stack only when asked for, and no
    // credentials of a URL it may quote (loaded here: --help does not need it).
    const { redact } = await import('../redact.js');
    const e = err instanceof Error ? err : new Error(String(err));
    const errCode = (e as { code?: unknown }).code;
    io.err(
      redact(
        `gateway${current ? ` ${current}` : ''}: unexpected error: ${e.message.split('\n')[0]} (${typeof errCode === 'string' ? errCode : e.name})${process.env[DEBUG_VARIABLE] ? `\n${e.stack}` : `; ${DEBUG_VARIABLE}=1 shows where`}\n`,
      ),
    );
    return EXIT.failure;
  }
}
