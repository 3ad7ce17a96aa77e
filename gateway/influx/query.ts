// Older readings of one point from InfluxDB, for the trend when it asks further back than the API
// keeps in memory. InfluxQL over `/query`: InfluxDB 1.x, and 2.x through its 1.x-compatible endpoint
// (the bucket as the database, the token as `Authorization: Token`). Bounded in rows, bytes and time,
// because the server answering is a peer like any other.
import type { InfluxSection } from '../../config/schema.js';
import { MAX_TEXT, type Sample } from '../http/history.js';
import { readBounded, v1Authorization } from './http.js';

/** Rows one query returns at most. */
export const MAX_QUERY_ROWS = 10_000;
/** Bytes of answer read per row asked for, at most (a row of the longest text kept, with its time and JSON): more is refused, not parsed. */
const ANSWER_BYTES_PER_ROW = 2 * (MAX_TEXT + 64);

/** Why older readings could not be had: told to the caller without InfluxDB's own words (those go to the log). */
export type QueryFailure = 'timeout' | 'unreachable' | 'refused' | 'too-large' | 'bad-answer';

export class InfluxQueryError extends Error {
  constructor(
    readonly kind: QueryFailure,
    message: string,
  ) {
    super(message);
    this.name = 'InfluxQueryError';
  }
}

export interface PointQuery {
  measurement: string;
  site: string;
  equipment: string;
  point: string;
  /** Epoch ms, from (inclusive) and until (exclusive). */
  since: number;
  until: number;
  limit: number;
  timeoutMs: number;
}

const ident = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
const literal = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** The two InfluxQL statements: the point's values, and the lines that say it was not good. */
export function pointStatements(q: PointQuery): string {
  const where = `${ident('site')} = ${literal(q.site)} AND ${ident('equipment')} = ${literal(q.equipment)} AND time >= ${Math.floor(q.since)}ms AND time < ${Math.ceil(q.until)}ms`;
  const limit = Math.min(MAX_QUERY_ROWS, Math.max(1, Math.floor(q.limit)));
  return [
    `SELECT ${ident(q.point)} FROM ${ident(q.measurement)} WHERE ${where} ORDER BY time DESC LIMIT ${limit}`,
    `SELECT ${ident('quality')} FROM ${ident(q.measurement)} WHERE ${where} AND ${ident('point')} = ${literal(q.point)} ORDER BY time DESC LIMIT ${limit}`,
  ].join('; ');
}

interface QueryResult {
  error?: string;
  series?: Array<{ columns?: string[]; values?: unknown }>;
}

interface QueryAnswer {
  results?: QueryResult[];
  error?: string;
}

/**
 * Samples oldest first from an InfluxQL answer of pointStatements, only those in [since, until) and at
 * most `limit` rows of each statement; a value and a bad-quality line at one time give the bad one.
 */
export function samplesOf(answer: QueryAnswer, q: Pick<PointQuery, 'since' | 'until' | 'limit'>): Sample[] {
  if (typeof answer.error === 'string') throw new InfluxQueryError('refused', answer.error);
  const [values, qualities] = Array.isArray(answer.results) ? answer.results : [];
  for (const r of [values, qualities])
    if (typeof r === 'object' && r !== null && typeof r.error === 'string') throw new InfluxQueryError('refused', r.error);
  const limit = Math.min(MAX_QUERY_ROWS, q.limit);
  const inRange = (ts: unknown): ts is number => typeof ts === 'number' && ts >= q.since && ts < q.until;
  const byTime = new Map<number, Sample>();
  for (const row of rowsOf(values, limit)) {
    const [ts, value] = row;
    if (!inRange(ts)) continue;
    if (typeof value === 'number' || typeof value === 'boolean') byTime.set(ts, { ts, value, quality: 'good' });
    else if (typeof value === 'string')
      byTime.set(ts, { ts, value: value.length > MAX_TEXT ? `${value.slice(0, MAX_TEXT)}…` : value, quality: 'good' });
  }
  for (const row of rowsOf(qualities, limit)) {
    const [ts, quality] = row;
    if (!inRange(ts)) continue;
    const bad = quality !== 'uncertain';
    // An uncertain value is stored with its value; a bad one never has one.
    const had = byTime.get(ts);
    byTime.set(ts, { ts, value: bad ? null : (had?.value ?? null), quality: bad ? 'bad' : 'uncertain' });
  }
  return [...byTime.values()].sort((a, b) => a.ts - b.ts).slice(-limit);
}

/** The first series' rows of a statement, at most `limit` (a server that ignores LIMIT gives no more). */
function rowsOf(result: QueryResult | undefined, limit: number): unknown[][] {
  const series = typeof result === 'object' && result !== null && Array.isArray(result.series) ? result.series[0] : undefined;
  const rows = typeof series === 'object' && series !== null ? series.values : undefined;
  if (!Array.isArray(rows)) return [];
  return rows.slice(0, limit).filter((r): r is unknown[] => Array.isArray(r));
}

/** The point's samples in [since, until), oldest first, at most `limit` (the newest). */
export async function queryPoint(config: InfluxSection, q: PointQuery): Promise<Sample[]> {
  const url = new URL('query', config.url.endsWith('/') ? config.url : `${config.url}/`);
  url.searchParams.set('db', config.api === 'v2' ? config.bucket : config.database);
  if (config.api === 'v1' && config.retention_policy) url.searchParams.set('rp', config.retention_policy);
  url.searchParams.set('epoch', 'ms');
  url.searchParams.set('q', pointStatements(q));
  // InfluxDB 2.x answers InfluxQL through its 1.x-compatible /query, with the token.
  const headers = config.api === 'v2' ? (config.token ? { Authorization: `Token ${config.token}` } : {}) : v1Authorization(config);
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: AbortSignal.timeout(q.timeoutMs) });
  } catch (err) {
    const timedOut = (err as Error).name === 'TimeoutError';
    throw new InfluxQueryError(
      timedOut ? 'timeout' : 'unreachable',
      timedOut ? `no answer within ${q.timeoutMs} ms` : String((err as Error).message),
    );
  }
  const limit = Math.min(MAX_QUERY_ROWS, Math.max(1, q.limit));
  let body: { text: string; cut: boolean };
  try {
    body = await readBounded(res, 2 * limit * ANSWER_BYTES_PER_ROW + 4096);
  } catch (err) {
    throw new InfluxQueryError((err as Error).name === 'TimeoutError' ? 'timeout' : 'unreachable', String((err as Error).message));
  }
  if (!res.ok) throw new InfluxQueryError('refused', `HTTP ${res.status}: ${body.text.slice(0, 200)}`);
  if (body.cut) throw new InfluxQueryError('too-large', `the answer is bigger than ${limit} rows can be`);
  let answer: QueryAnswer;
  try {
    answer = JSON.parse(body.text) as QueryAnswer;
  } catch {
    throw new InfluxQueryError('bad-answer', 'the answer is not JSON');
  }
  if (typeof answer !== 'object' || answer === null) throw new InfluxQueryError('bad-answer', 'the answer is not an object');
  return samplesOf(answer, { ...q, limit });
}
