// A plain mqtt.js subscriber, as an outside tool (mosquitto_sub, a LIMS, a dashboard) would be.
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

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

export async function subscribe(url: string, topic: string, options: IClientOptions = {}): Promise<Subscriber> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 200, connectTimeout: 5000, ...options });
  const messages: Received[] = [];
  const waiters = new Set<() => void>();
  client.on('message', (t, payload, packet) => {
    messages.push({ topic: t, payload: payload.toString(), retain: packet.retain, at: Date.now() });
    for (const w of waiters) w();
  });
  await client.subscribeAsync(topic, { qos: 1 });
  return {
    client,
    messages,
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
          reject(new Error(`No ${what} on ${topic} within ${timeoutMs} ms; got ${messages.length}: ${messages.slice(-5).map((m) => `${m.topic} ${m.payload}`).join(' | ')}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    close: () => client.endAsync(true),
  };
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
