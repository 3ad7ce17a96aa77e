// The embedded MQTT broker (aedes): the default backbone, open to external clients on its port.
import { createServer, type AddressInfo, type Server } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { Aedes } from 'aedes';
import { GatewayError } from '../../config/errors.js';
import type { Logger } from '../log.js';
import { boundedStream, DEFAULT_MAX_PACKET_SIZE, type PacketTooLargeError, type SlowConsumerError } from './packet-limit.js';
import { rateLimited } from '../../drivers/common/log-budget.js';

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  username?: string | undefined;
  password?: string | undefined;
  log: Logger;
  /** A client whose packet header announces more is disconnected before the packet is buffered (mqtt.max_packet_size). */
  maxPacketSize?: number;
  /** Connections beyond this are closed at once (mqtt.max_connections). */
  maxConnections?: number;
}

export interface EmbeddedBroker {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Where it listens once started (the real port when 0 was asked for). */
  address(): { host: string; port: number };
  clientCount(): number;
  /** Connections closed for a packet over the limit, refused over max_connections, and closed for leaving too much unread. */
  stats(): { oversizedPackets: number; refusedConnections: number; slowClients: number };
  /** An in-process subscription (no socket): resolves to the function that ends it. */
  subscribe(topic: string, onMessage: (topic: string, payload: Buffer) => void): Promise<() => Promise<void>>;
}

const LOOPBACK = /^(127\.|::1$|localhost$)/;

/**
 * What may wait in the broker for one client to read it (beyond the kernel's socket buffers) before
 * that client is disconnected: two of the largest packets (one being read, the next one), and at
 * least 1 MiB so that a small max_packet_size does not cut a healthy subscriber during a burst (a
 * poll cycle of a few hundred devices' telemetry). At most this much per connection, times
 * max_connections; the broker never waits for a client's drain.
 */
export function maxQueuedPerClient(maxPacketSize: number): number {
  return Math.max(2 * maxPacketSize, 1024 * 1024);
}

/** aedes's own backstop for a client stream that does not drain; boundedStream's write never asks it to wait. */
const DRAIN_TIMEOUT_MS = 2000;

export function createEmbeddedBroker(opts: EmbeddedBrokerOptions): EmbeddedBroker {
  let broker: Aedes | undefined;
  let server: Server | undefined;
  const { log } = opts;
  const maxPacketSize = opts.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE;
  const maxQueued = maxQueuedPerClient(maxPacketSize);
  const counters = { oversizedPackets: 0, refusedConnections: 0, slowClients: 0 };
  const oversizedLog = rateLimited();
  const refusedLog = rateLimited();
  const slowLog = rateLimited();

  return {
    async start() {
      if (!LOOPBACK.test(opts.host) && opts.password === undefined) {
        log.warn({ host: opts.host }, 'Embedded broker listens beyond loopback without a password: anyone on the network can read and publish');
      }
      broker = await Aedes.createBroker({
        drainTimeout: DRAIN_TIMEOUT_MS,
        authenticate: (_client, username, password, done) => {
          if (opts.password === undefined) return done(null, true);
          const ok = username === opts.username && password !== undefined && safeEqual(password, Buffer.from(opts.password));
          if (ok) return done(null, true);
          const err = Object.assign(new Error('Bad user name or password'), { returnCode: 4 as const });
          done(err, false);
        },
      });
      broker.on('clientError', (client, err) => log.debug({ client: client.id, err: err.message }, 'MQTT client error'));
      broker.on('connectionError', (_client, err) => log.debug({ err: err.message }, 'MQTT connection error'));
      const b = broker;
      const srv = createServer((socket) => {
        // aedes reads the socket through the framing: a packet over the limit never reaches its parser.
        // It writes through the write bound: a client that does not read is closed, never waited for
        // (aedes would hold every delivery, to every subscriber, until it drained).
        const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
        const onOversized = (err: PacketTooLargeError) => {
          counters.oversizedPackets++;
          oversizedLog((notLogged) => log.warn({ peer, size: err.size, max_packet_size: err.max, oversizedPackets: counters.oversizedPackets, ...(notLogged ? { notLogged } : {}) }, 'MQTT client sent a packet bigger than mqtt.max_packet_size; connection closed'));
        };
        const onSlow = (err: SlowConsumerError) => {
          counters.slowClients++;
          slowLog((notLogged) => log.warn({ peer, queued: err.queued, max_queued: err.max, slowClients: counters.slowClients, ...(notLogged ? { notLogged } : {}) }, 'MQTT client does not read what it subscribed to; connection closed'));
        };
        b.handle(boundedStream(socket, maxPacketSize, onOversized, { maxQueued, onSlow }));
      });
      srv.maxConnections = opts.maxConnections ?? 100;
      srv.on('drop', (data) => {
        counters.refusedConnections++;
        refusedLog((notLogged) => log.warn({ peer: `${data?.remoteAddress ?? '?'}:${data?.remotePort ?? '?'}`, max_connections: srv.maxConnections, refusedConnections: counters.refusedConnections, ...(notLogged ? { notLogged } : {}) }, 'Embedded MQTT broker has max_connections clients; new connection closed'));
      });
      server = srv;
      await new Promise<void>((resolve, reject) => {
        srv.once('error', (err: NodeJS.ErrnoException) => {
          const hint = err.code === 'EADDRINUSE' ? ' (another broker runs there? set MQTT_PORT or mqtt.port)' : '';
          reject(new GatewayError('GW_ERR_BROKER_LISTEN', `Embedded MQTT broker cannot listen on ${opts.host}:${opts.port}: ${err.code ?? err.message}${hint}`, { cause: err }));
        });
        srv.listen(opts.port, opts.host, () => resolve());
      });
      srv.on('error', (err) => log.error({ err }, 'Embedded MQTT broker socket error'));
      log.info({ host: opts.host, port: this.address().port }, 'Embedded MQTT broker listening');
    },

    async stop() {
      const srv = server;
      const b = broker;
      server = undefined;
      broker = undefined;
      if (b) await new Promise<void>((resolve) => b.close(() => resolve()));
      if (srv?.listening) await new Promise<void>((resolve) => srv.close(() => resolve()));
    },

    address() {
      const a = server?.address() as AddressInfo | null | undefined;
      return { host: opts.host, port: a?.port ?? opts.port };
    },

    clientCount: () => broker?.connectedClients ?? 0,

    stats: () => ({ ...counters }),

    async subscribe(topic, onMessage) {
      const b = broker;
      if (!b) throw new Error('Embedded broker is not started');
      const deliver = (packet: { topic: string; payload: Buffer | string }, done: () => void) => {
        onMessage(packet.topic, typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload);
        done();
      };
      await new Promise<void>((resolve) => b.subscribe(topic, deliver, resolve));
      return () => new Promise<void>((resolve) => b.unsubscribe(topic, deliver, resolve));
    },
  };
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
