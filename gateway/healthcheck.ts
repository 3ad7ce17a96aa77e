// The container's health check (the Dockerfile's HEALTHCHECK): asks the gateway's /ready, which needs
// no token, and exits 0 when it answers 200, 1 otherwise, with one line saying why (Docker keeps it:
// `docker inspect --format '{{json .State.Health}}'`). Only node's own modules: it runs every 30 s
// beside the gateway and must stay light.
//
// The address: GATEWAY_HEALTH_URL, else http://127.0.0.1:${HTTP_PORT:-8080}/ready. An API with its
// own certificate (http.cert) needs GATEWAY_HEALTH_URL=https://<the certificate's host>/ready, that host
// mapped to loopback (docker run --add-host), and, for a CA of the site's own, NODE_EXTRA_CA_CERTS.
import { pathToFileURL } from 'node:url';

/** Of an answer, at most this much is read: /ready of a large site is a few KiB. */
const MAX_BODY_CHARS = 64 * 1024;
const TIMEOUT_MS = 4000;

export function healthUrl(env: NodeJS.ProcessEnv): string {
  if (env.GATEWAY_HEALTH_URL) return env.GATEWAY_HEALTH_URL;
  const port = env.HTTP_PORT && /^\d{1,5}$/.test(env.HTTP_PORT) ? env.HTTP_PORT : '8080';
  return `http://127.0.0.1:${port}/ready`;
}

/** Whether the gateway at `url` is ready, and one line for the operator. */
export async function checkReady(url: string, timeoutMs = TIMEOUT_MS): Promise<{ ok: boolean; line: string }> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    return { ok: false, line: `unreachable: ${url}: ${why}` };
  }
  const text = await readBounded(res);
  if (res.status === 200) return { ok: true, line: `ready: ${url}` };
  let message: string | undefined;
  try {
    // The API's errors: { error: message, code }.
    const body = JSON.parse(text) as { error?: unknown; code?: unknown };
    if (typeof body.error === 'string') message = typeof body.code === 'string' ? `${body.error} (${body.code})` : body.error;
  } catch {
    // Not JSON (another server on that port?): the status says enough.
  }
  return { ok: false, line: `${res.status}: ${url}${message ? `: ${oneLine(message)}` : ''}` };
}

async function readBounded(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    if (text.length > MAX_BODY_CHARS) {
      await reader.cancel();
      break;
    }
  }
  return text;
}

/** Printable, one line, short: it ends up in `docker inspect`. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is being removed
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').slice(0, 300);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { ok, line } = await checkReady(healthUrl(process.env));
  process.stdout.write(`${line}\n`);
  process.exit(ok ? 0 : 1);
}
