// The audit journal: every acknowledge, shelve, unshelve, out of service, return to service, outbox
// retry, failed login and certificate trust, appended as one JSON line to `<data_dir>/audit.jsonl`.
//
// Each entry carries an HMAC-SHA256 over its fields and the MAC of the entry before, keyed by a
// secret that is not in the journal (`<data_dir>/audit.key`, or GATEWAY_AUDIT_KEY). Whoever edits,
// removes or inserts a line cannot make the chain fit again without that key; a plain hash chain
// could simply be recomputed. Truncating the newest entries leaves a valid chain, so the head (the
// last seq and MAC) is also kept, keyed, in `audit.head`, and verify compares the two.
//
// The gateway and the CLI (`gateway certs trust`) append to the same file. Every append takes a lock
// file and reads the chain head from the journal itself, never from memory, so both processes write
// one chain. A torn last line (a write cut short) is cut off and the cut is recorded as an entry;
// damage further up is left for `gateway audit verify` to name. At 16 MiB the file rolls to
// `audit.<n>.jsonl`, and the next file begins with an entry naming its number, chained to the last
// entry of the one before.
import { createHmac, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  closeSync,
  existsSync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  linkSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { GatewayError } from '../config/errors.js';

export interface AuditEntry {
  seq: number;
  at: string;
  who: string;
  action: string;
  target?: string;
  outcome: string;
  detail?: string;
  /** MAC of the previous entry (64 zeros for the first entry of the journal). */
  prev: string;
  /** HMAC-SHA256 of this entry's fields and prev, under the journal's key. */
  mac: string;
}

/** An entry written before the journal was keyed: `hash` is a plain SHA-256 of the same fields. */
interface LegacyEntry extends Omit<AuditEntry, 'mac'> {
  hash: string;
}

export type AuditInput = { who: string; action: string; target?: string; outcome: string; detail?: string };

export interface AuditOptions {
  /** The key, for tests; otherwise GATEWAY_AUDIT_KEY or `<dir>/audit.key`. */
  key?: Buffer;
  /** Size at which the file rolls over. */
  maxBytes?: number;
  /** How many rolled-over files are kept; older ones are deleted. */
  keep?: number;
  env?: NodeJS.ProcessEnv;
}

/** 16 MiB: about 60,000 entries, months of a busy site, and small enough to read whole in verify. */
export const AUDIT_ROTATE_BYTES = 16 * 1024 * 1024;
/** Eight rolled files plus the current one: at most 144 MiB of journal. */
export const AUDIT_KEEP_FILES = 8;
/** Field values beyond this are cut (a URL of 16 kB in one line was seen); the cut says how much. */
const FIELD_MAX = 2048;
/** An append holds the lock for well under a millisecond; a holder stuck this long is not normal. */
const LOCK_WAIT_MS = 2000;
/** A lock this old is stale even when its pid is alive (the pid may have been reused). */
const LOCK_STALE_MS = 10_000;
/** Torn bytes kept aside per repair, and in `audit.torn` altogether. */
const TORN_KEEP_BYTES = 64 * 1024;
const TORN_FILE_MAX = 1024 * 1024;

const GENESIS = '0'.repeat(64);
const HEX64 = /^[0-9a-f]{64}$/;
/** Tags the MAC input, so an entry MAC can never be passed off as a head MAC or the other way round. */
const ENTRY_TAG = 'gw-audit-entry-v2';
const HEAD_TAG = 'gw-audit-head-v2';
/** Actions the journal writes about itself. */
export const JOURNAL_FILE = 'journal file';
export const JOURNAL_REPAIRED = 'journal repaired';
export const JOURNAL_HEAD_MISMATCH = 'journal head mismatch';
export const JOURNAL_KEYED = 'journal keyed';

interface Paths {
  dir: string;
  file: string;
  stem: string;
  key: string;
  head: string;
  lock: string;
  torn: string;
  rotated(n: number): string;
}

function pathsOf(file: string): Paths {
  const dir = dirname(file);
  const stem = basename(file).replace(/\.jsonl$/, '');
  return {
    dir,
    file,
    stem,
    key: join(dir, `${stem}.key`),
    head: join(dir, `${stem}.head`),
    lock: join(dir, `${stem}.lock`),
    torn: join(dir, `${stem}.torn`),
    rotated: (n) => join(dir, `${stem}.${n}.jsonl`),
  };
}

function macOf(key: Buffer, e: Omit<AuditEntry, 'mac'>): string {
  // The fields in a fixed order: the MAC does not depend on how a line was formatted.
  return createHmac('sha256', key)
    .update(JSON.stringify([ENTRY_TAG, e.seq, e.at, e.who, e.action, e.target ?? null, e.outcome, e.detail ?? null, e.prev]))
    .digest('hex');
}

function legacyHashOf(e: Omit<LegacyEntry, 'hash'>): string {
  return createHash('sha256')
    .update(JSON.stringify([e.seq, e.at, e.who, e.action, e.target ?? null, e.outcome, e.detail ?? null, e.prev]))
    .digest('hex');
}

function headMacOf(key: Buffer, seq: number, mac: string): string {
  return createHmac('sha256', key)
    .update(JSON.stringify([HEAD_TAG, seq, mac]))
    .digest('hex');
}

function sameHex(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

type Parsed = { kind: 'keyed'; e: AuditEntry } | { kind: 'legacy'; e: LegacyEntry };

function parseEntry(line: string): Parsed | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const e = v as Record<string, unknown>;
  const str = (k: string) => typeof e[k] === 'string';
  const optStr = (k: string) => e[k] === undefined || typeof e[k] === 'string';
  if (
    !Number.isSafeInteger(e.seq) ||
    (e.seq as number) < 1 ||
    !str('at') ||
    !str('who') ||
    !str('action') ||
    !str('outcome') ||
    !optStr('target') ||
    !optStr('detail')
  )
    return undefined;
  if (typeof e.prev !== 'string' || !HEX64.test(e.prev)) return undefined;
  if (typeof e.mac === 'string' && HEX64.test(e.mac) && e.hash === undefined) return { kind: 'keyed', e: e as unknown as AuditEntry };
  if (typeof e.hash === 'string' && HEX64.test(e.hash) && e.mac === undefined) return { kind: 'legacy', e: e as unknown as LegacyEntry };
  return undefined;
}

function linkOf(p: Parsed): string {
  return p.kind === 'keyed' ? p.e.mac : p.e.hash;
}

function bounded(s: string): string {
  return s.length <= FIELD_MAX ? s : `${s.slice(0, FIELD_MAX)}…(${s.length - FIELD_MAX} more characters cut)`;
}

// ---------------------------------------------------------------------------------------------
// The key

/**
 * The journal's key: GATEWAY_AUDIT_KEY (64 hexadecimal digits) when set, else `<dir>/audit.key`.
 * With `create`, a missing key file is made: 32 random bytes as hex, mode 0600, written to a
 * temporary file and then hard-linked into place, which fails when the name exists; so two processes
 * starting at once end with one key, and nobody ever reads a half-written one.
 */
export function loadAuditKey(
  file: string,
  opts: { create: boolean; env?: NodeJS.ProcessEnv },
): { key: Buffer; source: string } | undefined {
  const env = opts.env ?? process.env;
  const fromEnv = env.GATEWAY_AUDIT_KEY;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!/^[0-9a-fA-F]{64}$/.test(fromEnv.trim()))
      throw new GatewayError('GW_ERR_AUDIT_KEY', 'GATEWAY_AUDIT_KEY must be 64 hexadecimal digits (32 bytes), as in audit.key');
    return { key: Buffer.from(fromEnv.trim(), 'hex'), source: 'GATEWAY_AUDIT_KEY' };
  }
  const p = pathsOf(file);
  const read = (): Buffer => {
    const text = readFileSync(p.key, 'utf8').trim();
    if (!/^[0-9a-fA-F]{64}$/.test(text))
      throw new GatewayError('GW_ERR_AUDIT_KEY', `${p.key} does not hold a key (64 hexadecimal digits): restore it from a backup`);
    // A key readable by others is no secret; the file is ours, so it is tightened rather than refused.
    if ((statSync(p.key).mode & 0o077) !== 0) chmodSync(p.key, 0o600);
    return Buffer.from(text, 'hex');
  };
  if (existsSync(p.key)) return { key: read(), source: p.key };
  if (!opts.create) return undefined;
  const tmp = join(p.dir, `.${p.stem}.key.${process.pid}.${randomBytes(4).toString('hex')}`);
  writeFileSync(tmp, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(tmp, p.key);
  } catch (err) {
    // Another process made the key first: use theirs.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  return { key: read(), source: p.key };
}

// ---------------------------------------------------------------------------------------------
// The lock

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `fn` holding `<stem>.lock`, a file created with O_EXCL that holds the holder's pid. A lock
 * whose pid is gone, or that is older than 10 s, is stale and broken; the wait is bounded (2 s) and
 * then the append fails rather than write outside the lock.
 */
function withLock<T>(lock: string, fn: () => T): T {
  const token = `${process.pid} ${randomBytes(6).toString('hex')}\n`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(lock, token, { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    breakIfStale(lock);
    if (Date.now() > deadline)
      throw new GatewayError(
        'GW_ERR_AUDIT_LOCK',
        `The audit journal's lock ${lock} is held by another process for more than ${LOCK_WAIT_MS} ms; the entry was not written`,
      );
    sleepSync(Math.min(1 + attempt, 10));
  }
  try {
    return fn();
  } finally {
    release(lock, token);
  }
}

/** Removes our own lock only: if it was broken as stale meanwhile, the file is someone else's. */
function release(lock: string, token: string): void {
  try {
    if (readFileSync(lock, 'utf8') === token) unlinkSync(lock);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function breakIfStale(lock: string): void {
  let held: string;
  let mtime: number;
  try {
    held = readFileSync(lock, 'utf8');
    mtime = statSync(lock).mtimeMs;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const pid = Number.parseInt(held, 10);
  // A lock being written right now reads empty: that is not stale.
  const stale = (held !== '' && (!Number.isSafeInteger(pid) || !alive(pid))) || Date.now() - mtime > LOCK_STALE_MS;
  if (!stale) return;
  // Moved aside, not unlinked: if another waiter broke it first and a new holder has taken the name,
  // what was moved is the new holder's lock, and it is put back.
  const aside = `${lock}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    renameSync(lock, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (readFileSync(aside, 'utf8') !== held) {
    try {
      linkSync(aside, lock);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  unlinkSync(aside);
}

// ---------------------------------------------------------------------------------------------
// Reading the end of a file

/** The line ending at byte `end` (exclusive, the newline itself not included), read backwards. */
function lineBefore(fd: number, end: number): { start: number; text: string } {
  const parts: Buffer[] = [];
  let pos = end;
  for (;;) {
    const len = Math.min(4096, pos);
    if (len === 0) return { start: 0, text: Buffer.concat(parts).toString('utf8') };
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, pos - len);
    const nl = buf.lastIndexOf(0x0a);
    if (nl >= 0) {
      parts.unshift(buf.subarray(nl + 1));
      return { start: pos - len + nl + 1, text: Buffer.concat(parts).toString('utf8') };
    }
    parts.unshift(buf);
    pos -= len;
  }
}

function lastByteIsNewline(fd: number, size: number): boolean {
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, size - 1);
  return b[0] === 0x0a;
}

function firstLine(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const buf = Buffer.alloc(8192);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const nl = buf.subarray(0, n).indexOf(0x0a);
    return buf.subarray(0, nl < 0 ? n : nl).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** The last entry of a file, skipping lines that are not entries. */
function lastEntryOf(fd: number, end: number): { entry?: Parsed; skipped: number } {
  let skipped = 0;
  let pos = end;
  while (pos > 0) {
    // pos is just past a newline; the line is [start, pos - 1).
    const { start, text } = lineBefore(fd, pos - 1);
    const p = parseEntry(text);
    if (p) return { entry: p, skipped };
    skipped++;
    pos = start;
  }
  return { skipped };
}

function rotatedNumbers(p: Paths): number[] {
  const re = new RegExp(`^${p.stem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(\\d+)\\.jsonl$`);
  return readdirSync(p.dir)
    .map((n) => re.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** The number a file declares: its header's, or 1 for a file that starts the journal. */
function fileNumberOf(file: string): number | undefined {
  const line = firstLine(file);
  const p = line === undefined ? undefined : parseEntry(line);
  if (!p) return undefined;
  if (p.e.action === JOURNAL_FILE && p.kind === 'keyed' && /^\d+$/.test(p.e.target ?? '')) return Number(p.e.target);
  return p.e.seq === 1 && p.e.prev === GENESIS ? 1 : undefined;
}

interface Head {
  seq: number;
  mac: string;
}

function readHead(p: Paths, key: Buffer): Head | 'missing' | 'invalid' {
  let text: string;
  try {
    text = readFileSync(p.head, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw err;
  }
  try {
    const h = JSON.parse(text) as { seq?: unknown; mac?: unknown; hmac?: unknown };
    if (!Number.isSafeInteger(h.seq) || typeof h.mac !== 'string' || !HEX64.test(h.mac) || typeof h.hmac !== 'string') return 'invalid';
    if (!sameHex(headMacOf(key, h.seq as number, h.mac), h.hmac)) return 'invalid';
    return { seq: h.seq as number, mac: h.mac };
  } catch {
    return 'invalid';
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface OpenReport {
  /** Bytes of a torn last line cut off when the journal was opened (0: none). */
  repairedBytes: number;
  /** Lines at the end that are not entries and were left in place (damage above a torn line). */
  damagedLines: number;
  /** Set when the head did not match the journal: newest entries removed, or the key changed. */
  headProblem?: string;
}

export class AuditJournal {
  private readonly p: Paths;
  private readonly key: Buffer;
  private readonly maxBytes: number;
  private readonly keep: number;
  /** What opening found and recorded (a repair, a head that did not match). */
  readonly opened: OpenReport;

  /**
   * Opens the journal at `file`: finds or makes its key, and under the lock repairs a torn last line
   * and compares the head, recording either in the journal. The key is refused when missing while
   * the journal already has keyed entries: a new key would silently make them unverifiable.
   */
  constructor(file: string, opts: AuditOptions = {}) {
    this.p = pathsOf(file);
    this.maxBytes = opts.maxBytes ?? AUDIT_ROTATE_BYTES;
    this.keep = Math.max(1, opts.keep ?? AUDIT_KEEP_FILES);
    if (opts.key) this.key = opts.key;
    else {
      const existing = loadAuditKey(file, { create: false, ...(opts.env ? { env: opts.env } : {}) });
      if (!existing && this.hasKeyedEntries())
        throw new GatewayError(
          'GW_ERR_AUDIT_KEY',
          `${this.p.key} is missing but ${file} has keyed entries: restore the key (or set GATEWAY_AUDIT_KEY), or move the journal files aside to start a new journal`,
        );
      this.key = (existing ?? loadAuditKey(file, { create: true, ...(opts.env ? { env: opts.env } : {}) })!).key;
    }
    if (existsSync(file) && (statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    this.opened = withLock(this.p.lock, () => this.write([]).report);
  }

  /** For compatibility: lines at the end that are not entries and were left in place. */
  get damagedTail(): number {
    return this.opened.damagedLines;
  }

  append(entry: AuditInput, now = new Date()): AuditEntry {
    return withLock(this.p.lock, () => this.write([entry], now).written.at(-1)!);
  }

  private hasKeyedEntries(): boolean {
    for (const f of [
      this.p.file,
      ...rotatedNumbers(this.p)
        .reverse()
        .map((n) => this.p.rotated(n)),
    ]) {
      if (!existsSync(f)) continue;
      const fd = openSync(f, 'r');
      try {
        const size = fstatSync(fd).size;
        if (size === 0) continue;
        return lastEntryOf(fd, lastByteIsNewline(fd, size) ? size : lineBefore(fd, size).start).entry?.kind === 'keyed';
      } finally {
        closeSync(fd);
      }
    }
    return false;
  }

  /** Under the lock: repair, check the head, roll over if due, write the entries, move the head. */
  private write(inputs: AuditInput[], now = new Date()): { written: AuditEntry[]; report: OpenReport } {
    const p = this.p;
    const report: OpenReport = { repairedBytes: 0, damagedLines: 0 };
    const notes: AuditInput[] = [];
    let fd = openSync(p.file, 'a+', 0o600);
    try {
      let size = fstatSync(fd).size;

      // A torn last line: bytes after the last newline, or a last line that is no entry.
      if (size > 0) {
        let cut = -1;
        if (!lastByteIsNewline(fd, size)) cut = lineBefore(fd, size).start;
        else if (!parseEntry(lineBefore(fd, size - 1).text)) cut = lineBefore(fd, size - 1).start;
        if (cut >= 0) {
          const torn = Buffer.alloc(size - cut);
          readSync(fd, torn, 0, torn.length, cut);
          const kept = this.keepTorn(torn, now);
          ftruncateSync(fd, cut);
          report.repairedBytes = torn.length;
          notes.push({
            who: 'journal',
            action: JOURNAL_REPAIRED,
            outcome: `journal repaired: ${torn.length} bytes of a torn last line removed`,
            detail:
              kept === torn.length
                ? `kept in ${basename(p.torn)}`
                : `${kept} of them kept in ${basename(p.torn)}, ${torn.length - kept} dropped (it holds at most ${TORN_FILE_MAX} bytes, ${TORN_KEEP_BYTES} per repair)`,
          });
          size = cut;
        }
      }

      // The chain head: the last entry of this file, or of the newest rolled file.
      const found = size > 0 ? lastEntryOf(fd, size) : { skipped: 0 };
      report.damagedLines = found.skipped;
      let last = found.entry;
      // Listing the folder is the slowest step of an append: done only when the current file is empty.
      const rotated = size > 0 && last ? undefined : rotatedNumbers(p);
      const newestRotated = () => (rotated ?? rotatedNumbers(p)).at(-1) ?? 0;
      if (!last && rotated && rotated.length > 0) {
        const rf = openSync(p.rotated(rotated.at(-1)!), 'r');
        try {
          const rsize = fstatSync(rf).size;
          last = rsize > 0 ? lastEntryOf(rf, lastByteIsNewline(rf, rsize) ? rsize : lineBefore(rf, rsize).start).entry : undefined;
        } finally {
          closeSync(rf);
        }
      }
      let seq = last?.e.seq ?? 0;
      let prev = last ? linkOf(last) : GENESIS;

      // The head: ahead of the journal means its newest entries were removed. A journal that ends
      // with unkeyed entries although a head exists was rewritten in the old format to escape the key.
      const head = readHead(p, this.key);
      let problem: string | undefined;
      if (head === 'missing') {
        if (last?.kind === 'keyed')
          problem = `${basename(p.head)} is missing (it is written with every entry): the newest entries may have been removed`;
      } else if (head === 'invalid')
        problem = `${basename(p.head)} does not verify with this key (the key was changed, or the head was written without it)`;
      else if (last?.kind === 'legacy')
        problem = `the journal ends with unkeyed entries, though its head shows it was keyed up to seq ${head.seq}: rewritten in the old format`;
      else if (head.seq > seq)
        problem = `the head records seq ${head.seq}, the journal ends at seq ${seq}: ${head.seq - seq} newest entries were removed`;
      else if (head.seq === seq && !sameHex(head.mac, prev))
        problem = `the head records another entry as seq ${seq}: the newest entry was replaced`;
      if (problem) {
        report.headProblem = problem;
        notes.push({
          who: 'journal',
          action: JOURNAL_HEAD_MISMATCH,
          outcome: 'the journal does not end where its head says',
          detail: problem,
        });
      } else if (last?.kind === 'legacy') {
        // A journal from before the key: one keyed entry at once pins the whole old chain by its prev.
        notes.push({
          who: 'journal',
          action: JOURNAL_KEYED,
          outcome: 'keyed from here',
          detail: `entries 1 to ${seq} are of the old kind (a plain SHA-256 chain)`,
        });
      }

      if (notes.length === 0 && inputs.length === 0) {
        // A new journal gets its head at once, so that verify can tell an empty journal from a deleted one.
        if (head === 'missing') this.writeHead(seq, prev);
        return { written: [], report };
      }

      // Roll over: the full file is renamed (by a link that cannot overwrite) and the oldest pruned.
      let fileNo: number | undefined;
      if (size >= this.maxBytes) {
        const n = fileNumberOf(p.file) ?? newestRotated() + 1;
        try {
          linkSync(p.file, p.rotated(n));
          unlinkSync(p.file);
          closeSync(fd);
          fd = openSync(p.file, 'a+', 0o600);
          size = 0;
          fileNo = n + 1;
          for (const k of rotatedNumbers(p)) if (k <= n - this.keep) unlinkSync(p.rotated(k));
        } catch (err) {
          // A file of that number exists already: something is wrong with the numbering, and the
          // current file keeps growing rather than overwrite it; verify will name the problem.
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
      } else if (size === 0 && seq > 0) fileNo = newestRotated() + 1;

      const written: AuditEntry[] = [];
      const add = (i: AuditInput) => {
        const base = {
          seq: seq + 1,
          at: now.toISOString(),
          who: bounded(i.who),
          action: bounded(i.action),
          ...(i.target !== undefined ? { target: bounded(i.target) } : {}),
          outcome: bounded(i.outcome),
          ...(i.detail !== undefined ? { detail: bounded(i.detail) } : {}),
          prev,
        };
        const full: AuditEntry = { ...base, mac: macOf(this.key, base) };
        written.push(full);
        seq = full.seq;
        prev = full.mac;
      };
      if (fileNo !== undefined)
        add({
          who: 'journal',
          action: JOURNAL_FILE,
          target: String(fileNo),
          outcome: 'continued',
          detail: `continues ${basename(p.rotated(fileNo - 1))} after seq ${seq}`,
        });
      for (const n of notes) add(n);
      for (const i of inputs) add(i);
      writeSync(fd, written.map((e) => `${JSON.stringify(e)}\n`).join(''));
      // The entries reach the disk before the head that names them: after a power loss the head may
      // lag the journal (harmless), never lead it (which would read as removed entries).
      fdatasyncSync(fd);
      this.writeHead(seq, prev);
      return { written, report };
    } finally {
      closeSync(fd);
    }
  }

  /** Replaces the head in one rename, so a reader sees the old head or the new one. */
  private writeHead(seq: number, mac: string): void {
    const tmp = `${this.p.head}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ seq, mac, hmac: headMacOf(this.key, seq, mac) })}\n`, { mode: 0o600 });
    renameSync(tmp, this.p.head);
  }

  /** Appends torn bytes to `<stem>.torn` for whoever investigates, within its bounds; returns how many. */
  private keepTorn(torn: Buffer, now: Date): number {
    let used = 0;
    try {
      used = statSync(this.p.torn).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const room = Math.max(0, Math.min(TORN_KEEP_BYTES, TORN_FILE_MAX - used - 200));
    const kept = Math.min(room, torn.length);
    if (kept === 0) return 0;
    appendFileSync(
      this.p.torn,
      Buffer.concat([
        Buffer.from(
          `--- ${now.toISOString()}: ${torn.length} bytes cut from the end of ${basename(this.p.file)}${kept < torn.length ? `, the first ${kept} kept` : ''}\n`,
        ),
        torn.subarray(0, kept),
        Buffer.from('\n'),
      ]),
      { mode: 0o600 },
    );
    return kept;
  }
}

// ---------------------------------------------------------------------------------------------
// Verifying

export type JournalReport =
  | { ok: true; entries: number; files: string[]; legacy: number; notes: string[] }
  | { ok: false; entries: number; file: string; line: number; reason: string; notes: string[] };

/**
 * Walks every file of the journal, oldest first: each entry's MAC under the key, the seq and prev
 * that tie it to the one before, each file's header, the numbering of the files, and at the end the
 * head. Names the first file and line that does not fit. Entries from before the journal was keyed
 * (a plain SHA-256 chain) are accepted up to the first keyed entry, which pins them by its prev.
 */
export function checkJournal(file: string, opts: { key?: Buffer; keep?: number; env?: NodeJS.ProcessEnv } = {}): JournalReport {
  const p = pathsOf(file);
  const keep = Math.max(1, opts.keep ?? AUDIT_KEEP_FILES);
  const notes: string[] = [];
  const key = opts.key ?? loadAuditKey(file, { create: false, ...(opts.env ? { env: opts.env } : {}) })?.key;
  const numbers = existsSync(p.dir) ? rotatedNumbers(p) : [];
  const files: Array<{ path: string; no: number | undefined }> = numbers.map((n) => ({ path: p.rotated(n), no: n }));
  if (existsSync(p.file)) files.push({ path: p.file, no: undefined });
  let entries = 0;
  let legacy = 0;
  let keyed = 0;
  let seq = 0;
  let prev = GENESIS;
  let lastMac: string | undefined;
  /** Where missing newest entries would be: after the last line of the newest file. */
  let endLine = 1;
  const fail = (f: string, line: number, reason: string): JournalReport => ({ ok: false, entries, file: f, line, reason, notes });

  for (const [index, f] of files.entries()) {
    const name = basename(f.path);
    // The current file's number follows the newest rolled file; alone, it says its own.
    const expected = f.no ?? (numbers.length > 0 ? numbers.at(-1)! + 1 : undefined);
    if (index > 0 && f.no !== undefined && f.no !== files[index - 1]!.no! + 1)
      return fail(
        name,
        1,
        `${p.stem}.${files[index - 1]!.no! + 1}.jsonl is missing: the journal goes from ${basename(files[index - 1]!.path)} to ${name}`,
      );
    const lines = readFileSync(f.path, 'utf8').split('\n');
    if (lines.at(-1) !== '')
      return fail(name, lines.length, 'a torn last line (a write cut short; the gateway cuts it off, and records that, at its next entry)');
    lines.pop();
    endLine = lines.length + 1;
    if (lines.length === 0) {
      if (f.no === undefined) continue;
      return fail(name, 1, 'a rolled-over file with no entries');
    }
    for (const [k, line] of lines.entries()) {
      const n = k + 1;
      const parsed = parseEntry(line);
      if (!parsed) return fail(name, n, line.trim() === '' ? 'an empty line' : 'not an audit entry');
      const e = parsed.e;
      if (k === 0) {
        const isHeader = parsed.kind === 'keyed' && e.action === JOURNAL_FILE;
        const declared = isHeader ? Number(e.target) : e.seq === 1 && e.prev === GENESIS ? 1 : undefined;
        if (declared === undefined) return fail(name, n, `the file does not begin with its header (entries removed from its start)`);
        if (expected !== undefined && declared !== expected)
          return fail(
            name,
            n,
            `the file's header says it is file ${declared}, its place makes it file ${expected} (files renamed or reordered)`,
          );
        if (index === 0) {
          if (declared > 1) {
            // Files before it were deleted: by the gateway's rotation when as many as it keeps follow.
            const current = files.length - 1 + declared;
            if (current - declared < keep)
              return fail(
                name,
                n,
                `${p.stem}.${declared - 1}.jsonl is missing: the gateway keeps ${keep} rolled-over files, and only ${current - declared} are here`,
              );
            notes.push(`files 1 to ${declared - 1} were deleted by rotation (${keep} are kept); the chain starts at seq ${e.seq}`);
            seq = e.seq - 1;
            prev = e.prev;
          }
        } else if (!isHeader) return fail(name, n, 'a rolled-over file must begin with its header');
      }
      if (e.seq !== seq + 1) return fail(name, n, `seq ${e.seq} where ${seq + 1} was expected (an entry removed or inserted)`);
      if (!sameHex(e.prev, prev))
        return fail(name, n, 'prev does not match the entry before (an entry before it was changed, removed or inserted)');
      if (parsed.kind === 'legacy') {
        if (keyed > 0) return fail(name, n, 'an unkeyed (plain SHA-256) entry after keyed ones: inserted');
        if (!sameHex(legacyHashOf(e), parsed.e.hash)) return fail(name, n, 'its content does not match its hash (this entry was edited)');
        legacy++;
      } else {
        if (!key) return fail(name, n, `no key to check it: ${basename(p.key)} is not beside the journal and GATEWAY_AUDIT_KEY is not set`);
        if (!sameHex(macOf(key, parsed.e), parsed.e.mac))
          return fail(name, n, 'its content does not match its MAC (this entry was edited, or written without the key)');
        keyed++;
        if (e.action === JOURNAL_HEAD_MISMATCH)
          return fail(name, n, `the gateway found at ${e.at} that ${e.detail ?? 'the journal did not end where its head said'}`);
        if (e.action === JOURNAL_REPAIRED) notes.push(`${name} line ${n}: ${e.outcome} at ${e.at} (${e.detail ?? ''})`);
      }
      seq = e.seq;
      prev = linkOf(parsed);
      if (parsed.kind === 'keyed') lastMac = parsed.e.mac;
      entries++;
    }
  }

  const last = files.at(-1) ? basename(files.at(-1)!.path) : basename(p.file);
  // The gateway writes the head as soon as it opens a journal: with a key, a head must be there.
  if (key) {
    const head = readHead(p, key);
    if (head === 'missing')
      return fail(
        last,
        endLine,
        `${basename(p.head)} is missing (the gateway writes it when it opens the journal): whether the newest entries were removed cannot be told`,
      );
    if (head === 'invalid') return fail(last, endLine, `${basename(p.head)} does not verify with the key`);
    if (head.seq > seq)
      return fail(
        last,
        endLine,
        `the head records seq ${head.seq}, the journal ends at seq ${seq}: the newest ${head.seq - seq} entries were removed`,
      );
    if (head.seq === seq && !sameHex(head.mac, lastMac ?? prev))
      return fail(last, endLine, `the head records another entry as seq ${seq}: the newest entries were replaced`);
    if (head.seq < seq) notes.push(`the head lags the journal (seq ${head.seq} of ${seq}): a write cut short before the head was updated`);
  } else if (entries > 0 && keyed === 0)
    notes.push('all entries are of the old, unkeyed kind (a plain SHA-256 chain): anyone who edits them can recompute it');
  if (legacy > 0 && keyed > 0)
    notes.push(`the first ${legacy} entries are of the old, unkeyed kind (a plain SHA-256 chain), pinned by the keyed entry after them`);
  return { ok: true, entries, files: files.map((f) => basename(f.path)), legacy, notes };
}

export type VerifyResult = { ok: true; entries: number } | { ok: false; entries: number; line: number; reason: string; file: string };

/** The verdict in the shape `gateway audit verify` has always printed; checkJournal has the notes. */
export function verifyJournal(file: string, opts: { key?: Buffer; keep?: number; env?: NodeJS.ProcessEnv } = {}): VerifyResult {
  const r = checkJournal(file, opts);
  if (r.ok) return { ok: true, entries: r.entries };
  return {
    ok: false,
    entries: r.entries,
    line: r.line,
    reason: r.file === basename(file) ? r.reason : `in ${r.file}: ${r.reason}`,
    file: r.file,
  };
}
