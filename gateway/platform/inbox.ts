// The reference receiver of the platform contract (`gateway platform-inbox`): verifies signatures
// (401 when wrong), de-duplicates by Idempotency-Key, reports seq gaps, prints each incident as one
// readable line and can append them as JSON lines. Platform developers use it to see what they will
// receive; the demo forwards to it.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { HEARTBEAT_SCHEMA, INCIDENT_SCHEMA, RESULT_SCHEMA, verify, type HeartbeatBody, type IncidentBody, type ResultBody } from './contract.js';

const MAX_BODY = 1_048_576;
/** Signatures older or newer than this are refused: a captured request cannot be replayed later. */
const MAX_SKEW_MS = 5 * 60_000;

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
  stats(): { accepted: number; duplicates: number; refused: number; gaps: number };
}

export function createPlatformInbox(opts: InboxOptions): PlatformInbox {
  const print = opts.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const seen = new Set<string>();
  const incidents: IncidentBody[] = [];
  const heartbeats: HeartbeatBody[] = [];
  const results: ResultBody[] = [];
  /** Per gateway: the highest seq seen, and seqs below it that have not arrived. */
  const seqs = new Map<string, { top: number; missing: Set<number> }>();
  const counters = { accepted: 0, duplicates: 0, refused: 0, gaps: 0 };
  if (opts.out && existsSync(opts.out)) {
    for (const line of readFileSync(opts.out, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const body = JSON.parse(line) as IncidentBody | ResultBody;
      seen.add(body.schema === RESULT_SCHEMA ? body.resultId : body.eventId);
      track(body);
    }
  }

  function track(i: { gatewayId: string; seq: number }): string | undefined {
    const s = seqs.get(i.gatewayId) ?? { top: 0, missing: new Set<number>() };
    seqs.set(i.gatewayId, s);
    if (s.missing.delete(i.seq)) return `late: seq ${i.seq} filled a gap`;
    if (i.seq <= s.top) return undefined;
    let note: string | undefined;
    if (s.top > 0 && i.seq > s.top + 1) {
      for (let k = s.top + 1; k < i.seq; k++) s.missing.add(k);
      counters.gaps++;
      note = `GAP: seq ${s.top + 1}${i.seq - 1 > s.top + 1 ? `..${i.seq - 1}` : ''} missing from ${i.gatewayId}`;
    }
    s.top = i.seq;
    return note;
  }

  const refuse = (res: http.ServerResponse, status: number, error: string) => {
    counters.refused++;
    print(`REFUSED ${status}: ${error}`);
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error }));
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.method !== 'POST') {
      res.writeHead(405, { Allow: 'POST' }).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY) return refuse(res, 413, `body over ${MAX_BODY} bytes`);
      const body = Buffer.concat(chunks).toString('utf8');
      const header = (name: string) => {
        const v = req.headers[name];
        return Array.isArray(v) ? v[0] : v;
      };
      const timestamp = header('x-gateway-timestamp');
      const signature = header('x-gateway-signature');
      if (!timestamp || !signature) return refuse(res, 401, 'missing X-Gateway-Timestamp or X-Gateway-Signature');
      if (!verify(opts.secret, timestamp, body, signature)) return refuse(res, 401, 'X-Gateway-Signature does not match the body and timestamp for this secret');
      if (Math.abs(Date.now() - Number(timestamp)) > MAX_SKEW_MS) return refuse(res, 401, `X-Gateway-Timestamp ${timestamp} is more than 5 minutes from this receiver's clock`);
      let parsed: { schema?: string };
      try {
        parsed = JSON.parse(body) as { schema?: string };
      } catch {
        return refuse(res, 400, 'body is not JSON');
      }
      if (parsed.schema === HEARTBEAT_SCHEMA) {
        const hb = parsed as HeartbeatBody;
        heartbeats.push(hb);
        print(`${hb.at} heartbeat ${hb.gatewayId}/${hb.site}: last seq ${hb.lastSeq}, ${hb.pending} pending, ${hb.activeIncidents} active incidents`);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ok"}');
        return;
      }
      if (parsed.schema !== INCIDENT_SCHEMA && parsed.schema !== RESULT_SCHEMA) return refuse(res, 400, `unknown schema ${JSON.stringify(parsed.schema)}`);
      const incident = parsed as IncidentBody | ResultBody;
      const id = incident.schema === RESULT_SCHEMA ? incident.resultId : incident.eventId;
      const key = header('idempotency-key');
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
    });
  };
  const tls = opts.tls;
  const server = tls
    ? https.createServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key), ...(tls.ca ? { ca: readFileSync(tls.ca), requestCert: true, rejectUnauthorized: true } : {}) }, handler)
    : http.createServer(handler);

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
