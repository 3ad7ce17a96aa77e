// What the command line gives the drivers' commands (drivers/commands.ts): its conventions, and the
// parts of the gateway a driver does not import (the site loader, the logger, the audit journal),
// each loaded when a command asks for it.
import { join } from 'node:path';
import { userInfo } from 'node:os';
import type { Command } from '@commander-js/extra-typings';
import type { DriverCliContext } from '../../drivers/commands.js';
import { dataDirOf, EXIT, siteFileOf, usageError } from './common.js';
import { type CommandContext, configOption, examples, integer, siteArgument } from './declare.js';

export function driverCliContext(program: Command, cli: CommandContext): DriverCliContext {
  return {
    done: cli.done,
    exit: EXIT,
    out: (text) => cli.io.out(text),
    err: (text) => cli.io.err(text),
    examples,
    group(name, description) {
      const existing = program.commands.find((c) => c.name() === name);
      return existing ? (existing as unknown as Command) : program.command(name).description(description);
    },
    siteArgument,
    configOption,
    siteFileOf,
    integer,
    usageError,
    async loadSite(file) {
      const dataDir = await dataDirOf(file);
      return dataDir === undefined ? undefined : { dataDir };
    },
    async logger() {
      const { createLogger } = await import('../log.js');
      return createLogger({ level: 'warn', pretty: false, destination: process.stderr });
    },
    async auditJournal(dataDir) {
      const { AuditJournal } = await import('../audit.js');
      const journal = new AuditJournal(join(dataDir, 'audit.jsonl'));
      // A command run at the gateway's console is the OS user's decision.
      const who = `os:${userInfo().username}`;
      return { append: (entry) => void journal.append({ who, ...entry }) };
    },
    // A getter: touching process.stdin opens it, which only a command that reads it should do.
    get input() {
      return process.stdin;
    },
    stopped: () =>
      new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      }),
  };
}
