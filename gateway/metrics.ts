// One Prometheus registry per gateway (prom-client): components register their counters and gauges
// here, and the HTTP API serves it. Not the library's global registry, so two gateways in one
// process (tests, benchmarks) keep their figures apart.
import { Registry, collectDefaultMetrics } from 'prom-client';

export type Metrics = Registry;

export function createMetrics(opts: { defaults?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaults) collectDefaultMetrics({ register: registry, prefix: 'gateway_' });
  return registry;
}
