// The platform link against peers that misbehave, over real sockets. The reference receiver
// (`gateway platform-inbox`) against senders: bodies too big (refused before they are read), bodies
// that trickle, signed bodies of the wrong shape, random signed JSON, absurd seq jumps, a damaged out
// file; each gets a clear 4xx or is cut off, and the receiver goes on. The gateway's forwarder
// against a platform that drips or floods its answer: it gives up within its timeout, reads 64 KiB
// at most.
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { headersFor, INCIDENT_SCHEMA, type IncidentBody } from '../../gateway/platform/contract.js';
import { createPoster } from '../../gateway/platform/forwarder.js';
import { createPlatformInbox, type InboxOptions, type PlatformInbox } from '../../gateway/platform/inbox.js';
import { freePort } from '../helpers/processes.js';

const SECRET = 'inbox-secret-0123456789';

const incident = (seq: number, over: Partial<IncidentBody> = {}): IncidentBody => ({
  schema: INCIDENT_SCHEMA,
  eventId: `ev-${seq}`,
  incidentId: 'inc-1',
  type: 'raised',
  level: 'red',
  gatewayId: 'gw-1',
  site: 's1',
  equipment: { id: 'B-1', category: 'boiler' },
  rule: { id: 'r', message: 'Drum level low' },
  occurredAt: new Date().toISOString(),
  seq,
  ...over,
});

/** POSTs a body signed with the secret; the status and answer. */
function post(
  port: number,
  body: string,
  key?: string,
  headers: Record<string, string> = headersFor(SECRET, 'gw-1', body, key),
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/', headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('platform inbox limits', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });
  const start = async (o: Partial<InboxOptions> = {}): Promise<{ inbox: PlatformInbox; port: number; lines: string[] }> => {
    const port = await freePort();
    const lines: string[] = [];
    const inbox = createPlatformInbox({ port, secret: SECRET, print: (l) => lines.push(l), ...o });
    await inbox.start();
    cleanup.push(() => inbox.stop());
    return { inbox, port, lines };
  };

  it('refuses a body over 1 MiB with 413 before reading it, and one without a signature with 401 before reading it', async () => {
    const { port, inbox } = await start();
    for (const [headers, status] of [
      [{ ...headersFor(SECRET, 'gw-1', 'x'), 'Content-Length': String(100 * 1024 * 1024) }, 413],
      [{ 'Content-Type': 'application/json', 'Content-Length': String(100 * 1024 * 1024) }, 401],
    ] as const) {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => {});
      let answer = '';
      socket.on('data', (c: Buffer) => (answer += c.toString()));
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.write(
        `POST / HTTP/1.1\r\nHost: x\r\n${Object.entries(headers)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('')}\r\n`,
      );
      // The body keeps coming; the receiver has answered and closed.
      const piece = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      const pump = () => {
        while (!socket.destroyed && sent < 100 * 1024 * 1024 && socket.write(piece)) sent += piece.length;
        if (!socket.destroyed) socket.once('drain', pump);
      };
      pump();
      await closed;
      expect(answer).toMatch(new RegExp(`^HTTP/1.1 ${status}`));
      expect(sent).toBeLessThan(32 * 1024 * 1024);
    }
    expect(inbox.stats().refused).toBe(2);
    expect((await post(port, JSON.stringify(incident(1)), 'ev-1')).status).toBe(200);
  });

  it('refuses a chunked body once it passes 1 MiB, and cuts off a body that trickles', async () => {
    const { port } = await start({ limits: { requestTimeout: 1000 } });
    const big = await new Promise<number>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: headersFor(SECRET, 'gw-1', '') }, (res) =>
        resolve(res.statusCode!),
      );
      req.on('error', () => {});
      const piece = 'a'.repeat(64 * 1024);
      const pump = () => {
        while (!req.destroyed && req.write(piece));
        if (!req.destroyed) req.once('drain', pump);
      };
      pump();
    });
    expect(big).toBe(413);

    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    const t0 = Date.now();
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    const body = JSON.stringify(incident(1));
    socket.write(
      `POST / HTTP/1.1\r\nHost: x\r\n${Object.entries(headersFor(SECRET, 'gw-1', body, 'ev-1'))
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('')}Content-Length: ${body.length}\r\n\r\n`,
    );
    let k = 0;
    const timer = setInterval(() => (socket.destroyed || k >= body.length ? clearInterval(timer) : socket.write(body[k++]!)), 100);
    cleanup.push(async () => clearInterval(timer));
    expect((await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(Infinity), 5000))])) - t0).toBeLessThan(3000);
  });

  it('answers signed bodies of the wrong shape with 400 and what is wrong, and stays up', async () => {
    const { port, inbox } = await start();
    const cases: Array<[unknown, RegExp]> = [
      [null, /^schema: expected gw\.incident\.v1/],
      [[1, 2], /^schema:/],
      [{ schema: 'gw.other.v9' }, /^schema: expected .* got "gw.other.v9"/],
      [{ ...incident(1), equipment: undefined }, /^equipment: /],
      [{ ...incident(1), level: 'purple' }, /^level: /],
      [{ ...incident(1), seq: -3 }, /^seq: /],
      [{ ...incident(1), occurredAt: 'yesterday' }, /^occurredAt: expected an ISO 8601 time/],
      [{ ...incident(1), rule: { id: 'r', message: 'm'.repeat(5000) } }, /^rule\.message: /],
      [{ schema: 'gw.heartbeat.v1', gatewayId: 'gw-1' }, /^site: /],
    ];
    for (const [body, problem] of cases) {
      const text = JSON.stringify(body);
      const r = await post(port, text, (body as { eventId?: string } | null)?.eventId);
      expect(r.status, text.slice(0, 80)).toBe(400);
      expect((JSON.parse(r.body) as { error: string }).error).toMatch(problem);
    }
    expect(inbox.stats().refused).toBe(cases.length);
    expect((await post(port, JSON.stringify(incident(1)), 'ev-1')).status).toBe(200);
  });

  it('reports a seq jump of 10^15 as one gap, at once', async () => {
    const { port, inbox, lines } = await start();
    expect((await post(port, JSON.stringify(incident(1)), 'ev-1')).status).toBe(200);
    const t0 = Date.now();
    expect((await post(port, JSON.stringify(incident(1e15)), 'ev-1000000000000000')).status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(inbox.stats().gaps).toBe(1);
    expect(lines).toContain('GAP: seq 2..999999999999999 missing from gw-1');
  });

  it('skips the damaged lines of its out file, and still knows the good ones as seen', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'gw-inbox-out-')), 'incidents.jsonl');
    writeFileSync(out, `${JSON.stringify(incident(1))}\n{"schema":"gw.incident.v1","eventId":"cut sho\n`);
    appendFileSync(out, `null\n${JSON.stringify({ ...incident(2), level: 'purple' })}\n${JSON.stringify(incident(3))}\n`);
    const { port, inbox, lines } = await start({ out });
    expect(inbox.stats().skippedLines).toBe(3);
    expect(lines.filter((l) => l.startsWith('SKIPPED '))).toHaveLength(3);
    expect(JSON.parse((await post(port, JSON.stringify(incident(3)), 'ev-3')).body)).toEqual({ status: 'duplicate' });
  });

  it('never answers random signed JSON with a 5xx, and keeps taking good bodies', async () => {
    const { port } = await start();
    const valid = JSON.parse(JSON.stringify(incident(5))) as Record<string, unknown>;
    const bodies = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }),
      fc.tuple(fc.constantFrom(...Object.keys(valid)), fc.jsonValue({ maxDepth: 2 })).map(([k, v]) => ({ ...valid, [k]: v })),
      fc.record({
        schema: fc.constantFrom('gw.incident.v1', 'gw.result.v1', 'gw.heartbeat.v1'),
        seq: fc.oneof(fc.integer(), fc.double()),
        gatewayId: fc.string(),
      }),
    );
    await fc.assert(
      fc.asyncProperty(bodies, async (b) => {
        const text = JSON.stringify(b) ?? 'null';
        const key = (b as { eventId?: unknown; resultId?: unknown } | null)?.eventId ?? (b as { resultId?: unknown } | null)?.resultId;
        const r = await post(port, text, typeof key === 'string' ? key : undefined);
        expect(r.status).toBeLessThan(500);
      }),
      { numRuns: 300 },
    );
    expect((await post(port, JSON.stringify(incident(6)), 'ev-6')).status).toBe(200);
  });

  describe('forwarder against a platform that misbehaves', () => {
    /** A platform that answers 200 at once, then sends its body as `answer` says. */
    const platform = async (answer: (res: http.ServerResponse) => void) => {
      const sockets = new Set<Socket>();
      const closed: number[] = [];
      const server = http.createServer((req, res) => {
        req.resume();
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        answer(res);
      });
      server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => closed.push(Date.now()));
      });
      const port = await freePort();
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      cleanup.push(
        () =>
          new Promise((resolve) => {
            for (const s of sockets) s.destroy();
            server.close(resolve);
          }),
      );
      return { url: `http://127.0.0.1:${port}/`, closed };
    };

    it('gives up on an answer that drips, within the timeout', async () => {
      const p = await platform((res) => {
        const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : res.write('.')), 100);
      });
      const post = createPoster({ url: p.url, timeout: 1000 });
      const t0 = Date.now();
      const r = await post('{}', {});
      expect(Date.now() - t0).toBeLessThan(1500);
      expect(r.error).toMatch(/no complete answer within 1000 ms/);
    });

    it('reads 64 KiB of an endless answer, keeps 2000 characters, and closes the connection', async () => {
      const p = await platform((res) => {
        const piece = 'y'.repeat(64 * 1024);
        const pump = () => {
          while (!res.destroyed && res.write(piece));
          if (!res.destroyed) res.once('drain', pump);
        };
        pump();
      });
      const post = createPoster({ url: p.url, timeout: 5000 });
      const t0 = Date.now();
      const r = await post('{}', {});
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(r).toMatchObject({ status: 200, body: 'y'.repeat(2000) });
      await expect.poll(() => p.closed.length, { timeout: 2000 }).toBe(1);
    });
  });
});
