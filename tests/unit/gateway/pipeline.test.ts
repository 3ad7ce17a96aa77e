import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Reading } from '../../../drivers/types.js';
import type { MqttLink } from '../../../gateway/mqtt/link.js';
import { topicsFor, type StatusMessage, type TelemetryMessage } from '../../../gateway/mqtt/topics.js';
import { createPipeline, knownPoints, noteQuality, statusOf, telemetryOf } from '../../../gateway/pipeline.js';

/** Records what the pipeline publishes; the MQTT side itself is tested against real brokers. */
function recordingLink() {
  const telemetry: Array<[string, TelemetryMessage]> = [];
  const status: Array<[string, StatusMessage]> = [];
  const fake = {
    start: async () => {},
    stop: async () => {},
    publishTelemetry: (eq: string, m: TelemetryMessage) => void telemetry.push([eq, m]),
    publishStatus: (t: string, s: StatusMessage) => void status.push([t, s]),
    setGatewayHealth: () => {},
    publishEvent: () => {},
    clearRetained: () => {},
    stats: () => ({ connected: true, delivered: 0, pending: 0, dropped: 0, queued: 0, queuedBytes: 0, oldestQueuedAt: undefined }),
  };
  const link: MqttLink = fake;
  return { link, telemetry, status };
}

const r = (point: string, value: Reading['value'], quality: Reading['quality'] = 'good', extra: Partial<Reading> = {}): Reading => ({
  equipment: 'B-1',
  point,
  value,
  quality,
  ts: 1000,
  ...extra,
});

describe('telemetry message', () => {
  it('carries one value and one quality per point, and reasons only for points that are not good', () => {
    expect(telemetryOf([r('a', 1.5), r('b', true)])).toEqual([
      { ts: 1000, values: { a: 1.5, b: true }, quality: { a: 'good', b: 'good' } },
    ]);
    expect(telemetryOf([r('a', 1.5), r('b', null, 'bad', { reason: 'timeout', ts: 1200 })])).toEqual([
      {
        ts: 1200,
        values: { a: 1.5, b: null },
        quality: { a: 'good', b: 'bad' },
        reasons: { b: 'timeout' },
        times: { a: 1000 },
      },
    ]);
  });

  it('carries the time of each point that has its own: the source time, or when it was received', () => {
    const [m] = telemetryOf([
      r('a', 1, 'good', { ts: 5000, sourceTs: 4200 }),
      r('b', 2, 'good', { ts: 5000 }),
      r('c', 3, 'good', { ts: 4900 }),
      r('d', 4, 'good', { ts: 5000, sourceTs: 5000 }),
    ]);
    expect(m).toEqual({
      ts: 5000,
      values: { a: 1, b: 2, c: 3, d: 4 },
      quality: { a: 'good', b: 'good', c: 'good', d: 'good' },
      times: { a: 4200, c: 4900 },
    });
  });

  it('takes a source time ahead of the receive time, or none (0), as the receive time', () => {
    expect(telemetryOf([r('a', 1, 'good', { ts: 5000, sourceTs: 9000 }), r('b', 2, 'good', { ts: 5000, sourceTs: 0 })])).toEqual([
      { ts: 5000, values: { a: 1, b: 2 }, quality: { a: 'good', b: 'good' } },
    ]);
  });

  it('publishes every value of a point a notification holds: one message per value, in time order, each point once', () => {
    const messages = telemetryOf([
      r('level', -150, 'good', { ts: 3000, sourceTs: 2000 }),
      r('flame', true, 'good', { ts: 3000, sourceTs: 1200 }),
      r('level', -250, 'good', { ts: 3000, sourceTs: 1500 }),
      r('level', -150, 'good', { ts: 3000, sourceTs: 1000 }),
      r('pressure', null, 'bad', { ts: 3000, reason: 'BadSensorFailure' }),
    ]);
    expect(messages).toEqual([
      {
        ts: 3000,
        values: { level: -150, flame: true, pressure: null },
        quality: { level: 'good', flame: 'good', pressure: 'bad' },
        reasons: { pressure: 'BadSensorFailure' },
        times: { level: 1000, flame: 1200 },
      },
      { ts: 3000, values: { level: -250 }, quality: { level: 'good' }, times: { level: 1500 } },
      { ts: 3000, values: { level: -150 }, quality: { level: 'good' }, times: { level: 2000 } },
    ]);
  });

  it('keeps every value of a point received at once without source times, in the order received', () => {
    expect(telemetryOf([r('a', 1), r('a', 2), r('b', 3)]).map((m) => [m.values, m.times])).toEqual([
      [{ a: 1, b: 3 }, undefined],
      [{ a: 2 }, undefined],
    ]);
  });
});

describe('equipment status', () => {
  const known = (...readings: Reading[]) => {
    const points = knownPoints();
    for (const x of readings) noteQuality(points, x);
    return points;
  };

  it('is online when all points are good, degraded when some are not, offline when none can be read', () => {
    expect(statusOf(known(r('a', 1), r('b', 2)), 5)).toEqual({ state: 'online', ts: 5 });
    expect(statusOf(known(r('a', 1), r('b', null, 'bad', { reason: 'exception 2: illegal data address' })), 5)).toEqual({
      state: 'degraded',
      reason: 'b: exception 2: illegal data address',
      ts: 5,
    });
    expect(statusOf(known(r('a', null, 'bad', { reason: 'timeout' }), r('b', null, 'bad', { reason: 'timeout' })), 5)).toEqual({
      state: 'offline',
      reason: 'timeout',
      ts: 5,
    });
    expect(statusOf(known(r('a', 1, 'uncertain'), r('b', null, 'bad')), 5).state).toBe('degraded');
  });

  it('goes by the last quality of every point, whichever reading brought it', () => {
    expect(statusOf(known(r('a', null, 'bad'), r('b', 2), r('a', 1)), 5).state).toBe('online');
    expect(statusOf(known(r('a', 1), r('b', 2), r('b', null, 'bad'), r('a', null, 'bad')), 5).state).toBe('offline');
  });

  it('lists at most 20 points in its reason', () => {
    const points = Array.from({ length: 30 }, (_, k) => r(`p${k}`, null, 'bad', { reason: `reason ${k}` }));
    const degraded = statusOf(known(r('ok', 1), ...points), 5).reason!;
    expect(degraded.split('; ')).toHaveLength(21);
    expect(degraded).toMatch(/^p0: reason 0; .*; p19: reason 19; and 10 more$/);
    expect(statusOf(known(...points), 5).reason).toMatch(/^reason 0; .*; reason 19; and 10 more$/);
  });
});

describe('pipeline', () => {
  const topics = topicsFor('gw', 'plant-1');
  const make = () => {
    const rec = recordingLink();
    const pipeline = createPipeline({ link: rec.link, topics, equipment: ['B-1', 'B-2'], log: pino({ level: 'silent' }) });
    return { ...rec, pipeline };
  };

  it('publishes one telemetry message per equipment in a batch', () => {
    const { pipeline, telemetry } = make();
    pipeline.push([r('a', 1), { ...r('a', 2), equipment: 'B-2' }, r('b', 3)]);
    expect(telemetry.map(([eq, m]) => [eq, m.values])).toEqual([
      ['B-1', { a: 1, b: 3 }],
      ['B-2', { a: 2 }],
    ]);
  });

  it('never lets a bad reading carry a value', () => {
    const { pipeline, telemetry } = make();
    pipeline.push([r('a', 42, 'bad', { reason: 'timeout' })]);
    expect(telemetry[0]![1].values.a).toBeNull();
  });

  it('publishes status only when it changes, and offline for every equipment on stop', async () => {
    const { pipeline, status } = make();
    pipeline.push([r('a', 1)]);
    pipeline.push([r('a', 2)]);
    pipeline.push([r('a', null, 'bad', { reason: 'timeout' })]);
    pipeline.push([r('a', null, 'bad', { reason: 'timeout' })]);
    pipeline.push([r('a', 3)]);
    expect(status.map(([t, s]) => [t, s.state])).toEqual([
      ['gw/plant-1/B-1/status', 'online'],
      ['gw/plant-1/B-1/status', 'offline'],
      ['gw/plant-1/B-1/status', 'online'],
    ]);
    await pipeline.stop();
    expect(status.slice(3).map(([t, s]) => [t, s.state, s.reason])).toEqual([
      ['gw/plant-1/B-1/status', 'offline', 'gateway stopped'],
      ['gw/plant-1/B-2/status', 'offline', 'gateway stopped'],
    ]);
  });

  it('computes status from every point known, not from the batch alone: one bad point of three is degraded', () => {
    const { pipeline, status } = make();
    pipeline.push([r('a', 1), r('b', 2), r('c', 3)]);
    // An OPC UA notification holds the points that changed: here one, gone bad.
    pipeline.push([r('b', null, 'bad', { reason: 'BadSensorFailure', ts: 2000 })]);
    pipeline.push([
      r('a', null, 'bad', { reason: 'BadSensorFailure', ts: 3000 }),
      r('c', null, 'bad', { reason: 'BadSensorFailure', ts: 3000 }),
    ]);
    pipeline.push([r('a', 1, 'good', { ts: 4000 })]);
    expect(status.map(([, s]) => [s.state, s.reason, s.ts])).toEqual([
      ['online', undefined, 1000],
      ['degraded', 'b: BadSensorFailure', 2000],
      ['offline', 'BadSensorFailure', 3000],
      ['degraded', 'b: BadSensorFailure; c: BadSensorFailure', 4000],
    ]);
    // The connection down: the driver makes every point bad.
    pipeline.push(['a', 'b', 'c'].map((p) => r(p, null, 'bad', { reason: 'ECONNREFUSED', ts: 5000 })));
    expect(status.at(-1)![1]).toEqual({ state: 'offline', reason: 'ECONNREFUSED', ts: 5000 });
  });

  it('publishes each value of a notification, in time order, and status from the newest', () => {
    const { pipeline, telemetry, status } = make();
    pipeline.push([
      r('a', -150, 'good', { ts: 3000, sourceTs: 2000 }),
      r('a', null, 'bad', { ts: 3000, sourceTs: 1500, reason: 'BadSensorFailure' }),
      r('b', 1, 'good', { ts: 3000 }),
    ]);
    expect(telemetry.map(([, m]) => [m.values, m.times])).toEqual([
      [{ a: null, b: 1 }, { a: 1500 }],
      [{ a: -150 }, { a: 2000 }],
    ]);
    expect(status.map(([, s]) => s.state)).toEqual(['online']);
  });

  it('hands every batch to listeners before publishing, and a failing listener stops nothing', () => {
    const { pipeline, telemetry } = make();
    const seen: number[] = [];
    pipeline.onBatch(() => {
      throw new Error('broken rule');
    });
    pipeline.onBatch((batch) => seen.push(batch.length + telemetry.length * 100));
    pipeline.push([r('a', 1), r('b', 2)]);
    expect(seen).toEqual([2]);
    expect(telemetry).toHaveLength(1);
    expect(pipeline.stats()).toEqual({ readings: 2, batches: 1, listenerErrors: 1 });
  });
});
