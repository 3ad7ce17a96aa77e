// Who may do what: a route says the least role it needs (`config: { role }`), and every request to
// it must carry `Authorization: Bearer <token>` of a token of at least that role (tokens are kept as
// SHA-256 hashes). Wrong tokens from one address are slowed down, and refused requests go to the
// audit journal, counted rather than written one by one. The plugin is not encapsulated: its hook
// guards the routes of every plugin registered after it.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { HttpSection, Role } from '../../../config/http-schema.js';
import { ROLES } from '../../../config/http-schema.js';
import { rateLimited } from '../../../drivers/common/log-budget.js';
import type { AuditInput } from '../../audit.js';
import type { Logger } from '../../log.js';
import { errorSchema, sendError } from '../errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    role?: Role;
  }
  interface FastifyRequest {
    who?: string;
  }
}

/**
 * Wrong tokens from one address within a minute before further wrong tokens from it get 429. A
 * valid token is never refused for them: behind NAT one client guessing must not lock out the
 * operators who share its address.
 */
const MAX_FAILURES_PER_MINUTE = 10;
/** Addresses whose failures are remembered; beyond that the oldest are forgotten (many addresses must not grow memory). */
const MAX_FAILING_ADDRESSES = 10_000;
/**
 * Refused requests (no token, a wrong token, too many wrong tokens) go to the audit journal at most
 * once per address per minute, with how many were refused since the last line, and their URL cut to
 * this many characters: a client hammering the API must not fill the journal.
 */
const REFUSAL_RECORD_INTERVAL = 60_000;
const AUDIT_URL_CHARS = 200;
/**
 * Audit lines for refused requests, all addresses together, within a minute: many addresses (a
 * botnet, a spoofing proxy) must not fill the journal either. Refusals beyond are counted, and the
 * count is journaled in one line when the next minute begins.
 */
export const MAX_REFUSAL_LINES_PER_MINUTE = 100;

/** Where the API's plugins record who did what (the audit journal; a list in tests). */
export interface AuditSink {
  append(entry: AuditInput): unknown;
}

export interface AuthOptions {
  tokens: HttpSection['tokens'];
  /** Where refused requests are recorded. */
  audit: AuditSink;
  log: Logger;
  /** The clock (tests set it). */
  now?: () => number;
}

/** A URL as the audit journal keeps it: at most AUDIT_URL_CHARS characters, saying how long it was when cut. */
function truncated(url: string): string {
  return url.length <= AUDIT_URL_CHARS ? url : `${url.slice(0, AUDIT_URL_CHARS)}... (${url.length} characters)`;
}

const auth: FastifyPluginAsync<AuthOptions> = async (app, opts) => {
  const { audit, log } = opts;
  const now = opts.now ?? Date.now;
  const tokens = opts.tokens.map((t) => ({ ...t, digest: Buffer.from(t.hash.slice('sha256:'.length), 'hex') }));
  const failures = new Map<string, number[]>();
  let failuresForgotten = 0;
  const failureLog = rateLimited();

  // Refused requests per address: when the last audit line for it was written, and how many were
  // refused since. Addresses quiet for a minute are written out (with their count) and forgotten.
  const refusals = new Map<string, { recordedAt: number; since: number }>();
  let refusalsForgotten = 0;
  const refusalLog = rateLimited();
  // The journal's budget for refusal lines, all addresses together, and the refusals it left out.
  let windowStart = Number.NEGATIVE_INFINITY;
  let linesInWindow = 0;
  let unjournaled = 0;
  let unjournaledInAll = 0;
  const unjournaledLog = rateLimited();
  /** Whether one more refusal line may be written now; a new minute first journals what the last one left out. */
  const mayJournal = (at: number): boolean => {
    if (at - windowStart >= REFUSAL_RECORD_INTERVAL) {
      windowStart = at;
      linesInWindow = 0;
      if (unjournaled > 0) {
        linesInWindow++;
        const count = unjournaled;
        unjournaled = 0;
        audit.append({
          who: 'ip:*',
          action: 'login',
          outcome: 'refused',
          detail: `${count} refused requests not journaled one by one (over ${MAX_REFUSAL_LINES_PER_MINUTE} lines a minute)`,
        });
      }
    }
    if (linesInWindow >= MAX_REFUSAL_LINES_PER_MINUTE) return false;
    linesInWindow++;
    return true;
  };
  /** Counts `count` refused requests that get no line of their own, and says so in the log (rate-limited). */
  const notJournaled = (count: number, ip: string): void => {
    unjournaled += count;
    unjournaledInAll += count;
    unjournaledLog((notLogged) =>
      log.warn(
        { ip, unjournaled: unjournaledInAll, ...(notLogged ? { notLogged } : {}) },
        `Refused requests from many addresses: over ${MAX_REFUSAL_LINES_PER_MINUTE} audit lines a minute; the rest are counted and journaled as one line`,
      ),
    );
  };

  const recordRefusal = (ip: string, url: string, outcome: string, at: number): void => {
    const seen = refusals.get(ip);
    if (seen && at - seen.recordedAt < REFUSAL_RECORD_INTERVAL) {
      seen.since++;
      return;
    }
    if (!mayJournal(at)) {
      // Not remembered either: the address's count would need a line of its own later.
      notJournaled(1 + (seen?.since ?? 0), ip);
      refusals.delete(ip);
      return;
    }
    refusals.delete(ip);
    refusals.set(ip, { recordedAt: at, since: 0 });
    // Insertion order is the order of the last line written: the first entries are the stalest.
    for (const [stale, state] of refusals) {
      if (refusals.size <= MAX_FAILING_ADDRESSES) break;
      refusals.delete(stale);
      if (state.since > 0) {
        refusalsForgotten += state.since;
        refusalLog((notLogged) =>
          log.warn(
            { ip: stale, uncounted: state.since, forgottenInAll: refusalsForgotten, ...(notLogged ? { notLogged } : {}) },
            'Refused requests from too many addresses: the oldest address is forgotten and its refusals since its last audit line are not journaled',
          ),
        );
      }
    }
    audit.append({
      who: `ip:${ip}`,
      action: 'login',
      target: truncated(url),
      outcome,
      ...(seen && seen.since > 0 ? { detail: `${seen.since} more refused since the last line for this address` } : {}),
    });
  };
  const flushRefusals = (all: boolean): void => {
    const at = now();
    for (const [ip, state] of refusals) {
      if (!all && at - state.recordedAt < REFUSAL_RECORD_INTERVAL) continue;
      refusals.delete(ip);
      if (state.since === 0) continue;
      if (!mayJournal(at)) {
        notJournaled(state.since, ip);
        continue;
      }
      audit.append({
        who: `ip:${ip}`,
        action: 'login',
        outcome: 'refused',
        detail: `${state.since} more refused since the last line for this address`,
      });
    }
    // At stop, what the budget left out is journaled now rather than never.
    if (all && unjournaled > 0) {
      audit.append({
        who: 'ip:*',
        action: 'login',
        outcome: 'refused',
        detail: `${unjournaled} refused requests not journaled one by one (over ${MAX_REFUSAL_LINES_PER_MINUTE} lines a minute)`,
      });
      unjournaled = 0;
    }
  };
  const refusalTimer = setInterval(() => {
    try {
      flushRefusals(false);
    } catch (err) {
      // Outside a request nobody else would hear of it (a full disk, a lost lock): the log does.
      log.error({ err }, 'Audit journal: the count of refused requests could not be written');
    }
    const at = now();
    for (const [ip, times] of failures) if (times.at(-1)! <= at - 60_000) failures.delete(ip);
  }, REFUSAL_RECORD_INTERVAL);
  refusalTimer.unref();
  app.addHook('onClose', async () => {
    clearInterval(refusalTimer);
    // Refusals counted since an address's last line are written now rather than lost.
    try {
      flushRefusals(true);
    } catch (err) {
      log.error({ err }, 'Audit journal: the count of refused requests could not be written at stop');
    }
  });

  const authenticate = (request: FastifyRequest, reply: FastifyReply, role: Role): boolean => {
    const ip = request.ip;
    const at = now();
    const header = request.headers.authorization ?? '';
    const token = /^Bearer (.+)$/.exec(header)?.[1];
    const digest = token ? createHash('sha256').update(token).digest() : undefined;
    const holder = digest ? tokens.find((t) => t.digest.length === digest.length && timingSafeEqual(t.digest, digest)) : undefined;
    if (!holder) {
      // Only a wrong token counts as a guess, and only guesses are slowed down: a valid token from
      // the same address goes through, and a request without a token gets 401 as always.
      const recent = token ? (failures.get(ip) ?? []).filter((t) => t > at - 60_000) : [];
      if (token && recent.length >= MAX_FAILURES_PER_MINUTE) {
        recordRefusal(ip, request.url, 'refused: too many wrong tokens from this address', at);
        void sendError(
          reply.header('Retry-After', '60'),
          'GW_HTTP_TOO_MANY_WRONG_TOKENS',
          'too many wrong tokens from this address; wait a minute',
        );
        return false;
      }
      if (token) {
        failures.delete(ip);
        failures.set(ip, [...recent, at]);
        // Insertion order is the order of last failure: the first entries are the stalest.
        for (const stale of failures.keys()) {
          if (failures.size <= MAX_FAILING_ADDRESSES) break;
          failures.delete(stale);
          failuresForgotten++;
          failureLog((notLogged) =>
            log.warn(
              { ip: stale, forgottenInAll: failuresForgotten, ...(notLogged ? { notLogged } : {}) },
              'Wrong tokens from too many addresses: the oldest address is forgotten, and its next wrong tokens count from zero',
            ),
          );
        }
      }
      recordRefusal(ip, request.url, token ? 'refused: unknown token' : 'refused: no token', at);
      void sendError(
        reply.header('WWW-Authenticate', 'Bearer'),
        'GW_HTTP_UNAUTHORIZED',
        token ? 'unknown token' : 'a Bearer token is needed (Authorization: Bearer <token>)',
      );
      return false;
    }
    if (ROLES.indexOf(holder.role) < ROLES.indexOf(role)) {
      void sendError(reply, 'GW_HTTP_FORBIDDEN', `${holder.name} is a ${holder.role}; this needs ${role}`);
      return false;
    }
    request.who = holder.name;
    return true;
  };

  // A route that needs a role can answer 401, 403 and 429: its OpenAPI description says so.
  app.addHook('onRoute', (route) => {
    if (!route.config?.role) return;
    const schema = (route.schema ??= {});
    schema.response = { 401: errorSchema, 403: errorSchema, 429: errorSchema, ...(schema.response as object | undefined) };
  });
  app.addHook('onRequest', async (request, reply) => {
    const role = request.routeOptions.config.role;
    if (role && !authenticate(request, reply, role)) return reply;
    return undefined;
  });
};
// Not encapsulated (what fastify-plugin does): the hooks apply to the routes of the plugins registered after it.
export const authPlugin = Object.assign(auth, { [Symbol.for('skip-override')]: true });
