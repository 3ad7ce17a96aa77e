// The primary host's STATE (Sparkplug 3.0: JSON with `online` and `timestamp`, both required): one
// without a timestamp, or older than the last, cannot start or end the node's session.
import { createServer, type AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import mqttjs from 'mqtt';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { testEdgeNode } from '../helpers/edge-node.js';
import { startSparkplugHost } from '../helpers/sparkplug-host.js';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Sparkplug primary host STATE', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });

  it('ignores a STATE without a timestamp, in the old text form, or older than the last one', async () => {
    const mosquitto = inject('mosquitto');
    const group = `st-${Date.now()}`;
    const hostId = `sth-${Date.now()}`;
    const node = testEdgeNode(mosquitto.url, { groupId: group, edgeNodeId: 'gw-st', primaryHostId: hostId });
    const host = await startSparkplugHost(mosquitto.url, { group, node: 'gw-st', hostId });
    cleanup.push(() => host.close());
    const topic = `spBv1.0/STATE/${hostId}`;
    cleanup.push(() => host.client.publishAsync(topic, '', { retain: true, qos: 1 }));
    const offlineAt = Date.now();
    await host.client.publishAsync(topic, JSON.stringify({ online: false, timestamp: offlineAt }), { qos: 1, retain: true });
    cleanup.push(() => node.stop());
    await node.start();
    await pause(200);
    for (const payload of [JSON.stringify({ online: true }), 'ONLINE', JSON.stringify({ online: true, timestamp: offlineAt - 60_000 })]) {
      await host.client.publishAsync(topic, payload, { qos: 1 });
      await pause(200);
      expect(host.messages.map((m) => m.type)).toEqual([]);
    }
    await host.client.publishAsync(topic, JSON.stringify({ online: true, timestamp: Date.now() }), { qos: 1 });
    await host.waitFor((m) => m.type === 'NBIRTH', 5000, 'NBIRTH');
    expect(node.stats().state).toBe('online');
  });

  it('a host that goes offline and straight back online gets a new session, not a node stuck waiting', async () => {
    const mosquitto = inject('mosquitto');
    const group = `sf-${Date.now()}`;
    const hostId = `sfh-${Date.now()}`;
    let bdSeq = 0;
    const node = testEdgeNode(mosquitto.url, {
      groupId: group,
      edgeNodeId: 'gw-sf',
      primaryHostId: hostId,
      bdSeq: { load: () => bdSeq, save: (n) => void (bdSeq = n) },
    });
    const host = await startSparkplugHost(mosquitto.url, { group, node: 'gw-sf', hostId });
    cleanup.push(() => host.close());
    const topic = `spBv1.0/STATE/${hostId}`;
    cleanup.push(() => host.client.publishAsync(topic, '', { retain: true, qos: 1 }));
    await host.state(true);
    cleanup.push(() => node.stop());
    await node.start();
    const first = await host.waitFor((m) => m.type === 'NBIRTH', 5000, 'NBIRTH');
    const t = Date.now();
    await Promise.all([
      host.client.publishAsync(topic, JSON.stringify({ online: false, timestamp: t }), { qos: 1, retain: true }),
      host.client.publishAsync(topic, JSON.stringify({ online: true, timestamp: t + 1 }), { qos: 1, retain: true }),
    ]);
    await host.waitFor((m) => m.type === 'NDEATH', 5000, 'NDEATH');
    const second = await host.waitFor(
      (m) => m.type === 'NBIRTH' && m !== first && host.messages.indexOf(m) > host.messages.findIndex((x) => x.type === 'NDEATH'),
      5000,
      'NBIRTH of the new session',
    );
    expect(second.metrics.find((x) => x.name === 'bdSeq')!.value).toBe(bdSeq);
    await pause(300);
    expect(node.stats().state).toBe('online');
    expect(host.violations).toEqual([]);
  });

  it('a broker that never acknowledges the NDEATH does not hold the node back from its next session', async () => {
    // A broker that takes the NDEATH (QoS 1) and never acknowledges it: its authorizePublish never answers.
    const connects: string[] = [];
    const broker = await Aedes.createBroker({
      authorizePublish: ((_c: unknown, packet: { topic: string }, done: (err: Error | null) => void) => {
        if (!packet.topic.includes('/NDEATH/')) done(null);
      }) as never,
    });
    broker.on('client', (c) => connects.push(c.id));
    const server = createServer((socket) => broker.handle(socket));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanup.push(() => new Promise((r) => broker.close(() => server.close(() => r(undefined)))));
    const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const hostId = 'silent-host';
    const node = testEdgeNode(url, { groupId: 'g', edgeNodeId: 'gw-na', primaryHostId: hostId, clientId: 'gw-na-sparkplug' });
    cleanup.push(() => node.stop());
    const host = await mqttjs.connectAsync(url, { reconnectPeriod: 0 });
    cleanup.push(() => host.endAsync(true));
    const topic = `spBv1.0/STATE/${hostId}`;
    await host.publishAsync(topic, JSON.stringify({ online: true, timestamp: Date.now() }), { qos: 1, retain: true });
    await node.start();
    const deadline = Date.now() + 5000;
    while (node.stats().state !== 'online' && Date.now() < deadline) await pause(20);
    expect(node.stats().state).toBe('online');
    await host.publishAsync(topic, JSON.stringify({ online: false, timestamp: Date.now() }), { qos: 1, retain: true });
    await pause(100);
    await host.publishAsync(topic, JSON.stringify({ online: true, timestamp: Date.now() }), { qos: 1, retain: true });
    while (node.stats().state !== 'online' && Date.now() < deadline + 3000) await pause(20);
    expect(connects.filter((id) => id === 'gw-na-sparkplug').length).toBe(2);
    expect(node.stats().state).toBe('online');
  });
});
