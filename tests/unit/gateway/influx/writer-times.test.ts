// Per-point times from MQTT into the InfluxDB writer: taken when they are sound, and a message whose
// times are not (anyone may publish on a telemetry topic) is refused and counted, never thrown on.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseSite } from '../../../../config/load.js';
import { createInfluxWriter } from '../../../../gateway/influx/writer.js';
import { createMetrics } from '../../../../gateway/metrics.js';

const dataDir = mkdtempSync(join(tmpdir(), 'gw-writer-times-'));
const site = parseSite(
  `version: 1
gateway: { id: gw-1, site: s1, data_dir: ${dataDir} }
influx: { api: v1, url: "http://127.0.0.1:9", database: t, flush_interval: 1s }
connections: [{ id: sim, type: sim }]
equipment:
  - { id: B-1, category: boiler, connection: sim, model: steam-boiler, points: [{ name: drum_level }] }
`,
  { env: {} },
);
/** What InfluxDB would have been sent. */
const bodies: string[] = [];
const writer = createInfluxWriter({
  config: site.influx!,
  site: 's1',
  topicPrefix: site.mqtt.topic_prefix,
  equipment: site.equipment,
  dataDir,
  log: pino({ level: 'silent' }),
  metrics: createMetrics(),
  client: { target: 'memory', write: async (body) => void bodies.push(body.toString()) },
});
const topic = 'gw/s1/B-1/telemetry';

describe('InfluxDB writer: per-point times', () => {
  beforeAll(async () => {
    vi.useFakeTimers();
    await writer.start();
  });
  afterAll(async () => {
    await writer.stop();
    vi.useRealTimers();
  });

  it('writes each point at its own time', async () => {
    writer.accept(
      topic,
      JSON.stringify({
        ts: 3000,
        values: { drum_level: -150, flame: true },
        quality: { drum_level: 'good', flame: 'good' },
        times: { drum_level: 1000 },
      }),
    );
    writer.accept(
      topic,
      JSON.stringify({ ts: 3000, values: { drum_level: -250 }, quality: { drum_level: 'good' }, times: { drum_level: 1500 } }),
    );
    await vi.advanceTimersByTimeAsync(1500);
    expect(writer.stats()).toMatchObject({ badMessages: 0, received: 3, written: 3 });
    expect(bodies.join('\n').split('\n')).toEqual([
      'boiler,site=s1,equipment=B-1 flame=true 3000000000',
      'boiler,site=s1,equipment=B-1 drum_level=-150 1000000000',
      'boiler,site=s1,equipment=B-1 drum_level=-250 1500000000',
    ]);
  });

  it.each([
    ['not an object', 5],
    ['an array', [1000]],
    ['null', null],
    ['for a point not in the message', { flame: 1000 }],
    ['text', { drum_level: '1000' }],
    ['negative', { drum_level: -1 }],
    ['past the year 2262', { drum_level: 9_223_372_036_855 }],
    ['huge', { drum_level: 1e308 }],
    ['an object', { drum_level: { ms: 1000 } }],
  ])('refuses and counts times that are %s', (_what, times) => {
    const before = writer.stats();
    expect(() =>
      writer.accept(topic, JSON.stringify({ ts: 3000, values: { drum_level: 1 }, quality: { drum_level: 'good' }, times })),
    ).not.toThrow();
    expect(writer.stats().badMessages).toBe(before.badMessages + 1);
    expect(writer.stats().received).toBe(before.received);
  });

  it('refuses a time keyed __proto__ as a point not in the message', () => {
    const before = writer.stats().badMessages;
    writer.accept(topic, '{"ts":3000,"values":{"drum_level":1},"quality":{"drum_level":"good"},"times":{"__proto__":1000}}');
    expect(writer.stats().badMessages).toBe(before + 1);
  });
});
