// Steps of the wall clock (NTP or systemd-timesyncd stepping it, an RTC fixed, an operator's `date`):
// the rule engine times its durations on the wall clock, the time its readings and events carry, and
// a step would stretch or cut them by its size (an on-delay pending across a one-hour step back would
// raise an hour late). Comparing the wall clock's advance with a monotonic clock's between two looks
// finds the step; RuleEngine.clockStepped() then moves the engine's times by it. Pure: both clocks
// are given.

/**
 * A difference between the two clocks' advances smaller than this is no step: NTP slewing changes
 * the rate by 0.05 % at most (0.125 ms per 250 ms tick), and a second is below any delay's resolution.
 */
export const CLOCK_STEP_TOLERANCE_MS = 1000;

export class ClockWatch {
  private wall: number;
  private mono: number;

  /** `wall` and `mono` read together (Date.now(), performance.now()). */
  constructor(
    wall: number,
    mono: number,
    private readonly toleranceMs = CLOCK_STEP_TOLERANCE_MS,
  ) {
    this.wall = wall;
    this.mono = mono;
  }

  /**
   * How far the wall clock stepped since the last look (ms, negative: back), 0 when it advanced as
   * the monotonic clock did, within the tolerance. Each look is measured from the one before, so slow
   * corrections (slewing) never add up to a step.
   */
  check(wall: number, mono: number): number {
    const step = wall - this.wall - (mono - this.mono);
    this.wall = wall;
    this.mono = mono;
    return Math.abs(step) >= this.toleranceMs ? step : 0;
  }
}

/** A step as people read it in a log line: "1 h back", "90 s forward". */
export function describeStep(stepMs: number): string {
  const ms = Math.abs(stepMs);
  const size =
    ms < 120_000
      ? `${Math.round(ms / 100) / 10} s`
      : ms < 7_200_000
        ? `${Math.round(ms / 6000) / 10} min`
        : `${Math.round(ms / 360_000) / 10} h`;
  return `${size} ${stepMs < 0 ? 'back' : 'forward'}`;
}
