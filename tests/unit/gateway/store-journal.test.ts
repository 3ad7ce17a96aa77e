import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Outbox } from '../../../gateway/platform/outbox.js';
import { GatewayStore, SCHEMA_VERSION, STORE_FILE } from '../../../gateway/store.js';

const folder = () => mkdtempSync(join(tmpdir(), 'gw-journal-'));

/** The store as version 1 (before risk judgement) made it, frozen here: the released migration it must build on. */
const SCHEMA_V1 = `
  CREATE TABLE alarm (key TEXT PRIMARY KEY, state TEXT NOT NULL);
  CREATE TABLE event (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, incident TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, answer TEXT,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, posted INTEGER NOT NULL DEFAULT 0, uplink_pending INTEGER NOT NULL DEFAULT 0);
  CREATE INDEX event_state ON event (state, posted, seq);
  CREATE INDEX event_uplink ON event (uplink_pending, seq);
  CREATE TABLE result (result_id TEXT PRIMARY KEY, instrument TEXT NOT NULL, body TEXT NOT NULL, captured_at INTEGER NOT NULL);
  CREATE TABLE counter (key TEXT PRIMARY KEY, state TEXT NOT NULL);`;

function versionOneStore(file: string): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(SCHEMA_V1);
  db.prepare('INSERT INTO alarm VALUES (?, ?)').run('B-07/drum-level-lolo', JSON.stringify({ active: true, acked: false, level: 'red' }));
  db.prepare('INSERT INTO event (event_id, incident, created_at, updated_at) VALUES (?, ?, 1, 1)').run(
    'e1',
    JSON.stringify({ schema: 'gw.incident.v1', eventId: 'e1', incidentId: 'i1', type: 'raised' }),
  );
  db.prepare('INSERT INTO counter VALUES (?, ?)').run('lab-results/AN-1', JSON.stringify({ series: 1, last: 7 }));
  db.pragma('user_version = 1');
  db.close();
}

describe('gateway store: journal and risk state', () => {
  it('migrates a version-1 store, keeping what it held, and adds an empty journal and risk table', () => {
    const file = join(folder(), STORE_FILE);
    versionOneStore(file);
    const store = new GatewayStore(file);
    expect(store.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(store.loadAlarms().get('B-07/drum-level-lolo')).toMatchObject({ active: true, level: 'red' });
    expect(store.counter('lab-results/AN-1')).toEqual({ series: 1, last: 7 });
    expect(new Outbox(store).list('pending').map((r) => r.eventId)).toEqual(['e1']);
    expect(store.readJournal('alarm', 0, Number.MAX_SAFE_INTEGER)).toEqual([]);
    expect(store.loadRisk().size).toBe(0);
    const indexes = store.db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'journal'").all();
    expect(indexes).toEqual([{ name: 'journal_kind_ts' }]);
    store.close();
    // Opened again: not migrated twice.
    const again = new GatewayStore(file);
    expect(again.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    again.close();
  });

  it('reads the journal by kind, time range and equipment, in time order, with a limit', () => {
    const store = new GatewayStore(join(folder(), STORE_FILE));
    store.appendJournal([
      { ts: 300, kind: 'alarm', equipment: 'B-07', body: { n: 3 } },
      { ts: 100, kind: 'alarm', equipment: 'B-07', body: { n: 1 } },
      { ts: 200, kind: 'alarm', equipment: 'L-01', body: { n: 2 } },
      { ts: 200, kind: 'near_miss', equipment: 'B-07', body: { n: 9 } },
      { ts: 250, kind: 'risk_summary', body: { site: 's' } },
    ]);
    expect(store.readJournal('alarm', 0, 1000).map((e) => e.body)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    // from is inclusive, to exclusive.
    expect(store.readJournal('alarm', 100, 300).map((e) => e.ts)).toEqual([100, 200]);
    expect(store.readJournal('alarm', 0, 1000, { equipment: 'B-07' }).map((e) => e.ts)).toEqual([100, 300]);
    expect(store.readJournal('alarm', 0, 1000, { limit: 1 }).map((e) => e.ts)).toEqual([100]);
    const [summary] = store.readJournal('risk_summary', 0, 1000);
    expect(summary).toEqual({ id: 5, ts: 250, kind: 'risk_summary', body: { site: 's' } });
    expect(store.pruneJournal(200)).toBe(1);
    expect(store.readJournal('alarm', 0, 1000).map((e) => e.ts)).toEqual([200, 300]);
    store.close();
  });

  it('keeps risk states, deletes one saved as null, and commits them with the journal in the caller transaction or not at all', () => {
    const file = join(folder(), STORE_FILE);
    const store = new GatewayStore(file);
    store.saveRisk([
      { equipment: 'B-07', state: { level: 'yellow', changes: 3 } },
      { equipment: 'L-01', state: { level: 'blue', changes: 0 } },
    ]);
    store.saveRisk([
      { equipment: 'B-07', state: { level: 'red', changes: 4 } },
      { equipment: 'L-01', state: null },
    ]);
    expect(() =>
      store.transaction(() => {
        store.saveRisk([{ equipment: 'B-07', state: { level: 'blue', changes: 5 } }]);
        store.appendJournal([{ ts: 1, kind: 'risk', equipment: 'B-07', body: { level: 'blue' } }]);
        throw new Error('disk full');
      }),
    ).toThrow('disk full');
    store.close();
    const again = new GatewayStore(file);
    expect([...again.loadRisk()]).toEqual([['B-07', { level: 'red', changes: 4 }]]);
    expect(again.readJournal('risk', 0, 10)).toEqual([]);
    again.close();
  });

  it('prunes old journal entries in batches of the size asked, every kind, the newer ones kept', () => {
    const store = new GatewayStore(join(folder(), STORE_FILE));
    store.appendJournal([
      ...Array.from({ length: 12 }, (_, k) => ({ ts: k, kind: k % 2 ? ('alarm' as const) : ('report' as const), body: { k } })),
      { ts: 50, kind: 'risk', equipment: 'B-07', body: { k: 50 } },
    ]);
    expect(store.pruneJournal(20, 5)).toBe(5);
    expect(store.pruneJournal(20, 5)).toBe(5);
    expect(store.pruneJournal(20, 5)).toBe(2);
    expect(store.pruneJournal(20, 5)).toBe(0);
    expect(store.db.prepare('SELECT ts FROM journal').all()).toEqual([{ ts: 50 }]);
    store.close();
  });

  it("writes the store's epoch once, the first time it is asked for: the same after a reopen, another in a new store", () => {
    const file = join(folder(), STORE_FILE);
    const store = new GatewayStore(file);
    const epoch = store.epoch();
    expect(epoch).toMatch(/^[0-9a-f]{8}$/);
    expect(store.epoch()).toBe(epoch);
    store.close();
    const again = new GatewayStore(file);
    expect(again.epoch()).toBe(epoch);
    // A damaged one is not replaced by a new one silently: ids made with it would change.
    again.saveCounter('store-epoch', 42);
    expect(() => again.epoch()).toThrow(/the store's epoch does not read: 42/);
    again.close();
    const rebuilt = new GatewayStore(join(folder(), STORE_FILE));
    expect(rebuilt.epoch()).not.toBe(epoch);
    rebuilt.close();
  });

  it('names the journal entry that does not read', () => {
    const store = new GatewayStore(join(folder(), STORE_FILE));
    store.db.prepare("INSERT INTO journal (ts, kind, body) VALUES (1, 'alarm', '{broken')").run();
    expect(() => store.readJournal('alarm', 0, 10)).toThrow(/journal entry 1 does not read/);
    store.close();
  });
});
