// A Sparkplug B primary host application, as Ignition would be: it decodes every message of a group
// with Eclipse Tahu's own decoder (sparkplug-payload, independent of the gateway's encoder) and checks
// the session rules as they arrive: NBIRTH before anything, DBIRTH before a device's DDATA, seq
// 0-255 without a gap across the node's messages, aliases of the births, NDEATH's bdSeq that of
// the NBIRTH. Also a TCP proxy to cut the edge node's connection.
import { createServer, type Server, type Socket, connect } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import sparkplug from 'sparkplug-payload';
import { inbox } from './mqtt.js';

const spb = sparkplug.get('spBv1.0')!;

type LongLike = number | { toNumber(): number };
const num = (v: unknown): number => (typeof v === 'number' ? v : (v as { toNumber(): number }).toNumber());

export interface HostMetric {
  name?: string;
  alias?: number;
  type: string;
  value: unknown;
  timestamp?: number;
  isHistorical?: boolean;
  properties?: Record<string, { type: string; value: unknown }>;
}

export interface HostMessage {
  topic: string;
  type: string;
  device: string | undefined;
  seq: number | undefined;
  metrics: HostMetric[];
}

export interface SparkplugHost {
  messages: HostMessage[];
  /** Session rules broken so far, one line each. */
  violations: string[];
  waitFor(match: (m: HostMessage) => boolean, timeoutMs?: number, what?: string): Promise<HostMessage>;
  /** Sends NCMD Node Control/Rebirth = true to the node. */
  rebirth(): Promise<void>;
  /** Publishes the host's retained STATE (Sparkplug 3.0 JSON). */
  state(online: boolean): Promise<void>;
  /** The metrics of the last DBIRTH of a device, by name. */
  birth(device: string): Map<string, HostMetric>;
  client: MqttClient;
  close(): Promise<void>;
}

export async function startSparkplugHost(
  url: string,
  ids: { group: string; node: string; hostId?: string },
  options: IClientOptions = {},
): Promise<SparkplugHost> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
  const { messages, add, waitFor } = inbox<HostMessage>(
    (what, timeoutMs, got) => `No ${what} within ${timeoutMs} ms; got ${got.map((x) => x.type).join(' ')}`,
  );
  const violations: string[] = [];
  let nodeBorn = false;
  let bdSeq: number | undefined;
  let nextSeq: number | undefined;
  const births = new Map<string, Map<string, HostMetric>>();
  const aliases = new Map<string, Set<number>>();
  const nodePrefix = `spBv1.0/${ids.group}/`;

  client.on('message', (topic, payload) => {
    const levels = topic.split('/');
    if (levels[0] !== 'spBv1.0' || levels[1] !== ids.group || levels[3] !== ids.node) return;
    const type = levels[2]!;
    const device = levels[4];
    // Commands are the host's own messages, not the node's.
    if (type === 'NCMD' || type === 'DCMD') return;
    let decoded: { seq?: LongLike; metrics?: Array<Record<string, unknown>> };
    try {
      decoded = spb.decodePayload(payload) as typeof decoded;
    } catch (err) {
      violations.push(`${topic}: not a Sparkplug B payload (${(err as Error).message})`);
      return;
    }
    const metrics = (decoded.metrics ?? []).map((m) => ({
      ...(m as unknown as HostMetric),
      ...(m.alias !== undefined ? { alias: num(m.alias) } : {}),
      ...(m.timestamp !== undefined ? { timestamp: num(m.timestamp) } : {}),
      value: m.type === 'Int64' || m.type === 'UInt64' ? (m.value === null ? null : num(m.value)) : m.value,
    }));
    const seq = decoded.seq === undefined ? undefined : num(decoded.seq);
    const m: HostMessage = { topic, type, device, seq, metrics };
    const fail = (what: string) => violations.push(`${type}${device ? ` ${device}` : ''} seq ${seq}: ${what}`);
    if (type === 'NDEATH') {
      const b = metrics.find((x) => x.name === 'bdSeq')?.value;
      if (bdSeq !== undefined && b !== bdSeq) fail(`bdSeq ${String(b)} is not the NBIRTH's ${bdSeq}`);
      nodeBorn = false;
      births.clear();
    } else {
      if (type === 'NBIRTH') {
        if (seq !== 0) fail('NBIRTH seq is not 0');
        bdSeq = metrics.find((x) => x.name === 'bdSeq')?.value as number;
        nodeBorn = true;
        births.clear();
        aliases.clear();
        aliases.set('', new Set(metrics.map((x) => x.alias!)));
      } else {
        if (!nodeBorn) fail('before an NBIRTH');
        if (seq !== nextSeq) fail(`expected seq ${nextSeq}`);
      }
      nextSeq = ((seq ?? 0) + 1) % 256;
      if (type === 'DBIRTH') {
        births.set(device!, new Map(metrics.map((x) => [x.name!, x])));
        aliases.set(device!, new Set(metrics.map((x) => x.alias!)));
        for (const x of metrics) if (x.alias === undefined || x.name === undefined) fail(`metric without name or alias`);
      }
      if (type === 'DDATA') {
        if (!births.has(device!)) fail('DDATA before its DBIRTH');
        for (const x of metrics)
          if (x.alias === undefined || !aliases.get(device!)?.has(x.alias)) fail(`alias ${x.alias} is not in the DBIRTH`);
      }
      if (type === 'DDEATH') {
        if (!births.has(device!)) fail('DDEATH of a device not born');
        births.delete(device!);
      }
    }
    add(m);
  });
  await client.subscribeAsync(`${nodePrefix}#`, { qos: 1 });

  return {
    messages,
    violations,
    client,
    birth: (device) => births.get(device) ?? new Map(),
    waitFor,
    async rebirth() {
      const payload = spb.encodePayload({
        timestamp: Date.now(),
        metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: true }],
      });
      await client.publishAsync(`${nodePrefix}NCMD/${ids.node}`, Buffer.from(payload), { qos: 0 });
    },
    async state(online) {
      await client.publishAsync(`spBv1.0/STATE/${ids.hostId}`, JSON.stringify({ online, timestamp: Date.now() }), { qos: 1, retain: true });
    },
    close: () => client.endAsync(true),
  };
}

/** A TCP proxy on 127.0.0.1 to a port: `cut()` closes every connection and refuses new ones until `restore()`. */
export interface CuttableProxy {
  port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startProxy(target: number): Promise<CuttableProxy> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((inbound) => {
        const outbound = connect(target, '127.0.0.1');
        for (const sock of [inbound, outbound]) {
          sockets.add(sock);
          sock.on('close', () => sockets.delete(sock));
          sock.on('error', () => {});
        }
        inbound.pipe(outbound).pipe(inbound);
        inbound.on('close', () => outbound.destroy());
        outbound.on('close', () => inbound.destroy());
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        port = (s.address() as { port: number }).port;
        server = s;
        resolve();
      });
    });
  const cut = async () => {
    const s = server;
    server = undefined;
    for (const sock of sockets) sock.destroy();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  };
  await listen();
  return { port, cut, restore: listen, close: cut };
}
