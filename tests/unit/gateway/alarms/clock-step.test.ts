// The alarm service across steps of the wall clock: it finds them (against its monotonic clock) and
// its rule engine keeps the time that really elapsed; each step is logged once, counted, and the moved
// alarm states are committed. Both clocks are the test's; the service's own 250 ms ticks read them.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { AlarmEvent } from '../../../../rules/types.js';
import { fedAlarmService } from '../../../helpers/alarm-service.js';
import { testSite } from '../../../helpers/site.js';

const HOUR = 3_600_000;
const W0 = Date.UTC(2026, 11, 3, 12);

describe('alarm service across steps of the wall clock', () => {
  it('raises an on-delay across a step back and ends a shelve across a step forward on time, says each step once and counts it', async () => {
    const config = testSite({
      extra: ['rules:', '  - { id: high, equipment: B-07, when: steam_pressure > 1.3, on_delay: 10s, level: yellow, message: "high" }'],
    });
    const events: AlarmEvent[] = [];
    const metrics = new Registry();
    const clock = { wall: W0, mono: 1000 };
    const advance = (ms: number) => {
      clock.wall += ms;
      clock.mono += ms;
    };
    const { service, store, feed, lines } = fedAlarmService(config, {
      metrics,
      now: () => clock.wall,
      monotonic: () => clock.mono,
    });
    service.onEvents((e) => void events.push(...e));
    const steps = () => lines.filter((l) => String(l.msg).startsWith('The clock stepped'));
    // The template's own rules (stale data...) have their events too: only this rule's count here.
    const of = (type: string) => events.filter((e) => e.type === type && e.rule === 'high');
    await service.start();

    // The condition begins; 5 s later the clock steps an hour back.
    feed([{ equipment: 'B-07', point: 'steam_pressure', value: 1.4, quality: 'good', ts: clock.wall }]);
    advance(5000);
    clock.wall -= HOUR;
    await expect.poll(() => steps().length).toBe(1);
    expect(steps()[0]).toMatchObject({ level: 40, stepMs: -HOUR, msg: expect.stringContaining('stepped 60 min back') });
    expect(of('raised')).toEqual([]);
    // 5 s more of real time: the 10 s have passed. Raised at once, at its time on the clock as it now is.
    advance(5000);
    await expect.poll(() => of('raised').length).toBe(1);
    expect(of('raised')[0]!.ts).toBe(W0 + 10_000 - HOUR);

    // Shelved for 10 min; 5 min later the clock steps an hour forward.
    const shelvedAt = clock.wall;
    service.shelve('B-07/high', 'op', 'valve being replaced', 600_000);
    advance(300_000);
    clock.wall += HOUR;
    await expect.poll(() => steps().length).toBe(2);
    expect(steps()[1]).toMatchObject({ stepMs: HOUR, msg: expect.stringContaining('stepped 60 min forward') });
    expect(of('unshelved')).toEqual([]);
    // The store has the shelve's end on the new clock, committed with the step.
    expect(store.loadAlarms().get('B-07/high')).toMatchObject({ shelvedUntil: shelvedAt + 600_000 + HOUR });
    advance(300_000);
    await expect.poll(() => of('unshelved').length).toBe(1);
    expect(of('unshelved')[0]!.ts).toBe(shelvedAt + 600_000 + HOUR);

    const text = await metrics.metrics();
    expect(text).toContain('gateway_clock_steps_total{direction="back"} 1');
    expect(text).toContain('gateway_clock_steps_total{direction="forward"} 1');
    // Each step said once.
    expect(steps()).toHaveLength(2);
    await service.stop();
    store.close();
  });
});
