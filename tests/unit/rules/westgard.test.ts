import { describe, expect, it } from 'vitest';
import {
  HISTORY_PER_LEVEL,
  judge,
  remember,
  zScore,
  WESTGARD_RULES,
  type ControlHistory,
  type Judgement,
  type WestgardRule,
} from '../../../rules/westgard.js';

const MIN = 60_000;

/**
 * A control: `level:z`, measured `at` minutes after the first (default: one run every 8 hours, the
 * controls of one run a minute apart, as `run` says).
 */
interface Control {
  level: string;
  z: number;
  at?: number;
}

/** Judges the controls in order, as the gateway does; returns the last one's judgement. */
function run(controls: Control[], rules?: WestgardRule[]): Judgement {
  let history: ControlHistory = {};
  let last: Judgement | undefined;
  controls.forEach((c, seq) => {
    const ts = (c.at ?? seq * 480) * MIN;
    last = judge(history, c.level, { z: c.z, ts }, rules ? { rules: new Set(rules) } : {});
    history = remember(history, c.level, { z: c.z, seq, ts }, last.status);
  });
  return last!;
}

/** Controls of one level, one run each. */
const level1 = (...z: number[]): Control[] => z.map((v) => ({ level: '1', z: v }));
/** One run of two levels: level 1 then level 2, a minute apart. */
const pair = (z1: number, z2: number, atHours = 0): Control[] => [
  { level: '1', z: z1, at: atHours * 60 },
  { level: '2', z: z2, at: atHours * 60 + 1 },
];

type Case = [name: string, controls: Control[], expected: { status: Judgement['status']; rules: WestgardRule[] }];

// For each rule: a sequence that fires it, and one that just does not.
const CASES: Case[] = [
  ['in control', level1(0.5, -0.8, 1.2), { status: 'accepted', rules: [] }],
  ['1-2s: +2.1 is only a warning', level1(0.3, 2.1), { status: 'warning', rules: ['1-2s'] }],
  ['1-2s: exactly +2.0 is not beyond 2 sd', level1(0.3, 2.0), { status: 'accepted', rules: [] }],
  ['1-2s: -2.5 is only a warning', level1(-2.5), { status: 'warning', rules: ['1-2s'] }],
  ['1-3s: +3.1 rejects', level1(0.1, 3.1), { status: 'rejected', rules: ['1-2s', '1-3s'] }],
  ['1-3s: -3.01 rejects', level1(-3.01), { status: 'rejected', rules: ['1-2s', '1-3s'] }],
  ['1-3s: +2.9 does not', level1(0.1, 2.9), { status: 'warning', rules: ['1-2s'] }],
  ['2-2s across runs: +2.1, +2.1 rejects', level1(2.1, 2.1), { status: 'rejected', rules: ['1-2s', '2-2s'] }],
  ['2-2s across runs: -2.2, -2.3 rejects', level1(-2.2, -2.3), { status: 'rejected', rules: ['1-2s', '2-2s'] }],
  ['2-2s across runs: +2.1, +1.9 does not', level1(2.1, 1.9), { status: 'accepted', rules: [] }],
  ['2-2s across runs: +2.1, -2.1 (opposite limits) does not', level1(2.1, -2.1), { status: 'warning', rules: ['1-2s'] }],
  ['2-2s within a run: level 1 +2.1, level 2 +2.2 rejects', pair(2.1, 2.2), { status: 'rejected', rules: ['1-2s', '2-2s'] }],
  ['2-2s within a run: level 1 +2.1, level 2 +1.9 does not', pair(2.1, 1.9), { status: 'accepted', rules: [] }],
  [
    '2-2s: the other level +2.1 in the previous run does not count',
    [...pair(0, 2.1, 0), { level: '1', z: 2.1, at: 480 }],
    { status: 'warning', rules: ['1-2s'] },
  ],
  ['R-4s within a run: +2.1 and -2.1 rejects', pair(2.1, -2.1), { status: 'rejected', rules: ['1-2s', 'R-4s'] }],
  ['R-4s within a run: -2.5 and +2.4 rejects', pair(-2.5, 2.4), { status: 'rejected', rules: ['1-2s', 'R-4s'] }],
  [
    'R-4s within a run: level 1 +3.5 (rejected by 1-3s), level 2 -2.5 rejects too',
    pair(3.5, -2.5),
    { status: 'rejected', rules: ['1-2s', 'R-4s'] },
  ],
  [
    '2-2s within a run: level 1 +3.5 (rejected by 1-3s), level 2 +2.5 rejects too',
    pair(3.5, 2.5),
    { status: 'rejected', rules: ['1-2s', '2-2s'] },
  ],
  [
    'a rejected control starts a new run of its level: level 1 -2.5, level 1 +3.5 (rejected), level 2 +2.5 is not an R-4s',
    [
      { level: '1', z: -2.5, at: 0 },
      { level: '1', z: 3.5, at: 1 },
      { level: '2', z: 2.5, at: 2 },
    ],
    { status: 'rejected', rules: ['1-2s', '2-2s'] },
  ],
  ['R-4s within a run: +2.1 and -1.9 does not', pair(2.1, -1.9), { status: 'accepted', rules: [] }],
  ['R-4s: across runs (+2.1 then -2.1 a run later, one level) does not', level1(2.1, -2.1), { status: 'warning', rules: ['1-2s'] }],
  [
    'R-4s: the two controls more than the run window apart are not one run',
    [
      { level: '1', z: 2.1, at: 0 },
      { level: '2', z: -2.1, at: 31 },
    ],
    { status: 'warning', rules: ['1-2s'] },
  ],
  ['4-1s: +1.1 four times rejects', level1(1.1, 1.2, 1.5, 1.1), { status: 'rejected', rules: ['4-1s'] }],
  ['4-1s: -1.1 four times rejects', level1(-1.1, -1.2, -1.5, -1.1), { status: 'rejected', rules: ['4-1s'] }],
  ['4-1s: +1.1 three times, then +0.9 does not', level1(1.1, 1.2, 1.5, 0.9), { status: 'accepted', rules: [] }],
  ['4-1s: the other level does not count', [...level1(1.1, 1.2, 1.5), { level: '2', z: 1.1 }], { status: 'accepted', rules: [] }],
  ['10x: ten on the plus side rejects', level1(0.1, 0.5, 0.2, 0.9, 0.3, 0.4, 0.8, 0.2, 0.1, 0.6), { status: 'rejected', rules: ['10x'] }],
  [
    '10x: ten on the minus side rejects',
    level1(-0.1, -0.5, -0.2, -0.9, -0.3, -0.4, -0.8, -0.2, -0.1, -0.6),
    { status: 'rejected', rules: ['10x'] },
  ],
  ['10x: nine on the plus side does not', level1(0.1, 0.5, 0.2, 0.9, 0.3, 0.4, 0.8, 0.2, 0.1), { status: 'accepted', rules: [] }],
  ['10x: one on the mean breaks it', level1(0.1, 0.5, 0.2, 0.9, 0, 0.4, 0.8, 0.2, 0.1, 0.6), { status: 'accepted', rules: [] }],
  [
    'a rejected control is not in the history: +2.1, +2.2 (rejected), then +2.1 rejects again with the first',
    level1(2.1, 2.2, 2.1),
    { status: 'rejected', rules: ['1-2s', '2-2s'] },
  ],
  [
    'a rejected control is not in the history: +3.5 (rejected), then +2.1 is only a warning',
    level1(3.5, 2.1),
    { status: 'warning', rules: ['1-2s'] },
  ],
];

describe('Westgard multirules', () => {
  it.each(CASES)('%s', (_name, controls, expected) => {
    const j = run(controls);
    expect({ status: j.status, rules: j.rules }).toEqual(expected);
    expect(j.z).toBe(controls.at(-1)!.z);
  });

  it('applies only the rules in force: without 2-2s, +2.1, +2.1 is a warning; without 1-2s, +2.1 is accepted', () => {
    const without = WESTGARD_RULES.filter((r) => r !== '2-2s');
    expect(run(level1(2.1, 2.1), without)).toMatchObject({ status: 'warning', rules: ['1-2s'] });
    expect(run(level1(2.1), ['1-3s', '2-2s'])).toMatchObject({ status: 'accepted', rules: [] });
  });

  it('computes z from the level target', () => {
    expect(zScore(11.84, { mean: 11, sd: 0.4 })).toBeCloseTo(2.1, 10);
    expect(zScore(5.1, { mean: 5.5, sd: 0.2 })).toBeCloseTo(-2, 10);
  });

  it('keeps at most the last 10 controls per level, then the latest when it was rejected', () => {
    let h: ControlHistory = {};
    for (let i = 0; i < 25; i++) h = remember(h, '1', { z: i % 2 ? 0.5 : -0.5, seq: i, ts: i }, 'accepted');
    expect(h['1']).toHaveLength(HISTORY_PER_LEVEL);
    expect(h['1']!.map((p) => p.seq)).toEqual([15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
    // A rejected control is kept after them, and only until the next one of its level.
    h = remember(h, '1', { z: 3.5, seq: 25, ts: 25 }, 'rejected');
    expect(h['1']!.map((p) => p.seq)).toEqual([15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
    h = remember(h, '1', { z: 3.6, seq: 26, ts: 26 }, 'rejected');
    expect(h['1']!.map((p) => p.seq)).toEqual([15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 26]);
    h = remember(h, '1', { z: 0, seq: 27, ts: 27 }, 'accepted');
    expect(h['1']!.map((p) => p.seq)).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24, 27]);
  });
});
