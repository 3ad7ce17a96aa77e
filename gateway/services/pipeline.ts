// The pipeline as a service: every batch of readings from the drivers (and lab results that are
// readings) passes it to the rules, the MQTT link and the HTTP API; its health is each equipment's status.
import { Counter } from 'prom-client';
import type { SiteConfig } from '../../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { MqttLink } from '../mqtt/link.js';
import type { Topics } from '../mqtt/topics.js';
import { createPipeline, type Pipeline } from '../pipeline.js';
import type { Service } from './service.js';

export interface PipelineService extends Service {
  readonly pipeline: Pipeline;
}

export function pipelineService(
  config: SiteConfig,
  opts: { link: MqttLink; topics: Topics; log: Logger; metrics: Metrics },
): PipelineService {
  const pipeline = createPipeline({
    link: opts.link,
    topics: opts.topics,
    equipment: config.equipment.map((e) => e.id),
    log: opts.log.child({ component: 'pipeline' }),
  });
  const readingsTotal = new Counter({
    name: 'gateway_readings_total',
    help: 'Readings taken from the equipment, by equipment and quality',
    labelNames: ['equipment', 'quality'],
    registers: [opts.metrics],
  });
  pipeline.onBatch((batch) => {
    for (const r of batch) readingsTotal.inc({ equipment: r.equipment, quality: r.quality });
  });
  return {
    id: 'equipment',
    name: 'pipeline',
    pipeline,
    start: async () => {},
    stop: () => pipeline.stop(),
    health: () => ({
      ok: true,
      detail: Object.fromEntries(config.equipment.map((e) => [e.id, pipeline.status(e.id)?.state ?? 'unknown'])),
    }),
  };
}
