// Sparkplug store and forward across a restart: readings stored while the primary host was offline
// reach it after the gateway restarted, even when the session is up before the first poll.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import type { Reading } from '../../drivers/types.js';
import type { EdgeNode } from '../../gateway/sparkplug/node.js';
import { ReadingQueue } from '../../gateway/sparkplug/queue.js';
import { testEdgeNode } from '../helpers/edge-node.js';
import { startSparkplugHost } from '../helpers/sparkplug-host.js';

const until = (what: string, ok: () => boolean, ms = 5000) =>
  new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + ms;
    const check = () => (ok() ? resolve() : Date.now() > deadline ? reject(new Error(`not ${what}`)) : setTimeout(check, 20));
    check();
  });

describe('Sparkplug store and forward across a restart', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });

  it('sends the readings stored before the restart once the session is back, before the first new poll', async () => {
    const mosquitto = inject('mosquitto');
    const group = `f-${Date.now()}`;
    const hostId = `fh-${Date.now()}`;
    const queueFile = join(mkdtempSync(join(tmpdir(), 'spb-fwd-')), 'sparkplug-queue.db');
    let bdSeq = 0;
    const node = (): EdgeNode =>
      testEdgeNode(mosquitto.url, {
        groupId: group,
        edgeNodeId: 'gw-f',
        primaryHostId: hostId,
        equipment: [{ id: 'E-1', points: [{ name: 'p' }, { name: 'on' }] }],
        bdSeq: { load: () => bdSeq, save: (n) => void (bdSeq = n) },
        queueFile,
      });
    const host = await startSparkplugHost(mosquitto.url, { group, node: 'gw-f', hostId });
    cleanup.push(() => host.close());
    cleanup.push(() => host.client.publishAsync(`spBv1.0/STATE/${hostId}`, '', { retain: true, qos: 1 }));
    await host.state(false);

    const first = node();
    await first.start();
    const t0 = Date.now() - 10_000;
    const batch = (i: number): Reading[] => [
      { equipment: 'E-1', point: 'p', value: i + 0.5, quality: 'good', ts: t0 + i * 100 },
      { equipment: 'E-1', point: 'on', value: i % 2 === 0, quality: 'good', ts: t0 + i * 100 },
    ];
    for (let i = 0; i < 5; i++) first.readings(batch(i));
    expect(first.stats().stored).toBe(10);
    await first.stop();

    // The host is back; the gateway restarts and its session is up before the equipment is read again.
    await host.state(true);
    const second = node();
    cleanup.push(() => second.stop());
    await second.start();
    await host.waitFor((m) => m.type === 'NBIRTH', 5000, 'NBIRTH after the restart');
    await new Promise((r) => setTimeout(r, 300));
    second.readings(batch(50));
    await until('stored readings sent', () => second.stats().stored === 0);
    await new Promise((r) => setTimeout(r, 300));

    const names = new Map<number, string>();
    const got: string[] = [];
    for (const m of host.messages) {
      if (m.device !== 'E-1') continue;
      if (m.type === 'DBIRTH') for (const x of m.metrics) names.set(x.alias!, x.name!);
      if (m.type === 'DDATA')
        for (const x of m.metrics) if (x.isHistorical) got.push(`${names.get(x.alias!)}@${x.timestamp}=${String(x.value)}`);
    }
    const stored = Array.from({ length: 5 }, (_, i) => batch(i)).flat();
    expect(got.sort()).toEqual(stored.map((r) => `${r.point}@${r.ts}=${String(r.value)}`).sort());
    // The DBIRTH declared each point with the type of its stored values.
    const born = host.messages.find((m) => m.type === 'DBIRTH' && m.device === 'E-1')!;
    // Its values from before the restart, at their times, stale (500) rather than good.
    expect(born.metrics.find((x) => x.name === 'on')).toMatchObject({ type: 'Boolean', value: true, timestamp: t0 + 400 });
    expect(born.metrics.find((x) => x.name === 'p')!.properties!.Quality).toEqual({ type: 'Int32', value: 500 });
    expect(second.stats().dropped).toBe(0);
    expect(host.violations).toEqual([]);
  });

  it('a queue write that failed while forwarding (a full disk) does not stop forwarding for good', async () => {
    const mosquitto = inject('mosquitto');
    const group = `s-${Date.now()}`;
    const hostId = `sh-${Date.now()}`;
    const node = testEdgeNode(mosquitto.url, { groupId: group, edgeNodeId: 'gw-s', primaryHostId: hostId });
    const host = await startSparkplugHost(mosquitto.url, { group, node: 'gw-s', hostId });
    cleanup.push(() => host.close());
    cleanup.push(() => host.client.publishAsync(`spBv1.0/STATE/${hostId}`, '', { retain: true, qos: 1 }));
    await host.state(false);
    cleanup.push(() => node.stop());
    await node.start();
    const reading = (v: number): Reading[] => [{ equipment: 'E-1', point: 'p', value: v, quality: 'good', ts: Date.now() }];
    node.readings(reading(1));
    node.readings(reading(2));
    // Removing what was sent fails once (SQLITE_FULL); the rows stay and are sent again.
    const remove = vi.spyOn(ReadingQueue.prototype, 'remove').mockImplementationOnce(() => {
      throw new Error('SQLITE_FULL: database or virtual table is full');
    });
    cleanup.push(async () => remove.mockRestore());
    await host.state(true);
    await host.waitFor((m) => m.type === 'NBIRTH', 5000, 'NBIRTH');
    await until('the failed removal', () => remove.mock.calls.length > 0);
    // The disk has room again: the next readings go out, and so does what waited.
    for (let i = 3; i < 6; i++) {
      node.readings(reading(i));
      await new Promise((r) => setTimeout(r, 50));
    }
    await until('the queue emptied', () => node.stats().stored === 0);
    const values = host.messages.filter((m) => m.type === 'DDATA').flatMap((m) => m.metrics.map((x) => x.value));
    expect(values).toEqual(expect.arrayContaining([3, 4, 5]));
    expect(host.violations).toEqual([]);
  });

  it('looks up the last stored values of an equipment once, even when none of its stored points are still configured', async () => {
    const mosquitto = inject('mosquitto');
    const group = `o-${Date.now()}`;
    const hostId = `oh-${Date.now()}`;
    const queueFile = join(mkdtempSync(join(tmpdir(), 'spb-fwd-')), 'sparkplug-queue.db');
    const node = (point: string): EdgeNode =>
      testEdgeNode(mosquitto.url, {
        groupId: group,
        edgeNodeId: 'gw-o',
        primaryHostId: hostId,
        equipment: [{ id: 'E-1', points: [{ name: point }] }],
        queueFile,
        maxStored: 5000,
      });
    const host = await startSparkplugHost(mosquitto.url, { group, node: 'gw-o', hostId });
    cleanup.push(() => host.close());
    cleanup.push(() => host.client.publishAsync(`spBv1.0/STATE/${hostId}`, '', { retain: true, qos: 1 }));
    await host.state(false);
    const first = node('old_name');
    await first.start();
    const t0 = Date.now() - 10_000;
    first.readings(
      Array.from({ length: 1200 }, (_, i) => ({ equipment: 'E-1', point: 'old_name', value: i, quality: 'good' as const, ts: t0 + i })),
    );
    await first.stop();
    // Restarted with the point renamed: the stored readings name a point the equipment no longer has.
    const latest = vi.spyOn(ReadingQueue.prototype, 'latest');
    cleanup.push(async () => latest.mockRestore());
    await host.state(true);
    const second = node('new_name');
    cleanup.push(() => second.stop());
    await second.start();
    await until('the stored readings dealt with', () => second.stats().stored === 0);
    expect(second.stats().dropped).toBe(1200);
    expect(latest).toHaveBeenCalledTimes(1);
  });
});
