import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Reading } from '../../../drivers/types.js';
import type { MqttLink } from '../../../gateway/mqtt/link.js';
import { topicsFor, type StatusMessage, type TelemetryMessage } from '../../../gateway/mqtt/topics.js';
import { createPipeline, statusOf, telemetryOf } from '../../../gateway/pipeline.js';

/** Records what the pipeline publishes; the MQTT side itself is tested against real brokers. */
function recordingLink() {
  const telemetry: Array<[string, TelemetryMessage]> = [];
  const status: Array<[string, StatusMessage]> = [];
  const link: MqttLink = {
    start: async () => {},
    stop: async () => {},
    publishTelemetry: (eq, m) => void telemetry.push([eq, m]),
    publishStatus: (t, s) => void status.push([t, s]),
    publishEvent: () => {},
    stats: () => ({ connected: true, delivered: 0, pending: 0, dropped: 0, queued: 0, queuedBytes: 0, oldestQueuedAt: undefined }),
  };
  return { link, telemetry, status };
}

const r = (point: string, value: Reading['value'], quality: Reading['quality'] = 'good', extra: Partial<Reading> = {}): Reading => ({ equipment: 'B-1', point, value, quality, ts: 1000, ...extra });

describe('telemetry message', () => {
  it('carries one value and one quality per point, and reasons only for points that are not good', () => {
    expect(telemetryOf([r('a', 1.5), r('b', true)])).toEqual({ ts: 1000, values: { a: 1.5, b: true }, quality: { a: 'good', b: 'good' } });
    expect(telemetryOf([r('a', 1.5), r('b', null, 'bad', { reason: 'timeout', ts: 1200 })])).toEqual({
      ts: 1200,
      values: { a: 1.5, b: null },
      quality: { a: 'good', b: 'bad' },
      reasons: { b: 'timeout' },
    });
  });
});

describe('equipment status', () => {
  it('is online when all points are good, degraded when some are not, offline when none can be read', () => {
    expect(statusOf([r('a', 1), r('b', 2)], 5)).toEqual({ state: 'online', ts: 5 });
    expect(statusOf([r('a', 1), r('b', null, 'bad', { reason: 'exception 2: illegal data address' })], 5)).toEqual({ state: 'degraded', reason: 'b: exception 2: illegal data address', ts: 5 });
    expect(statusOf([r('a', null, 'bad', { reason: 'timeout' }), r('b', null, 'bad', { reason: 'timeout' })], 5)).toEqual({ state: 'offline', reason: 'timeout', ts: 5 });
    expect(statusOf([r('a', 1, 'uncertain'), r('b', null, 'bad')], 5).state).toBe('degraded');
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
