// The format of each SQLite file of the data folder is in its `PRAGMA user_version`: the store's
// schema version (gateway/store.ts, with its migrations), 1 for the telemetry queues and the
// Sparkplug queue. A gateway refuses a file of a format newer than it knows (a data folder from a
// newer gateway, after a downgrade) instead of misreading it or writing into it; docs/upgrades.md
// lists the formats.
import Database from 'better-sqlite3';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { GatewayError } from '../config/errors.js';
import { SCHEMA_VERSION, STORE_FILE } from './store.js';

/** The telemetry queues' format (`PRAGMA user_version`); files of release 0.1.0 have 0 and are the same. */
export const SPOOL_FORMAT = 1;

/** The Sparkplug edge node's store-and-forward queue (`sparkplug-queue.db`, new in 0.2.0). */
export const SPARKPLUG_QUEUE_FORMAT = 1;

const STORE_REMEDY = 'Run that newer version, or restore a backup made by this one.';

/** The data folder's queues: each file's format, and what moving it away loses. */
const QUEUES = {
  spool: { format: SPOOL_FORMAT, lost: 'the telemetry waiting in it is then lost' },
  sparkplug: { format: SPARKPLUG_QUEUE_FORMAT, lost: 'the readings stored in it are then lost' },
} as const;

export type QueueKind = keyof typeof QUEUES;

/**
 * Refuses a queue file written by a newer gateway, and marks an older or new one with its format:
 * call it right after opening, before the first change.
 */
export function claimFileFormat(db: Database.Database, file: string, kind: QueueKind): void {
  const { format } = QUEUES[kind];
  const found = db.pragma('user_version', { simple: true }) as number;
  if (found > format) {
    db.close();
    throw newerFile(file, 'format', found, format, queueRemedy(kind));
  }
  if (found < format) db.pragma(`user_version = ${format}`);
}

function queueRemedy(kind: QueueKind): string {
  return `Run that newer version, or move the file away to start with an empty one (${QUEUES[kind].lost}).`;
}

function newerFile(file: string, what: string, found: number, known: number, remedy: string): GatewayError {
  return new GatewayError(
    'GW_ERR_STORE',
    `${file}: ${what} ${found} was written by a newer gateway (this one reads up to ${known}). ${remedy}`,
  );
}

/**
 * Refuses a data folder with a file from a newer gateway before anything in it is opened for
 * writing: the store and the telemetry queues, each read (read-only) for its version. The
 * components check their own file again when they open it.
 */
export function checkDataFolderFormats(dir: string): void {
  const files: Array<{ file: string; what: string; known: number; remedy: string }> = [
    { file: join(dir, STORE_FILE), what: 'schema version', known: SCHEMA_VERSION, remedy: STORE_REMEDY },
    ...readdirSync(dir)
      .filter((name) => /^(mqtt-queue|influx-spool.*|sparkplug-queue)\.db$/.test(name))
      .map((name) => {
        const kind: QueueKind = name === 'sparkplug-queue.db' ? 'sparkplug' : 'spool';
        return { file: join(dir, name), what: 'format', known: QUEUES[kind].format, remedy: queueRemedy(kind) };
      }),
  ];
  for (const { file, what, known, remedy } of files) {
    if (!existsSync(file)) continue;
    let found: number;
    try {
      const db = new Database(file, { readonly: true, fileMustExist: true });
      try {
        found = db.pragma('user_version', { simple: true }) as number;
      } finally {
        db.close();
      }
    } catch {
      // Not readable as SQLite: the component that opens it says so, with what to do.
      continue;
    }
    if (found > known) throw newerFile(file, what, found, known, remedy);
  }
}
