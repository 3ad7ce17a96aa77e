// Writing line protocol to InfluxDB: api v2 through the official client (@influxdata/influxdb-client,
// /api/v2/write), api v1 to /write (InfluxDB 1.x). Both say how a failure should be handled.
import { parseRetryAfter } from '../retry-after.js';
import { readBounded, v1Authorization } from './http.js';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import { HttpError, type HttpHeaders, InfluxDB, setLogger } from '@influxdata/influxdb-client';
import type { InfluxSection } from '../../config/schema.js';

const gzip = promisify(gzipCb);

/**
 * retry: the server or the network failed; the same lines will do later.
 * data: the server refused some lines for good (parse error, field type conflict); the rest was written.
 * too_large: the request was too big; send fewer lines.
 * blocked: nothing can be written until someone acts (bad token or password, unknown database or bucket).
 */
export type FailureKind = 'retry' | 'data' | 'too_large' | 'blocked';

export class InfluxWriteError extends Error {
  constructor(
    readonly kind: FailureKind,
    /** InfluxDB's own words, or the network error. */
    readonly influxMessage: string,
    readonly status?: number,
    /** From a Retry-After header, in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(status === undefined ? influxMessage : `HTTP ${status}: ${influxMessage}`);
    this.name = 'InfluxWriteError';
  }
}

export interface InfluxClient {
  /** Resolves when InfluxDB accepted every line; rejects with an InfluxWriteError. */
  write(body: Buffer): Promise<void>;
  /** Where it writes, for logs: no credentials. */
  readonly target: string;
}

export function createInfluxClient(config: InfluxSection): InfluxClient {
  return config.api === 'v2' ? createV2Client(config) : createV1Client(config);
}

export function kindOf(status: number): FailureKind {
  if (status === 429 || status >= 500) return 'retry';
  if (status === 400 || status === 422) return 'data';
  if (status === 413) return 'too_large';
  return 'blocked';
}

/** InfluxDB answers `{"error": ...}` (1.x) or `{"code", "message"}` (2.x, 3.x); others plain text. */
export function influxMessageOf(body: string | undefined, fallback: string): string {
  const text = body?.trim();
  if (!text) return fallback;
  try {
    const json = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (typeof json.error === 'string') return json.error;
    if (typeof json.message === 'string') return json.message;
  } catch {
    // Not JSON: the text itself is the message.
  }
  return text.length > 500 ? `${text.slice(0, 500)}...` : text;
}

let clientLogRouted = false;

function createV2Client(config: Extract<InfluxSection, { api: 'v2' }>): InfluxClient {
  if (!clientLogRouted) {
    // The client logs failures to the console by itself; ours are reported by the writer.
    setLogger({ error: () => undefined, warn: () => undefined });
    clientLogRouted = true;
  }
  const influx = new InfluxDB({ url: config.url, token: config.token || undefined, timeout: config.timeout });
  const target = `${config.url} (api v2, org ${config.org}, bucket ${config.bucket})`;
  // The client's transport, as its WriteApi uses it, without the WriteApi's batching and retry
  // buffer: the spool is the buffer, and the body is already one batch.
  const path = `/api/v2/write?org=${encodeURIComponent(config.org)}&bucket=${encodeURIComponent(config.bucket)}&precision=ns`;
  const sendOptions = {
    method: 'POST',
    headers: { 'content-type': 'text/plain; charset=utf-8' },
    gzipThreshold: config.gzip ? 0 : Number.MAX_SAFE_INTEGER,
  };
  return {
    target,
    write(body) {
      return new Promise<void>((resolve, reject) => {
        let status: number | undefined;
        let headers: HttpHeaders = {};
        const fail = (err: Error) => {
          if (err instanceof HttpError) {
            const retryAfter = err.headers?.['retry-after'];
            reject(
              new InfluxWriteError(
                kindOf(err.statusCode),
                influxMessageOf(err.body, err.statusMessage ?? err.message),
                err.statusCode,
                parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter),
              ),
            );
          } else reject(new InfluxWriteError('retry', err.message));
        };
        // The Node transport takes the body through Buffer.from(body, 'utf-8'), which copies bytes as
        // they are: the batch never becomes one large string on the heap (see bodyOf in writer.ts).
        influx.transport.send(path, body as unknown as string, sendOptions, {
          responseStarted(h, statusCode) {
            headers = h;
            status = statusCode;
          },
          error: fail,
          complete() {
            if (status === 204 || status === 200 || status === 201) resolve();
            else if (status === undefined) reject(new InfluxWriteError('retry', 'the connection ended without an HTTP answer'));
            else fail(new HttpError(status, `InfluxDB answered ${status} to a write`, undefined, undefined, undefined, undefined, headers));
          },
        });
      });
    },
  };
}

/** Bytes of an answer read at most: enough for InfluxDB's message, and a server that sends more (or a gzip bomb) is not read further. */
const ANSWER_KEEP = 64 * 1024;

async function startOf(res: Response): Promise<string> {
  return (await readBounded(res, ANSWER_KEEP)).text;
}

function createV1Client(config: Extract<InfluxSection, { api: 'v1' }>): InfluxClient {
  const url = new URL('write', config.url.endsWith('/') ? config.url : `${config.url}/`);
  url.searchParams.set('db', config.database);
  if (config.retention_policy) url.searchParams.set('rp', config.retention_policy);
  url.searchParams.set('precision', 'ns');
  const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8', ...v1Authorization(config) };
  if (config.gzip) headers['Content-Encoding'] = 'gzip';
  return {
    target: `${config.url} (api v1, database ${config.database}${config.retention_policy ? `, retention policy ${config.retention_policy}` : ''})`,
    async write(body) {
      // gzip runs on libuv's thread pool, off the event loop.
      const payload = config.gzip ? await gzip(body) : body;
      let res: Response;
      try {
        res = await fetch(url, { method: 'POST', headers, body: payload, signal: AbortSignal.timeout(config.timeout) });
      } catch (err) {
        const e = err as Error & { cause?: { code?: string; message?: string } };
        const detail =
          e.name === 'TimeoutError' ? `no answer within ${config.timeout} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
        throw new InfluxWriteError('retry', detail);
      }
      const text = await startOf(res).catch(() => '');
      if (res.status === 204 || res.status === 200) return;
      throw new InfluxWriteError(
        kindOf(res.status),
        influxMessageOf(text, res.statusText),
        res.status,
        parseRetryAfter(res.headers.get('retry-after')),
      );
    },
  };
}
