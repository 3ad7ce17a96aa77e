// The HTTP API over real sockets against clients that hold on: headers or a body dripped a byte at a
// time, more connections than allowed, a live-stream client that never reads. Each is cut off
// within its bound; the API keeps answering everyone else.
import { connect, type Socket } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { hashToken } from '../../gateway/http/server.js';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { freePort } from '../helpers/processes.js';
import { testSite } from '../helpers/site.js';

const silent = pino({ level: 'silent' });
const TOKEN = 'viewer-token-0123456789abcdef';

/** A socket to the API that records when the server closed it, how much came, and the start of it. */
async function open(port: number): Promise<{ socket: Socket; closed: Promise<number>; received: () => string; bytes: () => number }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let received = '';
  let bytes = 0;
  socket.on('data', (c: Buffer) => {
    bytes += c.length;
    if (received.length < 4096) received += c.toString('latin1');
  });
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  return { socket, closed, received: () => received, bytes: () => bytes };
}

/** The time a close came, or Infinity when it did not come within `ms`. */
const within = (closed: Promise<number>, ms: number) =>
  Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(Infinity), ms))]);

/** Writes the text a byte at a time, one every `ms`, until the socket closes. */
function drip(socket: Socket, text: string, ms: number): void {
  let k = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || k >= text.length) return clearInterval(timer);
    socket.write(text[k++]!);
  }, ms);
}

describe('HTTP API limits', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  const start = async (httpExtra: string[] = []): Promise<{ gw: Gateway; port: number }> => {
    const port = await freePort();
    const gw = createGateway(
      testSite({
        port: await freePort(),
        dataDir: mkdtempSync(join(tmpdir(), 'gw-http-limits-')),
        extra: [
          'http:',
          `  port: ${port}`,
          '  request_timeout: 1s',
          ...httpExtra.map((l) => `  ${l}`),
          '  tokens:',
          `    - { name: viewer, role: viewer, hash: "${hashToken(TOKEN)}" }`,
        ],
      }),
      silent,
    );
    cleanup.push(() => gw.stop());
    await gw.start();
    return { gw, port };
  };
  const health = async (port: number) => (await fetch(`http://127.0.0.1:${port}/health`)).status;

  it('closes a connection whose headers or body drip in slower than request_timeout, and keeps serving', async () => {
    const { port } = await start();
    const headers = await open(port);
    const body = await open(port);
    const t0 = Date.now();
    drip(headers.socket, `GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(100)}\r\n\r\n`, 100);
    body.socket.write(
      `POST /api/config/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: text/plain\r\nContent-Length: 10000\r\n\r\n`,
    );
    drip(body.socket, 'v'.repeat(10_000), 100);
    expect(await health(port)).toBe(200);
    const [h, b] = await Promise.all([within(headers.closed, 5000), within(body.closed, 5000)]);
    // request_timeout 1 s, checked every 250 ms.
    expect(h - t0).toBeLessThan(2500);
    expect(b - t0).toBeLessThan(2500);
    expect(body.received()).toMatch(/^HTTP\/1.1 408/);
    expect(await health(port)).toBe(200);
  });

  it('closes connections beyond max_connections at once', async () => {
    const { port } = await start(['max_connections: 3']);
    const held = await Promise.all([open(port), open(port), open(port)]);
    cleanup.push(async () => held.forEach((h) => h.socket.destroy()));
    const extra = await open(port);
    const t0 = Date.now();
    expect((await within(extra.closed, 2000)) - t0).toBeLessThan(500);
    expect(extra.received()).toBe('');
    held.forEach((h) => h.socket.destroy());
    await Promise.all(held.map((h) => h.closed));
    await expect.poll(() => health(port), { timeout: 2000 }).toBe(200);
  });

  it('disconnects a live-stream client that does not read, and keeps streaming to one that does', async () => {
    const { gw, port } = await start();
    const request = `GET /api/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`;
    const stalled = await open(port);
    stalled.socket.write(request);
    await expect.poll(() => stalled.received(), { timeout: 2000 }).toMatch(/: connected/);
    stalled.socket.pause();
    const reading = await open(port);
    reading.socket.write(request);
    cleanup.push(
      async () => reading.socket.destroy(),
      async () => stalled.socket.destroy(),
    );
    await expect.poll(() => reading.received(), { timeout: 2000 }).toMatch(/: connected/);

    // Batches of 100 readings with 10 kB of text each (1 MB a batch), 30 of them while it reads nothing.
    const rss = process.memoryUsage().rss;
    const text = 'x'.repeat(10_000);
    for (let n = 0; n < 30; n++) {
      gw.pipeline.push(
        Array.from({ length: 100 }, (_, k) => ({
          equipment: 'B-07',
          point: 'drum_level',
          value: `${text}${k}`,
          quality: 'good' as const,
          ts: Date.now(),
        })),
      );
      await new Promise((r) => setTimeout(r, 20));
    }
    // The gateway let go of it: reading again, it gets what the socket buffers held, then the end.
    stalled.socket.resume();
    await Promise.race([stalled.closed, new Promise((r) => setTimeout(r, 5000))]);
    expect(stalled.socket.destroyed).toBe(true);
    expect(stalled.bytes()).toBeLessThan(20 * 1024 * 1024);
    expect(reading.bytes()).toBeGreaterThan(25 * 1024 * 1024);
    expect(process.memoryUsage().rss - rss).toBeLessThan(256 * 1024 * 1024);
    const before = reading.bytes();
    gw.pipeline.push([{ equipment: 'B-07', point: 'drum_level', value: 'after', quality: 'good', ts: Date.now() }]);
    await expect.poll(() => reading.bytes(), { timeout: 5000 }).toBeGreaterThan(before);
    expect(reading.socket.destroyed).toBe(false);
  });
});
