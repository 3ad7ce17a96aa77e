// Lab results from the drivers: each captured once (by its stable resultId, in the gateway's store,
// with the instrument's result counter in the same transaction), committed before the driver
// acknowledges it to its instrument, then published on MQTT
// (`gw/<site>/<instrument>/results`, QoS 1), written to InfluxDB (`lab_result`) and uploaded to the
// platform through the durable outbox (`gw.result.v1`, Idempotency-Key: resultId).
import { Counter } from 'prom-client';
import type { LabResult } from '../../drivers/common/result.js';
import type { SiteConfig } from '../../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { MqttLink } from '../mqtt/link.js';
import type { Topics } from '../mqtt/topics.js';
import { resultBodyOf } from '../platform/contract.js';
import { Outbox } from '../platform/outbox.js';
import type { GatewayStore } from '../store.js';

export interface ResultService {
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Stores results durably, with the instrument's counter state when given, in one transaction
   * (throws when it cannot); returns those not captured before.
   */
  sink(results: LabResult[], counter?: { key: string; state: unknown }): LabResult[];
  onResults(listener: (results: readonly LabResult[]) => void): void;
}

export interface ResultServiceDeps {
  config: SiteConfig;
  link: MqttLink;
  topics: Topics;
  log: Logger;
  metrics: Metrics;
  /** The gateway's store, open from start() on. */
  store: () => GatewayStore;
  /** The platform's outbox when the site forwards to one; results are then queued for upload too. */
  platformOutbox?: () => Outbox | undefined;
  notifyPlatform?: () => void;
}

export function createResultService(opts: ResultServiceDeps): ResultService {
  const { config, link, topics, log } = opts;
  const instruments = new Map(config.equipment.map((e) => [e.id, { id: e.id, category: e.category, name: e.name }]));
  const listeners: Array<(results: readonly LabResult[]) => void> = [];
  const capturedTotal = new Counter({
    name: 'gateway_lab_results_total',
    help: 'Lab results captured (each once), by instrument',
    labelNames: ['instrument'],
    registers: [opts.metrics],
  });
  let own: Outbox | undefined;
  const store = () => opts.platformOutbox?.() ?? own;

  return {
    async start() {
      // Without a platform the store still remembers every result, so none is taken twice.
      if (!opts.platformOutbox) own = new Outbox(opts.store());
    },
    async stop() {
      own?.close();
      own = undefined;
    },
    sink(results, counter) {
      const s = store();
      if (!s) throw new Error('The result store is not open');
      const forward = opts.platformOutbox !== undefined;
      const fresh = opts.store().transaction(() => {
        const taken = s.addResults(
          results,
          forward ? (r) => resultBodyOf(r, instruments.get(r.instrument), config.gateway.id, config.gateway.site) : undefined,
        );
        if (counter) opts.store().saveCounter(counter.key, counter.state);
        return taken;
      });
      if (fresh.length === 0) return fresh;
      if (forward) opts.notifyPlatform?.();
      for (const r of fresh) {
        capturedTotal.inc({ instrument: r.instrument });
        link.publishEvent(topics.results(r.instrument), r, false);
      }
      // One line per batch: a message of thousands of results must not write thousands of lines.
      const first = fresh[0]!;
      if (fresh.length === 1)
        log.info(
          {
            instrument: first.instrument,
            sampleId: first.sampleId,
            analyte: first.analyte,
            value: first.value,
            unit: first.unit,
            resultId: first.resultId,
          },
          'Lab result captured',
        );
      else
        log.info(
          { instrument: first.instrument, results: fresh.length, samples: [...new Set(fresh.map((r) => r.sampleId))].slice(0, 10) },
          'Lab results captured',
        );
      for (const l of listeners) {
        try {
          l(fresh);
        } catch (err) {
          log.error({ err }, 'Result listener failed');
        }
      }
      return fresh;
    },
    onResults: (l) => void listeners.push(l),
  };
}
