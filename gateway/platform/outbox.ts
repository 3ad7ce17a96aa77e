// The durable outbox of events for the central platform (incidents, lab results, risk changes, risk
// summaries, daily reports): the `event` table of the gateway's store (gateway/store.ts: SQLite, WAL,
// synchronous FULL), which telemetry can never evict. An event
// is committed there, in the same transaction as the alarm transition that made it, before it is
// published anywhere, and leaves only when the platform has answered 2xx (and, with an MQTT uplink,
// when the central broker has acknowledged it too). `seq` is SQLite's AUTOINCREMENT rowid: it grows
// by one per event and is never reused, also after deletions and restarts.
import Database from 'better-sqlite3';
import { GatewayStore } from '../store.js';
import type { QueuedBody, ResultBody } from './contract.js';

export interface OutboxRow {
  seq: number;
  eventId: string;
  /** The stored incident, without seq: the body is `incidentBody(incident, seq)`. */
  incident: string;
  state: 'pending' | 'dead';
  attempts: number;
  /** The platform's last answer (dead letters: why). */
  answer: string | null;
  createdAt: number;
  updatedAt: number;
}

interface Raw {
  seq: number;
  event_id: string;
  incident: string;
  state: 'pending' | 'dead';
  attempts: number;
  answer: string | null;
  created_at: number;
  updated_at: number;
}

const toRow = (r: Raw): OutboxRow => ({
  seq: r.seq,
  eventId: r.event_id,
  incident: r.incident,
  state: r.state,
  attempts: r.attempts,
  answer: r.answer,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** Held results read at a time by release(). */
export const RELEASE_PAGE = 1000;

export class Outbox {
  private readonly db: Database.Database;
  /** The store, when the outbox opened it itself (a file given); closed with the outbox. */
  private readonly own: GatewayStore | undefined;
  /**
   * Deliveries are written through a second connection with synchronous=NORMAL: no flush of their
   * own (the next commit on the main connection flushes them). A delivery lost to a power cut only
   * sends that event again, which the platform discards by its Idempotency-Key.
   */
  private readonly acks: Database.Database;
  private readonly deleteDelivered: Database.Statement<[number]>;
  private readonly deleteUplinked: Database.Statement<[number]>;
  private readonly markPosted: Database.Statement<[number]>;
  private readonly markUplinked: Database.Statement<[number]>;
  private readonly selectPending: Database.Statement<[number, number], Raw>;
  private readonly selectUplink: Database.Statement<[number], Raw>;
  private readonly insert: Database.Statement<[string, string, number, number]>;
  private readonly insertResult: Database.Statement<[string, string, string, number, string | null]>;
  private readonly selectHeld: Database.Statement<[string, number, number], { id: number; body: string }>;
  private readonly unhold: Database.Statement<[string]>;
  private readonly addMany: Database.Transaction<(bodies: readonly QueuedBody[], now: number) => number[]>;

  constructor(
    /** The gateway's store, or the file of one (opened, and closed with the outbox). */
    where: GatewayStore | string,
    /** uplink: every event also goes to the central broker, and stays until it has too. */
    private readonly opts: { uplink?: boolean } = {},
  ) {
    this.own = typeof where === 'string' ? new GatewayStore(where) : undefined;
    const store = typeof where === 'string' ? this.own! : where;
    this.db = store.db;
    // Every lab result ever captured, by its stable id (table `result`): a result read again is not taken again.
    this.insertResult = this.db.prepare(
      'INSERT OR IGNORE INTO result (result_id, instrument, body, captured_at, held) VALUES (?, ?, ?, ?, ?)',
    );
    this.selectHeld = this.db.prepare('SELECT rowid AS id, body FROM result WHERE held = ? AND rowid > ? ORDER BY rowid LIMIT ?');
    this.unhold = this.db.prepare('UPDATE result SET held = NULL WHERE held = ?');
    this.insert = this.db.prepare(
      `INSERT OR IGNORE INTO event (event_id, incident, created_at, updated_at, uplink_pending) VALUES (?, ?, ?, ?, ${opts.uplink ? 1 : 0})`,
    );
    this.selectPending = this.db.prepare("SELECT * FROM event WHERE state = 'pending' AND posted = 0 AND seq > ? ORDER BY seq LIMIT ?");
    this.selectUplink = this.db.prepare('SELECT * FROM event WHERE uplink_pending = 1 ORDER BY seq LIMIT ?');
    this.acks = new Database(store.file);
    this.acks.pragma('synchronous = NORMAL');
    this.acks.pragma('busy_timeout = 5000');
    // A delivered event leaves at once unless the central broker still has to take it, and the other way round.
    this.deleteDelivered = this.acks.prepare('DELETE FROM event WHERE seq = ? AND uplink_pending = 0');
    this.deleteUplinked = this.acks.prepare('DELETE FROM event WHERE seq = ? AND posted = 1');
    this.markPosted = this.acks.prepare('UPDATE event SET posted = 1 WHERE seq = ?');
    this.markUplinked = this.acks.prepare('UPDATE event SET uplink_pending = 0 WHERE seq = ?');
    this.addMany = this.db.transaction((bodies: readonly QueuedBody[], now: number) =>
      bodies.flatMap((i) => {
        // An event already taken (the same eventId) is not taken twice.
        const r = this.insert.run(i.eventId, JSON.stringify(i), now, now);
        return r.changes > 0 ? [Number(r.lastInsertRowid)] : [];
      }),
    );
  }

  /**
   * Commits bodies with an eventId (incidents, risk changes, risk summaries, daily reports) in one
   * transaction, or in the caller's (a savepoint) when there is one; returns the seqs of those new.
   */
  add(bodies: readonly QueuedBody[], now = Date.now()): number[] {
    return bodies.length === 0 ? [] : this.addMany(bodies, now);
  }

  /**
   * Lab results, in one transaction: those never captured before are kept, and (with `forward`)
   * queued for the platform. Returns the results that were new. A result `held` names gives no
   * event yet: it waits, stored under that name, for release() (quality control's hold mode).
   */
  addResults<T extends { resultId: string; instrument: string }>(
    results: readonly T[],
    bodyOf: ((r: T) => Omit<ResultBody, 'seq'>) | undefined,
    now = Date.now(),
    held?: (r: T) => string | undefined,
  ): T[] {
    return this.db.transaction(() =>
      results.filter((r) => {
        const hold = bodyOf && held ? held(r) : undefined;
        if (this.insertResult.run(r.resultId, r.instrument, JSON.stringify(r), now, hold ?? null).changes === 0) return false;
        if (bodyOf && hold === undefined) this.insert.run(r.resultId, JSON.stringify(bodyOf(r)), now, now);
        return true;
      }),
    )();
  }

  /**
   * Queues for the platform the results held under `name` (as stored, changed by `bodyOf`), in the
   * order they were captured, in one transaction or the caller's; returns how many. They are read
   * RELEASE_PAGE at a time: a hold of a busy instrument over a weekend must not be read into memory whole.
   */
  release<T>(name: string, bodyOf: (stored: T) => Omit<ResultBody, 'seq'>, now = Date.now()): number {
    return this.db.transaction(() => {
      let n = 0;
      let after = 0;
      for (;;) {
        const rows = this.selectHeld.all(name, after, RELEASE_PAGE);
        if (rows.length === 0) break;
        for (const { id, body } of rows) {
          const r = bodyOf(JSON.parse(body) as T);
          this.insert.run(r.resultId, JSON.stringify(r), now, now);
          after = id;
        }
        n += rows.length;
      }
      this.unhold.run(name);
      return n;
    })();
  }

  /** The oldest events after seq `after` not yet accepted by the platform, in seq order, skipping those given. */
  pending(limit: number, skip: ReadonlySet<number> = new Set(), after = 0): OutboxRow[] {
    let skipped = 0;
    for (const seq of skip) if (seq > after) skipped++;
    const rows = this.selectPending.all(after, limit + skipped);
    return (skipped === 0 ? rows : rows.filter((r) => !skip.has(r.seq))).slice(0, limit).map(toRow);
  }

  /** The platform answered 2xx: one statement, one implicit transaction. */
  delivered(seq: number): void {
    if (this.deleteDelivered.run(seq).changes === 0) this.markPosted.run(seq);
  }

  /** The oldest events the central broker has not acknowledged, in seq order, skipping those given. */
  uplinkPending(limit: number, skip: ReadonlySet<number> = new Set()): OutboxRow[] {
    const rows = this.selectUplink.all(limit + skip.size);
    return rows
      .filter((r) => !skip.has(r.seq))
      .slice(0, limit)
      .map(toRow);
  }

  /** The central broker acknowledged it. */
  uplinked(seq: number): void {
    if (this.deleteUplinked.run(seq).changes === 0) this.markUplinked.run(seq);
  }

  attempted(seq: number, answer: string, now = Date.now()): void {
    this.db.prepare('UPDATE event SET attempts = attempts + 1, answer = ?, updated_at = ? WHERE seq = ?').run(answer, now, seq);
  }

  /** Refused for good: kept, with the platform's answer, until someone retries it. */
  dead(seq: number, answer: string, now = Date.now()): void {
    this.db
      .prepare("UPDATE event SET state = 'dead', attempts = attempts + 1, answer = ?, updated_at = ? WHERE seq = ?")
      .run(answer, now, seq);
  }

  /** Dead letters back to pending (all of them, or the seqs given); returns how many. */
  retry(seqs?: readonly number[], now = Date.now()): number {
    if (!seqs) return this.db.prepare("UPDATE event SET state = 'pending', updated_at = ? WHERE state = 'dead'").run(now).changes;
    const one = this.db.prepare("UPDATE event SET state = 'pending', updated_at = ? WHERE state = 'dead' AND seq = ?");
    return this.db.transaction(() => seqs.reduce((n, seq) => n + one.run(now, seq).changes, 0))();
  }

  list(state: 'pending' | 'dead', limit = 1000): OutboxRow[] {
    return (this.db.prepare('SELECT * FROM event WHERE state = ? AND posted = 0 ORDER BY seq LIMIT ?').all(state, limit) as Raw[]).map(
      toRow,
    );
  }

  stats(): { pending: number; dead: number; uplinkPending: number; lastSeq: number; oldestPendingAt: number | undefined } {
    const counts = this.db
      .prepare(
        "SELECT coalesce(sum(state = 'pending' AND posted = 0), 0) AS pending, coalesce(sum(state = 'dead'), 0) AS dead, coalesce(sum(uplink_pending), 0) AS uplink, min(CASE WHEN state = 'pending' AND posted = 0 THEN created_at END) AS oldest FROM event",
      )
      .get() as { pending: number; dead: number; uplink: number; oldest: number | null };
    return {
      pending: counts.pending,
      dead: counts.dead,
      uplinkPending: counts.uplink,
      lastSeq: this.lastSeq(),
      oldestPendingAt: counts.oldest ?? undefined,
    };
  }

  /** The last seq given, from SQLite's sequence table: never reused. */
  lastSeq(): number {
    const row = this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'event'").get() as { seq: number } | undefined;
    return row?.seq ?? 0;
  }

  close(): void {
    this.acks.close();
    this.own?.close();
  }
}
