// The HTTP API of a running gateway: health and readiness, roles (401, 403), the failed-login limit,
// alarm handling recorded in the tamper-evident audit journal, SSE over a real socket, OpenAPI.
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyJournal } from '../../gateway/http/audit.js';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { gatewaySync } from '../helpers/cli.js';
import { freePort, makeTestPki } from '../helpers/processes.js';
import https from 'node:https';
import { connect } from 'node:net';
import { httpSiteLines, testSite } from '../helpers/site.js';

const silent = pino({ level: 'silent' });
const TOKENS = {
  viewer: 'viewer-token-0123456789abcdef',
  operator: 'operator-token-0123456789abcdef',
  admin: 'admin-token-0123456789abcdef',
};

describe('HTTP API', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  const start = async (): Promise<{ gw: Gateway; dataDir: string; url: string }> => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-http-'));
    const port = await freePort();
    const gw = createGateway(
      testSite({
        port: await freePort(),
        dataDir,
        extra: httpSiteLines(port, TOKENS),
      }),
      silent,
    );
    cleanup.push(() => gw.stop());
    await gw.start();
    // The first poll: the boiler is online and its alarm raised.
    await expect.poll(() => gw.alarms.active().length, { timeout: 5000 }).toBe(1);
    return { gw, dataDir, url: `http://127.0.0.1:${port}` };
  };
  const as = (role: keyof typeof TOKENS) => ({ authorization: `Bearer ${TOKENS[role]}` });

  it('answers health and readiness without a token, everything else only with one of the right role', async () => {
    const { gw } = await start();
    const app = gw.http!.app;
    expect((await app.inject({ url: '/health' })).json()).toEqual({ status: 'ok' });
    const ready = await app.inject({ url: '/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ ready: true, components: { mqtt: { ok: true } } });

    const none = await app.inject({ url: '/api/equipment' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect((await app.inject({ url: '/api/equipment', headers: { authorization: 'Bearer nope' } })).statusCode).toBe(401);
    const list = await app.inject({ url: '/api/equipment', headers: as('viewer') });
    expect(list.json()).toEqual([
      { id: 'B-07', category: 'boiler', code: '10003101012019000117', status: 'online', poll_interval: 200, on_change: false },
    ]);
    const detail = (await app.inject({ url: '/api/equipment/B-07', headers: as('viewer') })).json() as {
      points: Array<{ name: string; value: unknown; quality: string; ts: number }>;
    };
    expect(detail.points.find((p) => p.name === 'steam_pressure')).toMatchObject({
      quality: 'good',
      value: expect.any(Number),
      ts: expect.any(Number),
    });
    expect((await app.inject({ url: '/api/equipment/X-1', headers: as('viewer') })).statusCode).toBe(404);
    // The trend: what memory holds, and a header when it was asked for more than that (no InfluxDB here).
    const trend = await app.inject({ url: '/api/equipment/B-07/history?point=steam_pressure', headers: as('viewer') });
    expect(trend.headers['x-history-source']).toBe('memory');
    expect(trend.json()).toContainEqual({ ts: expect.any(Number), value: expect.any(Number), quality: 'good' });
    const further = await app.inject({
      url: `/api/equipment/B-07/history?point=steam_pressure&since=${Date.now() - 600_000}`,
      headers: as('viewer'),
    });
    expect(further.headers['x-history-incomplete']).toMatch(/^memory holds from \d+; no InfluxDB$/);
    expect((await app.inject({ url: '/api/equipment/B-07/history?point=nope', headers: as('viewer') })).statusCode).toBe(404);
    expect(
      (await app.inject({ url: '/api/equipment/B-07/history?point=steam_pressure&since=1e400', headers: as('viewer') })).statusCode,
    ).toBe(400);

    const metrics = await app.inject({ url: '/metrics', headers: as('viewer') });
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(metrics.body).toMatch(/gateway_alarm_events_total\{type="raised",level="orange"\} 1/);
    expect(metrics.body).toMatch(/gateway_readings_total\{equipment="B-07",quality="good"\} \d+/);
    expect(metrics.body).toMatch(/gateway_nodejs_eventloop_lag_p99_seconds/);

    // A viewer may not acknowledge (403); an operator may; twice is a conflict (409).
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/api/alarms/B-07/pressure-present/acknowledge',
          headers: as('viewer'),
          payload: { comment: 'x' },
        })
      ).statusCode,
    ).toBe(403);
    const ack = await app.inject({
      method: 'POST',
      url: '/api/alarms/B-07/pressure-present/acknowledge',
      headers: as('operator'),
      payload: { comment: 'seen in the boiler house' },
    });
    expect(ack.statusCode).toBe(200);
    expect(ack.json()).toMatchObject({
      events: [{ type: 'acknowledged', state: 'active_acknowledged', by: 'operator-user', comment: 'seen in the boiler house' }],
    });
    expect(
      (await app.inject({ method: 'POST', url: '/api/alarms/B-07/pressure-present/acknowledge', headers: as('operator'), payload: {} }))
        .statusCode,
    ).toBe(409);
    const shelve = await app.inject({
      method: 'POST',
      url: '/api/alarms/B-07/pressure-present/shelve',
      headers: as('operator'),
      payload: { comment: 'gauge swap', duration_minutes: 30 },
    });
    expect(shelve.json()).toMatchObject({ events: [{ type: 'shelved', state: 'shelved' }] });
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/api/alarms/B-07/pressure-present/shelve',
          headers: as('operator'),
          payload: { duration_minutes: 'soon' },
        })
      ).statusCode,
    ).toBe(400);
    expect(
      (
        await app.inject({ method: 'POST', url: '/api/alarms/B-07/pressure-present/unshelve', headers: as('operator'), payload: {} })
      ).json(),
    ).toMatchObject({ events: [{ type: 'unshelved' }] });
    expect((await app.inject({ method: 'POST', url: '/api/outbox/retry', headers: as('operator'), payload: {} })).statusCode).toBe(403);
    const history = (await app.inject({ url: '/api/alarms/history?equipment=B-07', headers: as('viewer') })).json() as Array<{
      type: string;
    }>;
    expect(history.map((e) => e.type)).toEqual(['unshelved', 'shelved', 'acknowledged', 'raised']);

    const check = await app.inject({
      method: 'POST',
      url: '/api/config/check',
      headers: { ...as('viewer'), 'content-type': 'application/yaml' },
      payload: 'version: 3\n',
    });
    expect(check.json()).toMatchObject({ valid: false, problems: expect.arrayContaining([expect.objectContaining({ path: 'version' })]) });
    const openapi = (await app.inject({ url: '/api/openapi.json' })).json() as { openapi: string; paths: Record<string, unknown> };
    expect(openapi.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining([
        '/health',
        '/ready',
        '/metrics',
        '/api/equipment',
        '/api/equipment/{id}',
        '/api/alarms/{equipment}/{rule}/acknowledge',
        '/api/stream',
        '/api/outbox',
      ]),
    );
  });

  it('takes an alarm out of service and back: admin only, a comment required, audited, 409 when it already is', async () => {
    const { gw, dataDir } = await start();
    const app = gw.http!.app;
    const post = (role: keyof typeof TOKENS, action: string, payload: unknown) =>
      app.inject({ method: 'POST', url: `/api/alarms/B-07/pressure-present/${action}`, headers: as(role), payload: payload as object });
    expect((await post('viewer', 'out-of-service', { comment: 'x' })).statusCode).toBe(403);
    expect((await post('operator', 'out-of-service', { comment: 'x' })).statusCode).toBe(403);
    expect((await post('admin', 'out-of-service', {})).statusCode).toBe(400);
    expect((await post('admin', 'out-of-service', { comment: ' \t' })).statusCode).toBe(400);
    expect(gw.alarms.active()).toMatchObject([{ state: 'active_unacknowledged' }]);
    const out = await post('admin', 'out-of-service', { comment: 'gauge replaced' });
    expect(out.statusCode).toBe(200);
    // It ends the open incident: nobody can acknowledge an alarm out of service.
    expect(out.json()).toMatchObject({
      events: [
        { type: 'out_of_service', state: 'out_of_service', by: 'admin-user', comment: 'gauge replaced' },
        { type: 'closed', comment: 'after out_of_service' },
      ],
    });
    expect((await post('admin', 'out-of-service', { comment: 'again' })).json()).toEqual({
      error: 'B-07/pressure-present is already out of service',
      code: 'GW_HTTP_CONFLICT',
    });
    expect((await post('operator', 'acknowledge', {})).statusCode).toBe(409);
    expect((await post('operator', 'in-service', {})).statusCode).toBe(403);
    expect((await post('admin', 'in-service', {})).json()).toMatchObject({
      events: [{ type: 'in_service', state: 'normal', by: 'admin-user' }],
    });
    expect((await post('admin', 'in-service', {})).statusCode).toBe(409);
    // Its condition still holds: the next poll raises a new incident.
    await expect.poll(() => gw.alarms.active(), { timeout: 5000 }).toMatchObject([{ state: 'active_unacknowledged' }]);

    const lines = readFileSync(join(dataDir, 'audit.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map(({ who, action, target, outcome, detail }) => ({ who, action, target, outcome, detail }))).toEqual([
      { who: 'admin-user', action: 'out-of-service', target: 'B-07/pressure-present', outcome: 'done', detail: 'gauge replaced' },
      {
        who: 'admin-user',
        action: 'out-of-service',
        target: 'B-07/pressure-present',
        outcome: 'refused: B-07/pressure-present is already out of service',
        detail: undefined,
      },
      {
        who: 'operator-user',
        action: 'acknowledge',
        target: 'B-07/pressure-present',
        outcome: 'refused: B-07/pressure-present is out of service',
        detail: undefined,
      },
      { who: 'admin-user', action: 'in-service', target: 'B-07/pressure-present', outcome: 'done', detail: undefined },
      {
        who: 'admin-user',
        action: 'in-service',
        target: 'B-07/pressure-present',
        outcome: 'refused: B-07/pressure-present is not out of service',
        detail: undefined,
      },
    ]);
    expect(verifyJournal(join(dataDir, 'audit.jsonl'))).toEqual({ ok: true, entries: 5 });
    const openapi = (await app.inject({ url: '/api/openapi.json' })).json() as { paths: Record<string, unknown> };
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining(['/api/alarms/{equipment}/{rule}/out-of-service', '/api/alarms/{equipment}/{rule}/in-service']),
    );
  });

  it('limits failed logins per address, and journals every action and failure in a chain that shows tampering', async () => {
    const { gw, dataDir } = await start();
    const app = gw.http!.app;
    await app.inject({
      method: 'POST',
      url: '/api/alarms/B-07/pressure-present/acknowledge',
      headers: as('operator'),
      payload: { comment: 'first' },
    });
    const codes = [];
    for (let k = 0; k < 11; k++)
      codes.push((await app.inject({ url: '/api/alarms', headers: { authorization: `Bearer wrong-${k}` } })).statusCode);
    expect(codes.slice(0, 10).every((c) => c === 401)).toBe(true);
    expect(codes[10]).toBe(429);
    // A good token from the same address is not held back by someone else's guesses.
    expect((await app.inject({ url: '/api/alarms', headers: as('viewer') })).statusCode).toBe(200);

    const file = join(dataDir, 'audit.jsonl');
    const lines = readFileSync(file, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; who: string; outcome: string });
    expect(lines[0]).toMatchObject({ action: 'acknowledge', who: 'operator-user', outcome: 'done' });
    // Refused requests: one line per address per minute; the others are counted for the next line.
    expect(lines.filter((l) => l.action === 'login')).toHaveLength(1);
    const ok = gatewaySync(['audit', 'verify', '--file', file]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('2 entries, the chain is intact');

    // Someone edits the acknowledgement's comment-free outcome: the chain breaks at that line.
    const raw = readFileSync(file, 'utf8').split('\n');
    raw[0] = raw[0]!.replace('"outcome":"done"', '"outcome":"refused"');
    writeFileSync(file, raw.join('\n'));
    expect(verifyJournal(file)).toMatchObject({ ok: false, line: 1, reason: expect.stringMatching(/edited/) });
    const bad = gatewaySync(['audit', 'verify', '--file', file]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('line 1');
  });

  it('serves HTTPS with the certificate and key of the site file', async () => {
    const pkiDir = mkdtempSync(join(tmpdir(), 'gw-http-pki-'));
    const pki = makeTestPki(pkiDir);
    const port = await freePort();
    const gw = createGateway(
      testSite({ port: await freePort(), extra: ['http:', `  port: ${port}`, `  cert: ${pki.serverCert}`, `  key: ${pki.serverKey}`] }),
      silent,
    );
    cleanup.push(() => gw.stop());
    await gw.start();
    const get = (ca?: Buffer) =>
      new Promise<{ status?: number; body: string }>((resolve, reject) => {
        https
          .get(`https://127.0.0.1:${port}/health`, ca ? { ca } : {}, (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode, body }));
          })
          .on('error', reject);
      });
    expect(await get(readFileSync(pki.ca))).toEqual({ status: 200, body: '{"status":"ok"}' });
    await expect(get()).rejects.toThrow(/self-signed|unable to verify/);
  });

  it('streams readings and alarm events as Server-Sent Events over a real socket, within one poll', async () => {
    const { url } = await start();
    const controller = new AbortController();
    cleanup.push(async () => controller.abort());
    const t0 = Date.now();
    const res = await fetch(`${url}/api/stream?equipment=B-07`, { headers: as('viewer'), signal: controller.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('event: readings')) text += new TextDecoder().decode((await reader.read()).value);
    expect(Date.now() - t0).toBeLessThan(1000);
    const data = /event: readings\ndata: (.+)\n/.exec(text)![1]!;
    const streamed = JSON.parse(data) as Array<{ equipment: string }>;
    expect(streamed.length).toBeGreaterThan(0);
    expect(streamed.filter((r) => r.equipment !== 'B-07')).toEqual([]);
    // An alarm event arrives on the stream as it happens: the acknowledgement of the raised alarm.
    const ack = await fetch(`${url}/api/alarms/B-07/pressure-present/acknowledge`, {
      method: 'POST',
      headers: { ...as('operator'), 'content-type': 'application/json' },
      body: JSON.stringify({ comment: 'seen' }),
    });
    expect(ack.status).toBe(200);
    while (!/event: alarm\ndata: .+\n/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
    const event = JSON.parse(/event: alarm\ndata: (.+)\n/.exec(text)![1]!) as { type: string; equipment: string; by: string };
    expect(event).toMatchObject({ type: 'acknowledged', equipment: 'B-07', by: 'operator-user' });
    controller.abort();
  });

  it('stops in time although a client holds a request half sent and a live stream open', async () => {
    const { gw, url } = await start();
    const { port } = new URL(url);
    const stream = connect(Number(port), '127.0.0.1');
    stream.write(`GET /api/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKENS.viewer}\r\n\r\n`);
    const half = connect(Number(port), '127.0.0.1');
    half.write(
      `POST /api/alarms/B-07/pressure-present/acknowledge HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKENS.operator}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"comment":`,
    );
    for (const s of [stream, half]) {
      s.on('error', () => undefined);
      cleanup.push(async () => void s.destroy());
    }
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    await gw.http!.stop();
    // Without cutting them the API would wait for these clients for request_timeout (30 s); the
    // gateway gives each component 1.5 s to stop, and the API cuts what is still open at 0.75 s.
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
