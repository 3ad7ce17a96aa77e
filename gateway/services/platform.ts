// The durable outbox and the forwarder (and uplink) to the central platform, as a service.
import { insecureRemote } from '../../config/platform-schema.js';
import type { SiteConfig } from '../../config/schema.js';
import { LEVELS } from '../../rules/types.js';
import type { PlatformCommit } from '../alarms/service.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { incidentOf } from '../platform/contract.js';
import type { Forwarder } from '../platform/forwarder.js';
import { Outbox } from '../platform/outbox.js';
import type { Uplink } from '../platform/uplink.js';
import type { GatewayStore } from '../store.js';
import type { Service } from './service.js';

export interface PlatformService extends Service {
  outbox(): Outbox | undefined;
  forwarder(): Forwarder | undefined;
  uplink(): Uplink | undefined;
  /** Wakes the forwarder and the uplink: something new is in the outbox. */
  notify(): void;
  /** How many incidents are active, for the forwarder's heartbeat. */
  countActive(count: () => number): void;
  /** The outbox's part of an alarm commit: the incidents of the events, in the same transaction. */
  commitPart(): PlatformCommit | undefined;
  /**
   * A reload's equipment (docs/reload.md): an added one's incidents carry its code, category and
   * name; a removed one is kept, for the incidents its removed rules still end.
   */
  equipmentChanged(next: SiteConfig['equipment']): void;
}

/** `commitPart` takes alarm events into the outbox (before they are published anywhere) and wakes the forwarder. */
export function platformService(config: SiteConfig, log: Logger, metrics: Metrics, store: () => GatewayStore): PlatformService {
  const platformConfig = config.platform!;
  const platformLog = log.child({ component: 'platform' });
  const equipment = new Map(config.equipment.map((e) => [e.id, { id: e.id, code: e.code, category: e.category, name: e.name }]));
  const minLevel = LEVELS.indexOf(platformConfig.min_level);
  let outbox: Outbox | undefined;
  let forwarder: Forwarder | undefined;
  let uplink: Uplink | undefined;
  let active = () => 0;
  const notify = () => {
    forwarder?.notify();
    uplink?.notify();
  };
  return {
    id: 'platform',
    name: 'platform outbox',
    forwarder: () => forwarder,
    outbox: () => outbox,
    uplink: () => uplink,
    notify,
    countActive(count) {
      active = count;
    },
    equipmentChanged(next) {
      for (const e of next) equipment.set(e.id, { id: e.id, code: e.code, category: e.category, name: e.name });
    },
    commitPart() {
      const box = outbox;
      if (!box) return undefined;
      return {
        add(events) {
          const incidents = events.flatMap((e) => {
            const i = LEVELS.indexOf(e.level) >= minLevel ? incidentOf(e, equipment.get(e.equipment), config.gateway.id) : undefined;
            return i ? [i] : [];
          });
          box.add(incidents);
        },
        notify,
      };
    },
    async start() {
      const mqttUrl = platformConfig.mqtt_url;
      // Accepted by platform.allow_insecure: said at every start, so that it is not forgotten.
      for (const url of [platformConfig.url, mqttUrl]) {
        if (url !== undefined && platformConfig.allow_insecure && insecureRemote(url))
          platformLog.warn(
            { url },
            'Platform URL is unencrypted to another machine (platform.allow_insecure: true): incidents and their signatures cross the network readable',
          );
      }
      outbox = new Outbox(store(), { uplink: mqttUrl !== undefined });
      const { createForwarder } = await import('../platform/forwarder.js');
      forwarder = createForwarder({
        config: platformConfig,
        gatewayId: config.gateway.id,
        site: config.gateway.site,
        outbox,
        log: platformLog,
        metrics,
        activeIncidents: () => active(),
      });
      forwarder.start();
      if (mqttUrl !== undefined) {
        const { createUplink } = await import('../platform/uplink.js');
        uplink = createUplink({
          config: { ...platformConfig, mqtt_url: mqttUrl },
          gatewayId: config.gateway.id,
          site: config.gateway.site,
          outbox,
          log: platformLog,
          maxPacketSize: config.mqtt.max_packet_size,
        });
        uplink.start();
      }
    },
    async stop() {
      await uplink?.stop();
      await forwarder?.stop();
      outbox?.close();
      outbox = undefined;
    },
    health: () => ({ ok: forwarder?.stats().healthy ?? false, detail: outbox?.stats() }),
  };
}
