// The embedded MQTT broker (aedes): the default backbone, open to external clients on its port.
import { createServer, type AddressInfo, type Server } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { Aedes } from 'aedes';
import { GatewayError } from '../../config/errors.js';
import type { Logger } from '../log.js';

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  username?: string | undefined;
  password?: string | undefined;
  log: Logger;
}

export interface EmbeddedBroker {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Where it listens once started (the real port when 0 was asked for). */
  address(): { host: string; port: number };
  clientCount(): number;
  /** An in-process subscription (no socket): resolves to the function that ends it. */
  subscribe(topic: string, onMessage: (topic: string, payload: Buffer) => void): Promise<() => Promise<void>>;
}

const LOOPBACK = /^(127\.|::1$|localhost$)/;

export function createEmbeddedBroker(opts: EmbeddedBrokerOptions): EmbeddedBroker {
  let broker: Aedes | undefined;
  let server: Server | undefined;
  const { log } = opts;

  return {
    async start() {
      if (!LOOPBACK.test(opts.host) && opts.password === undefined) {
        log.warn({ host: opts.host }, 'Embedded broker listens beyond loopback without a password: anyone on the network can read and publish');
      }
      broker = await Aedes.createBroker({
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
      const srv = createServer(broker.handle);
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
