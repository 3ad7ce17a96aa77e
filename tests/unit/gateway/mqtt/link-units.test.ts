// The MQTT link's parts on their own, over a client that records what is published and acknowledges
// when the test says: the size check, the bound on unacknowledged telemetry, the gateway's status.
import { Writable } from 'node:stream';
import type { MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GatewayStatus } from '../../../../gateway/mqtt/gateway-status.js';
import { PendingWindow } from '../../../../gateway/mqtt/pending-window.js';
import { Publisher } from '../../../../gateway/mqtt/publisher.js';

function capture() {
  const lines: Array<{ level: number; msg: string } & Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString())), cb()) }));
  return { log, lines };
}

/** Records each publish; ack() answers the oldest unanswered one. */
function fakeClient() {
  const published: Array<{ topic: string; text: string; retain: boolean }> = [];
  const waiting: Array<(err?: Error) => void> = [];
  const client = {
    connected: true,
    publish(topic: string, text: string, opts: { retain: boolean }, cb: (err?: Error) => void) {
      published.push({ topic, text, retain: opts.retain });
      waiting.push(cb);
    },
  };
  return { client, published, ack: (err?: Error) => waiting.shift()!(err) };
}

function make(maxPacketSize = 1000) {
  const { log, lines } = capture();
  let oversized = 0;
  const publisher = new Publisher({ maxPacketSize, log, oversized: () => oversized++ });
  const fake = fakeClient();
  publisher.client = fake.client as unknown as MqttClient;
  return { publisher, fake, lines, oversized: () => oversized };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Publisher', () => {
  it('publishes QoS 1 and reports the acknowledgement', () => {
    const { publisher, fake } = make();
    const done = vi.fn();
    publisher.json('a/b', { x: 1 }, true, done);
    expect(fake.published).toEqual([{ topic: 'a/b', text: '{"x":1}', retain: true }]);
    expect(done).not.toHaveBeenCalled();
    fake.ack();
    expect(done).toHaveBeenCalledWith(undefined);
  });

  it('leaves out a message bigger than max_packet_size: counted, logged, and the caller told', () => {
    const { publisher, fake, lines, oversized } = make(100);
    const done = vi.fn();
    publisher.text('a/b', 'x'.repeat(100), false, done);
    expect(fake.published).toEqual([]);
    expect(done.mock.calls[0]![0]).toBeInstanceOf(Error);
    expect(publisher.oversized).toBe(1);
    expect(oversized()).toBe(1);
    expect(lines.map((l) => l.msg)).toEqual(['MQTT message bigger than mqtt.max_packet_size; not published (counted)']);
    expect(publisher.fits('a/b', 'x'.repeat(90))).toBe(true);
  });

  it('publishes nowhere without a client', () => {
    const { publisher } = make();
    publisher.client = undefined;
    expect(publisher.connected).toBe(false);
    expect(() => publisher.json('a/b', 1, false)).not.toThrow();
  });
});

describe('PendingWindow', () => {
  it('holds at most max_pending unacknowledged; drops beyond, with one warning per episode', () => {
    const { publisher, fake } = make();
    let delivered = 0;
    let dropped = 0;
    const window = new PendingWindow({
      maxPending: 4,
      publisher,
      log: pino({ level: 'silent' }),
      delivered: () => delivered++,
      dropped: () => dropped++,
    });
    for (let k = 0; k < 6; k++) window.publish('t', { k });
    expect(fake.published).toHaveLength(4);
    expect(window.pending).toBe(4);
    expect(window.pendingChars).toBe(4 * '{"k":0}'.length);
    expect([window.dropped, dropped]).toEqual([2, 2]);
    for (let k = 0; k < 3; k++) fake.ack();
    expect([window.delivered, delivered, window.pending]).toEqual([3, 3, 1]);
    window.publish('t', { k: 6 });
    expect(fake.published).toHaveLength(5);
    // A failed publish is neither delivered nor pending any more.
    fake.ack(new Error('closed'));
    expect([window.delivered, window.pending]).toEqual([3, 1]);
  });

  it('warns when dropping starts and when the broker caught up', () => {
    const { publisher, fake } = make();
    const { log, lines } = capture();
    const window = new PendingWindow({ maxPending: 2, publisher, log, delivered: () => {}, dropped: () => {} });
    for (let k = 0; k < 5; k++) window.publish('t', k);
    expect(lines.map((l) => l.msg)).toEqual(['MQTT broker is not acknowledging: dropping new telemetry until it catches up']);
    fake.ack();
    fake.ack();
    window.publish('t', 5);
    expect(lines.map((l) => l.msg)).toEqual([
      'MQTT broker is not acknowledging: dropping new telemetry until it catches up',
      'MQTT broker caught up; telemetry messages were dropped meanwhile',
    ]);
    expect(lines[1]!.dropped).toBe(3);
  });
});

describe('GatewayStatus', () => {
  const topic = 'gw/s/gateway/status';

  it('has an offline Last Will, announces online, and degraded with its reason', () => {
    const { publisher, fake } = make();
    const status = new GatewayStatus(topic, publisher);
    expect(JSON.parse(status.will().payload.toString())).toEqual({ state: 'offline', reason: 'connection lost' });
    expect(status.will()).toMatchObject({ topic, qos: 1, retain: true });
    status.announce();
    status.set('store not writable');
    status.set('store not writable');
    status.set(undefined);
    expect(fake.published.map((p) => [p.retain, JSON.parse(p.text).state, JSON.parse(p.text).reason])).toEqual([
      [true, 'online', undefined],
      [true, 'degraded', 'store not writable'],
      [true, 'online', undefined],
    ]);
  });

  it('while not connected, keeps the degraded reason for the next announcement', () => {
    const { publisher, fake } = make();
    fake.client.connected = false;
    const status = new GatewayStatus(topic, publisher);
    status.set('store not writable');
    expect(fake.published).toEqual([]);
    status.announce();
    expect(JSON.parse(fake.published[0]!.text)).toMatchObject({ state: 'degraded', reason: 'store not writable' });
  });

  it('is acknowledged once an announcement is, and fails the start with a code when none is in time', async () => {
    const { publisher, fake } = make();
    const status = new GatewayStatus(topic, publisher);
    const acknowledged = status.acknowledged(5000, 'mqtt://127.0.0.1:1883');
    status.announce();
    fake.ack();
    await expect(acknowledged).resolves.toBeUndefined();
    const late = status.acknowledged(5000, 'mqtt://127.0.0.1:1883');
    const failed = expect(late).rejects.toMatchObject({
      code: 'GW_ERR_COMPONENT_START',
      message: expect.stringContaining('within 5000 ms'),
    });
    await vi.advanceTimersByTimeAsync(5000);
    await failed;
  });

  it('says offline when stopped, waiting for the acknowledgement at most the given time', async () => {
    const { publisher, fake } = make();
    const status = new GatewayStatus(topic, publisher);
    const stopped = status.stopped(500);
    expect(JSON.parse(fake.published[0]!.text)).toMatchObject({ state: 'offline', reason: 'stopped' });
    let done = false;
    void stopped.then(() => (done = true));
    await vi.advanceTimersByTimeAsync(499);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
  });
});
