import type { ReconnectOptions } from './primitives.js';

/** Delay before reconnect attempt `attempt` (0-based): exponential, capped, with jitter. */
export function backoffDelay(attempt: number, opts: ReconnectOptions, random: () => number = Math.random): number {
  const base = Math.min(opts.max_delay, opts.initial_delay * 2 ** Math.min(attempt, 30));
  const spread = base * opts.jitter;
  return Math.max(0, Math.round(base - spread + 2 * spread * random()));
}
