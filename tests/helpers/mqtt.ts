// A plain mqtt.js subscriber, as an outside tool (mosquitto_sub, a LIMS, a dashboard) would be.
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { hashPassword } from '../../gateway/mqtt/users.js';

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
  at: number;
}

export interface Subscriber {
  client: MqttClient;
  messages: Received[];
  /** Resolves with the first message (past or future) that matches. */
  waitFor(match: (m: Received) => boolean, timeoutMs?: number, what?: string): Promise<Received>;
  close(): Promise<void>;
}

/** Messages kept as they arrive, and a wait for the first one (past or future) that matches. */
export interface Inbox<T> {
  messages: T[];
  add(m: T): void;
  waitFor(match: (m: T) => boolean, timeoutMs?: number, what?: string): Promise<T>;
}

/** An inbox whose wait, when nothing matched in time, fails with `missing(what, timeoutMs, messages)`. */
export function inbox<T>(missing: (what: string, timeoutMs: number, messages: readonly T[]) => string): Inbox<T> {
  const messages: T[] = [];
  const waiters = new Set<() => void>();
  return {
    messages,
    add(m) {
      messages.push(m);
      for (const w of waiters) w();
    },
    waitFor(match, timeoutMs = 10_000, what = 'message') {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.find(match);
          if (!found) return false;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(missing(what, timeoutMs, messages)));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
  };
}

export async function subscribe(url: string, topic: string, options: IClientOptions = {}): Promise<Subscriber> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 200, connectTimeout: 5000, ...options });
  const { messages, add, waitFor } = inbox<Received>(
    (what, timeoutMs, got) =>
      `No ${what} on ${topic} within ${timeoutMs} ms; got ${got.length}: ${got
        .slice(-5)
        .map((m) => `${m.topic} ${m.payload}`)
        .join(' | ')}`,
  );
  client.on('message', (t, payload, packet) => add({ topic: t, payload: payload.toString(), retain: packet.retain, at: Date.now() }));
  await client.subscribeAsync(topic, { qos: 1 });
  return { client, messages, waitFor, close: () => client.endAsync(true) };
}

/** The retained message on a topic right now, or undefined when there is none. */
export async function retained(url: string, topic: string, waitMs = 500): Promise<string | undefined> {
  const sub = await subscribe(url, topic);
  try {
    const m = await sub.waitFor((x) => x.retain, waitMs).catch(() => undefined);
    return m?.payload;
  } finally {
    await sub.close();
  }
}

export interface TestMqttUser {
  name: string;
  password: string;
  role: 'reader' | 'lab' | 'writer' | 'custom';
  subscribe?: string[];
  publish?: string[];
}

/** A user of the embedded broker who reads and publishes under lims/: the outside tool (a LIMS) of tests that carry messages between clients. */
export const LIMS_USER: TestMqttUser = {
  name: 'lims',
  password: 'lims-test-password',
  role: 'custom',
  subscribe: ['lims/#'],
  publish: ['lims/#'],
};

/** Lines for testSite's mqttExtra: an mqtt.users list with these users (their passwords hashed as `gateway mqtt user new` does). */
export function mqttUsersYaml(users: TestMqttUser[]): string[] {
  const list = (filters: string[] | undefined) => (filters ? `[${filters.map((f) => JSON.stringify(f)).join(', ')}]` : undefined);
  return [
    'users:',
    ...users.map((u) => {
      const extra = [u.subscribe ? `subscribe: ${list(u.subscribe)}` : '', u.publish ? `publish: ${list(u.publish)}` : ''].filter(Boolean);
      return `  - { name: ${u.name}, role: ${u.role}, hash: "${hashPassword(u.password)}"${extra.map((e) => `, ${e}`).join('')} }`;
    }),
  ];
}

/** mqtt.js connect options that log in as this user. */
export function loginAs(user: TestMqttUser): Pick<IClientOptions, 'username' | 'password'> {
  return { username: user.name, password: user.password };
}
