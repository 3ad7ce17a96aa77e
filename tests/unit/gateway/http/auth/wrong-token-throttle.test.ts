// The wrong-token count per address alone: its per-minute share, and its bound on the addresses it
// remembers (reached here with 10,001 addresses, which through the plugin would be 10,001 requests).
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../../../../gateway/log.js';
import {
  MAX_FAILING_ADDRESSES,
  MAX_FAILURES_PER_MINUTE,
  WrongTokenThrottle,
} from '../../../../../gateway/http/auth/wrong-token-throttle.js';

function throttle() {
  const logs: Array<{ msg: string } & Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (l: string) => void logs.push(JSON.parse(l) as (typeof logs)[number]) }) as Logger;
  return { throttle: new WrongTokenThrottle(log), logs };
}

describe('WrongTokenThrottle', () => {
  it("counts an address's share of wrong tokens within a minute, then counts it afresh", () => {
    const { throttle: t } = throttle();
    for (let k = 0; k < MAX_FAILURES_PER_MINUTE; k++) expect(t.guess('10.0.0.1', 1000 + k)).toBe(true);
    expect(t.guess('10.0.0.1', 2000)).toBe(false);
    expect(t.guess('10.0.0.2', 2000)).toBe(true);
    expect(t.guess('10.0.0.1', 1000 + 60_000 + MAX_FAILURES_PER_MINUTE)).toBe(true);
  });

  it('forgets the stalest address beyond its bound, and says so', () => {
    const { throttle: t, logs } = throttle();
    for (let k = 0; k < MAX_FAILURES_PER_MINUTE; k++) t.guess('first', k);
    expect(t.guess('first', 100)).toBe(false);
    for (let k = 0; k < MAX_FAILING_ADDRESSES; k++) t.guess(`10.1.${k >> 8}.${k & 255}`, 200);
    const warned = logs.filter((l) => /Wrong tokens from too many addresses/.test(l.msg));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ ip: 'first', forgottenInAll: 1 });
    // Forgotten: its next wrong tokens count from zero.
    expect(t.guess('first', 300)).toBe(true);
  });

  it('forgets the addresses quiet for a minute, so they no longer count toward its bound', () => {
    const { throttle: t, logs } = throttle();
    for (let k = 0; k < MAX_FAILURES_PER_MINUTE; k++) t.guess('late', 50_000);
    for (let k = 0; k < MAX_FAILING_ADDRESSES - 1; k++) t.guess(`10.1.${k >> 8}.${k & 255}`, 0);
    t.forgetQuiet(60_000);
    // Without that, these would push out the stalest addresses, 'late' first.
    for (let k = 0; k < MAX_FAILING_ADDRESSES - 1; k++) t.guess(`10.2.${k >> 8}.${k & 255}`, 60_002);
    // 'late' had its wrong tokens within the minute: still remembered and counted.
    expect(t.guess('late', 60_003)).toBe(false);
    expect(logs.filter((l) => /Wrong tokens from too many addresses/.test(l.msg))).toHaveLength(0);
  });
});
