// Refused requests (no token, a wrong token, too many wrong tokens) as the audit journal keeps them:
// at most one line per address per minute, and at most MAX_REFUSAL_LINES_PER_MINUTE lines a minute
// in all, the rest counted, so that a client hammering the API cannot fill the journal.
import { rateLimited } from '../../../drivers/common/log-budget.js';
import type { AuditInput } from '../../audit.js';
import type { Logger } from '../../log.js';
import { MAX_FAILING_ADDRESSES } from './wrong-token-throttle.js';

/** Where the API's plugins record who did what (the audit journal; a list in tests). */
export interface AuditSink {
  append(entry: AuditInput): unknown;
}

/**
 * Refused requests go to the audit journal at most once per address per minute, with how many were
 * refused since the last line, and their URL cut to this many characters.
 */
export const REFUSAL_RECORD_INTERVAL = 60_000;
const AUDIT_URL_CHARS = 200;
/**
 * Audit lines for refused requests, all addresses together, within a minute: many addresses (a
 * botnet, a spoofing proxy) must not fill the journal either. Refusals beyond are counted, and the
 * count is journaled in one line when the next minute begins.
 */
export const MAX_REFUSAL_LINES_PER_MINUTE = 100;

/** A URL as the audit journal keeps it: at most AUDIT_URL_CHARS characters, saying how long it was when cut. */
function truncated(url: string): string {
  return url.length <= AUDIT_URL_CHARS ? url : `${url.slice(0, AUDIT_URL_CHARS)}... (${url.length} characters)`;
}

export class RefusalJournal {
  // Refused requests per address: when the last audit line for it was written, and how many were
  // refused since. Addresses quiet for a minute are written out (with their count) and forgotten.
  private readonly refusals = new Map<string, { recordedAt: number; since: number }>();
  private refusalsForgotten = 0;
  private readonly refusalLog = rateLimited();
  // The journal's budget for refusal lines, all addresses together, and the refusals it left out.
  private windowStart = Number.NEGATIVE_INFINITY;
  private linesInWindow = 0;
  private unjournaled = 0;
  private unjournaledInAll = 0;
  private readonly unjournaledLog = rateLimited();

  constructor(
    private readonly audit: AuditSink,
    private readonly log: Logger,
  ) {}

  /** One refused request from `ip`: a line of its own, or counted into the next one. */
  record(ip: string, url: string, outcome: string, at: number): void {
    const seen = this.refusals.get(ip);
    if (seen && at - seen.recordedAt < REFUSAL_RECORD_INTERVAL) {
      seen.since++;
      return;
    }
    if (!this.mayJournal(at)) {
      // Not remembered either: the address's count would need a line of its own later.
      this.notJournaled(1 + (seen?.since ?? 0), ip);
      this.refusals.delete(ip);
      return;
    }
    this.refusals.delete(ip);
    this.refusals.set(ip, { recordedAt: at, since: 0 });
    this.forgetStalest();
    this.audit.append({
      who: `ip:${ip}`,
      action: 'login',
      target: truncated(url),
      outcome,
      ...(seen && seen.since > 0 ? { detail: `${seen.since} more refused since the last line for this address` } : {}),
    });
  }

  /**
   * Writes out the counts of addresses quiet for a minute (`all`: of every address, and what the
   * budget left out, at stop).
   */
  flush(all: boolean, at: number): void {
    for (const [ip, state] of this.refusals) {
      if (!all && at - state.recordedAt < REFUSAL_RECORD_INTERVAL) continue;
      this.refusals.delete(ip);
      if (state.since === 0) continue;
      if (!this.mayJournal(at)) {
        this.notJournaled(state.since, ip);
        continue;
      }
      this.audit.append({
        who: `ip:${ip}`,
        action: 'login',
        outcome: 'refused',
        detail: `${state.since} more refused since the last line for this address`,
      });
    }
    // At stop, what the budget left out is journaled now rather than never.
    if (all && this.unjournaled > 0) {
      this.appendUnjournaled(this.unjournaled);
      this.unjournaled = 0;
    }
  }

  /** Insertion order is the order of the last line written: the first entries are the stalest. */
  private forgetStalest(): void {
    for (const [stale, state] of this.refusals) {
      if (this.refusals.size <= MAX_FAILING_ADDRESSES) break;
      this.refusals.delete(stale);
      if (state.since > 0) {
        this.refusalsForgotten += state.since;
        this.refusalLog((notLogged) =>
          this.log.warn(
            { ip: stale, uncounted: state.since, forgottenInAll: this.refusalsForgotten, ...(notLogged ? { notLogged } : {}) },
            'Refused requests from too many addresses: the oldest address is forgotten and its refusals since its last audit line are not journaled',
          ),
        );
      }
    }
  }

  /** Whether one more refusal line may be written now; a new minute first journals what the last one left out. */
  private mayJournal(at: number): boolean {
    if (at - this.windowStart >= REFUSAL_RECORD_INTERVAL) {
      this.windowStart = at;
      this.linesInWindow = 0;
      if (this.unjournaled > 0) {
        this.linesInWindow++;
        const count = this.unjournaled;
        this.unjournaled = 0;
        this.appendUnjournaled(count);
      }
    }
    if (this.linesInWindow >= MAX_REFUSAL_LINES_PER_MINUTE) return false;
    this.linesInWindow++;
    return true;
  }

  private appendUnjournaled(count: number): void {
    this.audit.append({
      who: 'ip:*',
      action: 'login',
      outcome: 'refused',
      detail: `${count} refused requests not journaled one by one (over ${MAX_REFUSAL_LINES_PER_MINUTE} lines a minute)`,
    });
  }

  /** Counts `count` refused requests that get no line of their own, and says so in the log (rate-limited). */
  private notJournaled(count: number, ip: string): void {
    this.unjournaled += count;
    this.unjournaledInAll += count;
    this.unjournaledLog((notLogged) =>
      this.log.warn(
        { ip, unjournaled: this.unjournaledInAll, ...(notLogged ? { notLogged } : {}) },
        `Refused requests from many addresses: over ${MAX_REFUSAL_LINES_PER_MINUTE} audit lines a minute; the rest are counted and journaled as one line`,
      ),
    );
  }
}
