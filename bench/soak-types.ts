// What the soak benchmark (bench/soak.ts) and its report (bench/soak-report.ts) share.

export const VARIANTS = ['modbus', 'opcua', 'mix'] as const;
export type Variant = (typeof VARIANTS)[number];

/** One sample of the gateway's process. Heap figures come from /metrics and are missing when a scrape failed. */
export interface SoakSample {
  /** Seconds since the gateway's process was started. */
  t: number;
  rss: number;
  /** VmHWM: the highest resident set so far. */
  peak: number;
  heapUsed?: number;
  heapTotal?: number;
  external?: number;
  arrayBuffers?: number;
  /** gateway_readings_total, all equipment and qualities. */
  readings?: number;
  /** CPU seconds of the gateway's process so far. */
  cpu: number;
}
