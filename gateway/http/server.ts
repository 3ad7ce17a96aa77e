// The gateway's HTTP API (fastify): health and readiness, Prometheus metrics, equipment with their
// last values, alarms and their handling, the platform outbox, a Server-Sent Events stream of
// readings and alarm events, the site-file check, the equipment's risk levels with the alarm KPIs
// and daily reports, and the lab results with their quality control. Each is a plugin of its own
// (./plugins/), registered here after the auth plugin whose hook guards them; every route has a
// JSON Schema, the OpenAPI document is at /api/openapi.json, and every error answer carries a code
// (./errors.ts, docs/errors.md). Tokens (stored as SHA-256 hashes) carry a role: viewer reads,
// operator acknowledges and shelves, admin also takes alarms out of service and retries the outbox.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { REPORT_STYLE_SOURCE } from '../report/html.js';
import { isIP } from 'node:net';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import type { HttpSection } from '../../config/http-schema.js';
import type { SiteConfig } from '../../config/schema.js';
import type { AlarmService } from '../alarms/service.js';
import type { Logger } from '../log.js';
import type { MemoryWatch } from '../memory.js';
import type { Metrics } from '../metrics.js';
import type { Pipeline } from '../pipeline.js';
import type { ReloadOutcome } from '../reload.js';
import type { Outbox } from '../platform/outbox.js';
import { AuditJournal } from './audit.js';
import { clientErrorHandler, frameworkErrors, handleErrors, sendError } from './errors.js';
import { alarmsPlugin } from './plugins/alarms.js';
import { authPlugin } from './plugins/auth.js';
import { acceptSiteFiles, configPlugin } from './plugins/config.js';
import { dashboardPlugin } from './plugins/dashboard.js';
import { equipmentPlugin, equipmentReadings } from './plugins/equipment.js';
import { healthPlugin } from './plugins/health.js';
import { labPlugin, type LabApi } from './plugins/lab.js';
import { outboxPlugin } from './plugins/outbox.js';
import { riskPlugin, type RiskApi } from './plugins/risk.js';
import { liveStream, streamPlugin } from './plugins/stream.js';

/**
 * Headers on every answer, the API's and the dashboard's, errors and the live stream included. The
 * dashboard has no inline script, style or handler, so the policy allows only its own files (and
 * the one style block of a daily report, by its hash, for the report it opens in a tab); no
 * page of another origin may frame it (clickjacking acknowledge and shelve), and no answer is kept
 * in a cache unless a route says otherwise (the static files revalidate).
 */
const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': `default-src 'none'; script-src 'self'; style-src 'self' ${REPORT_STYLE_SOURCE}; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`,
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};
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
  /**
   * Whether an equipment reports on change (`on_change` in /api/equipment: an old value is then not
   * stale), from its driver's definition.
   */
  reportsOnChange: (equipmentId: string) => boolean;
  /**
   * The risk service's levels, KPIs and daily reports (undefined when the site judges no risk); a
   * function when the service builds them at its init, after the API is made.
   */
  risk?: RiskApi | (() => RiskApi | undefined);
  /** The lab service's latest results and QC series (/api/lab/*, absent without it). */
  lab?: LabApi;
  /** Re-reads the site file and applies it (POST /api/config/reload, docs/reload.md). */
  reload?: () => Promise<ReloadOutcome>;
}

export interface HttpApi {
  app: FastifyInstance;
  start(): Promise<void>;
  stop(): Promise<void>;
  address(): { host: string; port: number };
  /** The site's equipment or points changed (a reload): the trend rings are made again from the config. */
  equipmentChanged(): void;
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
    // Fastify's own answers (a URL that does not decode, a request Node cannot parse, a request while
    // stopping) carry a code like every other error: see ./errors.ts and the hook below.
    frameworkErrors,
    clientErrorHandler,
    return503OnClosing: false,
    ...(https ? { https: { ...https, ...serverOptions } } : { http: serverOptions }),
  }) as unknown as FastifyInstance;
  app.server.maxConnections = http.max_connections;
  // Set on the raw response before fastify sees the request: every answer carries them, those fastify
  // makes before any hook runs (a malformed URL), errors, 404s and the hijacked live stream included.
  // A route's own header of the same name (the static files' Cache-Control) takes precedence.
  app.server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
  });

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

  // Subscribed now, not when the plugins load at listen: the API keeps the readings and alarm events from the first on.
  const readings = equipmentReadings({
    config,
    history: http.history,
    pipeline: deps.pipeline,
    log,
    ...(deps.memory ? { memory: deps.memory } : {}),
  });
  const stream = liveStream({ pipeline: deps.pipeline, alarms: deps.alarms, ...(deps.memory ? { memory: deps.memory } : {}) });

  // While stopping, a request that still arrives on an open connection is answered at once.
  let stopping = false;
  app.addHook('onRequest', async (_request, reply) => {
    if (!stopping) return undefined;
    return sendError(reply.header('Connection', 'close'), 'GW_HTTP_STOPPING', 'the gateway is stopping');
  });
  // Before any route is added: each takes the error handler in force when it is.
  handleErrors(app, log);
  acceptSiteFiles(app);
  void app.register(swagger, {
    openapi: {
      info: { title: 'Special-equipment gateway API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  void app.register(authPlugin, { tokens: http.tokens, audit, log });
  void app.register(healthPlugin, { metrics: deps.metrics, ready: deps.ready });
  void app.register(dashboardPlugin);
  void app.register(equipmentPlugin, {
    config,
    readings,
    pipeline: deps.pipeline,
    log,
    reportsOnChange: deps.reportsOnChange,
  });
  void app.register(alarmsPlugin, { alarms: deps.alarms, audit });
  void app.register(outboxPlugin, { outbox: deps.outbox, audit });
  void app.register(riskPlugin, { config, risk: deps.risk });
  if (deps.lab) void app.register(labPlugin, { config, lab: deps.lab });
  void app.register(streamPlugin, { stream, log });
  void app.register(configPlugin, { log, audit, ...(deps.reload ? { reload: deps.reload } : {}) });
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  return {
    app,
    async start() {
      await app.listen({ host: http.host, port: http.port });
      log.info({ url: `${https ? 'https' : 'http'}://${http.host}:${http.port}/`, tokens: http.tokens.length }, 'HTTP API listening');
      if (!https && !isLoopback(http.host)) {
        log.warn(
          { host: http.host, port: http.port },
          'HTTP API listens beyond loopback without TLS: tokens and alarm actions cross the network in clear (set http.cert and http.key, or listen on 127.0.0.1 behind a TLS proxy)',
        );
      }
    },
    async stop() {
      stopping = true;
      // The live streams end now (the stream plugin's preClose does it too, for an API never started).
      stream.endAll();
      // Requests under way may finish; a client still holding a connection after that (a live stream
      // whose end is stuck behind what it did not read) is cut, so the gateway stops in time. The
      // auth plugin writes the refused-request counts as it closes.
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
    equipmentChanged: () => readings.replan(),
  };
}
