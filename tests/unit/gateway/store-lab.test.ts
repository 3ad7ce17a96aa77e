import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Outbox, RELEASE_PAGE } from '../../../gateway/platform/outbox.js';
import { GatewayStore, SCHEMA_VERSION, STORE_FILE } from '../../../gateway/store.js';

const folder = () => mkdtempSync(join(tmpdir(), 'gw-store-lab-'));

/** Migrations 1 and 2 as released, frozen here: what migration 3 must build on. */
const SCHEMA_V2 = `
  CREATE TABLE alarm (key TEXT PRIMARY KEY, state TEXT NOT NULL);
  CREATE TABLE event (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, incident TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, answer TEXT,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, posted INTEGER NOT NULL DEFAULT 0, uplink_pending INTEGER NOT NULL DEFAULT 0);
  CREATE INDEX event_state ON event (state, posted, seq);
  CREATE INDEX event_uplink ON event (uplink_pending, seq);
  CREATE TABLE result (result_id TEXT PRIMARY KEY, instrument TEXT NOT NULL, body TEXT NOT NULL, captured_at INTEGER NOT NULL);
  CREATE TABLE counter (key TEXT PRIMARY KEY, state TEXT NOT NULL);
  CREATE TABLE journal (id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, kind TEXT NOT NULL, equipment TEXT, body TEXT NOT NULL);
  CREATE INDEX journal_kind_ts ON journal (kind, ts);
  CREATE TABLE risk (equipment TEXT PRIMARY KEY, state TEXT NOT NULL);`;

const result = (id: string, analyte = 'GLU') => ({ resultId: id, instrument: 'LA-1', sampleId: 'S1', analyte, value: 5 });
const body = (r: { resultId: string }) => ({ schema: 'gw.result.v1' as const, resultId: r.resultId }) as never;

describe('gateway store: lab quality control', () => {
  it('migrates a version-2 store: results kept, none held; the QC table, the held column and the daily-summary index added', () => {
    const file = join(folder(), STORE_FILE);
    const db = new Database(file);
    db.exec(SCHEMA_V2);
    db.prepare('INSERT INTO result VALUES (?, ?, ?, 1)').run('r-1', 'LA-1', '{}');
    db.pragma('user_version = 2');
    db.close();
    const store = new GatewayStore(file);
    expect(SCHEMA_VERSION).toBe(3);
    expect(store.db.pragma('user_version', { simple: true })).toBe(3);
    expect(store.db.prepare('SELECT result_id, held FROM result').all()).toEqual([{ result_id: 'r-1', held: null }]);
    const indexes = store.db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'result' ORDER BY name").all();
    expect(indexes).toContainEqual({ name: 'result_instrument_captured' });
    expect(indexes).toContainEqual({ name: 'result_held' });
    expect(store.loadQc()).toEqual([]);
    store.saveQc([{ instrument: 'LA-1', analyte: 'GLU', state: { a: 1 } }]);
    store.saveQc([{ instrument: 'LA-1', analyte: 'GLU', state: { a: 2 } }]);
    expect(store.loadQc()).toEqual([{ instrument: 'LA-1', analyte: 'GLU', state: { a: 2 } }]);
    store.close();
  });

  it('holds results without an outbox event until they are released, once, in the order captured', () => {
    const store = new GatewayStore(join(folder(), STORE_FILE));
    const outbox = new Outbox(store);
    const hold = (r: { analyte: string }) => (r.analyte === 'GLU' ? 'LA-1/GLU' : undefined);
    const taken = outbox.addResults([result('r-1'), result('r-2', 'ALT'), result('r-3')], body, 1, hold);
    expect(taken.map((r) => r.resultId)).toEqual(['r-1', 'r-2', 'r-3']);
    // Taken again: not new, not queued.
    expect(outbox.addResults([result('r-1')], body, 2, hold)).toEqual([]);
    expect(outbox.list('pending').map((r) => r.eventId)).toEqual(['r-2']);
    expect(outbox.release('LA-1/ALT', body)).toBe(0);
    expect(
      outbox.release<{ resultId: string }>('LA-1/GLU', (r) => ({ schema: 'gw.result.v1', resultId: r.resultId, released: true }) as never),
    ).toBe(2);
    expect(outbox.list('pending').map((r) => [r.eventId, JSON.parse(r.incident).released])).toEqual([
      ['r-2', undefined],
      ['r-1', true],
      ['r-3', true],
    ]);
    expect(outbox.release('LA-1/GLU', body)).toBe(0);
    // Without a platform nothing is held: there is no upload to wait for.
    expect(outbox.addResults([result('r-4')], undefined, 3, hold)).toHaveLength(1);
    expect(store.db.prepare('SELECT held FROM result WHERE result_id = ?').get('r-4')).toEqual({ held: null });
    outbox.close();
    store.close();
  });

  it('releases a large hold a page at a time, each result once, in the order captured', () => {
    const store = new GatewayStore(join(folder(), STORE_FILE));
    const outbox = new Outbox(store);
    const count = RELEASE_PAGE * 2 + 7;
    const held = Array.from({ length: count }, (_, i) => result(`r-${String(i).padStart(5, '0')}`));
    outbox.addResults(held, body, 1, () => 'LA-1/GLU');
    outbox.addResults([result('other')], body, 1, () => 'LA-1/ALT');
    // Read in pages: a row changed while the first page is released is read as changed (a read of the
    // whole hold at once would have read it before).
    const last = held.at(-1)!.resultId;
    let calls = 0;
    const released = outbox.release<{ resultId: string; value: number }>('LA-1/GLU', (r) => {
      if (calls++ === 0) store.db.prepare("UPDATE result SET body = json_set(body, '$.value', 7) WHERE result_id = ?").run(last);
      return { schema: 'gw.result.v1', resultId: r.resultId, value: r.value } as never;
    });
    expect(released).toBe(count);
    const events = outbox.list('pending', count + 10).map((r) => JSON.parse(r.incident) as { resultId: string; value: number });
    expect(events.map((e) => e.resultId)).toEqual(held.map((r) => r.resultId));
    expect(events.at(-1)!.value).toBe(7);
    expect(store.db.prepare('SELECT held, count(*) AS n FROM result GROUP BY held ORDER BY held').all()).toEqual([
      { held: null, n: count },
      { held: 'LA-1/ALT', n: 1 },
    ]);
    outbox.close();
    store.close();
  });
});
