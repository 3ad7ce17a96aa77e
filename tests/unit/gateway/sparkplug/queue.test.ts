// The store-and-forward queue: bounded, oldest dropped and counted, time order, kept across a reopen.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ReadingQueue, type NewReading } from '../../../../gateway/sparkplug/queue.js';

const reading = (ts: number, value: NewReading['value'] = ts): NewReading => ({
  device: 'B-07',
  metric: 'steam_pressure',
  value,
  quality: 'good',
  ts,
  historical: true,
});

describe('Sparkplug store-and-forward queue', () => {
  it('drops the oldest beyond its bound, counted, and gives the rest back in time order', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'spb-queue-')), 'q.db');
    const drops: number[] = [];
    const q = new ReadingQueue(file, 1000, (n) => drops.push(n));
    q.append(Array.from({ length: 900 }, (_, i) => reading(1000 + i)));
    // Put back after a failed send: older than what came after it, it goes first.
    q.append([reading(500, 'late'), ...Array.from({ length: 200 }, (_, i) => reading(5000 + i))]);
    expect(drops).toEqual([101]);
    expect(q.size).toBe(1000);
    const first = q.take(3);
    expect(first.map((r) => r.ts)).toEqual([1100, 1101, 1102]);
    q.remove(first.map((r) => r.id));
    q.close();

    const again = new ReadingQueue(file, 1000, () => {});
    expect(again.size).toBe(997);
    const all = again.take(2000);
    expect(all.map((r) => r.ts)).toEqual([...all.map((r) => r.ts)].sort((a, b) => a - b));
    expect(all.at(-1)).toMatchObject({ ts: 5199, value: 5199, historical: true, quality: 'good' });
    again.close();
  });

  it('a write that fails (a full disk) leaves its count as the file is: nothing counted as stored or dropped', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'spb-queue-')), 'q.db');
    const drops: number[] = [];
    const q = new ReadingQueue(file, 1000, (n) => drops.push(n));
    q.append(Array.from({ length: 1000 }, (_, i) => reading(1000 + i)));
    // The bound's DELETE fails as SQLite does on a full disk: the whole append is rolled back.
    const db = (q as unknown as { db: { prepare(sql: string): unknown } }).db;
    const prepare = db.prepare.bind(db);
    db.prepare = (sql: string) =>
      sql.startsWith('DELETE FROM readings WHERE id IN')
        ? {
            run: () => {
              throw new Error('SQLITE_FULL: database or disk is full');
            },
          }
        : prepare(sql);
    expect(() => q.append([reading(9000), reading(9001)])).toThrow(/SQLITE_FULL/);
    db.prepare = prepare;
    expect(q.size).toBe(1000);
    expect(drops).toEqual([]);
    // Emptied, it says so (a count above the rows would keep a forward looping on nothing).
    q.remove(q.take(2000).map((r) => r.id));
    expect(q.size).toBe(0);
    q.close();
  });
});
