// A durable telemetry spool: chunks of text lines in SQLite (WAL), in arrival order, until their
// destination has taken them (InfluxDB for line protocol, an external MQTT broker for messages).
// Bounded in bytes; when full the oldest chunks go, and every dropped line is counted.
import Database from 'better-sqlite3';
import { createPrivateFile } from './data-dir.js';
import { claimFileFormat, SPOOL_FORMAT } from './data-format.js';
import type { Logger } from './log.js';

export interface SpoolChunk {
  id: number;
  text: string;
  lines: number;
  bytes: number;
  createdAt: number;
}

export interface SpoolStats {
  chunks: number;
  lines: number;
  bytes: number;
  /** Arrival time (ms) of the oldest line held, or undefined when empty. */
  oldestAt: number | undefined;
  /** Lines dropped since start because the spool was full. */
  droppedLines: number;
}

export interface SpoolOptions {
  file: string;
  maxBytes: number;
  log: Logger;
  /** Called with the number of lines dropped each time the bound forces a drop. */
  onDrop?: (lines: number) => void;
  /** Log messages when the bound starts and stops forcing drops. */
  messages?: { full: string; room: string };
}

export { SPOOL_FORMAT };

const DEFAULT_MESSAGES = {
  full: 'Spool is full: dropping the oldest telemetry until its destination takes data again',
  room: 'Spool has room again; telemetry lines were dropped meanwhile',
};

interface Row {
  id: number;
  text: string;
  lines: number;
  bytes: number;
  created_at: number;
}

export class Spool {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement<[string, number, number, number]>;
  private readonly selectFrom: Database.Statement<[number, number], Row>;
  private readonly deleteOne: Database.Statement<[number]>;
  private readonly deleteMany: Database.Transaction<(ids: readonly number[]) => void>;
  private readonly oldest: Database.Statement<[], { created_at: number } | undefined>;
  private bytes = 0;
  private lines = 0;
  private chunks = 0;
  private droppedLines = 0;
  private dropEpisode = 0;
  /** Chunks being sent: a full spool drops around them, and they leave when InfluxDB answers. */
  private readonly busy = new Set<number>();

  constructor(private readonly opts: SpoolOptions) {
    // 0600 before SQLite opens it: its WAL and shared-memory files take the same mode.
    createPrivateFile(opts.file);
    this.db = new Database(opts.file);
    claimFileFormat(this.db, opts.file, 'spool');
    // Incremental vacuum lets an emptied spool give its disk space back.
    this.db.pragma('auto_vacuum = INCREMENTAL');
    this.db.pragma('journal_mode = WAL');
    // FULL: a committed chunk survives a power cut, not only a killed process; commits are few and large.
    this.db.pragma('synchronous = FULL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS chunk (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      text TEXT NOT NULL,
      lines INTEGER NOT NULL,
      bytes INTEGER NOT NULL,
      created_at INTEGER NOT NULL)`);
    this.insert = this.db.prepare('INSERT INTO chunk (text, lines, bytes, created_at) VALUES (?, ?, ?, ?)');
    this.selectFrom = this.db.prepare('SELECT id, text, lines, bytes, created_at FROM chunk WHERE id > ? ORDER BY id LIMIT ?');
    this.deleteOne = this.db.prepare('DELETE FROM chunk WHERE id = ?');
    this.deleteMany = this.db.transaction((ids: readonly number[]) => {
      for (const id of ids) this.deleteOne.run(id);
    });
    this.oldest = this.db.prepare('SELECT created_at FROM chunk ORDER BY id LIMIT 1');
    const totals = this.db
      .prepare('SELECT count(*) AS chunks, coalesce(sum(lines), 0) AS lines, coalesce(sum(bytes), 0) AS bytes FROM chunk')
      .get() as { chunks: number; lines: number; bytes: number };
    this.chunks = totals.chunks;
    this.lines = totals.lines;
    this.bytes = totals.bytes;
  }

  /** Stores lines durably (committed when this returns); returns the chunk id. */
  append(lines: readonly string[], now = Date.now()): number {
    return this.store(lines, now, false).id;
  }

  /** Stores lines durably as a chunk that is already being sent: the bound does not drop it, takeFrom skips it. */
  appendClaimed(lines: readonly string[], now = Date.now()): SpoolChunk {
    return this.store(lines, now, true);
  }

  private store(lines: readonly string[], now: number, claimed: boolean): SpoolChunk {
    const text = lines.join('\n');
    const bytes = Buffer.byteLength(text);
    const id = Number(this.insert.run(text, lines.length, bytes, now).lastInsertRowid);
    if (claimed) this.busy.add(id);
    this.chunks++;
    this.lines += lines.length;
    this.bytes += bytes;
    if (this.bytes > this.opts.maxBytes) this.dropOldest(id);
    else if (this.dropEpisode > 0 && this.bytes < this.opts.maxBytes * 0.9) this.endDropEpisode();
    return { id, text, lines: lines.length, bytes, createdAt: now };
  }

  /** Up to maxLines of the oldest chunks after `afterId` that nobody is sending (at least one chunk). */
  takeFrom(afterId: number, maxLines: number, untilId = Number.MAX_SAFE_INTEGER): SpoolChunk[] {
    const out: SpoolChunk[] = [];
    let lines = 0;
    let cursor = afterId;
    while (lines < maxLines) {
      const rows = this.selectFrom.all(cursor, 64);
      if (rows.length === 0) break;
      for (const row of rows) {
        cursor = row.id;
        if (row.id > untilId) return this.claim(out);
        if (this.busy.has(row.id)) continue;
        if (out.length > 0 && lines + row.lines > maxLines) return this.claim(out);
        out.push(toChunk(row));
        lines += row.lines;
        if (lines >= maxLines) break;
      }
    }
    return this.claim(out);
  }

  /** Chunks that InfluxDB accepted (or refused for good): they leave the spool. */
  remove(chunks: readonly SpoolChunk[]): void {
    this.deleteMany(chunks.map((c) => c.id));
    for (const c of chunks) {
      this.busy.delete(c.id);
      this.chunks--;
      this.lines -= c.lines;
      this.bytes -= c.bytes;
    }
    if (this.chunks === 0) {
      this.lines = 0;
      this.bytes = 0;
      this.db.pragma('incremental_vacuum');
    }
    if (this.dropEpisode > 0 && this.bytes < this.opts.maxBytes * 0.9) this.endDropEpisode();
  }

  /** Chunks whose sending failed: they stay, in place, for the next attempt. */
  release(chunks: readonly SpoolChunk[]): void {
    for (const c of chunks) this.busy.delete(c.id);
  }

  /** Replaces a chunk's text (a refused field taken out); the chunk keeps its place. */
  rewrite(chunk: SpoolChunk, lines: readonly string[]): SpoolChunk {
    const text = lines.join('\n');
    const bytes = Buffer.byteLength(text);
    this.db.prepare('UPDATE chunk SET text = ?, lines = ?, bytes = ? WHERE id = ?').run(text, lines.length, bytes, chunk.id);
    this.lines += lines.length - chunk.lines;
    this.bytes += bytes - chunk.bytes;
    return { ...chunk, text, lines: lines.length, bytes };
  }

  lastId(): number {
    return (this.db.prepare('SELECT coalesce(max(id), 0) AS id FROM chunk').get() as { id: number }).id;
  }

  /** Lines held, from memory: cheap enough for every commit and send. stats() also asks SQLite for the oldest line. */
  get lineCount(): number {
    return this.lines;
  }

  stats(): SpoolStats {
    return {
      chunks: this.chunks,
      lines: this.lines,
      bytes: this.bytes,
      oldestAt: this.chunks > 0 ? this.oldest.get()?.created_at : undefined,
      droppedLines: this.droppedLines,
    };
  }

  close(): void {
    this.db.close();
  }

  private claim(chunks: SpoolChunk[]): SpoolChunk[] {
    for (const c of chunks) this.busy.add(c.id);
    return chunks;
  }

  private dropOldest(newest: number): void {
    let dropped = 0;
    const victims: Row[] = [];
    let freed = 0;
    let cursor = 0;
    while (this.bytes - freed > this.opts.maxBytes) {
      const rows = this.selectFrom.all(cursor, 64);
      if (rows.length === 0) break;
      for (const row of rows) {
        cursor = row.id;
        // The chunk just written stays even when it alone is over the bound: it is the newest data.
        if (row.id === newest) break;
        if (this.busy.has(row.id)) continue;
        victims.push(row);
        freed += row.bytes;
        dropped += row.lines;
        if (this.bytes - freed <= this.opts.maxBytes) break;
      }
      if (cursor === newest) break;
    }
    if (victims.length === 0) return;
    this.deleteMany(victims.map((v) => v.id));
    this.chunks -= victims.length;
    this.lines -= dropped;
    this.bytes -= freed;
    this.droppedLines += dropped;
    if (this.dropEpisode === 0) {
      this.opts.log.error({ maxBytes: this.opts.maxBytes, droppedLines: dropped }, (this.opts.messages ?? DEFAULT_MESSAGES).full);
    }
    this.dropEpisode += dropped;
    this.opts.onDrop?.(dropped);
  }

  private endDropEpisode(): void {
    this.opts.log.warn({ droppedLines: this.dropEpisode }, (this.opts.messages ?? DEFAULT_MESSAGES).room);
    this.dropEpisode = 0;
  }
}

function toChunk(row: Row): SpoolChunk {
  return { id: row.id, text: row.text, lines: row.lines, bytes: row.bytes, createdAt: row.created_at };
}
