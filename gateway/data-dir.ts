// The data folder holds what an attacker on the same machine wants: the store (alarm states, the
// outbox with its incidents), queues of telemetry, the audit journal and its key, OPC UA private
// keys. It belongs to the gateway's user alone: the folder 0700, every file in it 0600. New files get
// that from the process umask (set by the `gateway` command) and from being created 0600 here;
// files left more open by an older version, a copy or a restore are tightened at start.
import { chmodSync, closeSync, lstatSync, mkdirSync, openSync, readdirSync, realpathSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Logger } from './log.js';

/** Owner only. */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;
/** The umask of every `gateway` command: what it creates is its user's alone. */
export const PRIVATE_UMASK = 0o077;
/** Entries looked at, at most, when the folder is checked at start (a data folder holds a few dozen). */
export const MAX_CHECKED_ENTRIES = 10_000;

/**
 * Creates the data folder (0700), and takes group and other permissions away from it and from
 * everything under it; one log line says what was tightened. Symbolic links are not followed.
 */
export function prepareDataDir(dir: string, log: Logger): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const tightened: string[] = [];
  const failed: string[] = [];
  let checked = 0;
  // The folder itself may be a symbolic link (a data_dir on another disk): its target is the folder.
  const root = realpathSync(dir);
  const walk = (path: string) => {
    if (checked >= MAX_CHECKED_ENTRIES) return;
    checked++;
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return;
    if ((st.mode & 0o077) !== 0) {
      try {
        // Owner bits stay as they are (a folder keeps its x, a read-only file stays read-only).
        chmodSync(path, st.mode & 0o700);
        tightened.push(relative(root, path) || '.');
      } catch (err) {
        failed.push(`${relative(root, path) || '.'} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
    }
    if (st.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
  };
  walk(root);
  if (tightened.length > 0) {
    log.warn(
      { dataDir: dir, count: tightened.length, entries: tightened.slice(0, 20) },
      `Data folder had ${tightened.length} entr${tightened.length === 1 ? 'y' : 'ies'} open to other users; tightened to owner only (folders 0700, files 0600)`,
    );
  }
  if (failed.length > 0) {
    log.error(
      { dataDir: dir, count: failed.length, entries: failed.slice(0, 20) },
      'Data folder has entries open to other users that the gateway cannot tighten (owned by another user?): fix them with chmod go-rwx',
    );
  }
  if (checked >= MAX_CHECKED_ENTRIES) {
    log.warn(
      { dataDir: dir, checked },
      `Data folder has more than ${MAX_CHECKED_ENTRIES} entries; the permissions of the rest were not checked`,
    );
  }
}

/**
 * Creates `file` empty with mode 0600 when it does not exist, before SQLite opens it: SQLite gives
 * its WAL and shared-memory files the database file's mode, so they are private too.
 */
export function createPrivateFile(file: string): void {
  closeSync(openSync(file, 'a', PRIVATE_FILE_MODE));
}
