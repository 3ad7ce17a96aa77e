// The reference receiver of the platform contract (`gateway platform-inbox`): verifies signatures
// (401 when wrong), de-duplicates by Idempotency-Key, reports seq gaps, prints each incident as one
// readable line and can append them as JSON lines. Platform developers use it to see what they will
// receive; the demo forwards to it.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { checkBody, HEARTBEAT_SCHEMA, RESULT_SCHEMA, verify, type HeartbeatBody, type IncidentBody, type ResultBody } from './contract.js';

/** Signatures older or newer than this are refused: a captured request cannot be replayed later. */
const MAX_SKEW_MS = 5 * 60_000;
/** A gap wider than this is reported as one range, not remembered seq by seq (a hostile seq of 10^15 would never end). */
const MAX_TRACKED_GAP = 10_000;
/** Heartbeats kept in memory for stats and tests (one every 30 s: about 8 hours). */
const MAX_HEARTBEATS = 1000;

/**
 * What one client can cost the receiver: bodies are refused (413) once they pass maxBody, even
 * before they have arrived; a request must arrive whole within requestTimeout; at most
 * maxConnections at once, idle keep-alive connections closed after 5 s.
 */
export const INBOX_LIMITS = { maxBody: 1_048_576, requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5000, maxConnections: 256 };

export interface InboxOptions {
  host?: string;
  port: number;
  secret: string;
  /** Append accepted incidents here as JSON lines; ids already in the file count as seen. */
  out?: string;
  /** One readable line per incident, heartbeat, gap or refusal. */
  print?: (line: string) => void;
  /** HTTPS with this certificate and key; with `ca`, clients must present a certificate it signed (mutual TLS). */
  tls?: { cert: string; key: string; ca?: string };
  /** Tighter (or looser) bounds than INBOX_LIMITS, for tests. */
  limits?: Partial<typeof INBOX_LIMITS>;
}

export interface PlatformInbox {
  start(): Promise<void>;
  stop(): Promise<void>;
  address(): { host: string; port: number };
  /** Incidents accepted, each once, in arrival order. */
  readonly incidents: IncidentBody[];
  readonly heartbeats: HeartbeatBody[];
  /** Lab results accepted, each once, in arrival order. */
  readonly results: ResultBody[];
  stats(): { accepted: number; duplicates: number; refused: number; gaps: number; skippedLines: number };
}

export function createPlatformInbox(opts: InboxOptions): PlatformInbox {
  const print = opts.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const seen = new Set<string>();
  const incidents: IncidentBody[] = [];
  const heartbeats: HeartbeatBody[] = [];
  const results: ResultBody[] = [];
  /** Per gateway: the highest seq seen, and seqs below it that have not arrived. */
  const seqs = new Map<string, { top: number; missing: Set<number> }>();
  const counters = { accepted: 0, duplicates: 0, refused: 0, gaps: 0, skippedLines: 0 };
  const limits = { ...INBOX_LIMITS, ...opts.limits };
  if (opts.out && existsSync(opts.out)) {
    // A line that is not a body (cut short by a crash, edited) is skipped and reported, not fatal.
    const lines = readFileSync(opts.out, 'utf8').split('\n');
    lines.forEach((line, k) => {
      if (!line.trim()) return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = undefined;
      }
      const checked = checkBody(parsed);
      if (!checked.ok || checked.body.schema === HEARTBEAT_SCHEMA) {
        counters.skippedLines++;
        print(`SKIPPED ${opts.out}:${k + 1}: ${checked.ok ? 'a heartbeat' : checked.problem}`);
        return;
      }
      const body = checked.body;
      seen.add(body.schema === RESULT_SCHEMA ? body.resultId : body.eventId);
      track(body);
    });
  }

  function track(i: { gatewayId: string; seq: number }): string | undefined {
    const s = seqs.get(i.gatewayId) ?? { top: 0, missing: new Set<number>() };
    seqs.set(i.gatewayId, s);
    if (s.missing.delete(i.seq)) return `late: seq ${i.seq} filled a gap`;
    if (i.seq <= s.top) return undefined;
    let note: string | undefined;
    if (s.top > 0 && i.seq > s.top + 1) {
      if (i.seq - s.top - 1 <= MAX_TRACKED_GAP) for (let k = s.top + 1; k < i.seq; k++) s.missing.add(k);
      counters.gaps++;
      note = `GAP: seq ${s.top + 1}${i.seq - 1 > s.top + 1 ? `..${i.seq - 1}` : ''} missing from ${i.gatewayId}`;
    }
    s.top = i.seq;
    return note;
  }

  const refuse = (res: http.ServerResponse, status: number, error: string, close = false) => {
    counters.refused++;
    print(`REFUSED ${status}: ${error}`);
    if (res.headersSent) return;
    // close: the rest of the body is not read; the connection goes with the answer.
    res.writeHead(status, { 'Content-Type': 'application/json', ...(close ? { Connection: 'close' } : {}) }).end(JSON.stringify({ error }));
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.method !== 'POST') {
      res.writeHead(405, { Allow: 'POST' }).end();
      return;
    }
    const early = (status: number, error: string) => {
      refuse(res, status, error, true);
      req.removeAllListeners('data');
      req.resume();
      res.once('finish', () => req.socket.destroy());
    };
    const tooBig = () => early(413, `body over ${limits.maxBody} bytes`);
    // What can be refused from the headers is refused before the body is read.
    const timestamp = header(req, 'x-gateway-timestamp');
    const signature = header(req, 'x-gateway-signature');
    if (!timestamp || !signature) return early(401, 'missing X-Gateway-Timestamp or X-Gateway-Signature');
    if (!(Math.abs(Date.now() - Number(timestamp)) <= MAX_SKEW_MS)) return early(401, `X-Gateway-Timestamp ${JSON.stringify(timestamp.slice(0, 40))} is not within 5 minutes of this receiver's clock`);
    if (Number(req.headers['content-length']) > limits.maxBody) return tooBig();
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limits.maxBody) return tooBig();
      chunks.push(c);
    });
    req.on('error', () => req.socket.destroy());
    req.on('end', () => {
      if (size > limits.maxBody) return;
      try {
        take(req, res, Buffer.concat(chunks).toString('utf8'), timestamp, signature);
      } catch (err) {
        // A receiver bug must not end the receiver: the sender gets a 500 and retries.
        print(`ERROR 500: ${(err as Error).message}`);
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json' }).end('{"error":"internal error"}');
      }
    });
  };

  const take = (req: http.IncomingMessage, res: http.ServerResponse, body: string, timestamp: string, signature: string) => {
    if (!verify(opts.secret, timestamp, body, signature)) return refuse(res, 401, 'X-Gateway-Signature does not match the body and timestamp for this secret');
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return refuse(res, 400, 'body is not JSON');
    }
    const checked = checkBody(parsed);
    if (!checked.ok) return refuse(res, 400, checked.problem);
    if (checked.body.schema === HEARTBEAT_SCHEMA) {
      const hb = checked.body;
      heartbeats.push(hb);
      if (heartbeats.length > MAX_HEARTBEATS) heartbeats.splice(0, heartbeats.length - MAX_HEARTBEATS);
      print(`${hb.at} heartbeat ${hb.gatewayId}/${hb.site}: last seq ${hb.lastSeq}, ${hb.pending} pending, ${hb.activeIncidents} active incidents`);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    const incident = checked.body;
    const id = incident.schema === RESULT_SCHEMA ? incident.resultId : incident.eventId;
    const key = header(req, 'idempotency-key');
    if (!key || key !== id) return refuse(res, 400, `Idempotency-Key must be the ${incident.schema === RESULT_SCHEMA ? 'resultId' : 'eventId'}`);
    if (seen.has(key)) {
      counters.duplicates++;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"duplicate"}');
      return;
    }
    seen.add(key);
    counters.accepted++;
    if (incident.schema === RESULT_SCHEMA) results.push(incident);
    else incidents.push(incident);
    if (opts.out) appendFileSync(opts.out, `${body}\n`);
    const note = track(incident);
    print(incident.schema === RESULT_SCHEMA ? resultLineOf(incident) : lineOf(incident));
    if (note) print(note);
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"accepted"}');
  };
  const tls = opts.tls;
  const serverOptions: http.ServerOptions = {
    requestTimeout: limits.requestTimeout,
    headersTimeout: Math.min(limits.headersTimeout, limits.requestTimeout),
    keepAliveTimeout: limits.keepAliveTimeout,
    // Timeouts are checked this often (Node's default is every 30 s).
    connectionsCheckingInterval: Math.max(100, Math.min(5000, Math.floor(limits.requestTimeout / 4))),
  };
  const server = tls
    ? https.createServer({ ...serverOptions, cert: readFileSync(tls.cert), key: readFileSync(tls.key), ...(tls.ca ? { ca: readFileSync(tls.ca), requestCert: true, rejectUnauthorized: true } : {}) }, handler)
    : http.createServer(serverOptions, handler);
  server.maxConnections = limits.maxConnections;

  return {
    incidents,
    heartbeats,
    results,
    start: () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    address: () => {
      const a = server.address() as AddressInfo;
      return { host: a.address, port: a.port };
    },
    stats: () => ({ ...counters }),
  };
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** One incident as a person reads it. */
export function lineOf(i: IncidentBody): string {
  const value = i.value === undefined || i.value === null ? '' : ` (${i.point ?? 'value'} = ${String(i.value)}${i.unit ? ` ${i.unit}` : ''})`;
  const who = i.by ? ` by ${i.by}${i.comment ? `: ${i.comment}` : ''}` : '';
  return `${i.occurredAt} ${i.level.toUpperCase()} ${i.type} ${i.site}/${i.equipment.id} ${i.rule.id}: ${i.rule.message}${value}${who} [seq ${i.seq}, ${i.gatewayId}]`;
}

/** One lab result as a person reads it. */
export function resultLineOf(r: ResultBody): string {
  const flags = r.flags.filter((f) => f !== 'N');
  return `${r.resultAt} RESULT ${r.site}/${r.instrument.id} sample ${r.sampleId} ${r.analyte} = ${String(r.value)}${r.unit ? ` ${r.unit}` : ''}${flags.length ? ` [${flags.join(',')}]` : ''} (${r.status}) [seq ${r.seq}, ${r.gatewayId}]`;
}
