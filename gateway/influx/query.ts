// Older readings of one point from InfluxDB, for the trend when it asks further back than the API
// keeps in memory. InfluxQL over `/query`: InfluxDB 1.x, and 2.x through its 1.x-compatible endpoint
// (the bucket as the database, the token as `Authorization: Token`). Bounded in rows, bytes and time,
// because the server answering is a peer like any other.
import type { InfluxSection } from '../../config/schema.js';
import type { Sample } from '../http/history.js';

/** Rows one query returns at most. */
export const MAX_QUERY_ROWS = 10_000;
/** Bytes of answer read at most; more is refused, not parsed. */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

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

interface QueryAnswer {
  results?: Array<{ error?: string; series?: Array<{ columns?: string[]; values?: unknown[][] }> }>;
  error?: string;
}

/** Samples oldest first from an InfluxQL answer of pointStatements; a value and a bad-quality line at one time give the bad one. */
export function samplesOf(answer: QueryAnswer, limit: number): Sample[] {
  if (typeof answer.error === 'string') throw new Error(`InfluxDB: ${answer.error}`);
  const [values, qualities] = answer.results ?? [];
  for (const r of [values, qualities]) if (r && typeof r.error === 'string') throw new Error(`InfluxDB: ${r.error}`);
  const byTime = new Map<number, Sample>();
  for (const row of values?.series?.[0]?.values ?? []) {
    const [ts, value] = row;
    if (typeof ts !== 'number') continue;
    if (typeof value !== 'number' && typeof value !== 'boolean' && typeof value !== 'string') continue;
    byTime.set(ts, { ts, value, quality: 'good' });
  }
  for (const row of qualities?.series?.[0]?.values ?? []) {
    const [ts, quality] = row;
    if (typeof ts !== 'number') continue;
    const q = quality === 'uncertain' ? 'uncertain' : 'bad';
    // An uncertain value is stored with its value; a bad one never has one.
    const had = byTime.get(ts);
    byTime.set(ts, { ts, value: q === 'bad' ? null : (had?.value ?? null), quality: q });
  }
  return [...byTime.values()].sort((a, b) => a.ts - b.ts).slice(-limit);
}

/** The point's samples in [since, until), oldest first, at most `limit` (the newest). */
export async function queryPoint(config: InfluxSection, q: PointQuery): Promise<Sample[]> {
  const url = new URL('query', config.url.endsWith('/') ? config.url : `${config.url}/`);
  url.searchParams.set('db', config.api === 'v2' ? config.bucket : config.database);
  if (config.api === 'v1' && config.retention_policy) url.searchParams.set('rp', config.retention_policy);
  url.searchParams.set('epoch', 'ms');
  url.searchParams.set('q', pointStatements(q));
  const headers: Record<string, string> = {};
  if (config.api === 'v2' && config.token) headers.authorization = `Token ${config.token}`;
  if (config.api === 'v1' && config.username) headers.authorization = `Basic ${Buffer.from(`${config.username}:${config.password ?? ''}`).toString('base64')}`;
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(q.timeoutMs) });
  const text = await boundedText(res);
  if (!res.ok) throw new Error(`InfluxDB answered HTTP ${res.status}: ${text.slice(0, 200)}`);
  let answer: QueryAnswer;
  try {
    answer = JSON.parse(text) as QueryAnswer;
  } catch {
    throw new Error('InfluxDB answered something that is not JSON');
  }
  return samplesOf(answer, Math.min(MAX_QUERY_ROWS, q.limit));
}

async function boundedText(res: Response): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? 0);
  if (declared > MAX_ANSWER_BYTES) {
    await res.body?.cancel();
    throw new Error(`InfluxDB's answer is ${declared} bytes; at most ${MAX_ANSWER_BYTES} are read`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      // Leaving the loop by a throw cancels the stream: the rest is not read.
      if (size > MAX_ANSWER_BYTES) throw new Error(`InfluxDB's answer passed ${MAX_ANSWER_BYTES} bytes; not read further`);
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}
