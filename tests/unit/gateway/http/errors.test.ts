// Every error answer of the HTTP API carries a code: docs/errors.md documents exactly the codes the
// source can send, with their status, and answers of each kind (fastify's own included) carry theirs.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSite } from '../../../../config/load.js';
import type { AlarmService } from '../../../../gateway/alarms/service.js';
import { clientErrorHandler, HTTP_ERRORS } from '../../../../gateway/http/errors.js';
import { healthPlugin } from '../../../../gateway/http/plugins/health.js';
import { outboxPlugin } from '../../../../gateway/http/plugins/outbox.js';
import { createHttpApi, hashToken } from '../../../../gateway/http/server.js';
import { createMetrics } from '../../../../gateway/metrics.js';
import type { Pipeline } from '../../../../gateway/pipeline.js';
import { as, pluginApp } from './plugin-app.js';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');

/** The HTTP section of docs/errors.md: code and status of each row of its table. */
function documented(): Array<[string, number]> {
  const doc = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');
  const section = /^# HTTP API errors\n([\s\S]*?)(?=^# )/m.exec(doc)?.[1];
  expect(section, 'docs/errors.md has a "# HTTP API errors" section').toBeDefined();
  return [...section!.matchAll(/^\| `(GW_HTTP_[A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])]);
}

/** Every GW_HTTP_ code written in the API's sources. */
function inSources(dir = join(ROOT, 'gateway', 'http')): Set<string> {
  const codes = new Set<string>();
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !/\.(ts|js)$/.test(entry.name)) continue;
    for (const m of readFileSync(join(entry.parentPath, entry.name), 'utf8').matchAll(/GW_HTTP_[A-Z_]+/g)) codes.add(m[0]);
  }
  return codes;
}

describe('HTTP error codes', () => {
  it('docs/errors.md documents exactly the codes of gateway/http/errors.ts, each with its status', () => {
    expect(documented().sort()).toEqual(Object.entries(HTTP_ERRORS).sort());
  });

  it('the sources send no code that gateway/http/errors.ts does not define', () => {
    const codes = inSources();
    expect(codes.size).toBeGreaterThan(10);
    expect([...codes].filter((c) => !(c in HTTP_ERRORS))).toEqual([]);
  });

  it("answers fastify's own errors with a code: no route, a URL that does not decode, a body not JSON, of another type, too large", async () => {
    const t = await pluginApp((app) => app.register(async (api) => void api.post('/echo', { bodyLimit: 100 }, async (req) => req.body)));
    const cases = [
      [{ url: '/nowhere?x=1' }, 404, { error: 'no route GET /nowhere', code: 'GW_HTTP_NO_ROUTE' }],
      [{ url: '/echo/%zz' }, 400, { code: 'GW_HTTP_BAD_URL' }],
      [
        { method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: '{"a": ' },
        400,
        { code: 'GW_HTTP_BAD_JSON' },
      ],
      [
        { method: 'POST', url: '/echo', headers: { 'content-type': 'application/xml' }, payload: '<a/>' },
        415,
        { code: 'GW_HTTP_UNSUPPORTED_MEDIA_TYPE' },
      ],
      [{ method: 'POST', url: '/echo', payload: { a: 'x'.repeat(200) } }, 413, { code: 'GW_HTTP_BODY_TOO_LARGE' }],
    ] as const;
    for (const [request, status, body] of cases) {
      const r = await t.app.inject(request as never);
      expect([request.url, r.statusCode]).toEqual([request.url, status]);
      expect(r.json()).toMatchObject({ ...body, error: expect.any(String) });
    }
    await t.app.close();
  });

  it('answers no platform with 404 GW_HTTP_NO_PLATFORM, and a component not ready with 503 GW_HTTP_NOT_READY', async () => {
    const t = await pluginApp(async (app) => {
      await app.register(outboxPlugin, { outbox: () => undefined, audit: { append: () => {} } });
      await app.register(healthPlugin, {
        metrics: createMetrics(),
        ready: () => ({ mqtt: { ok: false, detail: 'connecting' }, http: { ok: true } }),
      });
    });
    const outbox = await t.app.inject({ url: '/api/outbox', headers: as('viewer') });
    expect([outbox.statusCode, outbox.json()]).toEqual([404, { error: 'this site forwards to no platform', code: 'GW_HTTP_NO_PLATFORM' }]);
    const ready = await t.app.inject({ url: '/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({
      ready: false,
      components: { mqtt: { ok: false, detail: 'connecting' }, http: { ok: true } },
      error: 'not ready: mqtt',
      code: 'GW_HTTP_NOT_READY',
    });
    await t.app.close();
  });

  it.each([
    ['ERR_HTTP_REQUEST_TIMEOUT', 408, 'GW_HTTP_REQUEST_TIMEOUT'],
    ['HPE_HEADER_OVERFLOW', 431, 'GW_HTTP_HEADERS_TOO_LARGE'],
    ['HPE_INVALID_METHOD', 400, 'GW_HTTP_BAD_REQUEST'],
  ])('answers what Node could not parse (%s) with %i %s on the socket, then closes it', (errCode, status, code) => {
    let written = '';
    let destroyed = false;
    const socket = {
      destroyed: false,
      writable: true,
      write: (s: string) => void (written += s),
      destroy: () => void (destroyed = true),
    } as unknown as Socket;
    clientErrorHandler(Object.assign(new Error('x'), { code: errCode }), socket);
    expect(written).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
    const [, body] = written.split('\r\n\r\n');
    expect(JSON.parse(body!)).toEqual({ error: expect.any(String), code });
    expect(written).toMatch(new RegExp(`Content-Length: ${Buffer.byteLength(body!)}\r\n`));
    expect(destroyed).toBe(true);
  });

  describe('the OpenAPI document', () => {
    const TOKEN = 'viewer-token-0123456789';
    const site = parseSite(
      `version: 1
gateway: { id: gw-1, site: s1 }
http: { tokens: [{ name: v, role: viewer, hash: "${hashToken(TOKEN)}" }] }
connections: [{ id: sim, type: sim }]
equipment:
  - { id: B-1, category: boiler, connection: sim, model: steam-boiler, points: [{ name: drum_level }] }
`,
      { env: {} },
    );
    const api = createHttpApi({
      config: site,
      http: site.http!,
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
      pipeline: { onBatch: () => {}, status: () => undefined } as unknown as Pipeline,
      alarms: { onEvents: () => {} } as unknown as AlarmService,
      outbox: () => undefined,
      ready: () => ({}),
      reportsOnChange: () => false,
      dataDir: mkdtempSync(join(tmpdir(), 'gw-http-errors-')),
    });
    afterAll(() => api.stop());

    it("describes each error answer with its code, and each guarded route's 401, 403 and 429", async () => {
      const doc = (await api.app.inject({ url: '/api/openapi.json' })).json() as {
        paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>>;
      };
      const codeOf = (path: string, method: string, status: string) =>
        (doc.paths[path]![method]!.responses[status]!.content!['application/json']!.schema as { properties: Record<string, unknown> })
          .properties.code;
      expect(codeOf('/api/equipment/{id}', 'get', '404')).toMatchObject({
        type: 'string',
        enum: expect.arrayContaining(['GW_HTTP_NOT_FOUND']),
      });
      expect(codeOf('/api/config/check', 'post', '503')).toMatchObject({ type: 'string' });
      for (const status of ['401', '403', '429']) expect(codeOf('/api/alarms', 'get', status)).toMatchObject({ type: 'string' });
      expect(doc.paths['/health']!.get!.responses['401']).toBeUndefined();
    });
  });
});
