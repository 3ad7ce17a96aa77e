// Older readings from InfluxDB: names quoted so a point or equipment name cannot change the query,
// and answers read strictly: a bad line wins over a value at its time, anything odd is left out.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InfluxSection } from '../../../../config/schema.js';
import { freePort } from '../../../../drivers/common/free-port.js';
import { InfluxQueryError, pointStatements, queryPoint, samplesOf } from '../../../../gateway/influx/query.js';

const all = { since: 0, until: 1e13, limit: 100 };
const q = {
  measurement: 'boiler',
  site: 'plant-3',
  equipment: 'B-07',
  point: 'drum_level',
  since: 1000,
  until: 5000,
  limit: 100,
  timeoutMs: 1000,
};

describe('InfluxDB history query', () => {
  it('asks for the point and its bad-quality lines in the time range, newest first, limited', () => {
    expect(pointStatements(q)).toBe(
      `SELECT "drum_level" FROM "boiler" WHERE "site" = 'plant-3' AND "equipment" = 'B-07' AND time >= 1000ms AND time < 5000ms ORDER BY time DESC LIMIT 100; ` +
        `SELECT "quality" FROM "boiler" WHERE "site" = 'plant-3' AND "equipment" = 'B-07' AND time >= 1000ms AND time < 5000ms AND "point" = 'drum_level' ORDER BY time DESC LIMIT 100`,
    );
  });

  it('quotes names so that none can end a string or an identifier', () => {
    const text = pointStatements({ ...q, equipment: "B'; DROP DATABASE x; '", point: 'a"b\\' });
    expect(text).toContain(`"equipment" = 'B\\'; DROP DATABASE x; \\''`);
    expect(text).toContain('SELECT "a\\"b\\\\" FROM');
    expect(pointStatements({ ...q, limit: 10 ** 9 })).toContain('LIMIT 10000');
  });

  it('merges values and quality lines by time, oldest first, the newest `limit`', () => {
    const answer = {
      results: [
        {
          series: [
            {
              columns: ['time', 'drum_level'],
              values: [
                [4000, 12.5],
                [3000, 11],
                [2000, 10.5],
                [1000, 'x'],
                ['bad', 3],
              ],
            },
          ],
        },
        {
          series: [
            {
              columns: ['time', 'quality'],
              values: [
                [3500, 'bad'],
                [3000, 'uncertain'],
                [2000, 'bad'],
              ],
            },
          ],
        },
      ],
    };
    expect(samplesOf(answer, all)).toEqual([
      { ts: 1000, value: 'x', quality: 'good' },
      { ts: 2000, value: null, quality: 'bad' },
      { ts: 3000, value: 11, quality: 'uncertain' },
      { ts: 3500, value: null, quality: 'bad' },
      { ts: 4000, value: 12.5, quality: 'good' },
    ]);
    expect(samplesOf(answer, { ...all, limit: 2 }).map((s) => s.ts)).toEqual([3500, 4000]);
    expect(samplesOf({ results: [{}, {}] }, all)).toEqual([]);
  });

  it('takes only rows in the range asked, at most `limit` of each statement even when the server ignores LIMIT, and never throws on odd shapes', () => {
    const rows = Array.from({ length: 1000 }, (_, i) => [i * 10, i]);
    expect(samplesOf({ results: [{ series: [{ values: rows }] }] }, { since: 100, until: 200, limit: 5 }).map((s) => s.ts)).toEqual([]);
    expect(
      samplesOf({ results: [{ series: [{ values: rows.slice().reverse() }] }] }, { since: 0, until: 10_000, limit: 5 }).map((s) => s.ts),
    ).toEqual([9950, 9960, 9970, 9980, 9990]);
    expect(
      samplesOf(
        {
          results: [
            {
              series: [
                {
                  values: [
                    [5, 1],
                    [50_000, 2],
                    [-1, 3],
                  ],
                },
              ],
            },
          ],
        },
        { since: 0, until: 100, limit: 10 },
      ).map((s) => s.ts),
    ).toEqual([5]);
    for (const odd of [
      { results: 'x' },
      { results: [null, 7] },
      { results: [{ series: 'x' }] },
      { results: [{ series: [{ values: 'x' }] }] },
      { results: [{ series: [{ values: [null, 'x', [1]] }] }] },
    ]) {
      expect(samplesOf(odd as never, all)).toEqual([]);
    }
  });

  it("throws InfluxDB's own error as a refusal", () => {
    expect(() => samplesOf({ results: [{ error: 'database not found: trend' }] }, all)).toThrow(InfluxQueryError);
    expect(() => samplesOf({ error: 'authorization failed' }, all)).toThrow('authorization failed');
  });

  describe('against a server that misbehaves', () => {
    let server: Server;
    let behave: (res: ServerResponse) => void = () => undefined;
    beforeAll(async () => {
      server = createServer((_req, res) => behave(res));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    });
    afterAll(() => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    });
    const config = () =>
      ({ api: 'v1', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, database: 'db' }) as unknown as InfluxSection;
    const kindOf = (p: Promise<unknown>) =>
      p.then(
        () => 'answered',
        (e: unknown) => (e instanceof InfluxQueryError ? e.kind : `other: ${String(e)}`),
      );

    it('refuses an answer far bigger than the rows asked for, without reading it all', async () => {
      behave = (res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let sent = 0;
        const more = () => {
          while (sent < 256 && res.write(chunk)) sent++;
          if (sent < 256) res.once('drain', more);
          else res.end();
        };
        more();
      };
      expect(await kindOf(queryPoint(config(), { ...q, limit: 10 }))).toBe('too-large');
    });

    it('tells a timeout, an answer that is not JSON, an HTTP error and a closed port apart', async () => {
      behave = () => undefined; // never answers
      expect(await kindOf(queryPoint(config(), { ...q, timeoutMs: 200 }))).toBe('timeout');
      behave = (res) => res.end('<html>proxy error</html>');
      expect(await kindOf(queryPoint(config(), q))).toBe('bad-answer');
      behave = (res) => res.writeHead(401).end('{"error":"authorization failed"}');
      expect(await kindOf(queryPoint(config(), q))).toBe('refused');
      const closed = { ...config(), url: `http://127.0.0.1:${await freePort()}` } as InfluxSection;
      expect(await kindOf(queryPoint(closed, q))).toBe('unreachable');
    });
  });
});
