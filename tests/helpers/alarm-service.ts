// The alarm service on its own, as the gateway runs it but fed by hand: a fake pipeline whose batches
// the test sends, an MQTT link that takes everything, a new store, and its log lines kept.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { SiteConfig } from '../../config/schema.js';
import type { Reading } from '../../drivers/types.js';
import { createAlarmService, type AlarmService } from '../../gateway/alarms/service.js';
import type { MqttLink } from '../../gateway/mqtt/link.js';
import { topicsFor } from '../../gateway/mqtt/topics.js';
import type { Pipeline } from '../../gateway/pipeline.js';
import { GatewayStore, STORE_FILE } from '../../gateway/store.js';

type AlarmServiceOptions = Parameters<typeof createAlarmService>[0];

export interface FedAlarmService {
  service: AlarmService;
  store: GatewayStore;
  /** Sends a batch of readings as the pipeline would. */
  feed(batch: readonly Reading[]): void;
  /** Each log line at info and above, parsed. */
  lines: Array<Record<string, unknown>>;
}

/**
 * An alarm service on `config` (topics of gw/test-site) over `store` (a new one when not given);
 * `o` sets any other option (link, metrics, clocks, platform...). Not started.
 */
export function fedAlarmService(config: SiteConfig, o: Partial<AlarmServiceOptions> = {}, store?: GatewayStore): FedAlarmService {
  const db = store ?? new GatewayStore(join(mkdtempSync(join(tmpdir(), 'gw-alarms-')), STORE_FILE));
  let feed: (batch: readonly Reading[]) => void = () => {};
  const lines: Array<Record<string, unknown>> = [];
  const service = createAlarmService({
    config,
    pipeline: { onBatch: (l: typeof feed) => void (feed = l) } as unknown as Pipeline,
    link: { publishEvent: () => {}, setGatewayHealth: () => {} } as unknown as MqttLink,
    topics: topicsFor('gw', 'test-site'),
    log: pino(
      { level: 'info' },
      new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString()) as Record<string, unknown>), cb()) }),
    ),
    metrics: new Registry(),
    store: () => db,
    ...o,
  });
  return { service, store: db, feed: (batch) => feed(batch), lines };
}
