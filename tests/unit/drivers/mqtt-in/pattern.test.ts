// Patterns under a time limit: a pattern that backtracks exponentially on a peer's payload is
// stopped, not left to block the event loop, and the next payload is matched as usual.
import { describe, expect, it } from 'vitest';
import { timedPattern } from '../../../../drivers/mqtt-in/pattern.js';
import { PATTERN_TIMEOUT_MS } from '../../../../drivers/mqtt-in/schema.js';

describe('timedPattern', () => {
  it('gives the first capture group, undefined when it took no part, null when the pattern does not match', () => {
    const number = timedPattern('^(-?\\d+(?:\\.\\d+)?)$');
    expect(number('21.5')).toEqual({ ok: true, value: '21.5' });
    expect(number('warm')).toEqual({ ok: true, value: null });
    expect(timedPattern('^x(y)?$')('x')).toEqual({ ok: true, value: undefined });
  });

  it.each([
    ['^(\\w+\\s?)+$', `${'a'.repeat(29)}!`, 'abc', 'abc'],
    ['^(a|a)*$', `${'a'.repeat(29)}b`, 'aaa', 'a'],
  ])('stops %s on a hostile 30-byte payload after the time limit', (source, hostile, ordinary, value) => {
    const match = timedPattern(source);
    const started = performance.now();
    expect(match(hostile)).toEqual({ ok: false, reason: `pattern took over ${PATTERN_TIMEOUT_MS} ms` });
    // Unbounded, each of these takes seconds to minutes; stopped, the limit and a thread's start.
    expect(performance.now() - started).toBeLessThan(1000);
    // The same pattern still serves the next, ordinary payload.
    expect(match(ordinary)).toEqual({ ok: true, value });
  });
});
