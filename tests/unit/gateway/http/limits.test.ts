// The HTTP API's answers to oversized, malformed and random requests (app.inject, no socket): a 4xx
// that says what was wrong, or a 5xx that says only that it failed; never a stack, never an
// internal message.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSite } from '../../../../config/load.js';
import { createHttpApi, hashToken } from '../../../../gateway/http/server.js';
import { createMetrics } from '../../../../gateway/metrics.js';
import type { AlarmService } from '../../../../gateway/alarms/service.js';
import type { Pipeline } from '../../../../gateway/pipeline.js';

const TOKEN = 'admin-token-0123456789abcdef';
const site = parseSite(
  `version: 1
gateway: { id: gw-1, site: s1 }
http: { max_body_size: 2KiB, tokens: [{ name: admin, role: admin, hash: "${hashToken(TOKEN)}" }] }
connections: [{ id: sim, type: sim }]
equipment:
  - { id: B-1, category: boiler, connection: sim, model: steam-boiler, points: [{ name: drum_level }] }
`,
  { env: {} },
);
const logLines: Array<{ level: number; msg: string; err?: { stack?: string } }> = [];
const api = createHttpApi({
  config: site,
  http: site.http!,
  log: pino({ level: 'debug' }, { write: (l: string) => void logLines.push(JSON.parse(l) as (typeof logLines)[number]) }),
  metrics: createMetrics(),
  pipeline: { onBatch: () => {}, status: () => undefined } as unknown as Pipeline,
  alarms: {
    onEvents: () => {},
    active: () => [],
    history: () => [],
    acknowledge: () => {
      throw new TypeError('secret internal detail at /opt/gateway/rules/engine.ts:42');
    },
    shelve: () => [],
    unshelve: () => [],
  } as unknown as AlarmService,
  outbox: () => undefined,
  ready: () => ({}),
  reportsOnChange: () => false,
  dataDir: mkdtempSync(join(tmpdir(), 'gw-http-unit-')),
});
const auth = { authorization: `Bearer ${TOKEN}` };
afterAll(() => api.app.close());

const expectClean = (body: string) => {
  expect(body).not.toMatch(/\bat .+:\d+:\d+|secret internal detail|\/opt\/gateway/);
  expect(JSON.parse(body)).toEqual(
    expect.objectContaining({ error: expect.any(String), code: expect.stringMatching(/^GW_HTTP_[A-Z_]+$/) }),
  );
};

describe('HTTP API under oversized, malformed and random input', () => {
  it.each([
    [
      'a body over max_body_size',
      413,
      {
        method: 'POST' as const,
        url: '/api/alarms/B-1/r/shelve',
        headers: { ...auth, 'content-type': 'application/json' },
        payload: JSON.stringify({ comment: 'x'.repeat(3000) }),
      },
      /too large/,
    ],
    [
      'a body that is not JSON',
      400,
      {
        method: 'POST' as const,
        url: '/api/alarms/B-1/r/shelve',
        headers: { ...auth, 'content-type': 'application/json' },
        payload: '{"comment": ',
      },
      /not valid JSON/,
    ],
    [
      'a body of another type',
      415,
      {
        method: 'POST' as const,
        url: '/api/alarms/B-1/r/shelve',
        headers: { ...auth, 'content-type': 'application/xml' },
        payload: '<a/>',
      },
      /Unsupported Media Type/,
    ],
    [
      'a body that does not fit the schema',
      400,
      { method: 'POST' as const, url: '/api/alarms/B-1/r/shelve', headers: auth, payload: { duration_minutes: 'soon' } },
      /duration_minutes/,
    ],
    [
      'a prototype-polluting body',
      400,
      {
        method: 'POST' as const,
        url: '/api/alarms/B-1/r/shelve',
        headers: { ...auth, 'content-type': 'application/json' },
        payload: '{"__proto__": {"admin": true}}',
      },
      /./,
    ],
    [
      'a route that does not exist',
      404,
      { method: 'GET' as const, url: `/api/${'x'.repeat(5000)}`, headers: auth },
      /^no route GET \/api\/x+$/,
    ],
    [
      'a site file over 4 MiB',
      413,
      {
        method: 'POST' as const,
        url: '/api/config/check',
        headers: { ...auth, 'content-type': 'text/plain' },
        payload: 'x'.repeat(4 * 1024 * 1024 + 1),
      },
      /too large/,
    ],
  ])('answers %s with a clear %i', async (_what, status, request, message) => {
    const r = await api.app.inject(request);
    expect(r.statusCode).toBe(status);
    expectClean(r.body);
    expect((r.json() as { error: string }).error).toMatch(message);
  });

  it('answers a failure inside the gateway with a 500 that tells nothing of it, and logs it', async () => {
    const r = await api.app.inject({ method: 'POST', url: '/api/alarms/B-1/r/acknowledge', headers: auth, payload: {} });
    expect(r.statusCode).toBe(500);
    expect(r.json()).toEqual({ error: 'internal error; the gateway log has the details', code: 'GW_HTTP_INTERNAL' });
    expect(
      logLines.some((l) => l.level === 50 && l.msg === 'HTTP API request failed' && /secret internal detail/.test(l.err?.stack ?? '')),
    ).toBe(true);
  });

  it('checks a site file of up to 4 MiB, and answers alias bombs and deep nesting with the problems', async () => {
    const bomb = Array.from(
      { length: 10 },
      (_, i) =>
        `l${i}: &a${i} [${Array<string>(10)
          .fill(i === 0 ? '"lol"' : `*a${i - 1}`)
          .join(', ')}]`,
    ).join('\n');
    for (const [text, problem] of [
      [bomb, /alias bomb/],
      [`a: ${'['.repeat(3000)}${']'.repeat(3000)}`, /nested too deeply/],
      [`version: 1\n# ${'x'.repeat(3 * 1024 * 1024)}`, /gateway/],
    ] as const) {
      const r = await api.app.inject({
        method: 'POST',
        url: '/api/config/check',
        headers: { ...auth, 'content-type': 'text/plain' },
        payload: text,
      });
      expect(r.statusCode).toBe(200);
      expect(JSON.stringify((r.json() as { problems: unknown[] }).problems)).toMatch(problem);
    }
    // Each check starts a worker of its own (the checker loaded afresh): seconds each on a busy box.
  }, 60_000);

  it('never answers random requests with a stack or a 5xx', async () => {
    const paths = fc.oneof(
      fc.constantFrom(
        '/health',
        '/ready',
        '/api/equipment',
        '/api/equipment/B-1',
        '/api/equipment/B-1/history',
        '/api/alarms',
        '/api/alarms/history',
        '/api/outbox',
        '/api/outbox/retry',
        '/api/config/check',
        '/api/alarms/B-1/r/shelve',
        '/api/alarms/B-1/r/unshelve',
      ),
      fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)),
    );
    const query = fc.oneof(
      fc.constant(''),
      fc.webQueryParameters().map((q) => `?${q}`),
      fc.constantFrom('?limit=-1', '?limit=1e9', '?point=', '?equipment[]=x', '?limit=abc'),
    );
    const body = fc.oneof(
      fc.constant(undefined),
      fc.json(),
      fc.string({ maxLength: 300 }),
      fc.constantFrom('{', '[]', 'null', '{"seq": -1}', '{"seq": 1e400}', '{"comment": null}'),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET' as const, 'POST' as const, 'PUT' as const, 'DELETE' as const),
        paths,
        query,
        body,
        fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data'),
        async (method, path, q, payload, type) => {
          const r = await api.app.inject({
            method,
            url: `${path}${q}`,
            headers: { ...auth, 'content-type': type },
            ...(payload !== undefined && method !== 'GET' ? { payload } : {}),
          });
          expect(r.statusCode).toBeLessThan(500);
          if (r.statusCode >= 400) expectClean(r.body);
        },
      ),
      { numRuns: 400 },
    );
  });
});
