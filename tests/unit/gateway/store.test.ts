import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../../config/errors.js';
import { Outbox } from '../../../gateway/platform/outbox.js';
import { GatewayStore, SCHEMA_VERSION, STORE_FILE } from '../../../gateway/store.js';

const folder = () => mkdtempSync(join(tmpdir(), 'gw-store-'));

/** The outbox tables as each earlier gateway made them (from the repository's history). */
const OUTBOX_LAYOUTS = {
  'first outbox (no uplink columns, no results)': `CREATE TABLE event (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, incident TEXT NOT NULL,
      state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, answer TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)`,
  'outbox with the MQTT uplink (no results)': `CREATE TABLE event (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, incident TEXT NOT NULL,
      state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, answer TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
      posted INTEGER NOT NULL DEFAULT 0, uplink_pending INTEGER NOT NULL DEFAULT 0)`,
  'outbox with lab results': `CREATE TABLE event (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, incident TEXT NOT NULL,
      state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, answer TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
      posted INTEGER NOT NULL DEFAULT 0, uplink_pending INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE result (result_id TEXT PRIMARY KEY, instrument TEXT NOT NULL, body TEXT NOT NULL, captured_at INTEGER NOT NULL)`,
};

const incident = (n: number) => JSON.stringify({ schema: 'gw.incident.v1', eventId: `e${n}`, incidentId: 'i1', type: 'raised' });

/** A data folder as an earlier gateway left it: alarms.db, outbox.db (in WAL mode, as they ran) and a counter file. */
function earlierLayout(dir: string, outboxDdl: string): void {
  const alarms = new Database(join(dir, 'alarms.db'));
  alarms.pragma('journal_mode = WAL');
  alarms.exec('CREATE TABLE alarm (key TEXT PRIMARY KEY, state TEXT NOT NULL)');
  alarms
    .prepare('INSERT INTO alarm VALUES (?, ?)')
    .run('B-07/drum-level-lolo', JSON.stringify({ active: true, acked: false, level: 'red', incidentId: 'i1', raisedAt: 1000 }));
  alarms.close();
  const outbox = new Database(join(dir, 'outbox.db'));
  outbox.pragma('journal_mode = WAL');
  outbox.exec(outboxDdl);
  const add = outbox.prepare('INSERT INTO event (event_id, incident, created_at, updated_at) VALUES (?, ?, 1, 1)');
  for (let n = 1; n <= 5; n++) add.run(`e${n}`, incident(n));
  // Seqs 1-3 were delivered and deleted; 5 is a dead letter; 4 is pending.
  outbox.exec("DELETE FROM event WHERE seq <= 3; UPDATE event SET state = 'dead', answer = '400 no' WHERE seq = 5");
  if (outboxDdl.includes('CREATE TABLE result')) outbox.prepare('INSERT INTO result VALUES (?, ?, ?, 1)').run('r-1', 'AN-1', '{}');
  outbox.close();
  writeFileSync(join(dir, 'lab-results-AN-1.json'), JSON.stringify({ series: 2, last: 41 }));
}

describe('gateway store', () => {
  it('creates the current schema in an empty folder', () => {
    const file = join(folder(), STORE_FILE);
    const store = new GatewayStore(file);
    expect(store.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    expect(store.loadAlarms().size).toBe(0);
    store.close();
  });

  it.each(Object.entries(OUTBOX_LAYOUTS))('takes over a data folder of an earlier gateway: %s', (_, ddl) => {
    const dir = folder();
    earlierLayout(dir, ddl);
    const store = new GatewayStore(join(dir, STORE_FILE));
    expect(store.loadAlarms().get('B-07/drum-level-lolo')).toMatchObject({ active: true, acked: false, incidentId: 'i1' });
    expect(store.counter('lab-results/AN-1')).toEqual({ series: 2, last: 41 });
    const outbox = new Outbox(store);
    expect(outbox.list('pending').map((r) => [r.seq, r.eventId])).toEqual([[4, 'e4']]);
    expect(outbox.list('dead').map((r) => [r.seq, r.answer])).toEqual([[5, '400 no']]);
    // The next seq follows the last one given: never one the platform has already seen.
    expect(outbox.add([JSON.parse(incident(6))])).toEqual([6]);
    if (ddl.includes('CREATE TABLE result')) expect(outbox.addResults([{ resultId: 'r-1', instrument: 'AN-1' }], undefined)).toEqual([]);
    outbox.close();
    store.close();
    // Taken over once: the old files are kept aside, not read again.
    for (const f of ['alarms.db', 'outbox.db', 'lab-results-AN-1.json']) {
      expect(existsSync(join(dir, f))).toBe(false);
      expect(existsSync(join(dir, `${f}.migrated`))).toBe(true);
    }
    const again = new GatewayStore(join(dir, STORE_FILE));
    expect(new Outbox(again).stats()).toMatchObject({ pending: 2, dead: 1, lastSeq: 6 });
    again.close();
  });

  it('keeps the seq of delivered events when the last ones were all delivered', () => {
    const dir = folder();
    earlierLayout(dir, OUTBOX_LAYOUTS['outbox with lab results']);
    const old = new Database(join(dir, 'outbox.db'));
    old.exec('DELETE FROM event');
    old.close();
    const store = new GatewayStore(join(dir, STORE_FILE));
    expect(new Outbox(store).add([JSON.parse(incident(6))])).toEqual([6]);
    store.close();
  });

  it('refuses to start on a counter file that does not read, naming the file and the fix', () => {
    const dir = folder();
    writeFileSync(join(dir, 'lab-results-AN-1.json'), '{"series": 2, "la');
    const open = () => new GatewayStore(join(dir, STORE_FILE));
    expect(open).toThrow(GatewayError);
    expect(open).toThrow(/lab-results-AN-1\.json: the result counter .* does not read/);
    // Nothing half-done: the file is still there and the store was not versioned.
    expect(existsSync(join(dir, 'lab-results-AN-1.json'))).toBe(true);
    const db = new Database(join(dir, STORE_FILE));
    expect(db.pragma('user_version', { simple: true })).toBe(0);
    db.close();
  });

  it('names the earlier file it cannot take over, and what to do with it; nothing is changed', () => {
    const notSqlite = folder();
    writeFileSync(join(notSqlite, 'outbox.db'), 'not SQLite at all'.repeat(100));
    expect(() => new GatewayStore(join(notSqlite, STORE_FILE))).toThrow(
      /outbox\.db: this file of an earlier gateway version cannot be taken over .*move it aside/,
    );
    expect(existsSync(join(notSqlite, 'outbox.db'))).toBe(true);

    const odd = folder();
    const db = new Database(join(odd, 'alarms.db'));
    db.exec('CREATE TABLE alarm (name TEXT)');
    db.close();
    expect(() => new GatewayStore(join(odd, STORE_FILE))).toThrow(/alarms\.db: .*cannot be taken over .*raised again/);

    const shape = folder();
    writeFileSync(join(shape, 'lab-results-AN-1.json'), JSON.stringify({ series: '2', last: 41 }));
    expect(() => new GatewayStore(join(shape, STORE_FILE))).toThrow(/lab-results-AN-1\.json: the result counter .*\(expected/);
  });

  it('takes over an outbox without a sequence table, continuing after its highest seq', () => {
    const dir = folder();
    const old = new Database(join(dir, 'outbox.db'));
    old.exec(
      "CREATE TABLE event (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, incident TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, answer TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)",
    );
    old.prepare('INSERT INTO event (seq, event_id, incident, created_at, updated_at) VALUES (7, ?, ?, 1, 1)').run('e7', incident(7));
    old.close();
    const store = new GatewayStore(join(dir, STORE_FILE));
    expect(new Outbox(store).add([JSON.parse(incident(8))])).toEqual([8]);
    store.close();
  });

  it('refuses a file that is not a database, a row that does not read, and a newer schema', () => {
    const dir = folder();
    writeFileSync(join(dir, STORE_FILE), 'this is not SQLite'.repeat(100));
    expect(() => new GatewayStore(join(dir, STORE_FILE))).toThrow(/gateway\.db: .*not a database.*restore the file from a backup/);

    const dir2 = folder();
    const store = new GatewayStore(join(dir2, STORE_FILE));
    store.db.prepare('INSERT INTO alarm VALUES (?, ?)').run('B-1/x', '{"active": tru');
    expect(() => store.loadAlarms()).toThrow(/the alarm B-1\/x does not read/);
    store.db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    store.close();
    expect(() => new GatewayStore(join(dir2, STORE_FILE))).toThrow(/written by a newer gateway/);
  });

  it('commits everything in a transaction or nothing', () => {
    const store = new GatewayStore(join(folder(), STORE_FILE));
    const outbox = new Outbox(store);
    expect(() =>
      store.transaction(() => {
        store.saveAlarms([{ key: 'B-1/x', state: { active: true, acked: false, level: 'red' } }]);
        outbox.add([JSON.parse(incident(1))]);
        throw new Error('disk full');
      }),
    ).toThrow('disk full');
    expect(store.loadAlarms().size).toBe(0);
    expect(outbox.stats().pending).toBe(0);
    store.close();
  });
});

describe('gateway store opened by two processes at once', () => {
  // `gateway run` starting while `gateway outbox list` opens the same older store: both read the old
  // version; the one that waited for the other's migration must not take the step again (it failed
  // with "table qc already exists" and advice to move the store away).
  it('takes each migration step once, under the write lock', async () => {
    const file = join(folder(), STORE_FILE);
    new GatewayStore(file).close();
    // The store as schema version 2 left it (before the labs' step).
    const old = new Database(file);
    old.exec(`DROP TABLE qc; DROP INDEX result_held; DROP INDEX result_instrument_captured; ALTER TABLE result DROP COLUMN held;
      PRAGMA user_version = 2;`);
    old.close();
    // The other process: takes the step in a transaction it holds for 400 ms.
    const { spawn } = await import('node:child_process');
    const other = spawn(
      process.execPath,
      [
        '-e',
        `const D = require(${JSON.stringify(require.resolve('better-sqlite3'))});
        const db = new D(process.argv[1]);
        db.exec('BEGIN IMMEDIATE');
        db.exec("CREATE TABLE qc (instrument TEXT NOT NULL, analyte TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (instrument, analyte)); ALTER TABLE result ADD COLUMN held TEXT; PRAGMA user_version = 3;");
        process.stdout.write('locked\\n');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400);
        db.exec('COMMIT');
        db.close();`,
        file,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => other.stdout.once('data', () => resolve()));
    const store = new GatewayStore(file);
    try {
      expect(store.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(store.loadQc()).toEqual([]);
    } finally {
      store.close();
      await new Promise((resolve) => (other.exitCode === null ? other.once('exit', resolve) : resolve(undefined)));
    }
  });
});
