// Where a report reads what happened: the store's journal and its lab results. A running gateway
// reads its own open store; `gateway report daily` opens the store file read-only beside a gateway
// that may be running (SQLite's WAL lets a reader in while the writer goes on), and never migrates or
// writes it: a report is not a reason to change the gateway's state.
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { GatewayError } from '../../config/errors.js';
import { type GatewayStore, type JournalEntry, type JournalKind, SCHEMA_VERSION } from '../store.js';

export interface StoredResult {
  capturedAt: number;
  instrument: string;
  /** A LabResult (drivers/common/result.ts) as it was captured. */
  body: unknown;
}

export interface ReportSource {
  /** Entries of one kind with from <= ts < to, in time order, at most `limit`. */
  readJournal(kind: JournalKind, from: number, to: number, opts?: { equipment?: string; limit?: number }): JournalEntry[];
  /** Per equipment, its newest entry of one kind before `before` (the level a day starts with, however old). */
  lastBefore(kind: JournalKind, before: number): JournalEntry[];
  /** Lab results captured with from <= captured_at < to, in capture order, at most `limit`. */
  readResults(from: number, to: number, limit: number): StoredResult[];
  /** False for a store that has no journal yet (written by a gateway before issue 19): the report says so. */
  readonly hasJournal: boolean;
}

const JOURNAL_SQL = 'SELECT id, ts, kind, equipment, body FROM journal WHERE kind = ? AND ts >= ? AND ts < ?';
const RESULTS_SQL =
  'SELECT captured_at, instrument, body FROM result WHERE captured_at >= ? AND captured_at < ? ORDER BY captured_at, rowid LIMIT ?';

const LAST_BEFORE_SQL =
  'SELECT id, ts, kind, equipment, body FROM journal WHERE id IN (SELECT MAX(id) FROM journal WHERE kind = ? AND ts < ? AND equipment IS NOT NULL GROUP BY equipment) ORDER BY equipment';

function lastBeforeOf(db: Database.Database, kind: JournalKind, before: number): JournalEntry[] {
  const rows = db.prepare(LAST_BEFORE_SQL).all(kind, before) as Array<{
    id: number;
    ts: number;
    kind: JournalKind;
    equipment: string;
    body: string;
  }>;
  return rows.map((r) => ({ id: r.id, ts: r.ts, kind: r.kind, equipment: r.equipment, body: parseOr(r.body) }));
}

/** Rows of the result table, their bodies parsed (a body that does not parse is kept as its text). */
function resultsOf(db: Database.Database, from: number, to: number, limit: number): StoredResult[] {
  const rows = db.prepare(RESULTS_SQL).all(from, to, limit) as Array<{ captured_at: number; instrument: string; body: string }>;
  return rows.map((r) => ({ capturedAt: r.captured_at, instrument: r.instrument, body: parseOr(r.body) }));
}

function parseOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // Shown as it is: a report lists what the store holds, and a broken row is the store's problem to report elsewhere.
    return text;
  }
}

/** The running gateway's store, through its own journal reader. */
export function storeSource(store: GatewayStore): ReportSource {
  return {
    hasJournal: true,
    readJournal: (kind, from, to, opts) => store.readJournal(kind, from, to, opts),
    lastBefore: (kind, before) => lastBeforeOf(store.db, kind, before),
    readResults: (from, to, limit) => resultsOf(store.db, from, to, limit),
  };
}

/**
 * A store file's database opened read-only (`close()` it when done), for readers of the store beside
 * a running gateway (`gateway report daily`, `gateway lab daily`). A missing or unreadable file, or
 * one that is not a gateway store, is a GW_ERR_STORE with what to do.
 */
export function openDatabaseReadOnly(file: string): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    // Reading the schema now: a file that is not SQLite fails here, with its name.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
  } catch (err) {
    // better-sqlite3 reports a missing folder with a TypeError of its own, without SQLite's code.
    const missing = (err as { code?: string }).code === 'SQLITE_CANTOPEN' || !existsSync(file);
    throw new GatewayError(
      'GW_ERR_STORE',
      missing
        ? `${file}: there is no store to report from (the gateway creates it when it first runs with this data folder); check the site file's gateway.data_dir`
        : `${file}: the store cannot be read (${(err as Error).message})`,
      { cause: err },
    );
  }
  const tables = new Set(
    (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name),
  );
  if (!tables.has('result')) {
    db.close();
    throw new GatewayError('GW_ERR_STORE', `${file}: this is not a gateway store (it has no result table)`);
  }
  // A newer gateway's store may have moved what the readers query: they would fail on a missing column, or count wrong.
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    db.close();
    throw new GatewayError(
      'GW_ERR_STORE',
      `${file}: schema version ${version} was written by a newer gateway (this one reads up to ${SCHEMA_VERSION}); read it with that newer version`,
    );
  }
  return db;
}

/** A store file opened read-only; `close()` when done. A missing or unreadable file is a GW_ERR_STORE with what to do. */
export function openStoreReadOnly(file: string): ReportSource & { close(): void } {
  const db = openDatabaseReadOnly(file);
  const hasJournal = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal'").get() !== undefined;
  return {
    hasJournal,
    readJournal(kind, from, to, opts = {}) {
      if (!hasJournal) return [];
      const limit = Math.max(0, Math.floor(opts.limit ?? 10_000));
      const rows = (
        opts.equipment === undefined
          ? db.prepare(`${JOURNAL_SQL} ORDER BY ts, id LIMIT ?`).all(kind, from, to, limit)
          : db.prepare(`${JOURNAL_SQL} AND equipment = ? ORDER BY ts, id LIMIT ?`).all(kind, from, to, opts.equipment, limit)
      ) as Array<{ id: number; ts: number; kind: JournalKind; equipment: string | null; body: string }>;
      return rows.map((r) => ({
        id: r.id,
        ts: r.ts,
        kind: r.kind,
        ...(r.equipment === null ? {} : { equipment: r.equipment }),
        body: parseOr(r.body),
      }));
    },
    lastBefore: (kind, before) => (hasJournal ? lastBeforeOf(db, kind, before) : []),
    readResults: (from, to, limit) => resultsOf(db, from, to, limit),
    close: () => db.close(),
  };
}
