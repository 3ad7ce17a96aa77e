// Sends the outbox to the central platform: signed POSTs in seq order with a bounded number in
// flight; 2xx = delivered; 408, 425, 429, 5xx, a timeout or a connection error = retry with
// exponential backoff and jitter (honouring Retry-After), the whole queue waiting; any other answer =
// dead letter, kept with the answer, never blocking later events. Heartbeats are not queued.
import http from 'node:http';
import https from 'node:https';
import { Counter, Gauge, Histogram } from 'prom-client';
import { backoffDelay } from '../../drivers/common/backoff.js';
import type { PlatformSection } from '../../config/platform-schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { readPem } from '../pem.js';
import { parseRetryAfter } from '../retry-after.js';
import { HEARTBEAT_SCHEMA, headersFor, incidentBody, type HeartbeatBody } from './contract.js';
import type { Outbox, OutboxRow } from './outbox.js';

const IDLE_POLL_MS = 1000;
const ANSWER_LIMIT = 2000;
/** Bytes of an answer read at most (the answer is kept for a dead letter; its start says enough). */
const ANSWER_KEEP = 64 * 1024;

export interface PostResult {
  status?: number;
  body: string;
  retryAfterMs?: number;
  error?: string;
}

export interface ForwarderStats {
  delivered: number;
  retries: number;
  deadLetters: number;
  inFlight: number;
  /** The platform answered the last request with 2xx. */
  healthy: boolean;
}

export interface Forwarder {
  start(): void;
  stop(): Promise<void>;
  /** New events are in the outbox. */
  notify(): void;
  stats(): ForwarderStats;
  /** Called with each seq the platform accepted. */
  onDelivered(listener: (seq: number, ms: number) => void): void;
}

export function createForwarder(opts: {
  config: PlatformSection;
  gatewayId: string;
  site: string;
  outbox: Outbox;
  log: Logger;
  metrics?: Metrics;
  activeIncidents: () => number;
}): Forwarder {
  const { config, outbox, log } = opts;
  const post = createPoster(config);
  const inFlight = new Set<number>();
  const listeners: Array<(seq: number, ms: number) => void> = [];
  const counters = { delivered: 0, retries: 0, deadLetters: 0 };
  let healthy = true;
  let attempt = 0;
  let pausedUntil = 0;
  let running = false;
  let wake: NodeJS.Timeout | undefined;
  let idle: NodeJS.Timeout | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let reported: string | undefined;
  /**
   * Every pending event up to this seq has been sent (or is in flight): the next ones are after it.
   * Back to 0 whenever an older one can be pending again (a failed send, a dead letter put back).
   */
  let cursor = 0;
  const requests = new Set<Promise<unknown>>();

  const m = opts.metrics
    ? {
        delivered: new Counter({
          name: 'gateway_outbox_delivered_total',
          help: 'Incident events the platform accepted',
          registers: [opts.metrics],
        }),
        retries: new Counter({
          name: 'gateway_outbox_retries_total',
          help: 'Deliveries that failed and will be retried, by reason',
          labelNames: ['reason'],
          registers: [opts.metrics],
        }),
        dead: new Counter({
          name: 'gateway_outbox_dead_letters_total',
          help: 'Incident events the platform refused for good',
          registers: [opts.metrics],
        }),
        latency: new Histogram({
          name: 'gateway_outbox_delivery_seconds',
          help: "From an incident event to the platform's 2xx",
          buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300],
          registers: [opts.metrics],
        }),
      }
    : undefined;
  if (opts.metrics) {
    new Gauge({
      name: 'gateway_outbox_pending',
      help: 'Incident events waiting for the platform',
      registers: [opts.metrics],
      collect() {
        this.set(outbox.stats().pending);
      },
    });
    new Gauge({
      name: 'gateway_outbox_dead',
      help: 'Dead letters kept in the outbox',
      registers: [opts.metrics],
      collect() {
        this.set(outbox.stats().dead);
      },
    });
  }

  const schedule = (ms: number) => {
    clearTimeout(wake);
    wake = setTimeout(pump, ms);
  };

  function pump(): void {
    if (!running) return;
    const wait = pausedUntil - Date.now();
    if (wait > 0) return schedule(wait);
    const free = config.max_in_flight - inFlight.size;
    if (free <= 0) return;
    const rows = outbox.pending(free, inFlight, cursor);
    for (const row of rows) send(row);
    if (rows.length > 0) cursor = rows[rows.length - 1]!.seq;
  }

  function send(row: OutboxRow): void {
    inFlight.add(row.seq);
    const body = incidentBody(row.incident, row.seq);
    const p = post(body, headersFor(config.secret, opts.gatewayId, body, row.eventId))
      .then((r) => settle(row, r))
      .catch((err: unknown) => {
        // A failure here (the outbox closed under us at stop, a disk error) must not stop the queue for good.
        inFlight.delete(row.seq);
        cursor = 0;
        log.error({ err, seq: row.seq }, 'Recording a delivery failed');
      });
    requests.add(p);
    void p.finally(() => requests.delete(p));
  }

  function settle(row: OutboxRow, r: PostResult): void {
    inFlight.delete(row.seq);
    if (!running) return;
    const answer = r.error ?? `${r.status} ${r.body.slice(0, ANSWER_LIMIT)}`.trim();
    if (r.status !== undefined && r.status >= 200 && r.status < 300) {
      outbox.delivered(row.seq);
      counters.delivered++;
      attempt = 0;
      if (!healthy) log.info({ url: config.url }, 'Platform accepts events again');
      healthy = true;
      reported = undefined;
      // From the commit to the outbox (incidents and results alike) to the platform's answer.
      const since = Date.now() - row.createdAt;
      m?.delivered.inc();
      m?.latency.observe(Math.max(0, since) / 1000);
      for (const l of listeners) l(row.seq, since);
      pump();
      return;
    }
    if (r.status === undefined || retryable(r.status)) {
      // The platform or the way to it is not well: everything waits, in order.
      counters.retries++;
      m?.retries.inc({ reason: r.status === undefined ? 'network' : String(r.status) });
      outbox.attempted(row.seq, answer);
      cursor = 0;
      const delay = Math.max(backoffDelay(attempt++, config.reconnect), r.retryAfterMs ?? 0);
      pausedUntil = Math.max(pausedUntil, Date.now() + delay);
      healthy = false;
      if (reported !== answer) {
        log.warn({ url: config.url, seq: row.seq, answer, retryInMs: delay }, 'Platform did not take the event; retrying with backoff');
        reported = answer;
      }
      return schedule(delay);
    }
    counters.deadLetters++;
    m?.dead.inc();
    outbox.dead(row.seq, answer);
    const hint = r.status === 401 ? ' (401: the platform refused the signature; check platform.secret on both sides)' : '';
    log.error(
      { url: config.url, seq: row.seq, eventId: row.eventId, answer },
      `Platform refused the event for good; kept as a dead letter${hint}. Re-send with: gateway outbox retry`,
    );
    pump();
  }

  const sendHeartbeat = () => {
    const s = outbox.stats();
    const hb: HeartbeatBody = {
      schema: HEARTBEAT_SCHEMA,
      gatewayId: opts.gatewayId,
      site: opts.site,
      at: new Date().toISOString(),
      lastSeq: s.lastSeq,
      pending: s.pending,
      activeIncidents: opts.activeIncidents(),
    };
    const body = JSON.stringify(hb);
    void post(body, headersFor(config.secret, opts.gatewayId, body)).then((r) => {
      if (r.status === undefined || r.status >= 300) log.debug({ answer: r.error ?? r.status }, 'Heartbeat not accepted');
    });
  };

  return {
    start() {
      running = true;
      cursor = 0;
      const s = outbox.stats();
      log.info({ url: config.url, pending: s.pending, deadLetters: s.dead, lastSeq: s.lastSeq }, 'Forwarding incidents to the platform');
      // Rows a `gateway outbox retry` put back while this runs are found within a second.
      idle = setInterval(() => {
        cursor = 0;
        pump();
      }, IDLE_POLL_MS);
      heartbeat = setInterval(sendHeartbeat, config.heartbeat_interval);
      sendHeartbeat();
      pump();
    },
    async stop() {
      running = false;
      clearTimeout(wake);
      clearInterval(idle);
      clearInterval(heartbeat);
      // Requests in flight get a moment; what is not answered stays pending for the next start.
      await Promise.race([Promise.allSettled([...requests]), new Promise((r) => setTimeout(r, 500))]);
    },
    notify: () => pump(),
    stats: () => ({ ...counters, inFlight: inFlight.size, healthy }),
    onDelivered: (l) => void listeners.push(l),
  };
}

function retryable(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/** POSTs with node's http/https (custom CA, client certificate), a timeout, and the answer read. */
export function createPoster(
  config: Pick<PlatformSection, 'url' | 'timeout' | 'ca' | 'cert' | 'key'>,
): (body: string, headers: Record<string, string>) => Promise<PostResult> {
  const url = new URL(config.url);
  const tls = url.protocol === 'https:';
  const agent = tls
    ? new https.Agent({
        keepAlive: true,
        ca: readPem(config.ca, 'platform CA'),
        cert: readPem(config.cert, 'platform client certificate'),
        key: readPem(config.key, 'platform client key'),
      })
    : new http.Agent({ keepAlive: true });
  return (body, headers) =>
    new Promise<PostResult>((resolve) => {
      // The whole exchange has `timeout`: a platform that drips its answer would otherwise hold the queue.
      const deadline = setTimeout(() => req.destroy(new Error(`no complete answer within ${config.timeout} ms`)), config.timeout);
      const done = (r: PostResult) => {
        clearTimeout(deadline);
        resolve(r);
      };
      const req = (tls ? https : http).request(
        url,
        { method: 'POST', agent, headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) } },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          const answer = () => {
            const retryAfter = res.headers['retry-after'];
            done({
              status: res.statusCode,
              body: Buffer.concat(chunks).toString('utf8').slice(0, ANSWER_LIMIT),
              retryAfterMs: parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter),
            });
          };
          res.on('data', (c: Buffer) => {
            chunks.push(c);
            size += c.length;
            // Only the start of an answer is kept: enough has come, the rest is not read.
            if (size >= ANSWER_KEEP) {
              res.removeAllListeners('data');
              answer();
              req.destroy();
            }
          });
          res.on('end', answer);
          res.on('error', (err) => done({ body: '', error: `answer broken off: ${err.message}` }));
        },
      );
      req.setTimeout(config.timeout, () => req.destroy(new Error(`no answer within ${config.timeout} ms`)));
      req.on('error', (err) => done({ body: '', error: err.message }));
      req.end(body);
    });
}
