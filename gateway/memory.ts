// The gateway's memory, where it can be seen: resident set and heap beside the budget set for the
// box (gateway.memory_budget), an estimate per component that holds readings or messages, and a
// warning in the log when the process passes its share of the budget, before the kernel kills it.
import { Gauge } from 'prom-client';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';

/** How often the resident set is checked against the budget. */
const CHECK_MS = 10_000;
/** While above the warning share, the warning is repeated this often. */
const REPEAT_MS = 10 * 60_000;
/** Back below this share of the warning level counts as recovered (no warning flapping at the edge). */
const HYSTERESIS = 0.95;

export interface MemoryWatch {
  /** A component's bytes in memory, read when /metrics is scraped and when a warning is logged. */
  register(component: string, bytes: () => number): void;
  /** Each component's bytes now. */
  components(): Record<string, number>;
  start(): void;
  stop(): void;
  /** One check against the budget now (the timer calls it; tests too). */
  check(): void;
}

export interface MemoryWatchOptions {
  metrics: Metrics;
  log: Logger;
  budget: number;
  warnAt: number;
  /** The resident set in bytes (process.memoryUsage.rss unless a test gives its own). */
  rss?: () => number;
  now?: () => number;
}

export function createMemoryWatch(opts: MemoryWatchOptions): MemoryWatch {
  const { log, budget, warnAt } = opts;
  const rss = opts.rss ?? (() => process.memoryUsage.rss());
  const now = opts.now ?? Date.now;
  const parts = new Map<string, () => number>();
  const components = () => {
    const out: Record<string, number> = {};
    for (const [name, bytes] of parts) {
      try {
        out[name] = Math.max(0, Math.round(bytes()));
      } catch {
        // A component that cannot tell (not started, or stopped) is left out rather than shown as 0.
      }
    }
    return out;
  };
  new Gauge({
    name: 'gateway_memory_budget_bytes',
    help: 'gateway.memory_budget: the resident set the gateway is meant to stay under',
    registers: [opts.metrics],
    collect() {
      this.set(budget);
    },
  });
  new Gauge({
    name: 'gateway_memory_rss_bytes',
    help: 'Resident set of the gateway process',
    registers: [opts.metrics],
    collect() {
      this.set(rss());
    },
  });
  new Gauge({
    name: 'gateway_memory_heap_bytes',
    help: 'JavaScript heap used, and memory outside it held by buffers and typed arrays',
    labelNames: ['kind'],
    registers: [opts.metrics],
    collect() {
      const m = process.memoryUsage();
      this.set({ kind: 'heap_used' }, m.heapUsed);
      this.set({ kind: 'heap_total' }, m.heapTotal);
      this.set({ kind: 'array_buffers' }, m.arrayBuffers);
      this.set({ kind: 'external' }, m.external);
    },
  });
  new Gauge({
    name: 'gateway_memory_component_bytes',
    help: 'Estimated bytes held in memory by a component (trend rings, live-stream buffers, unacknowledged MQTT messages, lines before the spool, alarm events before the store)',
    labelNames: ['component'],
    registers: [opts.metrics],
    collect() {
      for (const [component, bytes] of Object.entries(components())) this.set({ component }, bytes);
    },
  });

  let above = false;
  let warnedAt = 0;
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    const used = rss();
    const limit = budget * warnAt;
    if (used >= limit) {
      if (!above || now() - warnedAt >= REPEAT_MS) {
        log.warn(
          { rss: used, budget, share: Number((used / budget).toFixed(2)), components: components() },
          `Gateway memory passed ${Math.round(warnAt * 100)} % of gateway.memory_budget`,
        );
        warnedAt = now();
      }
      above = true;
    } else if (above && used < limit * HYSTERESIS) {
      above = false;
      log.info({ rss: used, budget }, 'Gateway memory back under its warning level');
    }
  };
  return {
    register: (component, bytes) => void parts.set(component, bytes),
    components,
    start() {
      check();
      timer = setInterval(check, CHECK_MS);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
    check,
  };
}
