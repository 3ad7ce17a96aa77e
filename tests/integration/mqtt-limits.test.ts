// Bounded MQTT over real sockets: the embedded broker closes a client whose packet header announces
// more than max_packet_size (before the packet is buffered) and one connection too many; the
// gateway's own MQTT clients close a broker that sends such a packet; garbage published on the
// telemetry topics is counted by the InfluxDB writer, and the gateway goes on; a subscriber that
// stops reading is disconnected instead of stalling every other subscriber.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
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
import { LIMS_USER, loginAs, mqttUsersYaml, subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/processes.js';
import { testSite } from '../helpers/site.js';

const silent = pino({ level: 'silent' });
const KiB = 1024;

/** A raw TCP client that speaks just enough MQTT: CONNECT, then whatever bytes the test writes. */
async function rawClient(
  port: number,
  clientId: string,
  login: { username?: string | undefined; password?: string | Buffer | undefined } = {},
): Promise<{ socket: Socket; closed: Promise<number>; written: () => number }> {
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
  socket.write(
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clientId,
      clean: true,
      keepalive: 30,
      ...(login.username ? { username: login.username, password: Buffer.from(login.password ?? '') } : {}),
    }),
  );
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

/** A full garbage collection (vitest does not run with --expose-gc). */
function collectGarbage(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** What this process holds in JavaScript objects and buffers, after full collections (the first one leaves some buffers). */
function heldBytes(gc: () => void): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
    const { gw, port } = await gateway(['max_packet_size: 64KiB', ...mqttUsersYaml([LIMS_USER])]);
    const sub = await subscribe(`mqtt://127.0.0.1:${port}`, 'lims/#', loginAs(LIMS_USER));
    cleanup.push(() => sub.close());
    const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, ...loginAs(LIMS_USER) });
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
    const over = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, ...loginAs(LIMS_USER) });
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
    cleanup.push(
      async () => void a.socket.destroy(),
      async () => void b.socket.destroy(),
    );
    // From another address (127.0.0.2): past max_connections only 127.0.0.1, where the gateway's own link comes from, gets in.
    const extra = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    extra.on('error', () => {});
    cleanup.push(async () => void extra.destroy());
    await Promise.race([new Promise((resolve) => extra.once('close', resolve)), new Promise((resolve) => setTimeout(resolve, 2000))]);
    expect(extra.destroyed).toBe(true);
    expect(gw.broker!.stats().refusedConnections).toBe(1);
    expect(gw.link.stats().connected).toBe(true);
  });

  it('embedded broker: a subscriber to # that stops reading is disconnected; the others keep receiving at the publish rate, and the gateway holds a bounded amount for it', async () => {
    // max_packet_size 64 KiB: at most max(2 × 64 KiB, 1 MiB) = 1 MiB may wait for a client (maxQueuedPerClient).
    // The publisher sends 400 messages a second: over the default max_publish_rate, which this test is not about.
    const { gw, port } = await gateway(['max_packet_size: 64KiB', 'max_publish_rate: 100000', ...mqttUsersYaml([LIMS_USER])]);
    const url = `mqtt://127.0.0.1:${port}`;
    const gc = collectGarbage();
    // The gateway's own in-process subscription (the InfluxDB writer's path), and one over a socket.
    let inProcess = 0;
    const unsubscribe = await gw.broker!.subscribe('lims/#', () => void inProcess++);
    cleanup.push(unsubscribe);
    const healthy = await mqtt.connectAsync(url, { reconnectPeriod: 0, ...loginAs(LIMS_USER) });
    cleanup.push(() => healthy.endAsync(true));
    let received = 0;
    healthy.on('message', () => void received++);
    await healthy.subscribeAsync('lims/#', { qos: 0 });
    const pub = await mqtt.connectAsync(url, { reconnectPeriod: 0, ...loginAs(LIMS_USER) });
    cleanup.push(() => pub.endAsync(true));

    const frozen = await rawClient(port, 'frozen', loginAs(LIMS_USER));
    cleanup.push(async () => void frozen.socket.destroy());
    frozen.socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '#', qos: 0 }] }));
    await new Promise((resolve) => frozen.socket.once('data', resolve)); // SUBACK
    frozen.socket.pause(); // reads nothing more (so it cannot see the broker close it either, until it resumes)
    const clients = gw.broker!.clientCount();

    const held0 = heldBytes(gc);
    const t0 = Date.now();
    // 4 × 32 KiB every 10 ms (~12 MB/s), QoS 1, each message its own buffer (as devices send them): the
    // loopback socket buffers of the frozen client fill within a second.
    let published = 0;
    let acked = 0;
    const publisher = setInterval(() => {
      for (let i = 0; i < 4; i++, published++)
        pub.publish('lims/t', Buffer.alloc(32 * KiB, published % 256), { qos: 1 }, (err) => void (err ? undefined : acked++));
    }, 10);
    cleanup.push(async () => clearInterval(publisher));
    const windows: Array<{ published: number; received: number; inProcess: number }> = [];
    let held = 0;
    let slowAt: number | undefined;
    const watch = setInterval(() => (slowAt ??= gw.broker!.stats().slowClients > 0 ? Date.now() : undefined), 20);
    cleanup.push(async () => clearInterval(watch));
    let last = { published: 0, received: 0, inProcess: 0 };
    for (let k = 0; k < 6; k++) {
      await sleep(500);
      const now = { published, received, inProcess };
      windows.push({
        published: now.published - last.published,
        received: now.received - last.received,
        inProcess: now.inProcess - last.inProcess,
      });
      last = now;
      held = Math.max(held, heldBytes(gc) - held0);
    }
    clearInterval(publisher);
    clearInterval(watch);
    await sleep(300);
    held = Math.max(held, heldBytes(gc) - held0);

    // The broker closed the frozen one, once, when its socket buffers and then 1 MiB were full (not
    // after aedes's drain timeout); reading again, it gets what the kernel held, then the end.
    expect(slowAt, JSON.stringify(windows)).toBeDefined();
    expect(slowAt! - t0).toBeLessThan(2500);
    expect(gw.broker!.stats().slowClients).toBe(1);
    expect(gw.broker!.clientCount()).toBe(clients - 1);
    frozen.socket.resume();
    expect(await Promise.race([frozen.closed, sleep(2000).then(() => undefined)])).toBeDefined();
    // Every half second, both other subscribers got at least half of what was published in it
    // (without the write bound: 0 from the moment the frozen client's socket buffers were full).
    for (const w of windows) {
      expect(w.received, JSON.stringify(windows)).toBeGreaterThanOrEqual(w.published / 2);
      expect(w.inProcess, JSON.stringify(windows)).toBeGreaterThanOrEqual(w.published / 2);
    }
    expect(received).toBe(published);
    expect(acked).toBe(published);
    // ~36 MB were published in those 3 s; the gateway held at most the frozen client's 1 MiB and a
    // few messages in flight more than before (without the bound: what was published since it froze).
    expect(held).toBeLessThan(8 * 1024 * 1024);
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
    const { gw } = await gateway(
      ['max_packet_size: 64KiB'],
      [
        'influx:',
        '  api: v2',
        `  url: ${victoria.url}`,
        '  token: secret',
        '  org: site',
        '  bucket: telemetry',
        '  flush_interval: 200ms',
      ],
    );
    await expect.poll(() => gw.influx!.stats().received, { timeout: 5000 }).toBeGreaterThan(0);
    // Only the gateway publishes on its telemetry topics (clients are refused there): garbage comes in-process.
    const pub = { publishAsync: (topic: string, payload: Buffer | string) => gw.broker!.publish(topic, payload) };
    const garbage = [
      Buffer.from([0xff, 0x00, 0x13]),
      'null',
      '{"ts":1,"values":{"drum_level":1}}',
      '{"ts":1,"values":{"a\\nb":1},"quality":{"a\\nb":"good"}}',
      '{"ts":1e300,"values":{"drum_level":1},"quality":{"drum_level":"good"}}',
    ];
    for (const g of garbage) await pub.publishAsync('gw/test-site/B-07/telemetry', g);
    await pub.publishAsync('gw/test-site/NOPE/telemetry', '{}');
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
      [
        'telemetry link',
        (url: string) => {
          const link = createMqttLink({
            url: () => url,
            config: mqttSection,
            clientId: 'gw',
            topics: topicsFor('gw', 's'),
            log: silent,
            waitForConnection: false,
          });
          void link.start();
          return () => link.stop();
        },
      ],
      [
        'InfluxDB writer source',
        (url: string) => {
          const source = brokerSource({
            url,
            config: mqttSection,
            clientId: 'w',
            topic: 'gw/s/+/telemetry',
            group: 'g',
            log: silent,
            onMessage: () => {},
          });
          void source.start();
          return () => source.stop();
        },
      ],
      [
        'platform uplink',
        (url: string) => {
          const outbox = new Outbox(join(mkdtempSync(join(tmpdir(), 'gw-uplink-')), 'outbox.db'), { uplink: true });
          const config = {
            url: 'http://127.0.0.1:1/',
            secret: 'x'.repeat(16),
            heartbeat_interval: 30_000,
            timeout: 1000,
            max_in_flight: 1,
            min_level: 'blue' as const,
            mqtt_url: url,
            mqtt_topic: 'i',
            reconnect: mqttSection.reconnect,
          };
          const uplink = createUplink({ config, gatewayId: 'gw', site: 's', outbox, log: silent, maxPacketSize: 64 * KiB });
          uplink.start();
          return async () => {
            await uplink.stop();
            outbox.close();
          };
        },
      ],
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
