// Judge.setThresholds, after a hot reload of the rules (docs/reload.md): an unchanged limit's near
// miss goes on across it, a changed limit is followed from then on.
import { describe, expect, it } from 'vitest';
import { DEFAULT_LEVELS, DEFAULT_LIKELIHOOD } from '../../../config/risk-schema.js';
import type { Reading } from '../../../drivers/types.js';
import { Judge, type JudgeOptions } from '../../../rules/judge.js';

const T0 = 1_800_000_000_000;
const S = 1000;
const config = { hold: 300_000, factors: {}, likelihood: [...DEFAULT_LIKELIHOOD], levels: { ...DEFAULT_LEVELS } };
const lo = (limit: number): JudgeOptions['thresholds'][number] => ({
  equipment: 'B-07',
  rule: 'drum-level.lo',
  level: 'yellow',
  threshold: { point: 'drum_level', limit, direction: 'below', nearMiss: { normal: 0, margin: 5 } },
});
const drum = (value: number, ts: number): Reading[] => [{ equipment: 'B-07', point: 'drum_level', value, quality: 'good', ts }];
const judge = () =>
  new Judge({
    site: 's',
    equipment: [{ id: 'B-07', category: 'boiler', consequence: 4, pollIntervalMs: 1000, reportsOnChange: false }],
    thresholds: [lo(-50)],
    config,
    now: T0,
  });

describe('judge thresholds after a reload', () => {
  it('an unchanged limit goes on with the approach it follows', () => {
    const j = judge();
    expect(j.ingest(drum(-47, T0 + S))).toEqual([]);
    j.setThresholds([lo(-50)]);
    expect(j.ingest(drum(-10, T0 + 2 * S)).map((n) => [n.rule, n.closest])).toEqual([['drum-level.lo', -47]]);
  });

  it('a changed limit is followed from then on, and one removed is no longer', () => {
    const j = judge();
    expect(j.ingest(drum(-47, T0 + S))).toEqual([]);
    // -47 was within 5 of -50; the new limit -60 starts afresh: nothing was approaching it.
    j.setThresholds([lo(-60)]);
    expect(j.ingest(drum(-10, T0 + 2 * S))).toEqual([]);
    expect(j.ingest(drum(-57, T0 + 3 * S))).toEqual([]);
    expect(j.ingest(drum(-10, T0 + 4 * S)).map((n) => n.closest)).toEqual([-57]);
    j.setThresholds([]);
    j.ingest(drum(-57, T0 + 5 * S));
    expect(j.ingest(drum(-10, T0 + 6 * S))).toEqual([]);
  });
});
