// Store and forward for the Sparkplug edge node: readings kept in SQLite (WAL) while the broker or the
// primary host is away, taken back in time order. Bounded in rows; when full the oldest go, counted.
import Database from 'better-sqlite3';
import { createPrivateFile } from '../data-dir.js';
import { claimFileFormat } from '../data-format.js';

export interface StoredReading {
  id: number;
  device: string;
  metric: string;
  value: number | boolean | string | null;
  quality: 'good' | 'bad' | 'uncertain';
  ts: number;
  /** Taken while the node was not online: sent with is_historical. */
  historical: boolean;
}

export type NewReading = Omit<StoredReading, 'id'>;

/** A row as SQLite gives it: the value as JSON text, historical as 0 or 1. */
type Row = Omit<StoredReading, 'value' | 'historical'> & { value: string; historical: number };

function fromRow(r: Row): StoredReading {
  return {
    id: r.id,
    device: r.device,
    metric: r.metric,
    value: JSON.parse(r.value) as StoredReading['value'],
    quality: r.quality,
    ts: r.ts,
    historical: r.historical === 1,
  };
}

export class ReadingQueue {
  private readonly db: Database.Database;
  private rows: number;
  private readonly insert: Database.Statement;
  private readonly oldest: Database.Statement;
  private readonly latestOf: Database.Statement;
  private readonly del: Database.Statement;

  /** `dropped(n)` is told each time the bound forces out the n oldest. */
  constructor(
    file: string,
    private readonly max: number,
    private readonly dropped: (n: number) => void,
  ) {
    createPrivateFile(file);
    this.db = new Database(file);
    claimFileFormat(this.db, file, 'sparkplug');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS readings (id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, metric TEXT NOT NULL, value TEXT NOT NULL, quality TEXT NOT NULL, ts INTEGER NOT NULL, historical INTEGER NOT NULL);' +
        'CREATE INDEX IF NOT EXISTS readings_order ON readings (ts, id);',
    );
    this.rows = (this.db.prepare('SELECT COUNT(*) AS n FROM readings').get() as { n: number }).n;
    this.insert = this.db.prepare(
      'INSERT INTO readings (device, metric, value, quality, ts, historical) VALUES (@device, @metric, @value, @quality, @ts, @historical)',
    );
    // Prepared once: a forward of a full queue takes and removes it in thousands of chunks.
    this.oldest = this.db.prepare('SELECT * FROM readings ORDER BY ts, id LIMIT ?');
    // SQLite takes the bare columns from the row holding MAX(id).
    this.latestOf = this.db.prepare(
      'SELECT id, device, metric, value, quality, ts, historical, MAX(id) AS last FROM readings WHERE device = ? GROUP BY metric',
    );
    this.del = this.db.prepare('DELETE FROM readings WHERE id = ?');
  }

  get size(): number {
    return this.rows;
  }

  append(readings: readonly NewReading[]): void {
    if (readings.length === 0) return;
    // The count and the drops change only once the transaction is committed: a write that fails (a
    // full disk) is rolled back whole, and a count above the rows would keep a forward looping.
    const over = Math.max(0, this.rows + readings.length - this.max);
    this.db.transaction(() => {
      for (const r of readings) this.insert.run({ ...r, value: JSON.stringify(r.value), historical: r.historical ? 1 : 0 });
      if (over > 0) this.db.prepare('DELETE FROM readings WHERE id IN (SELECT id FROM readings ORDER BY ts, id LIMIT ?)').run(over);
    })();
    this.rows += readings.length - over;
    if (over > 0) this.dropped(over);
  }

  /** The oldest `n`, in time order (a reading put back after a failed send goes where its time puts it). */
  take(n: number): StoredReading[] {
    const rows = this.oldest.all(n) as Row[];
    // Fewer than asked for: that is all there is.
    if (rows.length < n) this.rows = rows.length;
    return rows.map(fromRow);
  }

  /** The latest stored reading of each metric of a device (what it last was before a restart). */
  latest(device: string): StoredReading[] {
    return (this.latestOf.all(device) as Row[]).map(fromRow);
  }

  remove(ids: readonly number[]): void {
    let removed = 0;
    this.db.transaction(() => {
      for (const id of ids) removed += this.del.run(id).changes;
    })();
    this.rows -= removed;
  }

  close(): void {
    this.db.close();
  }
}
