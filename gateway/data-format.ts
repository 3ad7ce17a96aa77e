// The format of each SQLite file of the data folder is in its `PRAGMA user_version`: the store's
// schema version (gateway/store.ts, with its migrations), 1 for the telemetry queues. A gateway
// refuses a file of a format newer than it knows (a data folder from a newer gateway, after a
// downgrade) instead of misreading it or writing into it; docs/upgrades.md lists the formats.
import type Database from 'better-sqlite3';
import { GatewayError } from '../config/errors.js';

/**
 * Refuses a file written by a newer gateway, and marks an older or new one with `format`: call it
 * right after opening, before the first change. `lost` says what moving the file away costs.
 */
export function claimFileFormat(db: Database.Database, file: string, format: number, lost: string): void {
  const found = db.pragma('user_version', { simple: true }) as number;
  if (found > format) {
    db.close();
    throw new GatewayError(
      'GW_ERR_STORE',
      `${file}: format ${found} was written by a newer gateway (this one reads up to ${format}). Run that newer version, or move the file away to start with an empty one (${lost}).`,
    );
  }
  if (found < format) db.pragma(`user_version = ${format}`);
}
