// The InfluxDB writer as a service: in the gateway (reading the embedded broker in-process, or the
// external one), or alone (`gateway influx-writer`, against the site's external broker).
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { GatewayError } from '../../config/errors.js';
import type { SiteConfig } from '../../config/schema.js';
import { prepareDataDir } from '../data-dir.js';
import type { TelemetrySource } from '../influx/source.js';
import type { InfluxWriter } from '../influx/writer.js';
import type { Logger } from '../log.js';
import { createMetrics, type Metrics } from '../metrics.js';
import type { EmbeddedBroker } from '../mqtt/broker.js';
import type { Service } from './service.js';

export interface InfluxService extends Service {
  /** Built by start(); read it after. */
  readonly writer: InfluxWriter;
}

/**
 * The InfluxDB writer with its telemetry source: an in-process subscription on the embedded broker,
 * or a shared subscription with a persistent session on an external one. The writer is built when
 * the service starts (it imports the InfluxDB client), and read after that.
 */
export function influxService(
  config: SiteConfig,
  log: Logger,
  metrics: Metrics,
  where: { broker: EmbeddedBroker | undefined; url: () => string; clientId: string; spoolFile?: string },
): InfluxService {
  const influxConfig = config.influx!;
  const writerLog = log.child({ component: 'influx' });
  let writer: InfluxWriter | undefined;
  let source: TelemetrySource | undefined;
  return {
    id: 'influx',
    name: 'InfluxDB writer',
    get writer() {
      if (!writer) throw new Error('The InfluxDB writer is not started');
      return writer;
    },
    async start() {
      const { createInfluxWriter } = await import('../influx/writer.js');
      const { brokerSource, embeddedSource, telemetryTopic } = await import('../influx/source.js');
      const w = createInfluxWriter({
        config: influxConfig,
        site: config.gateway.site,
        topicPrefix: config.mqtt.topic_prefix,
        equipment: config.equipment,
        dataDir: resolve(config.gateway.data_dir),
        log: writerLog,
        metrics,
        spoolFile: where.spoolFile,
        maxPayloadBytes: config.mqtt.max_packet_size,
      });
      writer = w;
      await w.start();
      const topic = telemetryTopic(config.mqtt.topic_prefix, config.gateway.site);
      const onMessage = (t: string, payload: Buffer) => w.accept(t, payload);
      source = where.broker
        ? embeddedSource(where.broker, topic, onMessage)
        : brokerSource({
            url: where.url(),
            config: config.mqtt,
            clientId: where.clientId,
            topic,
            group: influxConfig.shared_subscription_group,
            log: writerLog,
            onMessage,
          });
      await source.start();
    },
    async stop() {
      await source?.stop();
      await writer?.stop();
    },
    health: () => writer?.health() ?? { ok: false, detail: { reason: 'not started' } },
  };
}

/** `gateway influx-writer`: only the writer, against the site's external broker. */
export function createInfluxWriterService(config: SiteConfig, log: Logger, clientId = `${config.gateway.id}-influx-${hostname()}`) {
  if (config.mqtt.broker === 'embedded')
    throw new GatewayError(
      'GW_ERR_COMPONENT_START',
      'gateway influx-writer reads an external broker: set mqtt.broker to its URL (the embedded broker lives inside `gateway run`)',
    );
  if (!config.influx) throw new GatewayError('GW_ERR_COMPONENT_START', 'gateway influx-writer needs an influx: section in the site file');
  // Process figures too (CPU, memory, event-loop lag) for /metrics.
  const metrics = createMetrics({ defaults: true });
  const dataDir = resolve(config.gateway.data_dir);
  const influx = influxService(config, log, metrics, {
    broker: undefined,
    url: () => config.mqtt.broker,
    clientId,
    spoolFile: `influx-spool-${clientId}.db`,
  });
  let started = false;
  return {
    get writer() {
      return influx.writer;
    },
    metrics,
    async start() {
      prepareDataDir(dataDir, log.child({ component: 'data' }));
      await influx.start();
      started = true;
      log.info({ clientId, target: influx.writer.target }, 'InfluxDB writer running');
    },
    async stop() {
      if (!started) return;
      started = false;
      await influx.stop();
      const { received, written, rejectedLines, droppedLines, spoolLines } = influx.writer.stats();
      log.info({ received, written, rejectedLines, droppedLines, spoolLines }, 'InfluxDB writer stopped');
    },
  };
}
