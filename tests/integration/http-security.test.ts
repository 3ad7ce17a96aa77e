// The HTTP API probed as an attacker on the plant network would, over real sockets against a running
// gateway with its simulated boiler: the site-file check must not read the gateway's environment nor
// stall its polling, a guesser's wrong tokens must not lock out the operators at the same address,
// every answer carries the browser security headers, refused requests cannot fill the audit journal,
// and an API open to the network without TLS is called out at start.
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { killGroup, startCommand } from '../helpers/cli.js';
import { canIsolateNetwork, inOwnNetwork } from '../helpers/netns.js';
import { freePort, makeTestPki } from '../helpers/processes.js';
import { httpSiteLines, testSite, testSiteYaml, writeTestSite } from '../helpers/site.js';

const silent = pino({ level: 'silent' });
const TOKENS = { viewer: 'viewer-token-0123456789abcdef', operator: 'operator-token-0123456789abcdef' };
const SECRET = 'pl4tform-s3cret-that-must-never-leave-the-gateway';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request from a chosen loopback address (127.0.0.2 is another client to the gateway). */
function request(
  port: number,
  path: string,
  o: { method?: string; headers?: Record<string, string>; body?: string; from?: string; agent?: http.Agent } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers: o.headers, localAddress: o.from ?? '127.0.0.1', agent: o.agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/** The headers of the first answer to a request whose body never ends (the live stream). */
function streamHeaders(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers }, (res) => {
      resolve({ status: res.statusCode!, headers: res.headers });
      res.destroy();
    });
    req.on('error', reject);
  });
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('HTTP API against an attacker on the network', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  const start = async (o: { httpExtra?: string[]; log?: pino.Logger } = {}): Promise<{ gw: Gateway; dataDir: string; port: number }> => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-http-sec-'));
    const port = await freePort();
    const gw = createGateway(
      testSite({
        port: await freePort(),
        dataDir,
        extra: httpSiteLines(port, TOKENS, o.httpExtra),
      }),
      o.log ?? silent,
    );
    cleanup.push(() => gw.stop());
    await gw.start();
    await expect.poll(() => gw.alarms.active().length, { timeout: 10_000 }).toBe(1);
    return { gw, dataDir, port };
  };

  it('puts the security headers on every answer: JSON, the dashboard, 401, 403, 404, 413, a malformed URL, the live stream', async () => {
    const { port } = await start();
    const answers: Array<[string, { status: number; headers: http.IncomingHttpHeaders }]> = [
      ['health', await request(port, '/health')],
      ['page', await request(port, '/')],
      ['script', await request(port, '/app.js')],
      ['style', await request(port, '/style.css')],
      ['equipment', await request(port, '/api/equipment', { headers: bearer(TOKENS.viewer) })],
      ['no token', await request(port, '/api/equipment')],
      [
        'viewer acknowledging',
        await request(port, '/api/alarms/B-07/pressure-present/acknowledge', {
          method: 'POST',
          headers: { ...bearer(TOKENS.viewer), 'content-type': 'application/json' },
          body: '{}',
        }),
      ],
      ['no such route', await request(port, '/nowhere')],
      [
        'too large',
        await request(port, '/api/alarms/B-07/pressure-present/shelve', {
          method: 'POST',
          headers: { ...bearer(TOKENS.operator), 'content-type': 'application/json' },
          body: JSON.stringify({ comment: 'x'.repeat(100_000) }),
        }),
      ],
      ['malformed URL', await request(port, '/%zz')],
      ['live stream', await streamHeaders(port, '/api/stream', bearer(TOKENS.viewer))],
    ];
    expect(answers.map(([what, a]) => [what, a.status])).toEqual([
      ['health', 200],
      ['page', 200],
      ['script', 200],
      ['style', 200],
      ['equipment', 200],
      ['no token', 401],
      ['viewer acknowledging', 403],
      ['no such route', 404],
      ['too large', 413],
      ['malformed URL', 400],
      ['live stream', 200],
    ]);
    for (const [what, { headers }] of answers) {
      const csp = String(headers['content-security-policy']);
      expect({ what, csp }).toEqual({ what, csp: expect.stringContaining("frame-ancestors 'none'") });
      for (const directive of ["script-src 'self'", "style-src 'self'", "base-uri 'none'", "form-action 'none'"])
        expect(csp).toContain(directive);
      expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
      expect({
        what,
        xfo: headers['x-frame-options'],
        nosniff: headers['x-content-type-options'],
        referrer: headers['referrer-policy'],
        coop: headers['cross-origin-opener-policy'],
        corp: headers['cross-origin-resource-policy'],
      }).toEqual({
        what,
        xfo: 'DENY',
        nosniff: 'nosniff',
        referrer: 'no-referrer',
        coop: 'same-origin',
        corp: 'same-origin',
      });
      // API answers are never cached; the dashboard's own files may be, if revalidated.
      expect({ what, cache: headers['cache-control'] }).toEqual({
        what,
        cache: ['page', 'script', 'style'].includes(what) ? 'no-cache' : 'no-store',
      });
    }
  });

  it("answers a guesser's wrong tokens with 429 after ten, and still lets a valid token from the same address in", async () => {
    const { port } = await start();
    const guesser = '127.0.0.2';
    const codes: number[] = [];
    for (let k = 0; k < 11; k++) codes.push((await request(port, '/api/alarms', { headers: bearer(`wrong-${k}`), from: guesser })).status);
    expect(codes).toEqual([...Array<number>(10).fill(401), 429]);
    const refused = await request(port, '/api/alarms', { headers: bearer('wrong-again'), from: guesser });
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('60');
    expect(refused.headers['x-frame-options']).toBe('DENY');

    // The operator behind the same NAT address: their token works, for reading and for acting.
    const list = await request(port, '/api/alarms', { headers: bearer(TOKENS.operator), from: guesser });
    expect(list.status).toBe(200);
    expect(JSON.parse(list.body)).toMatchObject([{ key: 'B-07/pressure-present' }]);
    const ack = await request(port, '/api/alarms/B-07/pressure-present/acknowledge', {
      method: 'POST',
      headers: { ...bearer(TOKENS.operator), 'content-type': 'application/json' },
      body: '{"comment":"seen"}',
      from: guesser,
    });
    expect(ack.status).toBe(200);
    // Still refused after that: a valid token does not reset the guesser's count.
    expect((await request(port, '/api/alarms', { headers: bearer('wrong-after'), from: guesser })).status).toBe(429);
    // Another address is not affected; a request without a token is not a guess.
    expect((await request(port, '/api/alarms', { headers: bearer('wrong-elsewhere') })).status).toBe(401);
    expect((await request(port, '/api/alarms', { from: guesser })).status).toBe(401);
  });

  it('records refused requests once per address per minute, with a bounded URL and the count of the others', async () => {
    const { gw, dataDir } = await start();
    const port = gw.http!.address().port;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    cleanup.push(async () => agent.destroy());
    // 1,000 requests with a 15 kB URL each (Node takes 16 KiB of request line and headers).
    const long = `/api/equipment?${'q'.repeat(15_000)}`;
    const statuses = new Map<number, number>();
    for (let batch = 0; batch < 1000; batch += 50) {
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, k) =>
          request(port, `${long}&n=${batch + k}`, { headers: bearer(`wrong-${batch + k}`), agent, from: '127.0.0.3' }),
        ),
      );
      for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
    }
    expect(Object.fromEntries(statuses)).toEqual({ 401: 10, 429: 990 });
    // And the same from a second address, without a token.
    for (let k = 0; k < 20; k++)
      expect((await request(port, `/api/alarms?${'r'.repeat(15_000)}`, { from: '127.0.0.4', agent })).status).toBe(401);

    const file = join(dataDir, 'audit.jsonl');
    const read = () =>
      readFileSync(file, 'utf8')
        .trimEnd()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as { who: string; action: string; target?: string; outcome: string; detail?: string });
    const during = read().filter((e) => e.action === 'login');
    expect(during.map((e) => e.who)).toEqual(['ip:127.0.0.3', 'ip:127.0.0.4']);
    for (const e of during) expect(e.target!.length).toBeLessThanOrEqual(250);
    expect(during[0]!.target).toMatch(/^\/api\/equipment\?q{185}\.\.\. \(15\d{3} characters\)$/);
    expect(readFileSync(file, 'utf8').length).toBeLessThan(4096);

    // At stop the counts since each address's line are written rather than lost.
    await gw.stop();
    const after = read().filter((e) => e.action === 'login');
    expect(after.slice(2).map((e) => [e.who, e.detail])).toEqual(
      expect.arrayContaining([
        ['ip:127.0.0.3', '999 more refused since the last line for this address'],
        ['ip:127.0.0.4', '19 more refused since the last line for this address'],
      ]),
    );
    expect(after).toHaveLength(4);
  });

  // Listening on 0.0.0.0 happens in a network namespace of its own (tests/helpers/netns.ts), with
  // `gateway run`: nothing is bound on this machine's interfaces.
  it.skipIf(!canIsolateNetwork)(
    'warns at start when the API listens beyond loopback without TLS, and not with TLS or on loopback',
    async () => {
      const warning = /beyond loopback without TLS/;
      const linesOf = async (httpExtra: string[]) => {
        const file = writeTestSite({
          port: await freePort(),
          extra: httpSiteLines(await freePort(), { viewer: TOKENS.viewer }, httpExtra),
        });
        const r = startCommand(...inOwnNetwork('node', ['--import', 'tsx', 'gateway/cli.ts', 'run', file]));
        cleanup.push(async () => killGroup(r));
        await expect.poll(() => r.output(), { timeout: 30_000 }).toContain('HTTP API listening');
        // The warning follows the listening line at once; the gateway's stop flushes its log.
        expect((await r.interrupt('SIGTERM')).code, r.output()).toBe(0);
        return r.output();
      };
      expect(await linesOf(['host: 0.0.0.0'])).toMatch(warning);
      const pki = makeTestPki(mkdtempSync(join(tmpdir(), 'gw-http-sec-pki-')));
      expect(await linesOf(['host: 0.0.0.0', `cert: ${pki.serverCert}`, `key: ${pki.serverKey}`])).not.toMatch(warning);
      expect(await linesOf([])).not.toMatch(warning);
    },
    90_000,
  );

  describe('the site-file check', () => {
    const saved = process.env.PLATFORM_SECRET;
    afterEach(() => {
      if (saved === undefined) delete process.env.PLATFORM_SECRET;
      else process.env.PLATFORM_SECRET = saved;
    });

    it("never reads the gateway's environment: a placeholder is reported as one, and no answer holds the secret", async () => {
      process.env.PLATFORM_SECRET = SECRET;
      const { port } = await start();
      const site = testSiteYaml({ dataDir: '/tmp/unused' });
      const variants: Array<[string, string]> = [
        ['as a value', site.replace('site: test-site', 'site: test-site, log_level: "${PLATFORM_SECRET}"')],
        ['as a value with a default', site.replace('site: test-site', 'site: test-site, log_level: "${PLATFORM_SECRET:-debug}"')],
        ['in a key', `${site}"\${PLATFORM_SECRET}": 1\n`],
        ['in an error path', site.replace('id: B-07', 'id: "${PLATFORM_SECRET}"').replace('connection: sim', 'connection: nowhere')],
        ['in a number', site.replace('poll_interval: 200ms', 'poll_interval: "${PLATFORM_SECRET}"')],
        [
          'in a URL',
          `${site}platform: { url: "https://\${PLATFORM_SECRET}@platform.example/ingest", secret: "\${PLATFORM_SECRET}", nonsense: 1 }\n`,
        ],
        ['in a rule', `${site}rules: [{ id: r, equipment: B-07, when: "drum_level > \${PLATFORM_SECRET}", level: red, message: m }]\n`],
      ];
      for (const [what, text] of variants) {
        const r = await request(port, '/api/config/check', {
          method: 'POST',
          headers: { ...bearer(TOKENS.viewer), 'content-type': 'application/yaml' },
          body: text,
        });
        expect({ what, status: r.status }).toEqual({ what, status: 200 });
        expect({ what, leaked: r.body.includes(SECRET) || r.body.includes(SECRET.slice(0, 12)) }).toEqual({ what, leaked: false });
        expect(JSON.parse(r.body)).toMatchObject({ valid: expect.any(Boolean), problems: expect.any(Array) });
      }
      // The placeholder as a log level is reported at that path, as a placeholder.
      const r = await request(port, '/api/config/check', {
        method: 'POST',
        headers: { ...bearer(TOKENS.viewer), 'content-type': 'application/yaml' },
        body: variants[0]![1],
      });
      const answer = JSON.parse(r.body) as { notes: Array<{ path: string; message: string }> };
      expect(answer.notes).toContainEqual(
        expect.objectContaining({ path: 'gateway.log_level', message: expect.stringContaining('${PLATFORM_SECRET}') }),
      );
    });

    it('cannot stall polling: six 1 MB nested-bracket files at once, then six long flat lists, leave the telemetry rate as it was', async () => {
      const { port } = await start();
      // Readings as the live stream delivers them, with when each batch came.
      const seen: Array<{ at: number; count: number }> = [];
      const controller = new AbortController();
      cleanup.push(async () => controller.abort());
      const res = await fetch(`http://127.0.0.1:${port}/api/stream?equipment=B-07`, {
        headers: bearer(TOKENS.viewer),
        signal: controller.signal,
      });
      void (async () => {
        const reader = res.body!.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
          if (done) return;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const data = /^event: readings\ndata: (.+)$/m.exec(buffer.slice(0, end))?.[1];
            buffer = buffer.slice(end + 2);
            if (data) seen.push({ at: Date.now(), count: (JSON.parse(data) as unknown[]).length });
          }
        }
      })();
      const rate = (from: number, to: number) =>
        (seen.filter((s) => s.at >= from && s.at < to).reduce((n, s) => n + s.count, 0) * 1000) / (to - from);
      const maxGap = (from: number, to: number) => {
        const times = [from, ...seen.filter((s) => s.at >= from && s.at < to).map((s) => s.at), to];
        return Math.max(...times.slice(1).map((t, k) => t - times[k]!));
      };
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, 3000));
      const t1 = Date.now();
      const before = rate(t0, t1);
      expect(before).toBeGreaterThan(10);

      // Six at once of each hostile shape: 1 MB of nested brackets (3.6 s of the parser each, before
      // it refused them as too deep), and 2.7 MB of a flat list of numbers (shallow enough for every
      // depth limit, and about 6 s of the parser: only the worker's time cap ends it).
      const depth = 512 * 1024;
      const hostile = {
        brackets: `a: ${'['.repeat(depth)}${']'.repeat(depth)}\n`,
        flatList: `a: [${Array.from({ length: 400_000 }, (_, k) => k).join(',')}]\n`,
      };
      for (const [what, body] of Object.entries(hostile)) {
        const t1 = Date.now();
        const answers = await Promise.all(
          Array.from({ length: 6 }, () =>
            request(port, '/api/config/check', {
              method: 'POST',
              headers: { ...bearer(TOKENS.viewer), 'content-type': 'application/yaml' },
              body,
            }),
          ),
        );
        // Measured from the first post until all are answered, and over at least 3 s.
        await new Promise((r) => setTimeout(r, Math.max(0, t1 + 3000 - Date.now())));
        const t2 = Date.now();
        const during = rate(t1, t2);
        const gap = maxGap(t1, t2);
        for (const a of answers) {
          expect({ what, status: a.status }).not.toEqual({ what, status: 500 });
          expect([200, 413, 422, 503]).toContain(a.status);
          if (a.status === 503) expect(Number(a.headers['retry-after'])).toBeGreaterThan(0);
          if (a.status === 200)
            expect(JSON.parse(a.body)).toMatchObject({
              valid: false,
              problems: [expect.objectContaining({ message: expect.any(String) })],
            });
        }
        // At most two run at once; the others are told to come back.
        expect(answers.filter((a) => a.status === 503).length).toBeGreaterThanOrEqual(4);
        // Polls every 200 ms: a file parsed on the event loop showed as gaps of seconds.
        expect({ what, before, during: during >= before / 3 ? 'as before' : during, gap: gap < 3000 ? 'short' : gap }).toEqual({
          what,
          before,
          during: 'as before',
          gap: 'short',
        });
      }
      controller.abort();
    }, 120_000);
  });
});
