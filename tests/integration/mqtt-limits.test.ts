// Bounded MQTT over real sockets: the embedded broker closes a client whose packet header announces
// more than max_packet_size (before the packet is buffered) and one connection too many; the
// gateway's own MQTT clients close a broker that sends such a packet; garbage published on the
// telemetry topics is counted by the InfluxDB writer, and the gateway goes on.
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { createMqttLink } from '../../gateway/mqtt/link.js';
import { brokerSource } from '../../gateway/influx/source.js';
import { createUplink } from '../../gateway/platform/uplink.js';
import { Outbox } from '../../gateway/platform/outbox.js';
import { topicsFor } from '../../gateway/mqtt/topics.js';
import { subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/processes.js';
import { testSite } from '../helpers/site.js';

const silent = pino({ level: 'silent' });
const KiB = 1024;

/** A raw TCP client that speaks just enough MQTT: CONNECT, then whatever bytes the test writes. */
async function rawClient(port: number, clientId: string): Promise<{ socket: Socket; closed: Promise<number>; written: () => number }> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('error', () => {});
  let written = 0;
  const write = socket.write.bind(socket);
  socket.write = ((chunk: Buffer, cb?: () => void) => {
    written += chunk.length;
    return write(chunk, cb);
  }) as typeof socket.write;
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean: true, keepalive: 30 }));
  await new Promise<void>((resolve) => socket.once('data', () => resolve()));
  return { socket, closed, written: () => written };
}

/** Writes a 200 MiB PUBLISH announced in its header, in 64 KiB pieces, until the peer closes. */
function floodPublish(socket: Socket, write: (b: Buffer) => boolean = (b) => socket.write(b)): void {
  const remaining = 200 * 1024 * 1024;
  write(Buffer.from([0x30, ...varint(remaining), 0x00, 0x01, 0x74]));
  const piece = Buffer.alloc(64 * KiB, 0x61);
  const pump = () => {
    while (!socket.destroyed && write(piece));
    if (!socket.destroyed) socket.once('drain', pump);
  };
  pump();
}

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

describe('MQTT limits', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });
  const gateway = async (mqttExtra: string[], extra: string[] = []): Promise<{ gw: Gateway; port: number }> => {
    const port = await freePort();
    const gw = createGateway(testSite({ port, mqttExtra, extra }), silent);
    cleanup.push(() => gw.stop());
    await gw.start();
    return { gw, port };
  };

  it('embedded broker: a packet over max_packet_size closes that client at its header; others carry on, up to the limit', async () => {
    const { gw, port } = await gateway(['max_packet_size: 64KiB']);
    const sub = await subscribe(`mqtt://127.0.0.1:${port}`, 'lims/#');
    cleanup.push(() => sub.close());
    const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
    cleanup.push(() => pub.endAsync(true));
    // Just under the limit passes (the packet has a 2-byte header, 2 bytes of topic length, a message id).
    const fits = 64 * KiB - 2 - 3 - 2 - 'lims/a'.length - 2;
    await pub.publishAsync('lims/a', Buffer.alloc(fits, 0x61), { qos: 1 });
    await sub.waitFor((m) => m.topic === 'lims/a' && m.payload.length === fits);

    const rss = process.memoryUsage().rss;
    const hostile = await rawClient(port, 'hostile');
    const t0 = Date.now();
    floodPublish(hostile.socket);
    const closedAt = await hostile.closed;
    expect(closedAt - t0).toBeLessThan(1000);
    // The broker stopped reading at the header: a few socket buffers reached it, not 200 MiB.
    expect(hostile.written()).toBeLessThan(16 * 1024 * 1024);
    expect(process.memoryUsage().rss - rss).toBeLessThan(64 * 1024 * 1024);
    expect(gw.broker!.stats().oversizedPackets).toBe(1);

    // A whole packet just over the limit, in one write: the broker's parser never sees it.
    const over = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
    const overClosed = new Promise<void>((resolve) => over.once('close', () => resolve()));
    over.publish('lims/over', Buffer.alloc(fits + 1, 0x62), { qos: 0 });
    await overClosed;
    expect(gw.broker!.stats().oversizedPackets).toBe(2);

    // Everyone else is still served, the gateway's own telemetry included.
    await pub.publishAsync('lims/b', 'after', { qos: 1 });
    await sub.waitFor((m) => m.topic === 'lims/b');
    expect(sub.messages.some((m) => m.topic === 'lims/over')).toBe(false);
    expect(gw.link.stats().connected).toBe(true);
  });

  it('embedded broker: connections beyond max_connections are closed at once', async () => {
    const { gw, port } = await gateway(['max_connections: 3']);
    // The gateway's own client is one of the three.
    const a = await rawClient(port, 'a');
    const b = await rawClient(port, 'b');
    cleanup.push(async () => void a.socket.destroy(), async () => void b.socket.destroy());
    const extra = connect(port, '127.0.0.1');
    extra.on('error', () => {});
    cleanup.push(async () => void extra.destroy());
    await Promise.race([new Promise((resolve) => extra.once('close', resolve)), new Promise((resolve) => setTimeout(resolve, 2000))]);
    expect(extra.destroyed).toBe(true);
    expect(gw.broker!.stats().refusedConnections).toBe(1);
    expect(gw.link.stats().connected).toBe(true);
  });

  it('the gateway publishes nothing bigger than max_packet_size (the broker would close it): counted, and its connection stays', async () => {
    const { gw, port } = await gateway(['max_packet_size: 1KiB']);
    const sub = await subscribe(`mqtt://127.0.0.1:${port}`, 'gw/test-site/#');
    cleanup.push(() => sub.close());
    gw.link.publishEvent('gw/test-site/B-07/alarms', { big: 'x'.repeat(2 * KiB) }, false);
    gw.link.publishEvent('gw/test-site/B-07/alarms', { small: true }, false);
    await sub.waitFor((m) => m.topic === 'gw/test-site/B-07/alarms' && m.payload === '{"small":true}');
    expect(sub.messages.filter((m) => m.topic === 'gw/test-site/B-07/alarms')).toHaveLength(1);
    expect(gw.link.stats().oversized).toBe(1);
    expect(gw.broker!.stats().oversizedPackets).toBe(0);
    expect(gw.link.stats().connected).toBe(true);
  });

  it('InfluxDB writer: garbage on the telemetry topics is counted and left out; the boiler keeps being written', async () => {
    const victoria = inject('victoriametrics');
    const { gw, port } = await gateway(['max_packet_size: 64KiB'], ['influx:', '  api: v2', `  url: ${victoria.url}`, '  token: secret', '  org: site', '  bucket: telemetry', '  flush_interval: 200ms']);
    await expect.poll(() => gw.influx!.stats().received, { timeout: 5000 }).toBeGreaterThan(0);
    const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
    cleanup.push(() => pub.endAsync(true));
    const garbage = [Buffer.from([0xff, 0x00, 0x13]), 'null', '{"ts":1,"values":{"drum_level":1}}', '{"ts":1,"values":{"a\\nb":1},"quality":{"a\\nb":"good"}}', '{"ts":1e300,"values":{"drum_level":1},"quality":{"drum_level":"good"}}'];
    for (const g of garbage) await pub.publishAsync('gw/test-site/B-07/telemetry', g, { qos: 1 });
    await pub.publishAsync('gw/test-site/NOPE/telemetry', '{}', { qos: 1 });
    await expect.poll(() => gw.influx!.stats().badMessages, { timeout: 5000 }).toBe(garbage.length + 1);
    const written = gw.influx!.stats().written;
    await expect.poll(() => gw.influx!.stats().written, { timeout: 5000 }).toBeGreaterThan(written);
    expect(gw.influx!.stats().rejectedLines).toBe(0);
  });

  describe("the gateway's own MQTT clients against a broker that sends a 200 MiB packet", () => {
    /** A broker that accepts CONNECT, then floods every connection with one announced-huge PUBLISH. */
    const hostileBroker = async () => {
      const connections: Array<{ opened: number; closedAt?: number; sent: number }> = [];
      const sockets = new Set<Socket>();
      const server: Server = createServer((socket) => {
        sockets.add(socket);
        const c = { opened: Date.now(), closedAt: undefined as number | undefined, sent: 0 };
        connections.push(c);
        socket.on('error', () => {});
        socket.on('close', () => (c.closedAt = Date.now()));
        socket.once('data', () => {
          socket.write(mqttPacket.generate({ cmd: 'connack', returnCode: 0, sessionPresent: false }));
          floodPublish(socket, (b) => {
            c.sent += b.length;
            return socket.write(b);
          });
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      cleanup.push(
        () =>
          new Promise((resolve) => {
            for (const socket of sockets) socket.destroy();
            server.close(resolve);
          }),
      );
      return { url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`, connections };
    };
    const mqttSection = testSite({ mqttExtra: ['max_packet_size: 64KiB'] }).mqtt;

    it.each([
      ['telemetry link', (url: string) => {
        const link = createMqttLink({ url: () => url, config: mqttSection, clientId: 'gw', topics: topicsFor('gw', 's'), log: silent, waitForConnection: false });
        void link.start();
        return () => link.stop();
      }],
      ['InfluxDB writer source', (url: string) => {
        const source = brokerSource({ url, config: mqttSection, clientId: 'w', topic: 'gw/s/+/telemetry', group: 'g', log: silent, onMessage: () => {} });
        void source.start();
        return () => source.stop();
      }],
      ['platform uplink', (url: string) => {
        const outbox = new Outbox(join(mkdtempSync(join(tmpdir(), 'gw-uplink-')), 'outbox.db'), { uplink: true });
        const config = { url: 'http://127.0.0.1:1/', secret: 'x'.repeat(16), heartbeat_interval: 30_000, timeout: 1000, max_in_flight: 1, min_level: 'blue' as const, mqtt_url: url, mqtt_topic: 'i', retry: mqttSection.reconnect };
        const uplink = createUplink({ config, gatewayId: 'gw', site: 's', outbox, log: silent, maxPacketSize: 64 * KiB });
        uplink.start();
        return async () => {
          await uplink.stop();
          outbox.close();
        };
      }],
    ])('%s closes the connection at the header, and reconnects', async (_name, open) => {
      const broker = await hostileBroker();
      const rss = process.memoryUsage().rss;
      const stop = open(broker.url);
      cleanup.push(async () => stop());
      await expect.poll(() => broker.connections[0]?.closedAt, { timeout: 5000 }).toBeDefined();
      const first = broker.connections[0]!;
      expect(first.closedAt! - first.opened).toBeLessThan(1000);
      expect(first.sent).toBeLessThan(16 * 1024 * 1024);
      expect(process.memoryUsage().rss - rss).toBeLessThan(64 * 1024 * 1024);
      await expect.poll(() => broker.connections.length, { timeout: 5000 }).toBeGreaterThan(1);
    });
  });
});
