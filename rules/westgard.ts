// Westgard multirules over the control results of one instrument and analyte (pure, no I/O). A control
// is judged by its z-score against its level's target, z = (value - mean) / sd, together with the
// controls before it:
//
//   1-2s  warning    this control beyond mean ± 2 sd
//   1-3s  rejection  this control beyond mean ± 3 sd
//   2-2s  rejection  this control and the one before it of the same level beyond the same 2 sd limit
//                    (across runs), or this control and another level's control of the same run
//                    beyond the same 2 sd limit (within a run)
//   R-4s  rejection  within a run, one control beyond +2 sd and another level's beyond -2 sd
//   4-1s  rejection  this control and the 3 before it of the same level beyond the same 1 sd limit
//   10x   rejection  this control and the 9 before it of the same level on the same side of the mean
//
// Choices where the multirule leaves room:
// - "Beyond" is strict: a control exactly at 2 sd does not count for 1-2s (nor 2-2s, R-4s), one
//   exactly on the mean is on neither side (it breaks a 10x run).
// - Every rule is applied to every control, as laboratory information systems do, not only after a
//   1-2s warning (Westgard's manual chart): 4-1s and 10x can fire on a control within 2 sd.
// - A rule fires only with the new control in its pattern: a pattern found earlier was judged then.
// - 4-1s and 10x look across runs within one level only (each level has its own trend).
// - A run is the controls of the levels measured together: another level's latest control is in this
//   control's run when its result time is within the run window of this one (the site file's
//   qc.run_window) and it came after this level's previous control (a level measured twice has
//   started a new run). Instruments rarely mark runs, and one run may arrive as one message or as
//   one message per control, so the result times decide.
// - A rejected control does not stay in the history the rules look at across runs (2-2s of one
//   level, 4-1s, 10x): its run was rejected and dealt with, and a rerun after the correction is
//   judged on its own (it is still shown). Within its own run it still counts: another level's
//   control of that run beyond 2 sd is judged with it by 2-2s and R-4s (a +3.5 level 1 and a -2.5
//   level 2 of one run are an R-4s, the level 2 rejected too), and it marks its level as measured
//   (a control of that level after it starts a new run).

export const WESTGARD_RULES = ['1-2s', '1-3s', '2-2s', 'R-4s', '4-1s', '10x'] as const;
export type WestgardRule = (typeof WESTGARD_RULES)[number];

const ALL_RULES: ReadonlySet<WestgardRule> = new Set(WESTGARD_RULES);

/** The most controls of one level the rules read: 10x looks back the furthest. */
export const HISTORY_PER_LEVEL = 10;

export type ControlStatus = 'accepted' | 'warning' | 'rejected';

/** A control kept for the rules: its z-score and its place in the analyte's sequence of controls. */
export interface ControlPoint {
  z: number;
  /** Counts up by one per control of the analyte (all levels): tells which came after which. */
  seq: number;
  /** The control's result time (epoch ms): tells which controls share a run. */
  ts: number;
  /** A rejected control, kept as its level's latest only for the rules within its run. */
  rejected?: true;
}

/**
 * The controls of one analyte the rules read: per level, at most HISTORY_PER_LEVEL not rejected,
 * oldest first, then the level's latest control when it was rejected.
 */
export type ControlHistory = Record<string, readonly ControlPoint[]>;

export interface Judgement {
  status: ControlStatus;
  /** The rules that fired, in WESTGARD_RULES order; empty when accepted. */
  rules: WestgardRule[];
  z: number;
}

/** z-score of a value against its target; the target's sd is > 0 (the site file's schema checks it). */
export function zScore(value: number, target: { mean: number; sd: number }): number {
  return (value - target.mean) / target.sd;
}

export interface JudgeOptions {
  /** The rules in force (default: all six). */
  rules?: ReadonlySet<WestgardRule>;
  /** Controls of other levels at most this far apart in result time are one run (default 30 min). */
  runWindowMs?: number;
}

export const DEFAULT_RUN_WINDOW_MS = 30 * 60_000;

/**
 * Judges a new control of `level` (its z-score, its result time) against the analyte's history (the
 * controls before it, which it does not change) and the rules in force.
 */
export function judge(history: ControlHistory, level: string, control: { z: number; ts: number }, opts: JudgeOptions = {}): Judgement {
  const rules = opts.rules ?? ALL_RULES;
  const window = opts.runWindowMs ?? DEFAULT_RUN_WINDOW_MS;
  const { z } = control;
  const all = history[level] ?? [];
  const own = all.at(-1)?.rejected ? all.slice(0, -1) : all;
  const previous = all.at(-1);
  // The other levels' latest controls of this run: close in time, and after this level's previous control.
  const inRun: number[] = [];
  for (const [other, points] of Object.entries(history)) {
    if (other === level) continue;
    const last = points.at(-1);
    if (last && Math.abs(control.ts - last.ts) <= window && (!previous || last.seq > previous.seq)) inRun.push(last.z);
  }
  const side = Math.sign(z);
  /** The last n of this level, the new control included, all beyond `limit` on the new control's side. */
  const lastBeyond = (n: number, limit: number) => {
    if (own.length < n - 1 || side === 0) return false;
    return [...own.slice(own.length - (n - 1)).map((p) => p.z), z].every((v) => v * side > limit);
  };
  const fired: WestgardRule[] = [];
  const check: Record<WestgardRule, () => boolean> = {
    '1-2s': () => Math.abs(z) > 2,
    '1-3s': () => Math.abs(z) > 3,
    '2-2s': () => lastBeyond(2, 2) || (Math.abs(z) > 2 && inRun.some((v) => v * side > 2)),
    'R-4s': () => Math.abs(z) > 2 && inRun.some((v) => v * side < -2),
    '4-1s': () => lastBeyond(4, 1),
    '10x': () => lastBeyond(10, 0),
  };
  for (const rule of WESTGARD_RULES) if (rules.has(rule) && check[rule]()) fired.push(rule);
  const rejected = fired.some((r) => r !== '1-2s');
  return { status: rejected ? 'rejected' : fired.length > 0 ? 'warning' : 'accepted', rules: fired, z };
}

/**
 * The history after a judged control: each level keeps its last HISTORY_PER_LEVEL controls not
 * rejected, then its latest when that one was rejected (see above: only its run reads it).
 */
export function remember(history: ControlHistory, level: string, point: ControlPoint, status: ControlStatus): ControlHistory {
  const kept = (history[level] ?? []).filter((p) => !p.rejected);
  const { rejected: _rejected, ...plain } = point;
  if (status === 'rejected')
    return { ...history, [level]: [...kept.slice(Math.max(0, kept.length - HISTORY_PER_LEVEL)), { ...plain, rejected: true }] };
  const own = [...kept, plain];
  return { ...history, [level]: own.slice(Math.max(0, own.length - HISTORY_PER_LEVEL)) };
}
