// The embedded MQTT broker (aedes): the default backbone, open to external clients on its port, and
// on a TLS port when configured. Every client is authenticated and gets a Grant (acl.ts): the
// gateway's own clients by a secret made for this process, users of mqtt.users by password or client
// certificate, anonymous clients read-only (the site's topics) and only from loopback. Limits bound what any one client
// other than the gateway can make the broker keep or do.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { timingSafeEqual } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { EventEmitter } from 'node:events';
import { Aedes, type Client } from 'aedes';
import { GatewayError } from '../../config/errors.js';
import type { Logger } from '../log.js';
import { readPem } from '../pem.js';
import {
  boundedStream,
  DEFAULT_MAX_PACKET_SIZE,
  type PacketTooLargeError,
  type SlowConsumerError,
} from '../../drivers/common/mqtt-packet-limit.js';
import { rateLimited } from '../../drivers/common/log-budget.js';
import {
  anonymousAllowed,
  anonymousFilters,
  GATEWAY_GRANT,
  GATEWAY_USER,
  mayPublish,
  mayReceive,
  maySubscribe,
  PublishBucket,
  roleFilters,
  siteBase,
  zeroBrokerStats,
  type AnonymousSetting,
  type BrokerCounter,
  type BrokerStats,
  type Grant,
} from './acl.js';
import { hashPassword, type MqttRole } from './users.js';

export interface EmbeddedBrokerUser {
  name: string;
  role: MqttRole;
  hash?: string | undefined;
  subscribe?: string[] | undefined;
  publish?: string[] | undefined;
}

export interface EmbeddedBrokerTls {
  port: number;
  cert: string;
  key: string;
  ca?: string | undefined;
  client_certificates: 'off' | 'optional' | 'required';
}

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  /** mqtt.username/password of an older site file: one more user, who reads everything but `$SYS` and publishes outside the site. */
  username?: string | undefined;
  password?: string | undefined;
  log: Logger;
  /** A client whose packet header announces more is disconnected before the packet is buffered (mqtt.max_packet_size). */
  maxPacketSize?: number;
  /** Connections beyond this are closed at once, on each listener (mqtt.max_connections). */
  maxConnections?: number;
  /** `<topic_prefix>` and `<site>`: the namespace only the gateway publishes under, and what roles read. */
  topicPrefix: string;
  site: string;
  /** More topic filters only the gateway publishes to (its Sparkplug node's, acl.ts sparkplugNodeFilters). */
  reservedTopics?: string[];
  users?: EmbeddedBrokerUser[];
  /** Clients without credentials (mqtt.anonymous, already resolved). */
  anonymous?: AnonymousSetting;
  /** The secret the gateway's own clients log in with (user GATEWAY_USER); made per process by the runtime. */
  gatewaySecret: string;
  /** Client ids nobody else may take (the gateway's client would be disconnected by the take-over). */
  gatewayClientIds: string[];
  maxRetainedSize?: number;
  maxRetained?: number;
  /** Messages a second per client other than the gateway. */
  maxPublishRate?: number;
  tls?: EmbeddedBrokerTls | undefined;
}

export interface EmbeddedBroker {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Where it listens once started (the real port when 0 was asked for). */
  address(): { host: string; port: number };
  clientCount(): number;
  /** What it refused or dropped: packets over the limit, connections over max_connections, clients leaving too much unread, logins, subscriptions and publishes refused, messages over the rate. */
  stats(): BrokerStats;
  /** An in-process subscription (no socket): resolves to the function that ends it. */
  subscribe(topic: string, onMessage: (topic: string, payload: Buffer) => void): Promise<() => Promise<void>>;
  /** An in-process publish (no socket, the gateway's own right): for the gateway's parts and tests. */
  publish(topic: string, payload: Buffer | string, retain?: boolean): Promise<void>;
}

const LOOPBACK = /^(127\.|::1$|localhost$)/;

/** What the broker knows of a connection before CONNECT: its peer and, on the TLS listener, its certificate. */
interface Peer {
  address: string | undefined;
  label: string;
  tls: boolean;
  /** The client presented a certificate (verified or not). */
  certificate: boolean;
  verified: boolean;
  commonName: string | undefined;
}

/** CONNACK return codes of MQTT 3.1.1. */
const IDENTIFIER_REJECTED = 2;
const BAD_USER_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

/** Delivery decisions kept per grant and topic, up to this many topics (then forgotten at once). */
const RECEIVE_CACHE = 10_000;

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
/**
 * A connection must send CONNECT within this time (aedes waits 30 s by default): sockets that never
 * log in would otherwise hold the broker's max_connections for anyone who can reach its port.
 */
const CONNECT_TIMEOUT_MS = 5000;
/** Connections not yet logged in, at most, from one address; more are closed at once. */
const MAX_PENDING_PER_ADDRESS = 8;
/**
 * Connections from 127.0.0.1 or ::1 beyond max_connections (the gateway's own MQTT link connects
 * from there): a full broker never shuts the gateway out of its own broker.
 */
const LOOPBACK_RESERVE = 8;

export function createEmbeddedBroker(opts: EmbeddedBrokerOptions): EmbeddedBroker {
  let broker: Aedes | undefined;
  let server: Server | undefined;
  let tlsServer: TlsServer | undefined;
  const { log } = opts;
  const maxPacketSize = opts.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE;
  const maxQueued = maxQueuedPerClient(maxPacketSize);
  const maxConnections = opts.maxConnections ?? 100;
  const maxRetainedSize = opts.maxRetainedSize ?? 64 * 1024;
  const maxRetained = opts.maxRetained ?? 100;
  const maxPublishRate = opts.maxPublishRate ?? 100;
  const anonymous = opts.anonymous ?? 'loopback';
  const base = siteBase(opts.topicPrefix, opts.site);
  const counters = zeroBrokerStats();
  const logs = new Map<string, ReturnType<typeof rateLimited>>();
  /** Counts one refusal and logs it, one line a minute per kind of refusal at most. */
  const refuse = (counter: BrokerCounter, fields: Record<string, unknown>, message: string) => {
    counters[counter]++;
    let limited = logs.get(counter);
    if (!limited) logs.set(counter, (limited = rateLimited()));
    limited((notLogged) => log.warn({ ...fields, [counter]: counters[counter], ...(notLogged ? { notLogged } : {}) }, message));
  };

  const secret = Buffer.from(opts.gatewaySecret);
  const reservedIds = new Set(opts.gatewayClientIds);
  const users = new Map((opts.users ?? []).map((u) => [u.name, u]));
  const grantOf = (u: EmbeddedBrokerUser): Grant =>
    u.role === 'custom'
      ? { name: u.name, gateway: false, subscribe: u.subscribe ?? [], publish: u.publish ?? [] }
      : { name: u.name, gateway: false, subscribe: roleFilters(u.role, opts.topicPrefix, opts.site), publish: [] };
  const userGrants = new Map([...users.values()].map((u) => [u.name, grantOf(u)]));
  const legacyGrant: Grant | undefined =
    opts.username !== undefined && opts.password !== undefined
      ? { name: opts.username, gateway: false, subscribe: ['#'], publish: ['#'] }
      : undefined;
  const anonymousGrant: Grant = {
    name: 'anonymous',
    gateway: false,
    subscribe: anonymousFilters(opts.topicPrefix, opts.site),
    publish: [],
  };
  for (const u of opts.users ?? []) {
    for (const f of u.publish ?? []) {
      if (f.startsWith('#') || f.startsWith('+') || f === base || f.startsWith(`${base}/`) || f.startsWith(`${opts.topicPrefix}/+`))
        log.warn(
          { user: u.name, filter: f },
          `MQTT user's publish filter reaches into "${base}/": only the gateway publishes there, so that part is refused`,
        );
    }
  }

  const peers = new WeakMap<Duplex, Peer>();
  const grants = new WeakMap<Client, Grant>();
  const buckets = new WeakMap<Client, PublishBucket>();
  const receiveCache = new WeakMap<Grant, Map<string, boolean>>();
  /** Publishes the rate limit dropped: authorizePublish lets them through (MQTT 3.1.1 cannot refuse one), broker.publish skips them. */
  const dropped = new WeakSet<object>();
  /** Topics holding a retained message of a client other than the gateway, with its size. */
  const retainedByClients = new Map<string, number>();

  const authenticate = (
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (err: Error | null, ok: boolean) => void,
  ) => {
    const peer = peers.get(client.conn as unknown as Duplex);
    const fields = { peer: peer?.label, clientId: client.id, ...(username !== undefined ? { user: username } : {}) };
    const no = (code: number, counter: BrokerCounter, why: string) => {
      refuse(counter, fields, `MQTT client refused: ${why}`);
      // aedes set client.id from CONNECT already, and cleans what it holds under that id when it
      // closes the refused connection: under an id of its own, it cannot touch the gateway's session.
      if (reservedIds.has(client.id)) (client as { id: string }).id = `refused-${client.id}`;
      done(Object.assign(new Error(why), { returnCode: code }), false);
    };
    const ok = (grant: Grant) => {
      grants.set(client, grant);
      done(null, true);
    };
    // The gateway's own clients: any client id, with this process's secret. Nothing else can be
    // checked before the client id, or a guessed password would be worth a take-over.
    if (username === GATEWAY_USER)
      return password !== undefined && safeEqual(password, secret)
        ? ok(GATEWAY_GRANT)
        : no(BAD_USER_OR_PASSWORD, 'refusedLogins', 'bad gateway secret');
    // Authentication runs before aedes takes an existing session over: refused here, the gateway's
    // connected client is never disconnected.
    if (reservedIds.has(client.id)) return no(IDENTIFIER_REJECTED, 'refusedClientIds', "client id is the gateway's own");
    if (peer?.certificate) {
      if (!peer.verified) return no(NOT_AUTHORIZED, 'refusedCertificates', 'client certificate does not verify against mqtt.tls.ca');
      const grant = peer.commonName === undefined ? undefined : userGrants.get(peer.commonName);
      if (!grant)
        return no(NOT_AUTHORIZED, 'refusedCertificates', `client certificate's CN "${peer.commonName ?? ''}" names no user of mqtt.users`);
      if (username !== undefined && username !== peer.commonName)
        return no(BAD_USER_OR_PASSWORD, 'refusedLogins', "user name differs from the client certificate's CN");
      return ok(grant);
    }
    if (username !== undefined || password !== undefined) {
      if (username !== undefined && password !== undefined) {
        if (legacyGrant && username === opts.username && safeEqual(password, Buffer.from(opts.password!))) return ok(legacyGrant);
        const user = users.get(username);
        if (user?.hash !== undefined && safeEqual(Buffer.from(hashPassword(password)), Buffer.from(user.hash)))
          return ok(userGrants.get(username)!);
      }
      return no(BAD_USER_OR_PASSWORD, 'refusedLogins', 'bad user name or password');
    }
    if (anonymousAllowed(anonymous, peer?.address)) return ok(anonymousGrant);
    return no(
      NOT_AUTHORIZED,
      'refusedAnonymous',
      anonymous === 'off' ? 'anonymous clients are not allowed (mqtt.anonymous: off)' : 'anonymous clients are allowed from loopback only',
    );
  };

  const authorizePublish = (
    client: Client | null,
    packet: { topic: string; payload: Buffer | string; retain?: boolean },
    done: (err?: Error | null) => void,
  ) => {
    const grant = client ? grants.get(client) : undefined;
    // A Last Will of a client of another aedes instance (client null): there is none in one process.
    if (!client || !grant) return done(new Error('Publish without an authenticated client'));
    if (grant.gateway) return done(null);
    const fields = { user: grant.name, clientId: client.id, topic: packet.topic };
    if (!mayPublish(grant, packet.topic, base, opts.reservedTopics)) {
      refuse(
        'refusedPublishes',
        fields,
        `MQTT publish refused: only the gateway publishes under "${base}/" and $SYS, others only to their own publish filters; client disconnected`,
      );
      return done(new Error(`Not authorised to publish on "${packet.topic}"`));
    }
    const verdict = (buckets.get(client) ?? buckets.set(client, new PublishBucket(maxPublishRate, Date.now())).get(client)!).take(
      Date.now(),
    );
    if (verdict === 'disconnect') {
      refuse(
        'floodDisconnects',
        { ...fields, max_publish_rate: maxPublishRate },
        'MQTT client keeps publishing over mqtt.max_publish_rate; disconnected',
      );
      return done(new Error('Publishing over mqtt.max_publish_rate'));
    }
    if (verdict === 'drop') {
      refuse(
        'droppedPublishes',
        { ...fields, max_publish_rate: maxPublishRate },
        'MQTT client publishes over mqtt.max_publish_rate; messages dropped',
      );
      dropped.add(packet);
      return done(null);
    }
    if (packet.retain) {
      const size = typeof packet.payload === 'string' ? Buffer.byteLength(packet.payload) : packet.payload.length;
      if (size === 0) retainedByClients.delete(packet.topic);
      else if (size > maxRetainedSize) {
        refuse(
          'refusedRetained',
          { ...fields, size, max_retained_size: maxRetainedSize },
          'MQTT retained message bigger than mqtt.max_retained_size refused; client disconnected',
        );
        return done(new Error('Retained message over mqtt.max_retained_size'));
      } else if (!retainedByClients.has(packet.topic) && retainedByClients.size >= maxRetained) {
        refuse(
          'refusedRetained',
          { ...fields, max_retained: maxRetained },
          'MQTT retained message on one topic more than mqtt.max_retained refused; client disconnected',
        );
        return done(new Error('Retained topics over mqtt.max_retained'));
      } else retainedByClients.set(packet.topic, size);
    }
    done(null);
  };

  const authorizeSubscribe = (
    client: Client,
    sub: { topic: string; qos: number },
    done: (err: Error | null, sub: { topic: string; qos: number } | null) => void,
  ) => {
    const grant = grants.get(client);
    if (grant?.gateway || (grant && maySubscribe(grant, sub.topic))) return done(null, sub);
    refuse(
      'refusedSubscriptions',
      { user: grant?.name, clientId: client.id, topic: sub.topic },
      'MQTT subscription refused: the filter reaches nothing this client may read',
    );
    done(null, null);
  };

  const authorizeForward = <P extends { topic: string }>(client: Client, packet: P): P | null => {
    const grant = grants.get(client);
    if (!grant) return null;
    if (grant.gateway) return packet;
    let cache = receiveCache.get(grant);
    if (!cache) receiveCache.set(grant, (cache = new Map()));
    let allowed = cache.get(packet.topic);
    if (allowed === undefined) {
      if (cache.size >= RECEIVE_CACHE) cache.clear();
      cache.set(packet.topic, (allowed = mayReceive(grant, packet.topic)));
    }
    return allowed ? packet : null;
  };

  /** Each connection goes through the packet bound, then aedes; its peer is noted for authenticate. */
  const accept = (b: Aedes, socket: Socket, tls: TLSSocket | undefined) => {
    const label = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const address = socket.remoteAddress ?? '?';
    // The gateway's own link connects from 127.0.0.1 (or ::1): the reserve is for that address.
    const reserved = address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
    if (!reserved && open >= maxConnections) {
      socket.destroy();
      onDropped({ remoteAddress: socket.remoteAddress, remotePort: socket.remotePort });
      return;
    }
    const waiting = pendingByAddress.get(address) ?? 0;
    if (waiting >= MAX_PENDING_PER_ADDRESS) {
      socket.destroy();
      counters.refusedConnections++;
      refusedLog((notLogged) =>
        log.warn(
          { peer: label, pending: waiting, refusedConnections: counters.refusedConnections, ...(notLogged ? { notLogged } : {}) },
          `Embedded MQTT broker: ${MAX_PENDING_PER_ADDRESS} connections from this address have not logged in yet; new connection closed`,
        ),
      );
      return;
    }
    open++;
    pendingByAddress.set(address, waiting + 1);
    let pending = true;
    const settle = () => {
      if (!pending) return;
      pending = false;
      const n = (pendingByAddress.get(address) ?? 1) - 1;
      if (n > 0) pendingByAddress.set(address, n);
      else pendingByAddress.delete(address);
    };
    socket.once('close', () => {
      open--;
      settle();
    });
    let peer: Peer = { address: socket.remoteAddress, label, tls: false, certificate: false, verified: false, commonName: undefined };
    if (tls) {
      const cert = tls.getPeerCertificate();
      const cn = cert?.subject?.CN;
      peer = {
        ...peer,
        tls: true,
        certificate: cert !== undefined && Object.keys(cert).length > 0,
        verified: tls.authorized,
        commonName: Array.isArray(cn) ? cn[0] : cn,
      };
    }
    // aedes reads the socket through the framing: a packet over the limit never reaches its parser.
    // It writes through the write bound: a client that does not read is closed, never waited for
    // (aedes would hold every delivery, to every subscriber, until it drained).
    const onOversized = (err: PacketTooLargeError) => {
      counters.oversizedPackets++;
      oversizedLog((notLogged) =>
        log.warn(
          {
            peer: label,
            size: err.size,
            max_packet_size: err.max,
            oversizedPackets: counters.oversizedPackets,
            ...(notLogged ? { notLogged } : {}),
          },
          'MQTT client sent a packet bigger than mqtt.max_packet_size; connection closed',
        ),
      );
    };
    const onSlow = (err: SlowConsumerError) => {
      counters.slowClients++;
      slowLog((notLogged) =>
        log.warn(
          { peer: label, queued: err.queued, max_queued: err.max, slowClients: counters.slowClients, ...(notLogged ? { notLogged } : {}) },
          'MQTT client does not read what it subscribed to; connection closed',
        ),
      );
    };
    const stream = boundedStream(socket, maxPacketSize, onOversized, { maxQueued, onSlow });
    peers.set(stream, peer);
    loggingIn.set(stream, settle);
    b.handle(stream);
  };
  const oversizedLog = rateLimited();
  const refusedLog = rateLimited();
  const slowLog = rateLimited();
  // Sockets open on both listeners, and those not logged in yet by address.
  let open = 0;
  const pendingByAddress = new Map<string, number>();
  const loggingIn = new WeakMap<object, () => void>();
  const onDropped = (data?: { remoteAddress?: string; remotePort?: number }) => {
    counters.refusedConnections++;
    refusedLog((notLogged) =>
      log.warn(
        {
          peer: `${data?.remoteAddress ?? '?'}:${data?.remotePort ?? '?'}`,
          max_connections: maxConnections,
          refusedConnections: counters.refusedConnections,
          ...(notLogged ? { notLogged } : {}),
        },
        'Embedded MQTT broker has max_connections clients; new connection closed',
      ),
    );
  };
  const listen = (srv: Server, port: number, what: string) =>
    new Promise<void>((resolve, reject) => {
      srv.once('error', (err: NodeJS.ErrnoException) => {
        const hint =
          err.code === 'EADDRINUSE'
            ? ` (another broker runs there? set ${what === 'TLS' ? 'mqtt.tls.port' : 'MQTT_PORT or mqtt.port'})`
            : '';
        reject(
          new GatewayError(
            'GW_ERR_BROKER_LISTEN',
            `Embedded MQTT broker cannot listen${what === 'TLS' ? ' (TLS)' : ''} on ${opts.host}:${port}: ${err.code ?? err.message}${hint}`,
            { cause: err },
          ),
        );
      });
      srv.listen(port, opts.host, () => resolve());
    });

  return {
    async start() {
      const open = anonymous === 'loopback' ? 'anonymous readers from loopback only' : 'no anonymous clients';
      if (!LOOPBACK.test(opts.host))
        log.info(
          { host: opts.host, users: users.size + (legacyGrant ? 1 : 0) },
          `Embedded broker listens beyond loopback: mqtt.users log in, ${open}`,
        );
      const tls = opts.tls;
      const tlsFiles = tls
        ? {
            cert: readPem(tls.cert, "the embedded broker's TLS certificate"),
            key: readPem(tls.key, "the embedded broker's TLS key"),
            ca: readPem(tls.ca, "the embedded broker's TLS CA"),
          }
        : undefined;
      const b = await Aedes.createBroker({
        drainTimeout: DRAIN_TIMEOUT_MS,
        connectTimeout: CONNECT_TIMEOUT_MS,
        authenticate: authenticate as never,
        authorizePublish: authorizePublish as never,
        authorizeSubscribe: authorizeSubscribe as never,
        authorizeForward: authorizeForward as never,
      });
      broker = b;
      // A publish the rate limit dropped ends here, acknowledged to its client like any other.
      const publish = b.publish.bind(b) as (packet: object, client: unknown, done?: (err?: Error) => void) => void;
      (b as unknown as { publish: typeof publish }).publish = (packet, client, done) => {
        if (!dropped.has(packet)) return publish(packet, client, done);
        dropped.delete(packet);
        const callback = typeof client === 'function' ? (client as (err?: Error) => void) : done;
        callback?.();
      };
      // Logged in: no longer counted against its address's connections waiting to log in.
      b.on('client', (client) => loggingIn.get((client as unknown as { conn: object }).conn)?.());
      b.on('clientError', (client, err) => log.debug({ client: client.id, err: err.message }, 'MQTT client error'));
      b.on('connectionError', (_client, err) => log.debug({ err: err.message }, 'MQTT connection error'));
      // aedes reports a Last Will it could not publish here; without a listener it would throw.
      (b as EventEmitter).on('error', (err: Error) => log.error({ err: err.message }, 'Embedded MQTT broker error'));
      const srv = createServer((socket) => accept(b, socket, undefined));
      // Past max_connections only loopback gets in (accept() refuses the others), up to the reserve.
      srv.maxConnections = maxConnections + LOOPBACK_RESERVE;
      srv.on('drop', onDropped);
      server = srv;
      await listen(srv, opts.port, 'MQTT');
      srv.on('error', (err) => log.error({ err }, 'Embedded MQTT broker socket error'));
      if (tls && tlsFiles) {
        const certificates = tls.client_certificates;
        const tsrv = createTlsServer(
          {
            cert: tlsFiles.cert,
            key: tlsFiles.key,
            ...(tlsFiles.ca ? { ca: tlsFiles.ca } : {}),
            requestCert: certificates !== 'off',
            rejectUnauthorized: certificates === 'required',
          },
          (socket) => accept(b, socket, socket),
        );
        tsrv.maxConnections = maxConnections + LOOPBACK_RESERVE;
        tsrv.on('drop', onDropped);
        tsrv.on('tlsClientError', (err, socket) =>
          refuse(
            'refusedCertificates',
            { peer: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, err: err.message },
            'MQTT TLS handshake refused',
          ),
        );
        tlsServer = tsrv;
        await listen(tsrv, tls.port, 'TLS');
        tsrv.on('error', (err) => log.error({ err }, 'Embedded MQTT broker TLS socket error'));
      }
      log.info(
        {
          host: opts.host,
          port: this.address().port,
          ...(tlsServer ? { tlsPort: (tlsServer.address() as AddressInfo).port, clientCertificates: tls?.client_certificates } : {}),
          users: users.size,
          anonymous,
        },
        'Embedded MQTT broker listening',
      );
    },

    async stop() {
      const srv = server;
      const tsrv = tlsServer;
      const b = broker;
      server = undefined;
      tlsServer = undefined;
      broker = undefined;
      if (b) await new Promise<void>((resolve) => b.close(() => resolve()));
      if (srv?.listening) await new Promise<void>((resolve) => srv.close(() => resolve()));
      if (tsrv?.listening) await new Promise<void>((resolve) => tsrv.close(() => resolve()));
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

    async publish(topic, payload, retain = false) {
      const b = broker;
      if (!b) throw new Error('Embedded broker is not started');
      const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
      await new Promise<void>((resolve, reject) =>
        b.publish({ cmd: 'publish', topic, payload: body, qos: 0, retain, dup: false }, (err?: Error) => (err ? reject(err) : resolve())),
      );
    },
  };
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
