// The embedded MQTT broker as a service: aedes is imported when it starts, and what it refused and
// dropped is in /metrics.
import { Gauge } from 'prom-client';
import type { SiteConfig } from '../../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { BROKER_COUNTERS, sparkplugNodeFilters, zeroBrokerStats } from '../mqtt/acl.js';
import type { EmbeddedBroker, EmbeddedBrokerOptions } from '../mqtt/broker.js';
import type { Service } from './service.js';

export interface BrokerService extends Service {
  readonly broker: EmbeddedBroker;
}

/**
 * The site's embedded broker. The gateway's own clients log in to it as $gateway with
 * `gatewaySecret`, made for this process; `gatewayClientIds` are the ids only they may use.
 */
export function brokerService(
  config: SiteConfig,
  opts: { gatewaySecret: string; gatewayClientIds: string[]; log: Logger; metrics: Metrics },
): BrokerService {
  const broker = lazyBroker({
    host: config.mqtt.host,
    port: config.mqtt.port,
    username: config.mqtt.username,
    password: config.mqtt.password,
    maxPacketSize: config.mqtt.max_packet_size,
    maxConnections: config.mqtt.max_connections,
    topicPrefix: config.mqtt.topic_prefix,
    site: config.gateway.site,
    // Only the gateway publishes its Sparkplug node's births, deaths and data.
    ...(config.sparkplug?.enabled
      ? {
          reservedTopics: sparkplugNodeFilters(
            config.sparkplug.group_id ?? config.gateway.site,
            config.sparkplug.edge_node_id ?? config.gateway.id,
          ),
        }
      : {}),
    users: config.mqtt.users,
    // Older site files required mqtt.password of every client: they keep refusing anonymous ones.
    anonymous: config.mqtt.anonymous ?? (config.mqtt.password === undefined ? 'loopback' : 'off'),
    gatewaySecret: opts.gatewaySecret,
    gatewayClientIds: opts.gatewayClientIds,
    maxRetainedSize: config.mqtt.max_retained_size,
    maxRetained: config.mqtt.max_retained,
    maxPublishRate: config.mqtt.max_publish_rate,
    tls: config.mqtt.tls,
    log: opts.log,
  });
  // What the embedded broker refused and dropped (logins, publishes, subscriptions, retained, rate...), read when scraped.
  new Gauge({
    name: 'gateway_mqtt_broker_counter',
    help: 'Embedded MQTT broker: packets over max_packet_size, connections refused, slow clients, logins, subscriptions and publishes refused, retained messages refused, messages dropped over max_publish_rate, clients disconnected for flooding',
    labelNames: ['counter'],
    registers: [opts.metrics],
    collect() {
      const stats = broker.stats();
      for (const counter of BROKER_COUNTERS) this.set({ counter }, stats[counter]);
    },
  });
  return { id: 'broker', name: 'embedded MQTT broker', broker, start: () => broker.start(), stop: () => broker.stop() };
}

/**
 * The embedded broker, whose module (aedes) is imported when it starts. Before that it answers as a
 * broker not started yet: its configured address, no clients.
 */
function lazyBroker(opts: EmbeddedBrokerOptions): EmbeddedBroker {
  let inner: EmbeddedBroker | undefined;
  return {
    async start() {
      inner = (await import('../mqtt/broker.js')).createEmbeddedBroker(opts);
      await inner.start();
    },
    stop: async () => inner?.stop(),
    address: () => inner?.address() ?? { host: opts.host, port: opts.port },
    clientCount: () => inner?.clientCount() ?? 0,
    stats: () => inner?.stats() ?? zeroBrokerStats(),
    async subscribe(topic, onMessage) {
      if (!inner) throw new Error('Embedded broker is not started');
      return inner.subscribe(topic, onMessage);
    },
    async publish(topic, payload, retain) {
      if (!inner) throw new Error('Embedded broker is not started');
      return inner.publish(topic, payload, retain);
    },
  };
}
