// Who may do what: a route says the least role it needs (`config: { role }`), and every request to
// it must carry `Authorization: Bearer <token>` of a token of at least that role (tokens are kept as
// SHA-256 hashes). Wrong tokens from one address are slowed down, and refused requests go to the
// audit journal, counted rather than written one by one. The plugin is not encapsulated: its hook
// guards the routes of every plugin registered after it.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { HttpSection, Role } from '../../../config/http-schema.js';
import type { Logger } from '../../log.js';
import { type AuditSink, RefusalJournal, REFUSAL_RECORD_INTERVAL } from '../auth/refusal-journal.js';
import { holds, TokenTable } from '../auth/token-table.js';
import { WrongTokenThrottle } from '../auth/wrong-token-throttle.js';
import { errorSchema, sendError } from '../errors.js';

export { type AuditSink, MAX_REFUSAL_LINES_PER_MINUTE } from '../auth/refusal-journal.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    role?: Role;
    /** A known token without the role is written to the audit journal too (action `forbidden`): a reload of the site file. */
    auditForbidden?: boolean;
  }
  interface FastifyRequest {
    who?: string;
  }
}

export interface AuthOptions {
  tokens: HttpSection['tokens'];
  /** Where refused requests are recorded. */
  audit: AuditSink;
  log: Logger;
  /** The clock (tests set it). */
  now?: () => number;
}

const auth: FastifyPluginAsync<AuthOptions> = async (app, opts) => {
  const { log } = opts;
  const now = opts.now ?? Date.now;
  const guard: Guard = {
    tokens: new TokenTable(opts.tokens),
    throttle: new WrongTokenThrottle(log),
    journal: new RefusalJournal(opts.audit, log),
    audit: opts.audit,
  };
  const { throttle, journal } = guard;

  const refusalTimer = setInterval(() => {
    try {
      journal.flush(false, now());
    } catch (err) {
      // Outside a request nobody else would hear of it (a full disk, a lost lock): the log does.
      log.error({ err }, 'Audit journal: the count of refused requests could not be written');
    }
    throttle.forgetQuiet(now());
  }, REFUSAL_RECORD_INTERVAL);
  refusalTimer.unref();
  app.addHook('onClose', async () => {
    clearInterval(refusalTimer);
    // Refusals counted since an address's last line are written now rather than lost.
    try {
      journal.flush(true, now());
    } catch (err) {
      log.error({ err }, 'Audit journal: the count of refused requests could not be written at stop');
    }
  });

  // A route that needs a role can answer 401, 403 and 429: its OpenAPI description says so.
  app.addHook('onRoute', (route) => {
    if (!route.config?.role) return;
    const schema = (route.schema ??= {});
    schema.response = { 401: errorSchema, 403: errorSchema, 429: errorSchema, ...(schema.response as object | undefined) };
  });
  app.addHook('onRequest', async (request, reply) => {
    const role = request.routeOptions.config.role;
    if (role && !authenticate(guard, request, reply, role, now())) return reply;
    return undefined;
  });
};

/** The units the plugin's hook asks, one request at a time. */
interface Guard {
  tokens: TokenTable;
  throttle: WrongTokenThrottle;
  journal: RefusalJournal;
  audit: AuditSink;
}

/** Whether the request may go on to a route that needs `role`; if not, its answer is sent. */
function authenticate(
  { tokens, throttle, journal, audit }: Guard,
  request: FastifyRequest,
  reply: FastifyReply,
  role: Role,
  at: number,
): boolean {
  const { token, holder } = tokens.present(request.headers.authorization);
  if (!holder) {
    // Only a wrong token counts as a guess, and only guesses are slowed down: a valid token from
    // the same address goes through, and a request without a token gets 401 as always.
    if (token && !throttle.guess(request.ip, at)) {
      journal.record(request.ip, request.url, 'refused: too many wrong tokens from this address', at);
      void sendError(
        reply.header('Retry-After', '60'),
        'GW_HTTP_TOO_MANY_WRONG_TOKENS',
        'too many wrong tokens from this address; wait a minute',
      );
      return false;
    }
    journal.record(request.ip, request.url, token ? 'refused: unknown token' : 'refused: no token', at);
    void sendError(
      reply.header('WWW-Authenticate', 'Bearer'),
      'GW_HTTP_UNAUTHORIZED',
      token ? 'unknown token' : 'a Bearer token is needed (Authorization: Bearer <token>)',
    );
    return false;
  }
  if (!holds(holder, role)) {
    // A known holder trying what the route says is worth a line of its own (a reload of the site file).
    if (request.routeOptions.config.auditForbidden)
      audit.append({
        who: holder.name,
        action: 'forbidden',
        target: request.url,
        outcome: `refused: a ${holder.role} token; this needs admin`,
      });
    void sendError(reply, 'GW_HTTP_FORBIDDEN', `${holder.name} is a ${holder.role}; this needs ${role}`);
    return false;
  }
  request.who = holder.name;
  return true;
}

// Not encapsulated (what fastify-plugin does): the hooks apply to the routes of the plugins registered after it.
export const authPlugin = Object.assign(auth, { [Symbol.for('skip-override')]: true });
