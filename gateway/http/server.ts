// The gateway's HTTP API (fastify): health and readiness, Prometheus metrics, equipment with their
// last values, alarms and their handling, the platform outbox, a Server-Sent Events stream of
// readings and alarm events, and the site-file check. Every route has a JSON Schema; the OpenAPI
// document is at /api/openapi.json. Tokens (stored as SHA-256 hashes) carry a role: viewer reads,
// operator acknowledges and shelves, admin also takes alarms out of service and retries the outbox.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import type { Reading } from '../../drivers/types.js';
import type { HttpSection, Role } from '../../config/http-schema.js';
import { ROLES } from '../../config/http-schema.js';
import { checkCounters, checkSiteText } from '../../config/check.js';
import { SITE_FILE_LIMITS } from '../../config/load.js';
import { siteJsonSchema } from '../../config/reference.js';
import type { SiteConfig } from '../../config/schema.js';
import { RuleActionError } from '../../rules/engine.js';
import type { AlarmEvent } from '../../rules/types.js';
import type { AlarmService } from '../alarms/service.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { packageRoot } from '../package-root.js';
import type { Pipeline } from '../pipeline.js';
import type { Outbox } from '../platform/outbox.js';
import { AuditJournal } from './audit.js';
import { History, planHistory } from './history.js';
import { InfluxQueryError, MAX_QUERY_ROWS, queryPoint } from '../influx/query.js';
import type { MemoryWatch } from '../memory.js';
import { rateLimited } from '../../drivers/common/log-budget.js';

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
 * Headers on every answer, the API's and the dashboard's, errors and the live stream included. The
 * dashboard has no inline script, style or handler, so the policy allows only its own files; no
 * page of another origin may frame it (clickjacking acknowledge and shelve), and no answer is kept
 * in a cache unless a route says otherwise (the static files revalidate).
 */
const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};
/** A live-stream client that lets this much pile up unread is disconnected: the gateway does not buffer for it. */
const SSE_MAX_BUFFERED = 1024 * 1024;
/**
 * Connection bounds that are not config: idle connections (no byte either way) are closed after
 * 60 s (the live stream writes every 15 s), idle keep-alive connections after 5 s, and one
 * connection serves at most 1000 requests.
 */
const IDLE_TIMEOUT = 60_000;
const KEEP_ALIVE_TIMEOUT = 5000;
const MAX_REQUESTS_PER_SOCKET = 1000;
/** At stop, connections still open after this are closed (the gateway gives each component 1.5 s). */
const STOP_GRACE_MS = 750;
/** How long the trend waits for older readings from InfluxDB. */
const HISTORY_QUERY_TIMEOUT = 5000;
/** The dashboard's files, from the source tree or from dist/ (they are not compiled). */
const DASHBOARD = join(packageRoot(), 'gateway', 'http', 'dashboard');

/** A URL as the audit journal keeps it: at most AUDIT_URL_CHARS characters, saying how long it was when cut. */
function truncated(url: string): string {
  return url.length <= AUDIT_URL_CHARS ? url : `${url.slice(0, AUDIT_URL_CHARS)}... (${url.length} characters)`;
}

/** Whether the API listens on loopback only (a name other than localhost is taken as reaching beyond). */
function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^::ffff:127\./i.test(host);
  return false;
}

export interface HttpDeps {
  config: SiteConfig;
  http: HttpSection;
  log: Logger;
  metrics: Metrics;
  pipeline: Pipeline;
  alarms: AlarmService;
  outbox: () => Outbox | undefined;
  /** Each component's state for /ready. */
  ready: () => Record<string, { ok: boolean; detail?: unknown }>;
  dataDir: string;
  /** Where the API's memory (trend rings, live-stream buffers) is reported. */
  memory?: MemoryWatch;
}

export interface HttpApi {
  app: FastifyInstance;
  start(): Promise<void>;
  stop(): Promise<void>;
  address(): { host: string; port: number };
}

declare module 'fastify' {
  interface FastifyContextConfig {
    role?: Role;
  }
  interface FastifyRequest {
    who?: string;
  }
}

export { hashToken } from './tokens.js';

export function createHttpApi(deps: HttpDeps): HttpApi {
  const { config, http, log } = deps;
  const https = http.cert && http.key ? { cert: readFileSync(http.cert), key: readFileSync(http.key) } : undefined;
  const serverOptions = {
    headersTimeout: Math.min(10_000, http.request_timeout),
    // Node looks for requests past their time this often (its default: every 30 s).
    connectionsCheckingInterval: Math.max(100, Math.min(5000, Math.floor(http.request_timeout / 4))),
  };
  const app = Fastify({
    logger: false,
    bodyLimit: http.max_body_size,
    requestTimeout: http.request_timeout,
    connectionTimeout: IDLE_TIMEOUT,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT,
    maxRequestsPerSocket: MAX_REQUESTS_PER_SOCKET,
    ...(https ? { https: { ...https, ...serverOptions } } : { http: serverOptions }),
  }) as unknown as FastifyInstance;
  app.server.maxConnections = http.max_connections;
  // Set on the raw response before fastify sees the request: every answer carries them, those fastify
  // makes before any hook runs (a malformed URL), errors, 404s and the hijacked live stream included.
  // A route's own header of the same name (the static files' Cache-Control) takes precedence.
  app.server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
  });
  const slowClientLog = rateLimited();
  const historyLog = rateLimited();
  const checkBusyLog = rateLimited();
  let querying = false;
  const audit = new AuditJournal(join(deps.dataDir, 'audit.jsonl'));
  // The journal repairs a torn last line and records it, and records a head that does not match; the
  // log says so once at start, and damage further up is left for `gateway audit verify` to name.
  const opened = audit.opened;
  if (opened.repairedBytes > 0)
    log.warn(
      { file: join(deps.dataDir, 'audit.jsonl'), bytes: opened.repairedBytes },
      'Audit journal ended with a torn line (a write cut short); it was cut off, kept in audit.torn and the repair recorded',
    );
  if (opened.damagedLines > 0)
    log.error(
      { file: join(deps.dataDir, 'audit.jsonl'), damagedLines: opened.damagedLines },
      'Audit journal ends with lines that are not entries; new entries follow the last good one (gateway audit verify shows where the chain breaks)',
    );
  if (opened.headProblem)
    log.error(
      { file: join(deps.dataDir, 'audit.jsonl'), problem: opened.headProblem },
      'Audit journal does not end where its head says; recorded in the journal, and gateway audit verify reports it',
    );
  const tokens = http.tokens.map((t) => ({ ...t, digest: Buffer.from(t.hash.slice('sha256:'.length), 'hex') }));
  const failures = new Map<string, number[]>();

  // The last reading of every point, for equipment detail; and the live stream's clients.
  const last = new Map<string, Map<string, Reading>>();
  // Recent readings of every declared point, for the dashboard's trend, in rings made once.
  const plan = planHistory({
    keep: http.history.keep,
    maxBytes: http.history.max_memory,
    // A point read at its own interval keeps `keep` at that interval; one that reports on change keeps as many changes.
    points: config.equipment.flatMap((e) =>
      e.points.map((p) => {
        const own =
          (p as { poll_interval?: number; sampling_interval?: number }).poll_interval ??
          (p as { sampling_interval?: number }).sampling_interval;
        return { key: `${e.id}/${p.name}`, intervalMs: own ?? e.poll_interval };
      }),
    ),
  });
  if (plan.scale < 1) {
    log.warn(
      {
        points: plan.samples.size,
        wanted_bytes: plan.wantedBytes,
        max_memory: http.history.max_memory,
        kept: `${(plan.scale * 100).toFixed(0)} %`,
      },
      'http.history.keep needs more than http.history.max_memory for this many points: every point keeps proportionally fewer recent readings (raise max_memory, or shorten keep)',
    );
  }
  const history = new History(plan);
  const clients = new Set<{
    equipment: string | undefined;
    send: (event: string, data: string) => void;
    end: () => void;
    buffered: () => number;
  }>();
  deps.memory?.register('http_history', () => history.bytes());
  deps.memory?.register('http_live_stream', () => {
    let sum = 0;
    for (const c of clients) sum += c.buffered();
    return sum;
  });
  deps.pipeline.onBatch((batch) => {
    for (const r of batch) {
      let m = last.get(r.equipment);
      if (!m) last.set(r.equipment, (m = new Map()));
      m.set(r.point, r);
    }
    history.add(batch);
    if (clients.size === 0) return;
    // Serialised once for every client that takes all equipment, not once per client.
    let all: string | undefined;
    for (const c of clients) {
      if (!c.equipment) {
        c.send('readings', (all ??= JSON.stringify(batch)));
        continue;
      }
      const mine = batch.filter((r) => r.equipment === c.equipment);
      if (mine.length > 0) c.send('readings', JSON.stringify(mine));
    }
  });
  deps.alarms.onEvents((events: readonly AlarmEvent[]) => {
    if (clients.size === 0) return;
    // Each event serialised once, whatever the number of clients.
    const texts = events.map((e) => JSON.stringify(e));
    for (const c of clients) {
      events.forEach((e, k) => {
        if (!c.equipment || e.equipment === c.equipment) c.send('alarm', texts[k]!);
      });
    }
  });

  // Refused requests per address: when the last audit line for it was written, and how many were
  // refused since. Addresses quiet for a minute are written out (with their count) and forgotten.
  const refusals = new Map<string, { recordedAt: number; since: number }>();
  let refusalsForgotten = 0;
  let failuresForgotten = 0;
  const failureLog = rateLimited();
  const refusalLog = rateLimited();
  const recordRefusal = (ip: string, url: string, outcome: string, now: number): void => {
    const seen = refusals.get(ip);
    if (seen && now - seen.recordedAt < REFUSAL_RECORD_INTERVAL) {
      seen.since++;
      return;
    }
    refusals.delete(ip);
    refusals.set(ip, { recordedAt: now, since: 0 });
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
    const now = Date.now();
    for (const [ip, state] of refusals) {
      if (!all && now - state.recordedAt < REFUSAL_RECORD_INTERVAL) continue;
      refusals.delete(ip);
      if (state.since > 0)
        audit.append({
          who: `ip:${ip}`,
          action: 'login',
          outcome: 'refused',
          detail: `${state.since} more refused since the last line for this address`,
        });
    }
  };
  const refusalTimer = setInterval(() => {
    try {
      flushRefusals(false);
    } catch (err) {
      // Outside a request nobody else would hear of it (a full disk, a lost lock): the log does.
      log.error({ err }, 'Audit journal: the count of refused requests could not be written');
    }
    const now = Date.now();
    for (const [ip, times] of failures) if (times.at(-1)! <= now - 60_000) failures.delete(ip);
  }, REFUSAL_RECORD_INTERVAL);
  refusalTimer.unref();

  const authenticate = (request: FastifyRequest, reply: FastifyReply, role: Role): boolean => {
    const ip = request.ip;
    const now = Date.now();
    const header = request.headers.authorization ?? '';
    const token = /^Bearer (.+)$/.exec(header)?.[1];
    const digest = token ? createHash('sha256').update(token).digest() : undefined;
    const holder = digest ? tokens.find((t) => t.digest.length === digest.length && timingSafeEqual(t.digest, digest)) : undefined;
    if (!holder) {
      // Only a wrong token counts as a guess, and only guesses are slowed down: a valid token from
      // the same address goes through, and a request without a token gets 401 as always.
      const recent = token ? (failures.get(ip) ?? []).filter((t) => t > now - 60_000) : [];
      if (token && recent.length >= MAX_FAILURES_PER_MINUTE) {
        recordRefusal(ip, request.url, 'refused: too many wrong tokens from this address', now);
        void reply.code(429).header('Retry-After', '60').send({ error: 'too many wrong tokens from this address; wait a minute' });
        return false;
      }
      if (token) {
        failures.delete(ip);
        failures.set(ip, [...recent, now]);
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
      recordRefusal(ip, request.url, token ? 'refused: unknown token' : 'refused: no token', now);
      void reply
        .code(401)
        .header('WWW-Authenticate', 'Bearer')
        .send({ error: token ? 'unknown token' : 'a Bearer token is needed (Authorization: Bearer <token>)' });
      return false;
    }
    if (ROLES.indexOf(holder.role) < ROLES.indexOf(role)) {
      void reply.code(403).send({ error: `${holder.name} is a ${holder.role}; this needs ${role}` });
      return false;
    }
    request.who = holder.name;
    return true;
  };

  app.addHook('onRequest', async (request, reply) => {
    const role = request.routeOptions.config.role;
    if (role && !authenticate(request, reply, role)) return reply;
    return undefined;
  });

  const errorSchema = { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] } as const;
  const valueSchema = { type: ['number', 'boolean', 'string', 'null'] } as const;
  const eventSchema = {
    type: 'object',
    additionalProperties: true,
    properties: { eventId: { type: 'string' }, type: { type: 'string' }, state: { type: 'string' }, level: { type: 'string' } },
  } as const;

  void app.register(swagger, {
    openapi: {
      info: { title: 'Special-equipment gateway API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  void app.register(async (api) => {
    api.get(
      '/health',
      {
        schema: {
          summary: 'Liveness',
          response: { 200: { type: 'object', properties: { status: { const: 'ok' } }, required: ['status'] } },
        },
      },
      async () => ({ status: 'ok' as const }),
    );

    api.get(
      '/ready',
      {
        schema: {
          summary: "Readiness: each component's state",
          response: { 200: { type: 'object', additionalProperties: true }, 503: { type: 'object', additionalProperties: true } },
        },
      },
      async (_req, reply) => {
        const components = deps.ready();
        const ready = Object.values(components).every((c) => c.ok);
        return reply.code(ready ? 200 : 503).send({ ready, components });
      },
    );

    api.get(
      '/metrics',
      { config: { role: 'viewer' }, schema: { summary: 'Prometheus metrics (text format)', response: { 200: { type: 'string' } } } },
      async (_req, reply) => {
        return reply.header('Content-Type', deps.metrics.contentType).send(await deps.metrics.metrics());
      },
    );

    api.get(
      '/api/equipment',
      {
        config: { role: 'viewer' },
        schema: {
          summary: 'Equipment with status',
          response: {
            200: {
              type: 'array',
              items: {
                type: 'object',
                required: ['id', 'category', 'status'],
                properties: {
                  id: { type: 'string' },
                  name: { type: 'string' },
                  category: { type: 'string' },
                  code: { type: 'string' },
                  status: { type: 'string' },
                  reason: { type: 'string' },
                  poll_interval: { type: 'number' },
                  on_change: { type: 'boolean', description: 'Reported on change (an OPC UA subscription): an old value is not stale.' },
                },
              },
            },
          },
        },
      },
      async () =>
        config.equipment.map((e) => {
          const s = deps.pipeline.status(e.id);
          return {
            id: e.id,
            ...(e.name ? { name: e.name } : {}),
            category: e.category,
            ...(e.code ? { code: e.code } : {}),
            status: s?.state ?? 'unknown',
            ...(s?.reason ? { reason: s.reason } : {}),
            poll_interval: e.poll_interval,
            on_change: (e as { mode?: string }).mode === 'subscription',
          };
        }),
    );

    api.get(
      '/api/equipment/:id',
      {
        config: { role: 'viewer' },
        schema: {
          summary: "One equipment with every point's last value, unit, quality and time",
          params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
          response: {
            200: {
              type: 'object',
              required: ['id', 'points'],
              properties: {
                id: { type: 'string' },
                name: { type: 'string' },
                category: { type: 'string' },
                status: { type: 'string' },
                points: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['name', 'quality'],
                    properties: {
                      name: { type: 'string' },
                      value: valueSchema,
                      unit: { type: 'string' },
                      quality: { type: 'string' },
                      reason: { type: 'string' },
                      ts: { type: 'number' },
                    },
                  },
                },
              },
            },
            404: errorSchema,
          },
        },
      },
      async (req, reply) => {
        const id = (req.params as { id: string }).id;
        const e = config.equipment.find((x) => x.id === id);
        if (!e) return reply.code(404).send({ error: `no equipment ${id}` });
        const values = last.get(id);
        return {
          id,
          ...(e.name ? { name: e.name } : {}),
          category: e.category,
          status: deps.pipeline.status(id)?.state ?? 'unknown',
          points: e.points.map((p) => {
            const r = values?.get(p.name);
            return {
              name: p.name,
              value: r?.value ?? null,
              ...(p.unit ? { unit: p.unit } : {}),
              quality: r?.quality ?? 'unknown',
              ...(r?.reason ? { reason: r.reason } : {}),
              ...(r ? { ts: r.ts } : {}),
            };
          }),
        };
      },
    );

    api.get(
      '/api/equipment/:id/history',
      {
        config: { role: 'viewer' },
        schema: {
          summary:
            'Recent readings of one point, oldest first: what the gateway keeps in memory (http.history), optionally from a time on and at most `limit`, the newest',
          params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
          querystring: {
            type: 'object',
            properties: {
              point: { type: 'string' },
              since: {
                type: 'integer',
                minimum: 0,
                maximum: 8_640_000_000_000_000,
                description:
                  'Epoch ms: readings at or after it. Older than memory holds: the older part comes from InfluxDB when the site writes to one (header x-history-source); x-history-incomplete says when it could not.',
              },
              limit: { type: 'integer', minimum: 1, maximum: MAX_QUERY_ROWS, default: MAX_QUERY_ROWS },
            },
            required: ['point'],
          },
          response: {
            200: {
              type: 'array',
              items: { type: 'object', properties: { ts: { type: 'number' }, value: valueSchema, quality: { type: 'string' } } },
            },
            400: errorSchema,
            404: errorSchema,
          },
        },
      },
      async (req, reply) => {
        const { id } = req.params as { id: string };
        const { point, since, limit = MAX_QUERY_ROWS } = req.query as { point: string; since?: number; limit?: number };
        // The schema's bounds let Infinity through (ajv compares it as a number).
        if (since !== undefined && !Number.isFinite(since)) return reply.code(400).send({ error: 'since: expected epoch milliseconds' });
        const ring = history.ring(id, point);
        const equipment = config.equipment.find((e) => e.id === id);
        if (!ring || !equipment) return reply.code(404).send({ error: `no point ${point} on equipment ${id}` });
        const recent = ring.read(since, limit);
        const oldest = ring.oldest();
        void reply.header('x-history-source', 'memory');
        // Further back than memory goes: the older part from InfluxDB, when the site writes to one.
        if (since === undefined || (oldest !== undefined && since >= oldest) || recent.length >= limit) return recent;
        const missing = oldest === undefined ? 'memory holds nothing yet' : `memory holds from ${oldest}`;
        if (!config.influx) return reply.header('x-history-incomplete', `${missing}; no InfluxDB`).send(recent);
        // One query at a time: viewers cannot pile requests onto InfluxDB and the gateway.
        if (querying) return reply.header('x-history-incomplete', `${missing}; InfluxDB busy with another query`).send(recent);
        querying = true;
        try {
          const older = await queryPoint(config.influx, {
            measurement: equipment.category,
            site: config.gateway.site,
            equipment: id,
            point,
            since,
            until: oldest ?? Date.now() + 1,
            limit: limit - recent.length,
            timeoutMs: HISTORY_QUERY_TIMEOUT,
          });
          void reply.header('x-history-source', 'influxdb+memory');
          return [...older, ...recent];
        } catch (err) {
          // The detail (InfluxDB's words, its address) goes to the log; the caller learns what kind of failure it was.
          historyLog((notLogged) =>
            log.warn(
              { err, equipment: id, point, ...(notLogged ? { notLogged } : {}) },
              'Older readings could not be read from InfluxDB; the trend shows what memory holds',
            ),
          );
          return reply
            .header('x-history-incomplete', `${missing}; InfluxDB ${err instanceof InfluxQueryError ? err.kind : 'failed'}`)
            .send(recent);
        } finally {
          querying = false;
        }
      },
    );

    // The dashboard: static files, no external resources. The page asks for a token itself.
    const page = (file: string, type: string) => async (_req: FastifyRequest, reply: FastifyReply) =>
      reply
        .header('Content-Type', type)
        .header('Cache-Control', 'no-cache')
        .send(readFileSync(join(DASHBOARD, file)));
    api.get('/', { schema: { hide: true } }, page('index.html', 'text/html; charset=utf-8'));
    api.get('/app.js', { schema: { hide: true } }, page('app.js', 'text/javascript; charset=utf-8'));
    api.get('/style.css', { schema: { hide: true } }, page('style.css', 'text/css; charset=utf-8'));

    api.get(
      '/api/alarms',
      {
        config: { role: 'viewer' },
        schema: {
          summary: 'Alarms that are not normal',
          response: { 200: { type: 'array', items: { type: 'object', additionalProperties: true } } },
        },
      },
      async () => deps.alarms.active(),
    );
    api.get(
      '/api/alarms/history',
      {
        config: { role: 'viewer' },
        schema: {
          summary: 'Recent alarm events, newest first (optionally of one equipment)',
          querystring: {
            type: 'object',
            properties: { equipment: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
          },
          response: { 200: { type: 'array', items: eventSchema } },
        },
      },
      async (req) => {
        const { equipment, limit } = req.query as { equipment?: string; limit: number };
        return [...deps.alarms.history()]
          .reverse()
          .filter((e) => !equipment || e.equipment === equipment)
          .slice(0, limit);
      },
    );

    const action =
      (name: 'acknowledge' | 'shelve' | 'unshelve' | 'out-of-service' | 'in-service') =>
      async (req: FastifyRequest, reply: FastifyReply) => {
        const { equipment, rule } = req.params as { equipment: string; rule: string };
        const body = (req.body ?? {}) as { comment?: string; duration_minutes?: number };
        const key = `${equipment}/${rule}`;
        const who = req.who!;
        try {
          const comment = body.comment ?? '';
          const events =
            name === 'acknowledge'
              ? deps.alarms.acknowledge(key, who, comment)
              : name === 'shelve'
                ? deps.alarms.shelve(key, who, comment, (body.duration_minutes ?? 60) * 60_000)
                : name === 'unshelve'
                  ? deps.alarms.unshelve(key, who, comment)
                  : deps.alarms.setOutOfService(key, name === 'out-of-service', who, comment);
          // The engine answers nothing when the alarm already is where it was asked to go.
          if (events.length === 0 && (name === 'out-of-service' || name === 'in-service'))
            throw new RuleActionError(`${key} is ${name === 'out-of-service' ? 'already' : 'not'} out of service`);
          audit.append({ who, action: name, target: key, outcome: 'done', ...(body.comment ? { detail: body.comment } : {}) });
          return { events };
        } catch (err) {
          if (!(err instanceof RuleActionError)) throw err;
          audit.append({ who, action: name, target: key, outcome: `refused: ${err.message}` });
          return reply.code(409).send({ error: err.message });
        }
      };
    const commentSchema = { type: 'string', maxLength: 500 } as const;
    const actionSchema = (summary: string, o: { role?: Role; extra?: Record<string, unknown>; commentRequired?: boolean } = {}) => ({
      config: { role: o.role ?? ('operator' as const) },
      schema: {
        summary,
        params: {
          type: 'object',
          properties: { equipment: { type: 'string' }, rule: { type: 'string' } },
          required: ['equipment', 'rule'],
        },
        body: o.commentRequired
          ? {
              type: 'object',
              additionalProperties: false,
              properties: { comment: { ...commentSchema, pattern: '\\S' }, ...o.extra },
              required: ['comment'],
            }
          : { type: 'object', additionalProperties: false, properties: { comment: commentSchema, ...o.extra } },
        response: { 200: { type: 'object', properties: { events: { type: 'array', items: eventSchema } } }, 409: errorSchema },
      },
    });
    api.post('/api/alarms/:equipment/:rule/acknowledge', actionSchema('Acknowledge an alarm'), action('acknowledge'));
    api.post(
      '/api/alarms/:equipment/:rule/shelve',
      actionSchema('Shelve an alarm for a while', { extra: { duration_minutes: { type: 'number', minimum: 1, maximum: 1440 } } }),
      action('shelve'),
    );
    api.post('/api/alarms/:equipment/:rule/unshelve', actionSchema('Unshelve an alarm'), action('unshelve'));
    // Out of service hides a hazard until someone returns the alarm: an admin's decision, with the reason.
    api.post(
      '/api/alarms/:equipment/:rule/out-of-service',
      actionSchema(
        'Take an alarm out of service (admin; a comment is required): it ends its open incident and raises nothing until returned to service',
        { role: 'admin', commentRequired: true },
      ),
      action('out-of-service'),
    );
    api.post(
      '/api/alarms/:equipment/:rule/in-service',
      actionSchema(
        'Return an alarm to service (admin): its readings are evaluated again, and a condition that still holds raises a new incident',
        { role: 'admin' },
      ),
      action('in-service'),
    );

    api.get(
      '/api/outbox',
      {
        config: { role: 'viewer' },
        schema: {
          summary: 'The platform outbox: pending and dead letters',
          response: { 200: { type: 'object', additionalProperties: true }, 404: errorSchema },
        },
      },
      async (_req, reply) => {
        const o = deps.outbox();
        if (!o) return reply.code(404).send({ error: 'this site forwards to no platform' });
        return {
          ...o.stats(),
          deadLetters: o
            .list('dead')
            .map((r) => ({ seq: r.seq, eventId: r.eventId, answer: r.answer, body: JSON.parse(r.incident) as unknown })),
        };
      },
    );
    api.post(
      '/api/outbox/retry',
      {
        config: { role: 'admin' },
        schema: {
          summary: 'Send dead letters again (all, or one seq)',
          body: { type: 'object', additionalProperties: false, properties: { seq: { type: 'integer', minimum: 1 } } },
          response: { 200: { type: 'object', properties: { retried: { type: 'integer' } } }, 404: errorSchema },
        },
      },
      async (req, reply) => {
        const o = deps.outbox();
        if (!o) return reply.code(404).send({ error: 'this site forwards to no platform' });
        const seq = (req.body as { seq?: number } | undefined)?.seq;
        const retried = o.retry(seq === undefined ? undefined : [seq]);
        audit.append({
          who: req.who!,
          action: 'outbox retry',
          target: seq === undefined ? 'all dead letters' : `seq ${seq}`,
          outcome: `${retried} back in the queue`,
        });
        return { retried };
      },
    );

    api.get(
      '/api/stream',
      {
        config: { role: 'viewer' },
        schema: {
          summary: 'Server-Sent Events: `readings` (batches) and `alarm` (events), optionally for one equipment',
          querystring: { type: 'object', properties: { equipment: { type: 'string' } } },
        },
      },
      async (req, reply) => {
        const equipment = (req.query as { equipment?: string }).equipment;
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
        res.write(': connected\n\n');
        const client = {
          equipment,
          send: (event: string, data: string) => {
            if (res.writableLength > SSE_MAX_BUFFERED) {
              // A client that does not read would make the gateway hold every event for it.
              clients.delete(client);
              res.destroy();
              slowClientLog((notLogged) =>
                log.warn(
                  { ip: req.ip, buffered: res.writableLength, ...(notLogged ? { notLogged } : {}) },
                  'Live stream client does not read; disconnected',
                ),
              );
              return;
            }
            res.write(`event: ${event}\ndata: ${data}\n\n`);
          },
          end: () => res.end(),
          buffered: () => res.writableLength,
        };
        clients.add(client);
        const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
        req.raw.on('close', () => {
          clearInterval(keepAlive);
          clients.delete(client);
        });
      },
    );

    // Someone else's site file, checked in a worker with a time and memory cap (a hostile text cannot
    // stall polling), with no access to this process's environment (a `${PLATFORM_SECRET}` in it is
    // reported as a placeholder, never expanded), and with no value of the file repeated. A problem
    // list is a finished check: 200, as `gateway check` prints it; too many checks at once: 503.
    const problemSchema = {
      type: 'object',
      properties: { path: { type: 'string' }, message: { type: 'string' }, line: { type: 'integer' } },
    } as const;
    api.post(
      '/api/config/check',
      {
        config: { role: 'viewer' },
        bodyLimit: SITE_FILE_LIMITS.maxBytes,
        schema: {
          summary:
            "Check a site file (YAML in the body), as `gateway check` does, without the gateway's environment: placeholders come back as notes",
          response: {
            200: {
              type: 'object',
              properties: {
                valid: { type: 'boolean' },
                problems: { type: 'array', items: problemSchema },
                notes: { type: 'array', items: problemSchema },
              },
            },
            503: errorSchema,
          },
        },
      },
      async (req, reply) => {
        const result = await checkSiteText(String(req.body ?? ''));
        if ('busy' in result) {
          checkBusyLog((notLogged) =>
            log.warn(
              { ip: req.ip, refused: checkCounters.busy, ...(notLogged ? { notLogged } : {}) },
              'Site-file checks: too many at once; refused with 503',
            ),
          );
          return reply
            .code(503)
            .header('Retry-After', String(result.retryAfterS))
            .send({ error: `too many site-file checks under way; try again in ${result.retryAfterS} s` });
        }
        return { valid: result.ok, problems: result.ok ? [] : result.problems, notes: result.notes };
      },
    );
    api.get(
      '/api/config/schema',
      {
        config: { role: 'viewer' },
        schema: { summary: 'The JSON Schema of the site file', response: { 200: { type: 'object', additionalProperties: true } } },
      },
      async () => siteJsonSchema(),
    );
    api.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  });

  app.addContentTypeParser(['application/yaml', 'text/yaml', 'text/plain'], { parseAs: 'string' }, (_req, body, done) => done(null, body));

  // Every error answer is `{ error }`: a 4xx says what was wrong with the request (too large, not
  // JSON, not valid); a 5xx says only that it failed, and the log has the details.
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) {
      log.error({ err, method: request.method, url: request.url.slice(0, 200) }, 'HTTP API request failed');
      return reply.code(500).send({ error: 'internal error; the gateway log has the details' });
    }
    return reply.code(status).send({ error: err.message, ...(err.code ? { code: err.code } : {}) });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}` }),
  );

  return {
    app,
    async start() {
      await app.listen({ host: http.host, port: http.port });
      log.info({ url: `${https ? 'https' : 'http'}://${http.host}:${http.port}/`, tokens: tokens.length }, 'HTTP API listening');
      if (!https && !isLoopback(http.host)) {
        log.warn(
          { host: http.host, port: http.port },
          'HTTP API listens beyond loopback without TLS: tokens and alarm actions cross the network in clear (set http.cert and http.key, or listen on 127.0.0.1 behind a TLS proxy)',
        );
      }
    },
    async stop() {
      clearInterval(refusalTimer);
      // Refusals counted since an address's last line are written now rather than lost.
      try {
        flushRefusals(true);
      } catch (err) {
        log.error({ err }, 'Audit journal: the count of refused requests could not be written at stop');
      }
      for (const c of clients) c.end();
      clients.clear();
      // Requests under way may finish; a client still holding a connection after that (a live stream
      // whose end is stuck behind what it did not read) is cut, so the gateway stops in time.
      const cut = setTimeout(() => app.server.closeAllConnections(), STOP_GRACE_MS);
      try {
        await app.close();
      } finally {
        clearTimeout(cut);
      }
    },
    address() {
      const a = app.server.address() as { address: string; port: number };
      return { host: a.address, port: a.port };
    },
  };
}
