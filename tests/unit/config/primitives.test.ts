import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../../drivers/common/primitives.js';
import { backoffDelay } from '../../../drivers/common/backoff.js';

describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['5s', 5000],
    ['1.5m', 90_000],
    ['2h', 7_200_000],
    ['0s', 0],
  ])('%s is %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['5', '5 s', 's', '-1s', '1d', ''])('refuses %j', (text) => expect(parseDuration(text)).toBeUndefined());
});

describe('backoff', () => {
  const opts = { initial_delay: 1000, max_delay: 30_000, jitter: 0.2 };
  it('doubles from the initial delay up to the maximum', () => {
    const mid = () => 0.5;
    expect([0, 1, 2, 3, 4, 5, 6, 40].map((a) => backoffDelay(a, opts, mid))).toEqual([
      1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000,
    ]);
  });
  it('spreads each wait by the jitter share', () => {
    expect(backoffDelay(2, opts, () => 0)).toBe(3200);
    expect(backoffDelay(2, opts, () => 1)).toBe(4800);
    expect(backoffDelay(2, { ...opts, jitter: 0 }, Math.random)).toBe(4000);
  });
});
