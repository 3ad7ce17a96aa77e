// Devices that publish JSON to a broker on a schedule: a Zigbee2MQTT environmental sensor
// (temperature, humidity, battery, linkquality, last_seen) and, optionally, a Tasmota energy meter
// (an ENERGY object). Values follow the seed, so a test can expect them; a fault option makes every
// n-th sensor message malformed, oversized or of the wrong type, so the driver's refusals show.
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Simulator } from '../types.js';
import type { MqttPublisherConfig } from './schema.js';

/** A small seeded generator (mulberry32): the same seed gives the same noise. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Tasmota writes its local time without a zone. */
const tasmotaTime = (ms: number) => new Date(ms).toISOString().slice(0, 19);

export function createSensorPublisher(config: MqttPublisherConfig, log: Logger): Simulator {
  let timer: NodeJS.Timeout | undefined;
  let client: MqttClient | undefined;
  const random = seeded(config.seed);
  let n = 0;
  let energyKwh = 1520.4;

  const sensorPayload = (now: number): string => {
    n++;
    const minutes = now / 60_000;
    const values = {
      temperature: round(26 + 2 * Math.sin(minutes / 7) + (random() - 0.5) * 0.2, 2),
      humidity: round(48 + 5 * Math.sin(minutes / 11) + (random() - 0.5), 1),
      battery: Math.max(1, 97 - Math.floor(n / 500)),
      linkquality: 100 + Math.floor(random() * 60),
      last_seen: new Date(now).toISOString(),
    };
    if (config.fault !== 'none' && n % config.fault_every === 0) {
      if (config.fault === 'malformed') return JSON.stringify(values).slice(0, 20);
      if (config.fault === 'wrong-type') return JSON.stringify({ ...values, temperature: 'warm' });
      return JSON.stringify({ ...values, padding: 'x'.repeat(config.fault_bytes) });
    }
    return JSON.stringify(values);
  };

  const energyPayload = (now: number): string => {
    const power = Math.round(350 + (random() - 0.5) * 40);
    const voltage = Math.round(229 + random() * 3);
    energyKwh += (power * config.interval) / 3_600_000_000;
    return JSON.stringify({
      Time: tasmotaTime(now),
      ENERGY: {
        TotalStartTime: '2024-03-01T08:00:00',
        Total: round(energyKwh, 3),
        Power: power,
        ApparentPower: Math.round(power * 1.08),
        Factor: 0.93,
        Voltage: voltage,
        Current: round(power / voltage / 0.93, 3),
      },
    });
  };

  return {
    async start() {
      const { default: mqtt } = await import('mqtt');
      const url = `mqtt://${config.host}:${config.port}`;
      client = mqtt.connect(url, {
        clientId: `sensor-publisher-${config.port}-${config.seed}`,
        ...(config.username !== undefined ? { username: config.username } : {}),
        ...(config.password !== undefined ? { password: config.password } : {}),
        reconnectPeriod: 1000,
      });
      let reported: string | undefined;
      client.on('error', (err) => {
        if (err.message !== reported) log.warn({ url, err: err.message }, 'MQTT sensor publisher cannot publish');
        reported = err.message;
      });
      client.on('connect', () => {
        reported = undefined;
      });
      const c = client;
      const tick = () => {
        if (!c.connected) return;
        const now = Date.now();
        c.publish(config.sensor_topic, sensorPayload(now), { qos: 0 });
        if (config.energy_topic) c.publish(config.energy_topic, energyPayload(now), { qos: 0 });
      };
      timer = setInterval(tick, config.interval);
      log.info({ url, topics: [config.sensor_topic, config.energy_topic].filter(Boolean) }, 'MQTT sensor publisher started');
    },
    async stop() {
      clearInterval(timer);
      await client?.endAsync(true);
      client = undefined;
    },
  };
}
