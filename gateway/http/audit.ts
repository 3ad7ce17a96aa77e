// The audit journal: every acknowledge, shelve, unshelve, out of service, return to service, outbox
// retry and failed login, appended as one JSON line to `<data_dir>/audit.jsonl`. Each entry carries
// the hash of the one before, so an edited, removed or inserted line breaks the chain; `gateway
// audit verify` names the first one.
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';

export interface AuditEntry {
  seq: number;
  at: string;
  who: string;
  action: string;
  target?: string;
  outcome: string;
  detail?: string;
  /** Hash of the previous entry (64 zeros for the first). */
  prev: string;
  hash: string;
}

const GENESIS = '0'.repeat(64);

function hashOf(e: Omit<AuditEntry, 'hash'>): string {
  // The fields in a fixed order: the hash does not depend on how a line was formatted.
  const canonical = JSON.stringify([e.seq, e.at, e.who, e.action, e.target ?? null, e.outcome, e.detail ?? null, e.prev]);
  return createHash('sha256').update(canonical).digest('hex');
}

export class AuditJournal {
  private last = GENESIS;
  private seq = 0;
  /**
   * Lines at the end that are not entries (a write cut short by a power loss, an edit): the journal
   * goes on after the last entry, and `gateway audit verify` names the damaged line.
   */
  readonly damagedTail: number = 0;

  constructor(private readonly file: string) {
    if (!existsSync(file)) return;
    const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
    for (let k = lines.length - 1; k >= 0; k--) {
      const e = entryOf(lines[k]!);
      if (e) {
        this.last = e.hash;
        this.seq = e.seq;
        break;
      }
      this.damagedTail++;
    }
  }

  append(entry: { who: string; action: string; target?: string; outcome: string; detail?: string }, now = new Date()): AuditEntry {
    const base = { seq: this.seq + 1, at: now.toISOString(), who: entry.who, action: entry.action, ...(entry.target !== undefined ? { target: entry.target } : {}), outcome: entry.outcome, ...(entry.detail !== undefined ? { detail: entry.detail } : {}), prev: this.last };
    const full: AuditEntry = { ...base, hash: hashOf(base) };
    appendFileSync(this.file, `${JSON.stringify(full)}\n`);
    this.last = full.hash;
    this.seq = full.seq;
    return full;
  }
}

function entryOf(line: string): AuditEntry | undefined {
  try {
    const e = JSON.parse(line) as Partial<AuditEntry> | null;
    return e && typeof e.hash === 'string' && /^[0-9a-f]{64}$/.test(e.hash) && Number.isSafeInteger(e.seq) ? (e as AuditEntry) : undefined;
  } catch {
    return undefined;
  }
}

export type VerifyResult = { ok: true; entries: number } | { ok: false; entries: number; line: number; reason: string };

/** Checks the chain from the first line; names the first line that does not fit. */
export function verifyJournal(file: string): VerifyResult {
  if (!existsSync(file)) return { ok: true, entries: 0 };
  const lines = readFileSync(file, 'utf8').split('\n');
  let prev = GENESIS;
  let count = 0;
  for (const [k, line] of lines.entries()) {
    if (line.trim() === '') continue;
    const n = k + 1;
    let e: AuditEntry;
    try {
      e = JSON.parse(line) as AuditEntry;
    } catch {
      return { ok: false, entries: count, line: n, reason: 'not a JSON line' };
    }
    if (typeof e !== 'object' || e === null || Array.isArray(e)) return { ok: false, entries: count, line: n, reason: 'not an audit entry' };
    if (e.seq !== count + 1) return { ok: false, entries: count, line: n, reason: `seq ${e.seq} where ${count + 1} was expected (a line removed or inserted)` };
    if (e.prev !== prev) return { ok: false, entries: count, line: n, reason: 'prev does not match the hash of the entry before (an entry before it was changed or removed)' };
    const { hash, ...rest } = e;
    if (hashOf(rest) !== hash) return { ok: false, entries: count, line: n, reason: 'its content does not match its hash (this entry was edited)' };
    prev = hash;
    count++;
  }
  return { ok: true, entries: count };
}
