// Who may do what on the embedded broker: the decisions alone, free of aedes and sockets, so that
// unit tests cover every case (peers that are not loopback included) and the broker only asks.
import type { MqttRole } from './users.js';

/** What one connected client may do. */
export interface Grant {
  /** Who, for logs: a user's name, `anonymous`, or `gateway`. */
  name: string;
  /** The gateway's own clients: publish anywhere, `$SYS`, its client ids, no limits. */
  gateway: boolean;
  /** Filters it may subscribe to; a broader subscription (`#`) is kept, and only what these match is delivered. */
  subscribe: readonly string[];
  /** Filters it may publish to; never under the site's namespace unless `gateway`. */
  publish: readonly string[];
}

/** The site's namespace, `<prefix>/<site>`: the gateway's alone to publish under. */
export function siteBase(prefix: string, site: string): string {
  return `${prefix}/${site}`;
}

/** What a role may subscribe to (roles publish nothing: only `custom` users and the gateway do). */
export function roleFilters(role: Exclude<MqttRole, 'custom'>, prefix: string, site: string): string[] {
  const base = siteBase(prefix, site);
  switch (role) {
    case 'reader':
      // Everything of the site but lab results (topics.ts: equipment telemetry, status, alarms and risk,
      // the active list, alarm health, the gateway's status).
      return [
        `${base}/+/telemetry`,
        `${base}/+/status`,
        `${base}/+/alarms`,
        `${base}/+/risk`,
        `${base}/alarms/active`,
        `${base}/alarms/health`,
      ];
    case 'lab':
      return [`${base}/+/results`];
    case 'writer':
      // `gateway influx-writer` reads telemetry (through `$share/<group>/`) and may read the alarm topics.
      return [`${base}/+/telemetry`, `${base}/+/alarms`, `${base}/alarms/active`, `${base}/alarms/health`];
  }
}

/**
 * What an anonymous client on loopback may read: the site's topics, lab results included, as the
 * tools on the gateway's own box (the demo's mosquitto_sub, a local display) need; it publishes nothing.
 */
export function anonymousFilters(prefix: string, site: string): string[] {
  return [...roleFilters('reader', prefix, site), ...roleFilters('lab', prefix, site)];
}

/**
 * The user name of the gateway's own clients on its embedded broker. A `$` cannot start a name in
 * mqtt.users, so no user can be mistaken for it; the password is a secret made for each process.
 */
export const GATEWAY_USER = '$gateway';

/** The gateway's own grant. */
export const GATEWAY_GRANT: Grant = { name: 'gateway', gateway: true, subscribe: ['#', '$SYS/#'], publish: ['#', '$SYS/#'] };

/** A valid MQTT topic filter: `+` and `#` fill a whole level, `#` only last; no NUL, not empty. */
export function isValidTopicFilter(filter: string): boolean {
  if (filter.length === 0 || filter.length > 65535 || filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  return levels.every((level, i) =>
    level.includes('#') ? level === '#' && i === levels.length - 1 : !level.includes('+') || level === '+',
  );
}

/** A valid topic name to publish to: no wildcards. */
export function isValidTopicName(topic: string): boolean {
  return topic.length > 0 && !topic.includes('+') && !topic.includes('#') && !topic.includes('\u0000');
}

/**
 * Whether a filter matches a topic name, as a broker matches them: a topic starting with `$` is not
 * matched by a filter whose first level is a wildcard (MQTT 4.7.2).
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Whether some topic name is matched by both filters. */
export function filtersOverlap(a: string, b: string): boolean {
  if ((a.startsWith('$') && /^[+#]/.test(b)) || (b.startsWith('$') && /^[+#]/.test(a))) return false;
  const x = a.split('/');
  const y = b.split('/');
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    if (x[i] === '#' || y[i] === '#') return true;
    if (x[i] !== '+' && y[i] !== '+' && x[i] !== y[i]) return false;
  }
  if (x.length === y.length) return true;
  // `a/#` also matches `a`: the longer filter matches the shorter's topics when only `#` remains.
  const longer = x.length > y.length ? x : y;
  return longer.length === n + 1 && longer[n] === '#';
}

/** A shared subscription `$share/<group>/<filter>` is about `<filter>`; undefined when malformed. */
export function unshare(filter: string): string | undefined {
  if (!filter.startsWith('$share/')) return filter;
  const m = /^\$share\/([^/+#]+)\/(.+)$/.exec(filter);
  return m ? m[2] : undefined;
}

/**
 * A subscription is granted when its filter (without `$share/<group>/`) can match some topic the
 * client may read; what it then receives is cut to those topics by mayReceive. So a reader's `#`
 * works and brings the site's telemetry, and nothing else.
 */
export function maySubscribe(grant: Grant, filter: string): boolean {
  const inner = unshare(filter);
  if (inner === undefined || !isValidTopicFilter(inner)) return false;
  return grant.subscribe.some((allowed) => filtersOverlap(allowed, inner));
}

/** Whether a message on this topic may be delivered to the client (retained ones included). */
export function mayReceive(grant: Grant, topic: string): boolean {
  return grant.subscribe.some((allowed) => topicMatches(allowed, topic));
}

/**
 * The Sparkplug B topics of the gateway's edge node (docs/sparkplug.md): births, deaths and data of
 * the node and its devices, the gateway's alone to publish. Its NCMD and DCMD are not among them: a
 * custom user whose publish filters name them may send commands.
 */
export function sparkplugNodeFilters(group: string, node: string): string[] {
  // `/#` also matches the topic itself, and any deeper one a host might read as the node's.
  return ['NBIRTH', 'NDEATH', 'NDATA', 'DBIRTH', 'DDEATH', 'DDATA'].map((t) => `spBv1.0/${group}/${t}/${node}/#`);
}

/**
 * Whether the client may publish on this topic: never under the site's namespace nor `$SYS` unless
 * it is the gateway, nor on a `reserved` filter (the gateway's Sparkplug node topics).
 */
export function mayPublish(grant: Grant, topic: string, base: string, reserved: readonly string[] = []): boolean {
  if (grant.gateway) return true;
  if (topic.startsWith('$') || topic === base || topic.startsWith(`${base}/`)) return false;
  if (reserved.some((filter) => topicMatches(filter, topic))) return false;
  return grant.publish.some((allowed) => topicMatches(allowed, topic));
}

/** A loopback peer address (IPv4, IPv6, or IPv4 mapped into IPv6). */
export function isLoopbackPeer(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.toLowerCase();
  if (a === '::1' || a === '0:0:0:0:0:0:0:1') return true;
  const v4 = a.startsWith('::ffff:') ? a.slice(7) : a;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

export type AnonymousSetting = 'off' | 'loopback';

/** Whether a client without credentials is let in (then with the reader role only). */
export function anonymousAllowed(setting: AnonymousSetting, peerAddress: string | undefined): boolean {
  return setting === 'loopback' && isLoopbackPeer(peerAddress);
}

/** A client whose dropped messages within this window exceed this many seconds' worth of the rate is disconnected. */
export const FLOOD_WINDOW_MS = 10_000;

/**
 * One client's publish allowance: a token bucket of `rate` messages a second holding at most one
 * second's worth. A message beyond it is dropped; a client that goes on (more dropped within
 * FLOOD_WINDOW_MS than it may send in that time) is to be disconnected.
 */
export class PublishBucket {
  private tokens: number;
  private last: number;
  private windowStart: number;
  private windowDrops = 0;

  constructor(
    private readonly rate: number,
    now: number,
  ) {
    this.tokens = rate;
    this.last = now;
    this.windowStart = now;
  }

  take(now: number): 'ok' | 'drop' | 'disconnect' {
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 'ok';
    }
    if (now - this.windowStart >= FLOOD_WINDOW_MS) {
      this.windowStart = now;
      this.windowDrops = 0;
    }
    this.windowDrops++;
    return this.windowDrops > (this.rate * FLOOD_WINDOW_MS) / 1000 ? 'disconnect' : 'drop';
  }
}

/** What the broker counts: everything it refused or dropped. */
export const BROKER_COUNTERS = [
  'oversizedPackets',
  'refusedConnections',
  'slowClients',
  'refusedLogins',
  'refusedAnonymous',
  'refusedClientIds',
  'refusedCertificates',
  'refusedSubscriptions',
  'refusedPublishes',
  'refusedRetained',
  'droppedPublishes',
  'floodDisconnects',
] as const;
export type BrokerCounter = (typeof BROKER_COUNTERS)[number];
export type BrokerStats = Record<BrokerCounter, number>;

export function zeroBrokerStats(): BrokerStats {
  return Object.fromEntries(BROKER_COUNTERS.map((c) => [c, 0])) as BrokerStats;
}
