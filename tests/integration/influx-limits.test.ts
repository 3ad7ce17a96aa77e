// The InfluxDB 1.x client against a server that answers too much: an endless error body, a gzip
// bomb. It reads the start of the answer (64 KiB at most), reports InfluxDB's words, and lets go.
import http from 'node:http';
import type { Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { createInfluxClient, InfluxWriteError } from '../../gateway/influx/client.js';
import { freePort } from '../helpers/processes.js';
import { testSite } from '../helpers/site.js';

describe('InfluxDB client limits', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  /** A server that answers every write with 400 and the body `answer` writes; counts what it sent. */
  const server = async (answer: (res: http.ServerResponse, sent: (n: number) => void) => void) => {
    const sockets = new Set<Socket>();
    let sent = 0;
    const srv = http.createServer((req, res) => {
      req.resume();
      answer(res, (n) => (sent += n));
    });
    srv.on('connection', (s) => sockets.add(s));
    const port = await freePort();
    await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve));
    cleanup.push(
      () =>
        new Promise((resolve) => {
          for (const s of sockets) s.destroy();
          srv.close(resolve);
        }),
    );
    const config = testSite({
      extra: ['influx:', '  api: v1', `  url: http://127.0.0.1:${port}`, '  database: d', '  timeout: 20s'],
    }).influx!;
    return { client: createInfluxClient(config), sent: () => sent };
  };

  const refusal = async (write: Promise<void>) => {
    const err = await write.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InfluxWriteError);
    return err as InfluxWriteError;
  };

  it('reads 64 KiB of an endless error body, and reports its start', async () => {
    const s = await server((res, sent) => {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.write('{"error":"partial write: field type conflict');
      const piece = 'x'.repeat(64 * 1024);
      const pump = () => {
        while (!res.destroyed && res.write(piece)) sent(piece.length);
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    const rss = process.memoryUsage().rss;
    const t0 = Date.now();
    const err = await refusal(s.client.write(Buffer.from('m f=1 1')));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(err.status).toBe(400);
    expect(err.influxMessage).toMatch(/^\{"error":"partial write: field type conflictx+\.\.\.$/);
    expect(err.influxMessage.length).toBeLessThanOrEqual(503);
    expect(s.sent()).toBeLessThan(64 * 1024 * 1024);
    expect(process.memoryUsage().rss - rss).toBeLessThan(100 * 1024 * 1024);
  });

  it('does not inflate a gzip bomb for an error message', async () => {
    // 128 MiB of zeros, about 130 kB compressed.
    const bomb = gzipSync(Buffer.alloc(128 * 1024 * 1024), { level: 9 });
    const s = await server((res) => {
      res.writeHead(500, { 'Content-Type': 'text/plain', 'Content-Encoding': 'gzip', 'Content-Length': String(bomb.length) });
      res.end(bomb);
    });
    const t0 = Date.now();
    const err = await refusal(s.client.write(Buffer.from('m f=1 1')));
    // Inflating all of it takes seconds (and 128 MiB); the start of it, milliseconds.
    expect(Date.now() - t0).toBeLessThan(500);
    expect(err.status).toBe(500);
    expect(err.kind).toBe('retry');
  });
});
