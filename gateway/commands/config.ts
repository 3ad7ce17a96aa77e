// `gateway config migrate`: rewrites a site file of an older version as the current one (or as
// version --to), printing it or, with --write, replacing it after keeping the old one beside it as
// `<file>.bak-v<version>`. Only the keys a step changes are edited in the text: comments and layout
// stay. The result must pass the same checks as `gateway check`, or nothing is written.
import { EXIT, requiredSiteFile } from './common.js';
import { type CliCommand, examples, integer, siteArgument, siteOption } from './declare.js';

export interface MigrateOptions {
  write?: boolean;
  to?: number;
}

/** The site file is no longer what was read and migrated. */
class ChangedMeanwhile extends Error {}

export async function configMigrateCommand(file: string, o: MigrateOptions = {}): Promise<number> {
  const {
    chmodSync,
    chownSync,
    closeSync,
    constants,
    fstatSync,
    fsyncSync,
    openSync,
    readFileSync,
    realpathSync,
    renameSync,
    rmSync,
    statSync,
    writeFileSync,
    writeSync,
  } = await import('node:fs');
  const { dirname } = await import('node:path');
  const { parseDocument, LineCounter } = await import('yaml');
  const { ConfigError, formatProblem } = await import('../../config/errors.js');
  const { parseSite, readSiteBytes, SITE_FILE_LIMITS } = await import('../../config/load.js');
  const { prescanYaml } = await import('../../config/prescan.js');
  const { applyEdits, migrateSiteDocument, SITE_FILE_VERSION } = await import('../../config/site-version.js');
  const fail = (lines: string[]) => {
    for (const l of lines) process.stderr.write(`${l}\n`);
    return EXIT.invalid;
  };

  let text: string;
  let mode: number;
  let owner: { uid: number; gid: number };
  try {
    const fd = openSync(file, 'r');
    try {
      const st = fstatSync(fd);
      mode = st.mode & 0o777;
      owner = { uid: st.uid, gid: st.gid };
      const bytes = readSiteBytes(fd);
      if (bytes.length > SITE_FILE_LIMITS.maxBytes)
        return fail([`${file}: (yaml): the file is over ${SITE_FILE_LIMITS.maxBytes} bytes, the limit`]);
      text = bytes.toString('utf8');
      // Bytes that are not UTF-8 (a Latin-1 comment) would be written back as U+FFFD, in the file and
      // in its backup: the file is no longer the one the user had, and there is no way back.
      if (!Buffer.from(text, 'utf8').equals(bytes)) {
        const bad = text.indexOf('\uFFFD');
        const line = text.slice(0, bad < 0 ? 0 : bad).split('\n').length;
        return fail([
          `${file}: (yaml): the file is not UTF-8 text (line ${line}); save it as UTF-8 and migrate again (nothing was written)`,
        ]);
      }
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    process.stderr.write(`Cannot read site file "${file}": ${(err as Error).message} (GW_ERR_CONFIG_READ)\n`);
    return EXIT.invalid;
  }
  const hostile = prescanYaml(text, SITE_FILE_LIMITS);
  if (hostile) return fail([`${file}: (yaml): ${hostile.message}${hostile.line ? ` (line ${hostile.line})` : ''}`]);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, logLevel: 'error' });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    return fail([`${file}: (yaml): ${e.message.split('\n')[0]!}`, `Fix it first: gateway check ${file}`]);
  }

  let migration;
  try {
    migration = migrateSiteDocument(doc, file, o.to ?? SITE_FILE_VERSION, (offset) => lines.linePos(offset).line);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return fail(err.problems.map((p) => `${file}: ${formatProblem(p)}`));
  }
  const migrated = applyEdits(text, migration.edits);
  // Checked as `gateway check` would, but without this shell's environment: ${VAR} may be unset here.
  // An error without problems says only that: what a placeholder stands for is checked at start.
  try {
    parseSite(migrated, { file, env: false });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    if (err.problems.length > 0)
      return fail([
        ...err.problems.map((p) => `${file}: ${formatProblem(p)}`),
        `${file}: not migrated: the file has ${err.problems.length === 1 ? 'this problem' : 'these problems'} at version ${migration.to}; fix ${err.problems.length === 1 ? 'it' : 'them'} (gateway check ${file}) and migrate again`,
      ]);
  }

  const summary =
    migration.from === migration.to
      ? `${file}: already at site-file version ${migration.to}; nothing to change`
      : `${file}: site-file version ${migration.from} -> ${migration.to}`;
  if (!o.write) {
    process.stdout.write(migrated);
    process.stderr.write(`${[summary, ...migration.changes.map((c) => `  ${c}`)].join('\n')}\n`);
    return EXIT.ok;
  }
  if (migration.from === migration.to) {
    process.stdout.write(`${summary}\n`);
    return EXIT.ok;
  }
  // The backup and the new file get the old one's owner and group (and mode), or are not written:
  // root migrating a root:se-gateway 0640 file would otherwise leave root's group on it, and the
  // service could no longer read its site file at the next start.
  const sameOwner = (path: string) => {
    const st = statSync(path);
    if (st.uid === owner.uid && st.gid === owner.gid) return;
    try {
      chownSync(path, owner.uid, owner.gid);
    } catch (err) {
      throw new Error(
        `cannot give it the old file's owner and group (${owner.uid}:${owner.gid}): ${(err as Error).message}; run the command as root or as the file's owner`,
        { cause: err },
      );
    }
  };
  // A file's name is on disk once its folder is synced; a file system that cannot sync a folder (EINVAL) has nothing to do.
  const syncFolder = (path: string) => {
    const fd = openSync(dirname(path), 'r');
    try {
      fsyncSync(fd);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    } finally {
      closeSync(fd);
    }
  };
  // The old file is kept, never overwritten: a second migration of a restored file must not lose the first backup.
  const backup = `${file}.bak-v${migration.from}`;
  try {
    const fd = openSync(backup, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
    try {
      try {
        writeSync(fd, text);
        // On disk before the site file is replaced: after a power cut the way back is never an empty file.
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      sameOwner(backup);
      syncFolder(backup);
    } catch (err) {
      rmSync(backup, { force: true });
      throw err;
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    process.stderr.write(
      code === 'EEXIST'
        ? `${backup} exists already: move it away, then migrate again (nothing was written)\n`
        : `Cannot write ${backup}: ${(err as Error).message} (nothing was written)\n`,
    );
    return EXIT.failure;
  }
  // A new file renamed over the old: a crash leaves the old file or the new one, never half of each.
  try {
    // A site file that is a symbolic link stays one: the file it points to is replaced.
    const target = realpathSync(file);
    const temporary = `${target}.migrating-${process.pid}`;
    writeFileSync(temporary, migrated, { mode, flush: true });
    try {
      // The old file's mode exactly (the command's umask is 077): a 0640 file the service reads by its group stays readable.
      chmodSync(temporary, mode);
      sameOwner(temporary);
      // Saved by someone else since it was read: renaming over it would lose their change without a word.
      if (!readFileSync(target).equals(Buffer.from(text, 'utf8'))) throw new ChangedMeanwhile();
      renameSync(temporary, target);
    } catch (err) {
      rmSync(temporary, { force: true });
      throw err;
    }
  } catch (err) {
    if (err instanceof ChangedMeanwhile) {
      rmSync(backup, { force: true });
      process.stderr.write(`${file} changed while it was being migrated (saved by someone else?): nothing was written; migrate again\n`);
      return EXIT.failure;
    }
    process.stderr.write(`Cannot write ${file}: ${(err as Error).message} (the file is unchanged; ${backup} is a copy of it)\n`);
    return EXIT.failure;
  }
  // The rename on disk too: once the command says so, a power cut does not bring the old file back.
  try {
    syncFolder(realpathSync(file));
  } catch (err) {
    process.stderr.write(`${file} was replaced, but its folder could not be synced to disk: ${(err as Error).message}\n`);
    return EXIT.failure;
  }
  process.stdout.write(
    `${[summary, ...migration.changes.map((c) => `  ${c}`), `The version ${migration.from} file is kept as ${backup}`].join('\n')}\n`,
  );
  return EXIT.ok;
}

export const command: CliCommand = {
  register(program, cli) {
    const config = program.command('config').description('site-file tools: migrate a file of an older version');
    config
      .command('migrate')
      .description(
        'rewrite a site file of an older version as the current one (docs/upgrades.md): printed, or in place with --write (the old file kept as FILE.bak-vN); comments and layout stay',
      )
      .addArgument(siteArgument())
      .addOption(siteOption())
      .option('--write', 'replace the file (after keeping it as FILE.bak-v<its version>) instead of printing the result')
      .option('--to <version>', 'the site-file version to write (default: the current one); never lower than the file', integer(1))
      .addHelpText(
        'after',
        examples(
          'gateway config migrate -c site.yaml',
          'gateway config migrate -c site.yaml --write',
          'gateway config migrate site.yaml --to 2',
        ),
      )
      .action(async (file, o) => {
        const site = requiredSiteFile('config migrate', file, o.config);
        cli.done(await configMigrateCommand(site, { write: o.write === true, to: o.to === undefined ? undefined : Number(o.to) }));
      });
  },
};
