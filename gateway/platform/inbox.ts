// The reference receiver of the platform contract (`gateway platform-inbox`): verifies signatures
// (401 when wrong), de-duplicates by Idempotency-Key, reports seq gaps, follows every incident until
// its `closed` and reports those left open, prints each body (incident, lab result, risk change, risk
// summary, daily report, lab daily summary) as one readable line and can append them as JSON lines. Platform developers use it to see what they will receive; the demo forwards to it.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { createPrivateFile, PRIVATE_DIR_MODE } from '../data-dir.js';
import {
  checkBody,
  describeLabDaily,
  HEARTBEAT_SCHEMA,
  INCIDENT_SCHEMA,
  LAB_DAILY_SCHEMA,
  printable,
  REPORT_SCHEMA,
  RESULT_SCHEMA,
  RISK_SCHEMA,
  RISK_SUMMARY_SCHEMA,
  verify,
  type ContractBody,
  type HeartbeatBody,
  type IncidentBody,
  type IncidentType,
  type LabDailyBody,
  type ReportBody,
  type ResultBody,
  type RiskBody,
  type RiskSummaryBody,
} from './contract.js';

/** Signatures older or newer than this are refused: a captured request cannot be replayed later. */
const MAX_SKEW_MS = 5 * 60_000;
/** A gap wider than this is reported as one range, not remembered seq by seq (a hostile seq of 10^15 would never end). */
const MAX_TRACKED_GAP = 10_000;
/** Heartbeats kept in memory for stats and tests (one every 30 s: about 8 hours). */
const MAX_HEARTBEATS = 1000;
/**
 * Risk changes, risk summaries and daily reports kept in memory for stats and tests, each kind at
 * most this many, oldest dropped first: their lines and the --out file are the record.
 */
export const MAX_KEPT_BODIES = 10_000;
/**
 * Open incidents followed at once (a few hundred bytes each); events of further incidents are
 * counted as not followed, never taken as ended. As many ended incidents are remembered, so that an
 * event arriving after its incident's `closed` is told apart from one that was merely late.
 */
export const MAX_TRACKED_INCIDENTS = 100_000;
/**
 * Ids kept in the de-duplication state file, at most (about 100 bytes each on disk); past this the
 * oldest tenth is forgotten, counted and reported. A sender retries for days at most, not for a
 * million events.
 */
export const MAX_REMEMBERED_IDS = 1_000_000;

/** An incident the receiver has seen open and not closed. */
export interface OpenIncident {
  gatewayId: string;
  site: string;
  equipment: string;
  rule: string;
  incidentId: string;
  level: IncidentBody['level'];
  /** occurredAt of its first event seen (normally its `raised`). */
  since: string;
  /** Its latest event in seq order. */
  last: IncidentType;
  lastSeq: number;
}

export interface IncidentTrackerStats {
  /** Incidents seen open and not closed yet. */
  incidentsOpen: number;
  /** `closed` events taken: incidents over. */
  incidentsEnded: number;
  /** Events of incidents not followed because MAX_TRACKED_INCIDENTS were open already. */
  notFollowed: number;
  /** Events that came after their incident's `closed` in seq order (a second `closed` too): the sender broke the contract. */
  afterClosed: number;
}

export interface IncidentTracker {
  /** Follows one accepted incident event; returns a line to print when it breaks the contract or the bound is hit. */
  take(i: IncidentBody): string | undefined;
  /** The incidents left open, oldest first (by when they were first seen to occur). */
  open(limit?: number): OpenIncident[];
  stats(): IncidentTrackerStats;
}

/** Follows incidents from their first event to their `closed`, in seq order, in bounded memory. */
export function createIncidentTracker(max = MAX_TRACKED_INCIDENTS): IncidentTracker {
  const open = new Map<string, OpenIncident>();
  /** Ended incidents and the seq of their `closed`, oldest forgotten first. */
  const ended = new Map<string, number>();
  const counters = { incidentsEnded: 0, notFollowed: 0, afterClosed: 0 };
  // Ids are free text: a length prefix keeps (gateway, incident) pairs apart.
  const keyOf = (i: IncidentBody) => `${i.gatewayId.length}:${i.gatewayId}${i.incidentId}`;
  return {
    take(i) {
      const key = keyOf(i);
      const closedAt = ended.get(key);
      if (closedAt !== undefined) {
        // An event older than the closed arrived late (more than one in flight): nothing to do.
        if (i.seq < closedAt && i.type !== 'closed') return undefined;
        counters.afterClosed++;
        return `AFTER CLOSED: ${i.type} seq ${i.seq} of incident ${i.incidentId} (${i.equipment.id}/${i.rule.id}, ${i.gatewayId}), which was closed at seq ${closedAt}`;
      }
      const known = open.get(key);
      if (i.type === 'closed') {
        open.delete(key);
        counters.incidentsEnded++;
        ended.set(key, i.seq);
        if (ended.size > max) ended.delete(ended.keys().next().value!);
        // More than one in flight: an event after the closed can arrive before it.
        if (known && known.lastSeq > i.seq) {
          counters.afterClosed++;
          return `AFTER CLOSED: ${known.last} seq ${known.lastSeq} of incident ${i.incidentId} (${i.equipment.id}/${i.rule.id}, ${i.gatewayId}), which was closed at seq ${i.seq}`;
        }
        return undefined;
      }
      if (known) {
        if (i.seq > known.lastSeq) Object.assign(known, { last: i.type, lastSeq: i.seq, level: i.level });
        return undefined;
      }
      if (open.size >= max) {
        counters.notFollowed++;
        return counters.notFollowed === 1
          ? `NOT FOLLOWED: ${max} incidents are open already; events of further incidents are counted, not followed`
          : undefined;
      }
      open.set(key, {
        gatewayId: i.gatewayId,
        site: i.site,
        equipment: i.equipment.id,
        rule: i.rule.id,
        incidentId: i.incidentId,
        level: i.level,
        since: i.occurredAt,
        last: i.type,
        lastSeq: i.seq,
      });
      return undefined;
    },
    open: (limit = Infinity) =>
      [...open.values()].sort((a, b) => Date.parse(a.since) - Date.parse(b.since) || a.lastSeq - b.lastSeq).slice(0, limit),
    stats: () => ({ incidentsOpen: open.size, ...counters }),
  };
}

/**
 * What one client can cost the receiver: bodies are refused (413) once they pass maxBody, even
 * before they have arrived; a request must arrive whole within requestTimeout; at most
 * maxConnections at once, idle keep-alive connections closed after 5 s.
 */
export const INBOX_LIMITS = {
  maxBody: 1_048_576,
  requestTimeout: 30_000,
  headersTimeout: 10_000,
  keepAliveTimeout: 5000,
  maxConnections: 256,
};

export interface InboxOptions {
  host?: string;
  port: number;
  secret: string;
  /** Append accepted incidents here as JSON lines; ids already in the file count as seen. */
  out?: string;
  /**
   * The de-duplication state: every Idempotency-Key taken, in this SQLite file (created 0600), so that
   * a restarted receiver still answers `duplicate` to an event it took before. Without it, only
   * this run's ids (and those in `out`) are known.
   */
  state?: string;
  /** MAX_REMEMBERED_IDS, for tests. */
  maxRememberedIds?: number;
  /** One readable line per incident, heartbeat, gap or refusal. */
  print?: (line: string) => void;
  /** HTTPS with this certificate and key; with `ca`, clients must present a certificate it signed (mutual TLS). */
  tls?: { cert: string; key: string; ca?: string };
  /** Tighter (or looser) bounds than INBOX_LIMITS, for tests. */
  limits?: Partial<typeof INBOX_LIMITS>;
  /** Open incidents followed at once (MAX_TRACKED_INCIDENTS). */
  maxTrackedIncidents?: number;
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
  /** Risk level changes accepted, each once, in arrival order (the latest MAX_KEPT_BODIES). */
  readonly risks: RiskBody[];
  /** Risk summaries accepted, each once, in arrival order (the latest MAX_KEPT_BODIES). */
  readonly riskSummaries: RiskSummaryBody[];
  /** Daily reports accepted, each once, in arrival order (the latest MAX_KEPT_BODIES). */
  readonly reports: ReportBody[];
  /** Lab daily summaries accepted, each once, in arrival order (the latest MAX_KEPT_BODIES). */
  readonly labDailies: LabDailyBody[];
  /** Incidents seen open and not closed, oldest first. */
  openIncidents(limit?: number): OpenIncident[];
  stats(): {
    accepted: number;
    duplicates: number;
    refused: number;
    gaps: number;
    skippedLines: number;
    forgottenIds: number;
    /** Accepted bodies by kind (`accepted` counts them all). */
    risk: number;
    riskSummaries: number;
    reports: number;
  } & IncidentTrackerStats;
}

/** The ids taken, in memory or, with a state file, on disk. */
interface SeenIds {
  has(id: string): boolean;
  /** Remembers an id; returns how many of the oldest were forgotten to stay within the bound. */
  add(id: string): number;
  close(): void;
}

function memorySeen(): SeenIds {
  const seen = new Set<string>();
  return { has: (id) => seen.has(id), add: (id) => (seen.add(id), 0), close: () => seen.clear() };
}

/** Ids in a SQLite file: each one is on disk before the sender hears `accepted`. */
function fileSeen(file: string, max: number): SeenIds {
  mkdirSync(dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE });
  createPrivateFile(file);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE IF NOT EXISTS seen (n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE)');
  const has = db.prepare<[string], { n: number }>('SELECT n FROM seen WHERE id = ?');
  const insert = db.prepare<[string]>('INSERT OR IGNORE INTO seen (id) VALUES (?)');
  const count = db.prepare<[], { c: number }>('SELECT count(*) AS c FROM seen');
  const prune = db.prepare<[number]>('DELETE FROM seen WHERE n IN (SELECT n FROM seen ORDER BY n LIMIT ?)');
  let size = count.get()!.c;
  return {
    has: (id) => has.get(id) !== undefined,
    add(id) {
      size += insert.run(id).changes;
      if (size <= max) return 0;
      const forgotten = prune.run(Math.max(1, Math.floor(max / 10))).changes;
      size -= forgotten;
      return forgotten;
    },
    close: () => db.close(),
  };
}

export function createPlatformInbox(opts: InboxOptions): PlatformInbox {
  const print = opts.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const seen = opts.state ? fileSeen(opts.state, opts.maxRememberedIds ?? MAX_REMEMBERED_IDS) : memorySeen();
  const incidents: IncidentBody[] = [];
  const heartbeats: HeartbeatBody[] = [];
  const results: ResultBody[] = [];
  const risks: RiskBody[] = [];
  const riskSummaries: RiskSummaryBody[] = [];
  const reports: ReportBody[] = [];
  const labDailies: LabDailyBody[] = [];
  const keep = <T>(list: T[], body: T) => {
    list.push(body);
    if (list.length > MAX_KEPT_BODIES) list.splice(0, list.length - MAX_KEPT_BODIES);
  };
  /** Per gateway: the highest seq seen, and seqs below it that have not arrived. */
  const seqs = new Map<string, { top: number; missing: Set<number> }>();
  const counters = {
    accepted: 0,
    duplicates: 0,
    refused: 0,
    gaps: 0,
    skippedLines: 0,
    forgottenIds: 0,
    risk: 0,
    riskSummaries: 0,
    reports: 0,
  };
  const remember = (id: string) => {
    const forgotten = seen.add(id);
    if (forgotten === 0) return;
    counters.forgottenIds += forgotten;
    print(
      `FORGOTTEN: the ${forgotten} oldest ids of ${opts.state} (more than ${opts.maxRememberedIds ?? MAX_REMEMBERED_IDS} kept); an event with one of them would be taken again`,
    );
  };
  const limits = { ...INBOX_LIMITS, ...opts.limits };
  const tracker = createIncidentTracker(opts.maxTrackedIncidents);
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
      remember(body.schema === RESULT_SCHEMA ? body.resultId : body.eventId);
      track(body);
      const note = body.schema === INCIDENT_SCHEMA ? tracker.take(body) : undefined;
      if (note) print(note);
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
    if (!(Math.abs(Date.now() - Number(timestamp)) <= MAX_SKEW_MS))
      return early(401, `X-Gateway-Timestamp ${JSON.stringify(timestamp.slice(0, 40))} is not within 5 minutes of this receiver's clock`);
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
    if (!verify(opts.secret, timestamp, body, signature))
      return refuse(res, 401, 'X-Gateway-Signature does not match the body and timestamp for this secret');
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
      print(
        `${hb.at} heartbeat ${hb.gatewayId}/${hb.site}: last seq ${hb.lastSeq}, ${hb.pending} pending, ${hb.activeIncidents} active incidents`,
      );
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    const incident: Exclude<ContractBody, HeartbeatBody> = checked.body;
    const id = incident.schema === RESULT_SCHEMA ? incident.resultId : incident.eventId;
    const key = header(req, 'idempotency-key');
    if (!key || key !== id)
      return refuse(res, 400, `Idempotency-Key must be the ${incident.schema === RESULT_SCHEMA ? 'resultId' : 'eventId'}`);
    if (seen.has(key)) {
      counters.duplicates++;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"duplicate"}');
      return;
    }
    // On disk before the answer: a restart after `accepted` still knows this id.
    remember(key);
    counters.accepted++;
    if (opts.out) appendFileSync(opts.out, `${body}\n`);
    const note = track(incident);
    let broken: string | undefined;
    switch (incident.schema) {
      case INCIDENT_SCHEMA:
        incidents.push(incident);
        broken = tracker.take(incident);
        print(lineOf(incident));
        break;
      case RESULT_SCHEMA:
        results.push(incident);
        print(resultLineOf(incident));
        break;
      case RISK_SCHEMA:
        counters.risk++;
        keep(risks, incident);
        print(riskLineOf(incident));
        break;
      case RISK_SUMMARY_SCHEMA:
        counters.riskSummaries++;
        keep(riskSummaries, incident);
        print(riskSummaryLineOf(incident));
        break;
      case REPORT_SCHEMA:
        counters.reports++;
        keep(reports, incident);
        print(reportLineOf(incident));
        break;
      case LAB_DAILY_SCHEMA:
        keep(labDailies, incident);
        print(labDailyLineOf(incident));
        break;
    }
    if (note) print(note);
    if (broken) print(broken);
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
    ? https.createServer(
        {
          ...serverOptions,
          cert: readFileSync(tls.cert),
          key: readFileSync(tls.key),
          ...(tls.ca ? { ca: readFileSync(tls.ca), requestCert: true, rejectUnauthorized: true } : {}),
        },
        handler,
      )
    : http.createServer(serverOptions, handler);
  server.maxConnections = limits.maxConnections;

  return {
    incidents,
    heartbeats,
    results,
    risks,
    riskSummaries,
    reports,
    labDailies,
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
        server.close(() => {
          seen.close();
          resolve();
        });
      }),
    address: () => {
      const a = server.address() as AddressInfo;
      return { host: a.address, port: a.port };
    },
    openIncidents: (limit) => tracker.open(limit),
    stats: () => ({ ...counters, ...tracker.stats() }),
  };
}

/** What the receiver says when it stops: its counts, the incidents left open and the oldest of them. */
export function summaryOf(inbox: Pick<PlatformInbox, 'stats' | 'openIncidents'>, oldest = 10): string[] {
  const s = inbox.stats();
  const lines = [
    `${s.accepted} incidents accepted, ${s.duplicates} duplicates, ${s.refused} refused, ${s.gaps} seq gaps`,
    `${s.incidentsEnded} incidents ended, ${s.incidentsOpen} left open${s.notFollowed > 0 ? `, ${s.notFollowed} events of incidents not followed (too many open at once)` : ''}${s.afterClosed > 0 ? `, ${s.afterClosed} events after their incident's closed` : ''}`,
  ];
  if (s.incidentsOpen === 0) return lines;
  lines.push(`Left open, oldest first:`);
  for (const o of inbox.openIncidents(oldest))
    lines.push(
      `  since ${o.since} ${o.level.toUpperCase()} ${o.site}/${o.equipment} ${o.rule} incident ${o.incidentId}, last ${o.last} (seq ${o.lastSeq}, ${o.gatewayId})`,
    );
  if (s.incidentsOpen > oldest) lines.push(`  and ${s.incidentsOpen - oldest} more`);
  return lines;
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** One incident as a person reads it. */
export function lineOf(i: IncidentBody): string {
  const value =
    i.value === undefined || i.value === null ? '' : ` (${i.point ?? 'value'} = ${String(i.value)}${i.unit ? ` ${i.unit}` : ''})`;
  // A closed event says what ended the incident in its comment, with nobody's name.
  const who = i.by ? ` by ${i.by}${i.comment ? `: ${i.comment}` : ''}` : i.comment ? ` (${i.comment})` : '';
  return `${i.occurredAt} ${i.level.toUpperCase()} ${i.type} ${i.site}/${i.equipment.id} ${i.rule.id}: ${i.rule.message}${value}${who} [seq ${i.seq}, ${i.gatewayId}]`;
}

/** One risk level change as a person reads it, with the factors that gave the most points. */
export function riskLineOf(r: RiskBody): string {
  const top = [...r.factors]
    .filter((f) => f.points > 0)
    .sort((a, b) => b.points - a.points)
    .slice(0, 3)
    .map((f) => `${f.factor} ${f.points}${f.detail ? ` (${f.detail.slice(0, 80)})` : ''}`);
  return `${r.changedAt} RISK ${r.site}/${r.equipment.id} ${r.previousLevel} -> ${r.level.toUpperCase()} (score ${r.score} = likelihood ${r.likelihood} x consequence ${r.consequence})${top.length ? `: ${top.join(', ')}` : ''} [seq ${r.seq}, ${r.gatewayId}]`;
}

/** One risk summary as a person reads it: the site's equipment by level, how many are listed, and the site's alarm figures. */
export function riskSummaryLineOf(r: RiskSummaryBody): string {
  const levels =
    (['red', 'orange', 'yellow', 'blue'] as const)
      .filter((level) => r.levels[level] > 0)
      .map((level) => `${r.levels[level]} ${level}`)
      .join(', ') || 'no equipment';
  return `${r.from} RISK SUMMARY ${r.site} until ${r.to}: ${levels} (${r.equipment.length} listed); ${r.kpi.annunciated} alarms annunciated, peak ${r.kpi.peakPer10Min} per 10 min, ${r.kpi.standing} standing [seq ${r.seq}, ${r.gatewayId}]`;
}

/** One lab instrument's daily summary as a person reads it. */
export function labDailyLineOf(r: LabDailyBody): string {
  return printable(`${r.generatedAt} LAB-DAILY ${describeLabDaily(r)} [seq ${r.seq}, ${r.gatewayId}]`);
}

/** One daily report as a person reads it. */
export function reportLineOf(r: ReportBody): string {
  return `${r.generatedAt} DAILY REPORT ${r.site} for ${r.date} (${r.timezone}) [seq ${r.seq}, ${r.gatewayId}]`;
}

/** One lab result as a person reads it. */
export function resultLineOf(r: ResultBody): string {
  const flags = r.flags.filter((f) => f !== 'N');
  // A control's verdict and a sample's pending QC are what a lab reads first; a passed QC says nothing new.
  const why = r.qc?.rule ?? (r.qc?.rules?.length ? r.qc.rules.join(', ') : undefined);
  const qc = r.qc && r.qc.status !== 'passed' ? ` QC ${r.qc.status}${why ? ` (${why})` : ''}` : '';
  // The texts are the instrument's: printed so that none can break the line or reorder it (printable).
  const line = `${r.resultAt} RESULT ${r.site}/${r.instrument.id} sample ${r.sampleId} ${r.analyte} = ${String(r.value)}${r.unit ? ` ${r.unit}` : ''}${flags.length ? ` [${flags.join(',')}]` : ''} (${r.status})${qc} [seq ${r.seq}, ${r.gatewayId}]`;
  return printable(line);
}
