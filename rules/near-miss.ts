// Near misses: a value that came within a margin of a limit and went back toward normal without
// crossing it. They are the precursors an alarm count does not show (the drum level that sank to
// -45 mm against a -50 mm alarm and recovered). Pure: fed values in time order, no I/O.
import type { Level, Threshold } from './types.js';

export interface NearMiss {
  equipment: string;
  point: string;
  /** The rule part whose limit was approached. */
  rule: string;
  limit: number;
  direction: 'above' | 'below';
  /** The value nearest the limit during the approach. */
  closest: number;
  /** When the value came within the margin (ms). */
  enteredAt: number;
  /** When it went back out of the margin toward normal (ms): the time of the near miss. */
  ts: number;
  /** The level of the alarm that was nearly raised. */
  level: Level;
}

const IDLE = 0;
const APPROACHING = 1;
/** Beyond the limit: the alarm's business; the way back through the margin is no near miss. */
const CROSSED = 2;

/**
 * One (equipment, point, limit). The approach opens when the value is within `margin` of the limit
 * on the normal side; it closes as a near miss only when the value is back beyond the margin's edge
 * by a further half margin (or at normal, when that is nearer): noise around the edge of the margin
 * is one approach, not one near miss per wobble.
 */
export class NearMissTracker {
  private phase = IDLE;
  private closest = 0;
  private enteredAt = 0;
  /** Where the margin begins: within it (toward the limit) an approach is open. */
  private readonly edge: number;
  /** Where an approach ends (toward normal from the edge). */
  private readonly reset: number;
  /** +1 when the alarm is above the limit, -1 below: the comparisons are written once for both. */
  private readonly sign: number;

  constructor(
    readonly equipment: string,
    readonly rule: string,
    readonly level: Level,
    readonly threshold: Threshold & { nearMiss: { normal: number; margin: number } },
  ) {
    const { limit, direction, nearMiss } = threshold;
    this.sign = direction === 'above' ? 1 : -1;
    const margin = Math.abs(nearMiss.margin);
    this.edge = limit - this.sign * margin;
    // Half a margin more toward normal, but never past normal itself.
    const halfway = this.edge - (this.sign * margin) / 2;
    this.reset = this.sign * (halfway - nearMiss.normal) < 0 ? nearMiss.normal : halfway;
    if (this.sign * (this.reset - this.edge) > 0) this.reset = this.edge;
  }

  /** One good numeric value at time `ts`; returns the near miss it completes, if any. */
  feed(value: number, ts: number): NearMiss | undefined {
    const s = this.sign;
    const { limit } = this.threshold;
    if (s * (value - limit) >= 0) {
      this.phase = CROSSED;
      return undefined;
    }
    if (this.phase === IDLE) {
      if (s * (value - this.edge) >= 0) {
        this.phase = APPROACHING;
        this.closest = value;
        this.enteredAt = ts;
      }
      return undefined;
    }
    if (this.phase === APPROACHING && s * (value - this.closest) > 0) this.closest = value;
    if (s * (value - this.reset) > 0) return undefined;
    // Back at the reset line: an approach that never crossed is a near miss; after a crossing, only the end of the alarm.
    const was = this.phase;
    this.phase = IDLE;
    if (was !== APPROACHING) return undefined;
    return {
      equipment: this.equipment,
      point: this.threshold.point,
      rule: this.rule,
      limit,
      direction: this.threshold.direction,
      closest: this.closest,
      enteredAt: this.enteredAt,
      ts,
      level: this.level,
    };
  }
}

/** Whether near misses are on for this threshold (its rule sets a margin). */
export function tracksNearMisses(t: Threshold): t is Threshold & { nearMiss: { normal: number; margin: number } } {
  return t.nearMiss !== undefined && Number.isFinite(t.nearMiss.margin) && t.nearMiss.margin > 0;
}
