// What a command module uses to declare itself on the `gateway` program: the contract every command
// module follows (CliCommand), the options several commands share, the checks of option values that
// commander runs while it parses, and the "Examples:" block of a help. Loaded for --help: node's own
// modules and commander only.
import { statSync } from 'node:fs';
import { Argument, type Command, InvalidArgumentError, Option } from '@commander-js/extra-typings';

/** Where the command line writes (a test gives its own, to run many command lines in one process). */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** What a command's action receives from the program besides its arguments. */
export interface CommandContext {
  /** Ends the command with this exit code (0 done, 1 failed, 2 not understood). */
  done(code: number): void;
  io: CliIo;
}

/**
 * A command module: `register` adds the command (its arguments, options, defaults and help with
 * examples) to the program; its action imports the command's work when it runs, so that every
 * --help loads the declarations and nothing else.
 */
export interface CliCommand {
  register(program: Command, cli: CommandContext): void;
}

export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}`;
}

/**
 * A file the command reads or writes: a folder there is refused while the command line is parsed,
 * one usage line, instead of EISDIR from deep inside the command. A path that does not exist is the
 * command's to report (a file to create, or its own "cannot read").
 */
export function aFile(value: string): string {
  let folder = false;
  try {
    folder = statSync(value).isDirectory();
  } catch {
    // Missing or unreadable: the command says so in its own words when it opens it.
  }
  if (folder) throw new InvalidArgumentError(`takes a file, not the folder "${value}"`);
  return value;
}

/** A whole number from `min` to `max` (or up), checked while the command line is parsed; the value stays the text given. */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => string {
  const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
  return (value) => {
    const n = Number(value);
    if (!/^\s*[-+]?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`takes a whole number ${range}, not "${value}"`);
    }
    return value;
  };
}

/** `[file]`: the site file given positionally, as most commands take it. */
export const siteArgument = () => new Argument('[file]', 'the site file (the same as -c FILE)').argParser(aFile);

/** `-c, --config <file>` of the commands that run on the demo when no site file is given. */
export const configOption = (description = 'the site file (default: the demo, config/demo.yaml)') =>
  new Option('-c, --config <file>', description).argParser(aFile);

/** `-c, --config <file>` of the commands that need a site file. */
export const siteOption = () => new Option('-c, --config <file>', 'the site file').argParser(aFile);
