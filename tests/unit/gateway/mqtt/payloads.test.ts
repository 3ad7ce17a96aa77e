// Property tests of every MQTT message handler the gateway registers: random bytes, random JSON,
// huge JSON and mutated telemetry go into each of them. A handler never throws (the broker that
// delivers is unharmed), counts every payload it refuses, and logs refusals at most once a minute.
// Payloads that once made a handler throw are kept in tests/unit/corpus/mqtt-payloads.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSite } from '../../../../config/load.js';
import { createMetrics } from '../../../../gateway/metrics.js';
import type { EmbeddedBroker } from '../../../../gateway/mqtt/broker.js';
import { parseTelemetry } from '../../../../gateway/mqtt/payload.js';
import { influxService } from '../../../../gateway/services/influx.js';

const CORPUS = join(import.meta.dirname, '..', '..', 'corpus', 'mqtt-payloads');
const MAX = 64 * 1024;
const POINT = /^[A-Za-z_][A-Za-z0-9_]{0,20}$/;

const site = parseSite(
  `version: 1
gateway: { id: gw-1, site: s1, data_dir: ${mkdtempSync(join(tmpdir(), 'gw-payloads-'))} }
mqtt: { max_packet_size: 64KiB }
# Nothing is ever sent: batches of 100,000 lines, flushed once an hour.
influx: { api: v1, url: "http://127.0.0.1:9", database: t, batch_size: 100000, flush_interval: 1h }
connections: [{ id: sim, type: sim }]
equipment:
  - { id: B-1, category: boiler, connection: sim, model: steam-boiler, points: [{ name: drum_level }] }
`,
  { env: {} },
);

/** Every subscription the gateway makes on its broker, with the handler it gives. */
const handlers: Array<{ topic: string; handle: (topic: string, payload: Buffer) => void }> = [];
const broker = {
  subscribe: async (topic: string, handle: (topic: string, payload: Buffer) => void) => {
    handlers.push({ topic, handle });
    return async () => {};
  },
} as unknown as EmbeddedBroker;
const logLines: Array<{ level: number; msg: string; reason?: string }> = [];
const log = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(JSON.parse(line) as (typeof logLines)[number]) });
const influx = influxService(site, log, createMetrics(), { broker, url: () => 'mqtt://127.0.0.1:1', clientId: 'test' });

/** A concrete topic of the subscription's filter, for equipment B-1. */
const topicOf = (filter: string) => filter.replace('+', 'B-1');
const bad = () => influx.writer.stats().badMessages;

/** Delivers one payload to a handler: it must not throw; returns how many payloads it refused. */
function deliver(h: (typeof handlers)[number], payload: Buffer | string): number {
  const before = bad();
  expect(() => h.handle(topicOf(h.topic), Buffer.isBuffer(payload) ? payload : Buffer.from(payload))).not.toThrow();
  return bad() - before;
}

const looksLikeTelemetry = (v: unknown): boolean => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const m = v as Record<string, unknown>;
  return (
    typeof m.ts === 'number' && typeof m.values === 'object' && m.values !== null && typeof m.quality === 'object' && m.quality !== null
  );
};

const pointName = fc.stringMatching(POINT).filter((n) => !['time', 'quality', 'reason'].includes(n));
const telemetry = fc
  .dictionary(
    pointName,
    fc.tuple(
      fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.string({ maxLength: 30 }), fc.constant(null)),
      fc.constantFrom('good', 'uncertain', 'bad'),
    ),
    { maxKeys: 6 },
  )
  .chain((points) =>
    fc.record({
      ts: fc.integer({ min: 0, max: 4_102_444_800_000 }),
      values: fc.constant(Object.fromEntries(Object.entries(points).map(([k, [v]]) => [k, v]))),
      quality: fc.constant(Object.fromEntries(Object.entries(points).map(([k, [, q]]) => [k, q]))),
    }),
  );

describe('MQTT payloads into every handler of every subscribed topic', () => {
  beforeAll(async () => {
    await influx.start();
  });
  afterAll(async () => {
    await influx.stop();
  });

  it('subscribes to the site telemetry only', () => {
    expect(handlers.map((h) => h.topic)).toEqual(['gw/s1/+/telemetry']);
  });

  it.each(readdirSync(CORPUS).filter((f) => /\.(json|bin)$/.test(f)))('corpus: %s is refused and counted', (file) => {
    const kind = file.split('.').at(-2)!;
    const h = handlers.find((x) => x.topic.endsWith(`/${kind}`));
    expect(h, `a subscription for ${kind}`).toBeDefined();
    expect(deliver(h!, readFileSync(join(CORPUS, file)))).toBe(1);
  });

  it('refuses random bytes', () => {
    for (const h of handlers)
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => void expect(deliver(h, Buffer.from(bytes))).toBe(1)),
        { numRuns: 300 },
      );
  });

  it('refuses random JSON that is not telemetry, and never throws on any', () => {
    for (const h of handlers) {
      fc.assert(
        fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
          const refused = deliver(h, JSON.stringify(v) ?? 'null');
          if (!looksLikeTelemetry(v)) expect(refused).toBe(1);
        }),
        { numRuns: 500 },
      );
    }
  });

  it('takes well-formed telemetry, and refuses it once any member is replaced by random JSON', () => {
    for (const h of handlers) {
      fc.assert(
        fc.property(telemetry, (m) => {
          const before = influx.writer.stats().received;
          expect(deliver(h, JSON.stringify(m))).toBe(0);
          const lines = influx.writer.stats().received - before;
          expect(lines).toBeLessThanOrEqual(Object.keys(m.values).length + 1);
        }),
        { numRuns: 300 },
      );
      fc.assert(
        fc.property(telemetry, fc.constantFrom('ts', 'values', 'quality', 'reasons'), fc.jsonValue({ maxDepth: 2 }), (m, key, v) => {
          deliver(h, JSON.stringify({ ...m, [key]: v }));
        }),
        { numRuns: 300 },
      );
    }
  });

  it('refuses a payload over max_packet_size unread, and deep or huge JSON without harm', () => {
    for (const h of handlers) {
      const huge = JSON.stringify({ ts: 1, values: { x: 'y'.repeat(2 * MAX) }, quality: { x: 'good' } });
      const t0 = performance.now();
      expect(deliver(h, huge)).toBe(1);
      expect(performance.now() - t0).toBeLessThan(20);
      expect(parseTelemetry(huge, MAX)).toEqual({ ok: false, reason: `payload of ${huge.length} bytes, at most ${MAX}` });
      expect(deliver(h, '['.repeat(MAX / 2) + ']'.repeat(MAX / 2))).toBe(1);
      expect(deliver(h, `{"ts":1,"values":{${Array.from({ length: 3000 }, (_, k) => `"p${k}":${k}`).join(',')}},"quality":{}}`)).toBe(1);
    }
  });

  it('logs refusals at most once a minute, whatever their number', () => {
    const warnings = logLines.filter((l) => l.msg.startsWith('Telemetry message refused'));
    expect(bad()).toBeGreaterThan(500);
    expect(warnings).toEqual([expect.objectContaining({ level: 40, reason: expect.any(String) })]);
  });
});
