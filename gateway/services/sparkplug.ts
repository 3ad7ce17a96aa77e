// The Sparkplug B edge node as a service (docs/sparkplug.md): fed every batch of readings and every
// alarm event; its modules (protobufjs, the queue) are imported when it starts, so a site without a
// `sparkplug:` section never loads them.
import { join } from 'node:path';
import type { SiteConfig } from '../../config/schema.js';
import type { SparkplugSection } from '../../config/sparkplug-schema.js';
import type { Reading } from '../../drivers/types.js';
import type { ActiveAlarm, AlarmEvent } from '../../rules/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { EdgeNode } from '../sparkplug/node.js';
import type { GatewayStore } from '../store.js';
import type { Service } from './service.js';

/** Where the node's bdSeq is kept in the store, so that it goes on across restarts. */
const BDSEQ_KEY = 'sparkplug.bdSeq';

export interface SparkplugService extends Service {
  /** The node, once started. */
  node(): EdgeNode | undefined;
}

/** The client id of the edge node's own connection, for the embedded broker's list of the gateway's ids. */
export function sparkplugClientId(config: SiteConfig): string {
  return `${config.mqtt.client_id ?? config.gateway.id}-sparkplug`;
}

export function sparkplugService(
  config: SiteConfig & { sparkplug: SparkplugSection & object },
  deps: {
    log: Logger;
    metrics: Metrics;
    dataDir: string;
    store: () => GatewayStore;
    /** The gateway's MQTT broker: its URL, and the login of the gateway's own clients on the embedded one. */
    gatewayBroker: { url(): string; login: { username: string; password: string } | undefined };
    onReadings(listener: (batch: readonly Reading[]) => void): void;
    onAlarmEvents(listener: (events: readonly AlarmEvent[]) => void): void;
    activeAlarms(): readonly ActiveAlarm[];
  },
): SparkplugService {
  const sp = config.sparkplug;
  const log = deps.log.child({ component: 'sparkplug' });
  let node: EdgeNode | undefined;
  deps.onReadings((batch) => node?.readings(batch));
  deps.onAlarmEvents((events) => node?.alarmEvents(events));
  return {
    id: 'sparkplug',
    name: 'Sparkplug B edge node',
    node: () => node,
    async start() {
      const { createEdgeNode } = await import('../sparkplug/node.js');
      const own = sp.broker !== 'gateway';
      const mqtt = own
        ? // A broker of its own: its user, password and CA; the rest (keepalive, backoff, packet bound) as the gateway's.
          { ...config.mqtt, username: sp.username, password: sp.password, ca: sp.ca, cert: undefined, key: undefined }
        : { ...config.mqtt, ...(deps.gatewayBroker.login ?? {}) };
      node = createEdgeNode({
        groupId: sp.group_id ?? config.gateway.site,
        edgeNodeId: sp.edge_node_id ?? config.gateway.id,
        primaryHostId: sp.primary_host_id,
        url: own ? sp.broker : deps.gatewayBroker.url(),
        mqtt,
        clientId: sparkplugClientId(config),
        equipment: config.equipment,
        activeAlarms: deps.activeAlarms,
        bdSeq: {
          load: () => {
            const v = deps.store().counter(BDSEQ_KEY);
            return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 255 ? v : 255;
          },
          save: (n) => deps.store().saveCounter(BDSEQ_KEY, n),
        },
        queueFile: join(deps.dataDir, 'sparkplug-queue.db'),
        maxStored: sp.max_stored,
        rebirthInterval: sp.rebirth_interval,
        info: { Site: config.gateway.site, Gateway: config.gateway.id },
        log,
        metrics: deps.metrics,
      });
      await node.start();
    },
    async stop() {
      await node?.stop();
    },
    health: () => node?.health() ?? { ok: true, detail: 'not started' },
  };
}
