// The outgoing queue against a real broker (Mosquitto): bounded on disk, oldest dropped and counted,
// the rest delivered in order once a connection comes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { OutgoingQueue } from '../../gateway/mqtt/outgoing.js';
import { subscribe } from '../helpers/mqtt.js';

const silent = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('MQTT outgoing queue', () => {
  const mosquitto = inject('mosquitto');
  const cleanup: Array<() => Promise<unknown> | void> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });

  it('holds messages on disk while there is no connection, drops the oldest at its bound and counts them, then sends the rest in order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-queue-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const dropped: number[] = [];
    const file = join(dir, 'mqtt-queue.db');
    let queue = new OutgoingQueue({ file, maxBytes: 30_000, window: 50, log: silent, onDrop: (n) => dropped.push(n) });
    cleanup.push(() => queue.close());
    const topic = `queue-test/${Date.now()}`;
    const total = 2000;
    for (let i = 0; i < total; i++) {
      queue.push(topic, JSON.stringify({ i, pad: 'x'.repeat(40) }));
      // Commits happen every 100 ms: let each hundred become a chunk of its own.
      if (i % 100 === 99) await sleep(130);
    }
    const held = queue.stats();
    expect(held.dropped).toBeGreaterThan(0);
    expect(held.dropped + held.queued).toBe(total);
    expect(dropped.reduce((a, b) => a + b, 0)).toBe(held.dropped);
    expect(held.queuedBytes).toBeLessThanOrEqual(30_000);

    // A restart in between: the next process finds what was kept.
    queue.close();
    queue = new OutgoingQueue({ file, maxBytes: 30_000, window: 50, log: silent });
    expect(queue.stats().queued).toBe(held.queued);

    const sub = await subscribe(mosquitto.url, topic);
    cleanup.push(() => sub.close());
    const client = await mqtt.connectAsync(mosquitto.url, { clientId: `queue-${Date.now()}`, clean: false });
    cleanup.push(() => client.endAsync(true));
    queue.attach(client);
    queue.connected();
    await vi.waitFor(() => expect(sub.messages.length).toBe(held.queued), { timeout: 10_000 });
    await vi.waitFor(() => expect(queue.stats()).toMatchObject({ queued: 0, inFlight: 0, delivered: held.queued }));
    // Exactly the newest ones, in the order they were queued.
    const got = sub.messages.map((m) => (JSON.parse(m.payload) as { i: number }).i);
    expect(got).toEqual(Array.from({ length: held.queued }, (_, k) => total - held.queued + k));

    // Connected and empty: a new message goes out at once and does not stay on disk.
    queue.push(topic, JSON.stringify({ i: total }));
    await vi.waitFor(() => expect(sub.messages.length).toBe(held.queued + 1));
    await sleep(150);
    expect(queue.stats().queued).toBe(0);
  });
});
