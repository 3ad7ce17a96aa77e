// Wrong tokens counted per address, so that one address guessing tokens is slowed down.
import { rateLimited } from '../../../drivers/common/log-budget.js';
import type { Logger } from '../../log.js';

/**
 * Wrong tokens from one address within a minute before further wrong tokens from it get 429. A
 * valid token is never refused for them: behind NAT one client guessing must not lock out the
 * operators who share its address.
 */
export const MAX_FAILURES_PER_MINUTE = 10;
/** Addresses whose failures are remembered; beyond that the oldest are forgotten (many addresses must not grow memory). */
export const MAX_FAILING_ADDRESSES = 10_000;
const WINDOW = 60_000;

export class WrongTokenThrottle {
  private readonly failures = new Map<string, number[]>();
  private forgotten = 0;
  private readonly forgetLog = rateLimited();

  constructor(private readonly log: Logger) {}

  /**
   * One more wrong token from `ip` at `at`: false when the address has had its share this minute
   * (the guess is then not counted), true once it is counted.
   */
  guess(ip: string, at: number): boolean {
    const recent = (this.failures.get(ip) ?? []).filter((t) => t > at - WINDOW);
    if (recent.length >= MAX_FAILURES_PER_MINUTE) return false;
    this.failures.delete(ip);
    this.failures.set(ip, [...recent, at]);
    // Insertion order is the order of last failure: the first entries are the stalest.
    for (const stale of this.failures.keys()) {
      if (this.failures.size <= MAX_FAILING_ADDRESSES) break;
      this.failures.delete(stale);
      this.forgotten++;
      this.forgetLog((notLogged) =>
        this.log.warn(
          { ip: stale, forgottenInAll: this.forgotten, ...(notLogged ? { notLogged } : {}) },
          'Wrong tokens from too many addresses: the oldest address is forgotten, and its next wrong tokens count from zero',
        ),
      );
    }
    return true;
  }

  /** Forgets the addresses with no wrong token in the minute before `at`. */
  forgetQuiet(at: number): void {
    for (const [ip, times] of this.failures) if (times.at(-1)! <= at - WINDOW) this.failures.delete(ip);
  }
}
