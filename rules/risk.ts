// Risk of one equipment as a likelihood x consequence matrix (the approach of ISO 31000 / GB/T
// 27921 risk matrices): factors give points (each min(cap, weight x value)), their sum gives the
// likelihood class 1..5, the equipment's consequence class 1..4 comes from its template, and the
// risk index L x C maps to the four warning levels. Every factor that gave points is listed with
// its value, weight and cap, so a safety engineer can redo the sum by hand (docs/risk.md).
import {
  DEFAULT_FACTORS,
  DEFAULT_LEVELS,
  DEFAULT_LIKELIHOOD,
  RISK_FACTORS,
  type FactorOverrides,
  type RiskFactor,
} from '../config/risk-schema.js';
import { LEVELS, type Level } from './types.js';

export type Weights = Record<RiskFactor, { weight: number; cap: number }>;

/** The weights of one equipment: the defaults, then its template's, then the site's `risk.factors`. */
export function effectiveWeights(...overrides: Array<FactorOverrides | undefined>): Weights {
  const out = {} as Weights;
  for (const f of RISK_FACTORS) {
    let { weight, cap } = DEFAULT_FACTORS[f];
    for (const o of overrides) {
      weight = o?.[f]?.weight ?? weight;
      cap = o?.[f]?.cap ?? cap;
    }
    out[f] = { weight, cap };
  }
  return out;
}

export interface FactorValue {
  factor: RiskFactor;
  value: number;
  detail?: string | undefined;
}

export interface FactorPoints extends FactorValue {
  weight: number;
  cap: number;
  points: number;
}

export interface RiskScale {
  /** Points from which the likelihood is class 2, 3, 4, 5. */
  likelihood: readonly number[];
  /** Risk index from which the level is yellow, orange, red. */
  levels: { yellow: number; orange: number; red: number };
}

export const DEFAULT_SCALE: RiskScale = { likelihood: DEFAULT_LIKELIHOOD, levels: DEFAULT_LEVELS };

export interface Score {
  level: Level;
  /** The risk index, likelihood x consequence (1..20). */
  score: number;
  likelihood: number;
  consequence: number;
  points: number;
  /** The factors that gave points, most first. */
  factors: FactorPoints[];
}

/** Scores one equipment from its factor values (factors with value 0 may be left out). */
export function score(values: readonly FactorValue[], weights: Weights, consequence: number, scale: RiskScale = DEFAULT_SCALE): Score {
  const factors: FactorPoints[] = [];
  let points = 0;
  for (const v of values) {
    const { weight, cap } = weights[v.factor];
    const p = Math.round(Math.min(cap, weight * v.value) * 100) / 100;
    if (!(p > 0)) continue;
    points += p;
    factors.push({ ...v, weight, cap, points: p });
  }
  points = Math.round(points * 100) / 100;
  factors.sort((a, b) => b.points - a.points || RISK_FACTORS.indexOf(a.factor) - RISK_FACTORS.indexOf(b.factor));
  const likelihood = 1 + scale.likelihood.filter((t) => points >= t).length;
  const c = Math.min(4, Math.max(1, Math.round(consequence)));
  const index = likelihood * c;
  const { yellow, orange, red } = scale.levels;
  const level: Level = index >= red ? 'red' : index >= orange ? 'orange' : index >= yellow ? 'yellow' : 'blue';
  return { level, score: index, likelihood, consequence: c, points, factors };
}

/** What must survive a restart: the hysteresis and the change counter (exactly-once ids of `gw.risk.v1`). */
export interface PersistedRisk {
  level: Level;
  /** When the level was reached (ms). */
  since: number;
  /** Changes of level so far; the n-th change is `risk-<equipment>-<n>`. */
  changes: number;
  /** A lower level computed since this time, not yet held for `hold`. */
  pendingSince?: number | undefined;
  /** The highest level computed since pendingSince. */
  pendingLevel?: Level | undefined;
}

export function initialRisk(now: number): PersistedRisk {
  return { level: 'blue', since: now, changes: 0 };
}

const rank = (l: Level) => LEVELS.indexOf(l);

/**
 * The level after `computed` at `now`: up at once; down only once a lower level has held for
 * `holdMs`, and then to the highest level computed during the hold. Returns the state unchanged
 * (the same object) when nothing moved, so callers can tell what to persist.
 */
export function applyHysteresis(state: PersistedRisk, computed: Level, now: number, holdMs: number): PersistedRisk {
  if (rank(computed) > rank(state.level)) return { level: computed, since: now, changes: state.changes + 1 };
  if (computed === state.level) {
    return state.pendingSince === undefined ? state : { level: state.level, since: state.since, changes: state.changes };
  }
  // A clock stepped back (NTP) puts the hold's start in the future: the hold starts again now rather
  // than wait, level held, for the clock to catch up with it.
  if (state.pendingSince === undefined || now < state.pendingSince) return { ...state, pendingSince: now, pendingLevel: computed };
  const pendingLevel = rank(computed) > rank(state.pendingLevel ?? computed) ? computed : (state.pendingLevel ?? computed);
  if (now - state.pendingSince >= holdMs) {
    const next: PersistedRisk = { level: pendingLevel, since: now, changes: state.changes + 1 };
    // Still lower than where it went: the next step down waits its own hold.
    return rank(computed) < rank(pendingLevel) ? { ...next, pendingSince: now, pendingLevel: computed } : next;
  }
  return pendingLevel === state.pendingLevel ? state : { ...state, pendingLevel };
}

export interface RiskAssessment {
  equipment: string;
  name?: string | undefined;
  category: string;
  /** The level after hysteresis. */
  level: Level;
  /** The risk index L x C of this computation. */
  score: number;
  likelihood: number;
  consequence: number;
  points: number;
  /** Every factor that gave points, with its value, weight, cap and points. */
  factors: FactorPoints[];
  /** The level computed now, before hysteresis (lower than `level` while a lower level is held). */
  computedLevel: Level;
  /** When `level` was reached (ms). */
  since: number;
  computedAt: number;
}

export interface RiskChange {
  equipment: string;
  from: Level;
  to: Level;
  /** The change number: `changes` of the persisted state after it. */
  change: number;
  assessment: RiskAssessment;
}
