// What the command modules share: exit codes, the package root, loading a site file and reporting
// its problems, and the one-line usage error. Only node's own modules (and gateway/package-root.ts,
// which imports nothing else) are imported at the top: the command definitions
// (gateway/commands/program.ts) import this file for --help too.
import { join, resolve } from 'node:path';
import type { SiteConfig } from '../../config/schema.js';
import { packageRoot } from '../package-root.js';

export const EXIT = { ok: 0, failure: 1, invalid: 2 } as const;

// The command modules take it from here with the rest of what they share.
export { packageRoot };

/** The demo's site file, which the commands that take -c use when none is given. */
export function demoSite(): string {
  return join(packageRoot(), 'config', 'demo.yaml');
}

/** A command line the command does not accept; runCli prints it as one line and exits 2. */
export class UsageError extends Error {
  constructor(
    readonly command: string,
    readonly what: string,
  ) {
    super(`gateway ${command}: ${what}`);
    this.name = 'UsageError';
  }
}

/** Refuses the command line: one line with the code, and where the help is (exit 2). */
export function usageError(command: string, what: string): never {
  throw new UsageError(command, what);
}

export function usageLine(command: string, what: string): string {
  const path = command ? `gateway ${command}` : 'gateway';
  return `${path}: ${what} (GW_ERR_USAGE)\nSee \`${path} --help\` for its options and examples.`;
}

/**
 * The site file of a command that takes it as `FILE` or as `-c FILE`. Both given and different is a
 * usage error (which one was meant?); undefined when neither is given.
 */
export function siteFileOf(command: string, positional: string | undefined, option: string | undefined): string | undefined {
  if (positional !== undefined && option !== undefined && resolve(positional) !== resolve(option)) {
    usageError(command, `the site file is given twice and differently ("${positional}" and -c "${option}"); give it once`);
  }
  return positional ?? option;
}

/** The site file as siteFileOf finds it, for a command that cannot go without one: a usage error when none is given. */
export function requiredSiteFile(command: string, positional: string | undefined, option: string | undefined): string {
  return siteFileOf(command, positional, option) || usageError(command, 'needs the site file, as FILE or -c FILE');
}

/** The site file, or undefined once its problems are printed. */
export async function loadOrReport(file: string): Promise<SiteConfig | undefined> {
  const { ConfigError, formatProblem, GatewayError } = await import('../../config/errors.js');
  const { loadSiteFile } = await import('../../config/load.js');
  try {
    // A note (a site file of an older version, read through its migration) is one line once the file
    // loads; a file with problems gets its problems only.
    const notes: string[] = [];
    const site = loadSiteFile(file, process.env, (n) => notes.push(`${file}: note: ${formatProblem(n)}\n`));
    for (const note of notes) process.stderr.write(note);
    return site;
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) process.stderr.write(`${p.path}: ${p.message}${p.line ? ` (line ${p.line})` : ''}\n`);
      return undefined;
    }
    if (err instanceof GatewayError) {
      process.stderr.write(`${err.message} (${err.code})\n`);
      return undefined;
    }
    throw err;
  }
}

/** The data folder of the site file given with -c (the demo's by default), for certificate commands. */
export async function dataDirOf(file: string | undefined): Promise<string | undefined> {
  const config = await loadOrReport(file ?? demoSite());
  return config && resolve(config.gateway.data_dir);
}
