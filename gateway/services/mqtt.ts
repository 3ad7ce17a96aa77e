// MQTT for the gateway: the embedded broker when the site uses it, and the gateway's own client (the
// link that publishes telemetry, alarms and status), logged in to that broker as $gateway.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { SiteConfig } from '../../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { GATEWAY_USER } from '../mqtt/acl.js';
import { createMqttLink, type MqttLinkService } from '../mqtt/link.js';
import type { Topics } from '../mqtt/topics.js';
import { brokerService, type BrokerService } from './broker.js';
import type { Service } from './service.js';

export interface MqttServices {
  /** The embedded broker, when the site uses it. */
  broker: BrokerService | undefined;
  link: MqttLinkService;
  linkService: Service;
  /** The URL the gateway's clients use (for the embedded broker: its real address once started). */
  url(): string;
  /** The id of the InfluxDB writer's own client, when it reads the broker over TCP. */
  influxClientId: string;
  /** How the gateway's other clients (the Sparkplug node) log in to the embedded broker; undefined for an external one. */
  gatewayLogin: { username: string; password: string } | undefined;
}

export function mqttServices(
  config: SiteConfig,
  opts: { log: Logger; metrics: Metrics; dataDir: string; topics: Topics; otherClientIds?: string[] },
): MqttServices {
  const clientId = config.mqtt.client_id ?? config.gateway.id;
  const influxClientId = `${clientId}-influx`;
  // The gateway's own clients log in to its embedded broker with a secret made for this process:
  // nothing to configure, nothing another client can learn from a file.
  const gatewaySecret = randomBytes(32).toString('base64url');
  const broker =
    config.mqtt.broker === 'embedded'
      ? brokerService(config, {
          gatewaySecret,
          // The link's id and the gateway's, and the InfluxDB client's when it reads a broker over TCP.
          gatewayClientIds: [...new Set([clientId, config.gateway.id, influxClientId, ...(opts.otherClientIds ?? [])])],
          log: opts.log.child({ component: 'broker' }),
          metrics: opts.metrics,
        })
      : undefined;
  const url = () => {
    if (!broker) return config.mqtt.broker;
    const { host, port } = broker.broker.address();
    const connectHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
    return `mqtt://${connectHost.includes(':') ? `[${connectHost}]` : connectHost}:${port}`;
  };
  const link = createMqttLink({
    url,
    config: broker ? { ...config.mqtt, username: GATEWAY_USER, password: gatewaySecret } : config.mqtt,
    clientId,
    topics: opts.topics,
    log: opts.log.child({ component: 'mqtt' }),
    waitForConnection: broker !== undefined,
    // An external broker may be away: what the link could not hand over waits on disk.
    queueFile: broker ? undefined : join(opts.dataDir, 'mqtt-queue.db'),
    metrics: opts.metrics,
  });
  const linkService: Service = {
    id: 'mqtt',
    name: 'MQTT client',
    start: () => link.start(),
    stop: () => link.stop(),
    health: () => link.health(),
  };
  const gatewayLogin = broker ? { username: GATEWAY_USER, password: gatewaySecret } : undefined;
  return { broker, link, linkService, url, influxClientId, gatewayLogin };
}
