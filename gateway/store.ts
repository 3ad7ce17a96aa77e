// The gateway's one durable store: alarm states, the platform outbox, every lab result captured, the
// result counters of lab instruments, the journal (alarm events, near misses, risk changes, reports)
// each equipment's risk state and the quality-control state of lab instruments, in one SQLite database (`<data_dir>/gateway.db`, WAL, synchronous
// FULL). One database means one transaction: an alarm transition and its outbox event, or a lab
// result and its counter, are committed together or not at all. The schema has a version
// (`PRAGMA user_version`) and forward migrations; the first one takes over the files of earlier
// gateways (`alarms.db`, `outbox.db`, `lab-results-<instrument>.json`).
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { GatewayError } from '../config/errors.js';
import type { AlarmChange } from '../rules/engine.js';
import type { PersistedAlarm } from '../rules/types.js';
import { createPrivateFile } from './data-dir.js';

export const STORE_FILE = 'gateway.db';

/** What a migration sees: the database, and the folder it is in (for files of earlier layouts). */
interface MigrationContext {
  db: Database.Database;
  dir: string;
  /** The store's own file: never taken over as an earlier layout's. */
  file: string;
  /** Files taken over, renamed to `<name>.migrated` once the migration has committed. */
  taken: string[];
}

const TABLES_V1 = `
  CREATE TABLE alarm (key TEXT PRIMARY KEY, state TEXT NOT NULL);
  CREATE TABLE event (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    incident TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    answer TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    posted INTEGER NOT NULL DEFAULT 0,
    uplink_pending INTEGER NOT NULL DEFAULT 0);
  CREATE INDEX event_state ON event (state, posted, seq);
  CREATE INDEX event_uplink ON event (uplink_pending, seq);
  CREATE TABLE result (
    result_id TEXT PRIMARY KEY,
    instrument TEXT NOT NULL,
    body TEXT NOT NULL,
    captured_at INTEGER NOT NULL);
  CREATE TABLE counter (key TEXT PRIMARY KEY, state TEXT NOT NULL);`;

/**
 * Migration n takes the schema from version n to n + 1, in one transaction; `attach` runs just before
 * it (SQLite cannot attach a database inside a transaction). Append only: a released one never changes.
 */
const MIGRATIONS: Array<{ attach?: (m: MigrationContext) => void; run: (m: MigrationContext) => void }> = [
  {
    attach: (m) => {
      attach(m, 'alarms.db', 'old_alarms');
      attach(m, 'outbox.db', 'old_outbox');
    },
    run: (m) => {
      m.db.exec(TABLES_V1);
      if (attached(m.db, 'old_alarms')) legacy(m, 'alarms.db', () => takeOverAlarms(m));
      if (attached(m.db, 'old_outbox')) legacy(m, 'outbox.db', () => takeOverOutbox(m));
      takeOverCounters(m);
    },
  },
  {
    // Risk judgement (issue 19): the journal of what happened (alarm events, near misses, risk
    // changes, summaries and reports: the daily report and the KPIs read it after a restart) and
    // each equipment's risk state, committed with the alarm states and outbox events they belong to.
    run: (m) =>
      m.db.exec(`
        CREATE TABLE journal (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          ts INTEGER NOT NULL,
          kind TEXT NOT NULL,
          equipment TEXT,
          body TEXT NOT NULL);
        CREATE INDEX journal_kind_ts ON journal (kind, ts);
        CREATE TABLE risk (equipment TEXT PRIMARY KEY, state TEXT NOT NULL);`),
  },
  {
    // Labs (issue 20): the quality-control state of each instrument's analytes (the controls the
    // Westgard rules read, whether results wait for a passing control), committed with the results
    // that changed it; results held for QC (`held`: the instrument and analyte they wait for, their
    // upload to the platform not queued yet); results by instrument and time for the daily summary.
    run: (m) =>
      m.db.exec(`
        CREATE TABLE qc (instrument TEXT NOT NULL, analyte TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (instrument, analyte));
        ALTER TABLE result ADD COLUMN held TEXT;
        CREATE INDEX result_held ON result (held) WHERE held IS NOT NULL;
        CREATE INDEX result_instrument_captured ON result (instrument, captured_at);`),
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * What the journal holds: each kind is read back by its own reader (KPIs, the daily report, history,
 * the lab's daily summary). `qc`: one quality-control sample judged; `lab`: a lab driver's LabEvent
 * (a result file taken or refused, an HL7 message refused).
 */
export type JournalKind = 'alarm' | 'near_miss' | 'risk' | 'risk_summary' | 'report' | 'qc' | 'lab';

export const JOURNAL_KINDS: readonly JournalKind[] = ['alarm', 'near_miss', 'risk', 'risk_summary', 'report', 'qc', 'lab'];

export interface JournalEntry {
  id: number;
  /** Epoch ms: when it happened (an alarm event's time, a risk change's time), not when it was written. */
  ts: number;
  kind: JournalKind;
  equipment?: string;
  body: unknown;
}

/** The most entries one read returns unless the caller asks for fewer: a report reads a day, not a year. */
export const JOURNAL_READ_LIMIT = 10_000;

/** The counter row that holds the store's epoch (GatewayStore.epoch). */
const EPOCH_KEY = 'store-epoch';

export class GatewayStore {
  readonly db: Database.Database;
  private readonly upsertAlarm: Database.Statement<[string, string]>;
  private readonly deleteAlarm: Database.Statement<[string]>;
  private readonly upsertCounter: Database.Statement<[string, string]>;
  private readonly insertJournal: Database.Statement<[number, string, string | null, string]>;
  private readonly upsertRisk: Database.Statement<[string, string]>;
  private readonly deleteRisk: Database.Statement<[string]>;
  private readonly upsertQc: Database.Statement<[string, string, string]>;

  /** Opens (creating or migrating) the store; a store it cannot read is an error that says what to do. */
  constructor(readonly file: string) {
    try {
      // 0600 before SQLite opens it: its WAL and shared-memory files take the same mode.
      createPrivateFile(file);
      this.db = new Database(file);
      this.db.pragma('journal_mode = WAL');
      // FULL: what the store took survives a power cut, not only a killed process.
      this.db.pragma('synchronous = FULL');
      this.db.pragma('busy_timeout = 5000');
      const check = this.db.pragma('quick_check(1)', { simple: true });
      if (check !== 'ok') throw new Error(`integrity check failed: ${String(check)}`);
      migrate(this.db, file);
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      throw new GatewayError('GW_ERR_STORE', `${file}: ${(err as Error).message}. ${STORE_FIX}`, { cause: err });
    }
    this.upsertAlarm = this.db.prepare(
      'INSERT INTO alarm (key, state) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET state = excluded.state',
    );
    this.deleteAlarm = this.db.prepare('DELETE FROM alarm WHERE key = ?');
    this.upsertCounter = this.db.prepare(
      'INSERT INTO counter (key, state) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET state = excluded.state',
    );
    this.insertJournal = this.db.prepare('INSERT INTO journal (ts, kind, equipment, body) VALUES (?, ?, ?, ?)');
    this.upsertRisk = this.db.prepare(
      'INSERT INTO risk (equipment, state) VALUES (?, ?) ON CONFLICT(equipment) DO UPDATE SET state = excluded.state',
    );
    this.deleteRisk = this.db.prepare('DELETE FROM risk WHERE equipment = ?');
    this.upsertQc = this.db.prepare(
      'INSERT INTO qc (instrument, analyte, state) VALUES (?, ?, ?) ON CONFLICT(instrument, analyte) DO UPDATE SET state = excluded.state',
    );
  }

  /** Runs `fn` in one transaction (nested calls become savepoints): all of it is committed, or none. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  loadAlarms(): Map<string, PersistedAlarm> {
    const rows = this.db.prepare('SELECT key, state FROM alarm').all() as Array<{ key: string; state: string }>;
    return new Map(rows.map((r) => [r.key, this.parse(`alarm ${r.key}`, r.state) as PersistedAlarm]));
  }

  saveAlarms(changes: readonly AlarmChange[]): void {
    for (const { key, state } of changes) {
      if (state) this.upsertAlarm.run(key, JSON.stringify(state));
      else this.deleteAlarm.run(key);
    }
  }

  /** A lab instrument's result counter state (JSON), undefined when it has none yet. */
  counter(key: string): unknown {
    const row = this.db.prepare('SELECT state FROM counter WHERE key = ?').get(key) as { state: string } | undefined;
    return row ? this.parse(`counter ${key}`, row.state) : undefined;
  }

  saveCounter(key: string, state: unknown): void {
    this.upsertCounter.run(key, JSON.stringify(state));
  }

  /** Appends journal entries, inside the caller's transaction when there is one (else in one of their own). */
  appendJournal(entries: ReadonlyArray<{ ts: number; kind: JournalKind; equipment?: string; body: unknown }>): void {
    if (entries.length === 0) return;
    this.transaction(() => {
      for (const e of entries) this.insertJournal.run(e.ts, e.kind, e.equipment ?? null, JSON.stringify(e.body));
    });
  }

  /** The entries of one kind with from <= ts < to, in time order (then in the order written). */
  readJournal(
    kind: JournalKind,
    from: number,
    to: number,
    opts: { equipment?: string; limit?: number; newest?: boolean } = {},
  ): JournalEntry[] {
    const limit = Math.max(0, Math.floor(opts.limit ?? JOURNAL_READ_LIMIT));
    // `newest`: when the range holds more than `limit`, the latest ones (still returned oldest first).
    const order = opts.newest ? 'DESC' : 'ASC';
    const where = `kind = ? AND ts >= ? AND ts < ?${opts.equipment === undefined ? '' : ' AND equipment = ?'}`;
    const statement = this.db.prepare(
      `SELECT id, ts, kind, equipment, body FROM journal WHERE ${where} ORDER BY ts ${order}, id ${order} LIMIT ?`,
    );
    const rows = (
      opts.equipment === undefined ? statement.all(kind, from, to, limit) : statement.all(kind, from, to, opts.equipment, limit)
    ) as Array<{ id: number; ts: number; kind: JournalKind; equipment: string | null; body: string }>;
    if (opts.newest) rows.reverse();
    return rows.map((r) => ({
      id: r.id,
      ts: r.ts,
      kind: r.kind,
      ...(r.equipment === null ? {} : { equipment: r.equipment }),
      body: this.parse(`journal entry ${r.id}`, r.body),
    }));
  }

  /**
   * Deletes journal entries older than `before` (epoch ms), at most `limit` of them; returns how many.
   * A caller with a large journal deletes in batches, one per tick, so that no single statement holds
   * the event loop for long. The kinds are listed so that SQLite walks the (kind, ts) index instead
   * of scanning the whole table when nothing is old enough.
   */
  pruneJournal(before: number, limit = Number.MAX_SAFE_INTEGER): number {
    const kinds = JOURNAL_KINDS.map(() => '?').join(', ');
    return this.db
      .prepare(`DELETE FROM journal WHERE id IN (SELECT id FROM journal WHERE kind IN (${kinds}) AND ts < ? LIMIT ?)`)
      .run(...JOURNAL_KINDS, before, Math.max(0, Math.floor(limit))).changes;
  }

  /**
   * The store's epoch: a short random id written the first time it is asked for and never changed.
   * Ids that count from 1 in this store (risk changes) carry it, so that a store rebuilt from
   * scratch, whose counts start again at 1, never reuses an id the platform has already taken.
   */
  epoch(): string {
    return this.transaction(() => {
      const known = this.counter(EPOCH_KEY);
      if (typeof known === 'string' && /^[0-9a-z]{1,16}$/.test(known)) return known;
      if (known !== undefined)
        throw new GatewayError(
          'GW_ERR_STORE',
          `${this.file}: the store's epoch does not read: ${JSON.stringify(known).slice(0, 100)}. ${STORE_FIX}`,
        );
      const epoch = randomBytes(4).toString('hex');
      this.saveCounter(EPOCH_KEY, epoch);
      return epoch;
    });
  }

  /** The quality-control state of every instrument's analytes, as gateway/lab/qc.ts saved it. */
  loadQc(): Array<{ instrument: string; analyte: string; state: unknown }> {
    const rows = this.db.prepare('SELECT instrument, analyte, state FROM qc').all() as Array<{
      instrument: string;
      analyte: string;
      state: string;
    }>;
    return rows.map((r) => ({ ...r, state: this.parse(`QC state of ${r.instrument} ${r.analyte}`, r.state) }));
  }

  /** Saves changed QC states, inside the caller's transaction when there is one (the results' that changed them). */
  saveQc(changes: ReadonlyArray<{ instrument: string; analyte: string; state: unknown }>): void {
    if (changes.length === 0) return;
    this.transaction(() => {
      for (const c of changes) this.upsertQc.run(c.instrument, c.analyte, JSON.stringify(c.state));
    });
  }

  /** Each equipment's persisted risk state, as the risk judge saved it. */
  loadRisk(): Map<string, unknown> {
    const rows = this.db.prepare('SELECT equipment, state FROM risk').all() as Array<{ equipment: string; state: string }>;
    return new Map(rows.map((r) => [r.equipment, this.parse(`risk state of ${r.equipment}`, r.state)]));
  }

  /** Saves changed risk states (null deletes one), inside the caller's transaction when there is one. */
  saveRisk(changes: ReadonlyArray<{ equipment: string; state: unknown }>): void {
    if (changes.length === 0) return;
    this.transaction(() => {
      for (const { equipment, state } of changes) {
        if (state === null || state === undefined) this.deleteRisk.run(equipment);
        else this.upsertRisk.run(equipment, JSON.stringify(state));
      }
    });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private parse(what: string, text: string): unknown {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new GatewayError('GW_ERR_STORE', `${this.file}: the ${what} does not read (${(err as Error).message}). ${STORE_FIX}`);
    }
  }
}

const STORE_FIX =
  'The gateway keeps its alarm states, the platform outbox and the ids of every lab result there, and does not start without them rather than forget them: restore the file from a backup, or move it (with its -wal file) away to start with an empty store, knowing that unsent incidents and lab results are then lost and active alarms are raised again.';

function migrate(db: Database.Database, file: string): void {
  const dir = dirname(file);
  for (;;) {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION)
      throw new GatewayError(
        'GW_ERR_STORE',
        `${file}: schema version ${version} was written by a newer gateway (this one reads up to ${SCHEMA_VERSION}). Run that newer version, or restore a backup made by this one.`,
      );
    if (version === SCHEMA_VERSION) return;
    const m: MigrationContext = { db, dir, file, taken: [] };
    const migration = MIGRATIONS[version]!;
    let taken = false;
    try {
      migration.attach?.(m);
      // Under the write lock, the version read again: another process opening this store at the same
      // time (`gateway run` and `gateway outbox list`) may have taken the step meanwhile.
      db.transaction(() => {
        if ((db.pragma('user_version', { simple: true }) as number) !== version) return;
        migration.run(m);
        db.pragma(`user_version = ${version + 1}`);
        taken = true;
      }).immediate();
    } finally {
      for (const alias of attachedAliases(db)) db.exec(`DETACH DATABASE ${alias}`);
    }
    if (taken)
      for (const file of m.taken) for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) renameSync(f, `${f}.migrated`);
  }
}

function attachedAliases(db: Database.Database): string[] {
  return (db.pragma('database_list') as Array<{ name: string }>).map((d) => d.name).filter((n) => n !== 'main' && n !== 'temp');
}

/** Attaches an earlier layout's database, when there is one. */
function attach(m: MigrationContext, name: string, alias: string): void {
  const file = join(m.dir, name);
  if (!existsSync(file) || resolve(file) === resolve(m.file)) return;
  legacy(m, name, () => {
    m.db.prepare(`ATTACH DATABASE ? AS ${alias}`).run(file);
    // Reading it now: a file that is not SQLite fails here, with its own name.
    m.db.prepare(`SELECT count(*) FROM ${alias}.sqlite_master`).get();
  });
  m.taken.push(file);
}

/** Runs a step on a file of an earlier layout; its failure names that file and what to do with it. */
function legacy(m: MigrationContext, name: string, step: () => void): void {
  try {
    step();
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    const file = join(m.dir, name);
    const what =
      name === 'outbox.db'
        ? 'the incidents and lab results it holds are then not sent, and result ids in it may be taken again'
        : 'the alarms in it are then raised again as new incidents';
    throw new GatewayError(
      'GW_ERR_STORE',
      `${file}: this file of an earlier gateway version cannot be taken over into ${STORE_FILE} (${(err as Error).message}). Nothing was changed. Restore it from a backup, or move it aside to start without it (${what}).`,
      { cause: err },
    );
  }
}

function attached(db: Database.Database, alias: string): boolean {
  return attachedAliases(db).includes(alias);
}

function columns(db: Database.Database, schema: string, table: string): Set<string> {
  return new Set((db.pragma(`${schema}.table_info(${table})`) as Array<{ name: string }>).map((c) => c.name));
}

/** `alarms.db`: one row per alarm. */
function takeOverAlarms(m: MigrationContext): void {
  if (columns(m.db, 'old_alarms', 'alarm').size === 0) return;
  m.db.exec('INSERT INTO alarm (key, state) SELECT key, state FROM old_alarms.alarm');
}

/** `outbox.db`: pending and dead events with their seqs (never reused), and every result captured. */
function takeOverOutbox(m: MigrationContext): void {
  const event = columns(m.db, 'old_outbox', 'event');
  if (event.size > 0) {
    const posted = event.has('posted') ? 'posted' : '0';
    const uplink = event.has('uplink_pending') ? 'uplink_pending' : '0';
    m.db.exec(`INSERT INTO event (seq, event_id, incident, state, attempts, answer, created_at, updated_at, posted, uplink_pending)
      SELECT seq, event_id, incident, state, attempts, answer, created_at, updated_at, ${posted}, ${uplink} FROM old_outbox.event`);
    // The next seq continues from the last one given, also when that event has been delivered and deleted.
    const sequence = m.db.prepare("SELECT 1 FROM old_outbox.sqlite_master WHERE name = 'sqlite_sequence'").get() !== undefined;
    const last = sequence
      ? (m.db.prepare("SELECT seq FROM old_outbox.sqlite_sequence WHERE name = 'event'").get() as { seq: number } | undefined)
      : undefined;
    if (last) {
      m.db.prepare("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'event'").run(last.seq);
      m.db
        .prepare(
          "INSERT INTO sqlite_sequence (name, seq) SELECT 'event', ? WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'event')",
        )
        .run(last.seq);
    }
  }
  if (columns(m.db, 'old_outbox', 'result').size > 0)
    m.db.exec(
      'INSERT INTO result (result_id, instrument, body, captured_at) SELECT result_id, instrument, body, captured_at FROM old_outbox.result',
    );
}

/** `lab-results-<instrument>.json`: an instrument's result counter and series. */
function takeOverCounters(m: MigrationContext): void {
  const files = existsSync(m.dir) ? readdirSync(m.dir).filter((f) => /^lab-results-.+\.json$/.test(f)) : [];
  const insert = m.db.prepare('INSERT INTO counter (key, state) VALUES (?, ?)');
  for (const f of files) {
    const file = join(m.dir, f);
    let state: unknown;
    try {
      state = JSON.parse(readFileSync(file, 'utf8'));
      if (!isCounterState(state)) throw new Error(`expected {"series": n, "last": counter}, got ${JSON.stringify(state).slice(0, 100)}`);
    } catch (err) {
      throw new GatewayError(
        'GW_ERR_STORE',
        `${file}: the result counter of an earlier gateway does not read (${(err as Error).message}); without it new results could reuse old ids and be discarded as duplicates. Fix the file (it holds {"series": n, "last": counter}), or delete it if the instrument's results may start a new series.`,
      );
    }
    insert.run(`lab-results/${basename(f, '.json').slice('lab-results-'.length)}`, JSON.stringify(state));
    m.taken.push(file);
  }
}

function isCounterState(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const { series, last } = v as Record<string, unknown>;
  return (
    Number.isSafeInteger(series) &&
    (series as number) >= 0 &&
    (last === undefined || typeof last === 'boolean' || Number.isSafeInteger(last))
  );
}
