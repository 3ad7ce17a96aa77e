// Steps of the wall clock under the rule engine: durations keep the time that really elapsed. Each case
// runs the gateway's loop (a tick every 250 ms, a reading a second, the clock watched before each)
// on a simulated wall clock and a monotonic one, steps the wall clock by an hour, back or forward,
// in the middle of a duration, and checks when (in real elapsed time) the alarm event comes.
import { describe, expect, it } from 'vitest';
import type { Reading } from '../../../drivers/types.js';
import { CLOCK_STEP_TOLERANCE_MS, ClockWatch, describeStep } from '../../../rules/clock.js';
import { RuleEngine } from '../../../rules/engine.js';
import type { AlarmEvent, RuleSpec } from '../../../rules/types.js';
import { lowLevelRule, memoryStore, pointNames } from '../../helpers/rules.js';

const HOUR = 3_600_000;
const TICK_MS = 250;
const T0 = Date.UTC(2026, 11, 3, 12);
const names = pointNames('level');
const rule = (o: Partial<RuleSpec> = {}): RuleSpec => lowLevelRule(names, o);

/** The gateway's loop over the engine, on a wall clock that can step and a monotonic one that cannot. */
class Loop {
  wall = T0;
  mono = 0;
  /** Every event, with the real (monotonic) time it came at and the wall clock then. */
  readonly events: Array<{ event: AlarmEvent; mono: number; wall: number }> = [];
  private readonly watch = new ClockWatch(this.wall, this.mono);
  readonly engine: RuleEngine;
  /** The level each reading carries; null: the device is silent. */
  value: number | null = null;

  constructor(rules: RuleSpec[]) {
    this.engine = new RuleEngine({ site: 's', rules, now: this.wall, newId: idCounter() });
  }

  /** The clock steps: the wall clock moves, no real time passes. */
  step(ms: number): void {
    this.wall += ms;
  }

  /** Real time passes, in ticks, with a reading every second while the device reports. */
  run(ms: number): void {
    const end = this.mono + ms;
    while (this.mono < end) {
      this.mono += TICK_MS;
      this.wall += TICK_MS;
      if (this.value !== null && this.mono % 1000 === 0) {
        this.look();
        this.take(this.engine.ingest([{ equipment: 'B-1', point: 'level', value: this.value, quality: 'good', ts: this.wall }]));
      }
      this.look();
      this.take(this.engine.tick(this.wall));
    }
  }

  act(what: (engine: RuleEngine, now: number) => AlarmEvent[]): void {
    this.look();
    this.take(what(this.engine, this.wall));
  }

  /** Real time of the first event of this type. */
  first(type: AlarmEvent['type']): number | undefined {
    return this.events.find((e) => e.event.type === type)?.mono;
  }

  private look(): void {
    this.engine.clockStepped(this.watch.check(this.wall, this.mono));
  }

  private take(events: AlarmEvent[]): void {
    for (const event of events) this.events.push({ event, mono: this.mono, wall: this.wall });
  }
}

function idCounter(): () => string {
  let n = 0;
  return () => `#${++n}`;
}

interface Case {
  name: string;
  rules: RuleSpec[];
  /** From real time 0: readings, actions. */
  setup(loop: Loop): void;
  /** When the clock steps (real time) and the event awaited, due at `due` (real time). */
  stepAt: number;
  event: AlarmEvent['type'];
  due: number;
}

const raisedFirst = (loop: Loop) => {
  loop.value = -250;
  loop.run(1000);
  expect(loop.first('raised')).toBe(1000);
};

const cases: Case[] = [
  {
    name: 'an on-delay of 10 s is raised 10 s after its condition began',
    rules: [rule({ onDelayMs: 10_000 })],
    setup: (loop) => (loop.value = -250),
    stepAt: 5000,
    event: 'raised',
    // The condition began with the first reading, at 1 s.
    due: 11_000,
  },
  {
    name: 'a stale rule of 30 s is raised 30 s after the last reading',
    rules: [rule({ id: 'silent', condition: { kind: 'stale', afterMs: 30_000 } })],
    setup: (loop) => {
      loop.value = 1;
      loop.run(2000);
      loop.value = null;
    },
    stepAt: 10_000,
    event: 'raised',
    due: 32_000,
  },
  {
    name: 'an off-delay of 10 s clears 10 s after its condition went',
    rules: [rule({ offDelayMs: 10_000 })],
    setup: (loop) => {
      raisedFirst(loop);
      loop.value = -100;
    },
    stepAt: 5000,
    event: 'cleared',
    due: 12_000,
  },
  {
    name: 'an unacknowledged alarm escalates 60 s after it was raised',
    rules: [rule({ level: 'yellow', escalateAfterMs: 60_000 })],
    setup: raisedFirst,
    stepAt: 30_000,
    event: 'escalated',
    due: 61_000,
  },
  {
    name: 'a shelve for 10 min ends 10 min after it was asked',
    rules: [rule()],
    setup: (loop) => {
      raisedFirst(loop);
      loop.act((engine, now) => engine.shelve('B-1/low', 'op', 'pump repaired', 600_000, now));
    },
    stepAt: 300_000,
    event: 'unshelved',
    due: 601_000,
  },
];

describe('rule engine across steps of the wall clock', () => {
  for (const c of cases)
    for (const step of [-HOUR, HOUR]) {
      it(`${c.name}, the clock stepping ${describeStep(step)} meanwhile`, () => {
        const loop = new Loop(c.rules);
        c.setup(loop);
        loop.run(c.stepAt - loop.mono);
        expect(loop.first(c.event)).toBeUndefined();
        loop.step(step);
        loop.run(c.due - loop.mono + 2000);
        // Not early, not late: within a tick of when it is due in real time.
        const at = loop.first(c.event);
        expect(at, `${c.event} at ${at} ms`).toBeGreaterThanOrEqual(c.due);
        expect(at).toBeLessThanOrEqual(c.due + TICK_MS);
        // Its time is on the clock as it now is (what operators and the platform see).
        const e = loop.events.find((x) => x.event.type === c.event)!;
        expect(Math.abs(e.event.ts - e.wall)).toBeLessThanOrEqual(TICK_MS);
      });
    }

  it('a stale rule counts the silence in real time after a step forward: no alarm until its window is over', () => {
    const loop = new Loop([rule({ id: 'silent', condition: { kind: 'stale', afterMs: 30_000 } })]);
    loop.value = 1;
    loop.run(10_000);
    loop.step(HOUR);
    // The readings go on: silence never reaches 30 s.
    loop.run(60_000);
    expect(loop.events.map((e) => e.event.type)).toEqual([]);
  });

  it.each([-HOUR, HOUR])('a rate rule keeps the samples of its window across a step of %i ms', (step) => {
    // Above 10 a second over a 20 s window, from the oldest sample: steady at 0 for 3 s, the clock
    // steps, then 20 more each second: 20/3 s, 40/4 s, 60/5 s is the first above 10.
    const loop = new Loop([rule({ id: 'rise', condition: { kind: 'rate', point: 'level', windowMs: 20_000, perMs: 1000, above: 10 } })]);
    loop.value = 0;
    loop.run(3000);
    loop.step(step);
    for (let k = 0; k < 4; k++) {
      loop.value += 20;
      loop.run(1000);
    }
    expect(loop.first('raised')).toBe(6000);
  });

  it.each([-HOUR, HOUR])('a predicted warning keeps the samples of its series across a step of %i ms', (step) => {
    // Rising 2 a second toward 14, five samples needed: the fifth (at 5 s, after the step) raises it.
    const loop = new Loop([
      rule({
        id: 'low.predicted',
        level: 'yellow',
        condition: { kind: 'predict', point: 'level', direction: 'above', limit: 14, windowMs: 10_000, horizonMs: 60_000, minReadings: 5 },
        origin: 'predicted',
      }),
    ]);
    for (let k = 0; k < 6; k++) {
      if (k === 4) loop.step(step);
      loop.value = 2 * k;
      loop.run(1000);
    }
    expect(loop.first('raised')).toBe(5000);
  });

  it.each([-HOUR, HOUR])('chattering counts the activations of its window across a step of %i ms', (step) => {
    const loop = new Loop([rule()]);
    const toggle = () => {
      loop.value = -250;
      loop.run(1000);
      loop.value = -100;
      loop.run(1000);
    };
    toggle();
    toggle();
    loop.step(step);
    toggle();
    expect(loop.first('chattering')).toBe(5000);
    // And it ends once the first activation (at 1 s) is 60 s old in real time, not an hour off.
    loop.value = null;
    loop.run(62_000);
    expect(loop.first('chattering_ended')).toBeGreaterThanOrEqual(61_000);
    expect(loop.first('chattering_ended')).toBeLessThanOrEqual(61_000 + TICK_MS);
  });
});

describe('clock watch', () => {
  it.each([
    { name: 'both clocks advance alike', wall: 250, mono: 250, step: 0 },
    { name: 'a late tick (the event loop was busy)', wall: 5000, mono: 5000, step: 0 },
    { name: 'slewing (0.05 %)', wall: 250.125, mono: 250, step: 0 },
    { name: 'just below the tolerance', wall: 250 + CLOCK_STEP_TOLERANCE_MS - 1, mono: 250, step: 0 },
    { name: 'a step forward', wall: 250 + HOUR, mono: 250, step: HOUR },
    { name: 'a step back', wall: 250 - HOUR, mono: 250, step: -HOUR },
  ])('$name: $step', ({ wall, mono, step }) => {
    const watch = new ClockWatch(T0, 1000);
    expect(watch.check(T0 + wall, 1000 + mono)).toBe(step);
  });

  it('measures each look from the one before: slewing never adds up to a step, a step is reported once', () => {
    const watch = new ClockWatch(0, 0);
    let wall = 0;
    let mono = 0;
    // A week of ticks, the clock slewed at 0.05 % throughout: 5 min in all, never a step.
    let steps = 0;
    for (let k = 0; k < 2_419_200; k++) if (watch.check((wall += 250.125), (mono += 250)) !== 0) steps++;
    expect(steps).toBe(0);
    expect(wall - mono).toBeGreaterThan(300_000);
    expect(watch.check((wall += 250 - HOUR), (mono += 250))).toBe(-HOUR);
    expect(watch.check(wall + 250, mono + 250)).toBe(0);
  });

  it('describes a step', () => {
    expect(describeStep(-HOUR)).toBe('60 min back');
    expect(describeStep(90_000)).toBe('90 s forward');
    expect(describeStep(3 * HOUR)).toBe('3 h forward');
  });
});

describe('rule engine restarted on a clock that stepped while it was down', () => {
  const level = (ts: number, value: number): Reading[] => [{ equipment: 'B-1', point: 'level', value, quality: 'good', ts }];

  it('a step back: the saved times move back together until the latest is the restart, a pending on-delay with them', () => {
    const store = memoryStore();
    const first = new RuleEngine({ site: 's', rules: [rule({ onDelayMs: 10_000 })], store, now: T0 });
    first.ingest(level(T0 + 1000, -250));
    first.ingest(level(T0 + 5000, -250));
    store.commit(first);
    // Stopped at T0 + 5 s; started 1 s later on a clock an hour back.
    const start = T0 + 6000 - HOUR;
    const second = new RuleEngine({ site: 's', rules: [rule({ onDelayMs: 10_000 })], store, now: start });
    // The latest saved time, when the condition began (T0 + 1 s), is an hour minus 5 s ahead.
    expect(second.restartedBack).toBe(HOUR - 5000);
    // The moved state is what a second restart finds.
    store.commit(second);
    expect(store.data.get('B-1/low')!.pendingSince).toBe(start);
    // The delay counts from the restart at the latest: 10 s, not an hour and 10 s.
    expect(second.ingest(level(start + 1000, -250))).toEqual([]);
    expect(second.tick(start + 9999)).toEqual([]);
    expect(second.tick(start + 10_000)).toMatchObject([{ type: 'raised', ts: start + 10_000 }]);
  });

  it('a step back: a shelve lasts what was left of it, and never beyond its maximum from the restart', () => {
    const store = memoryStore();
    const first = new RuleEngine({ site: 's', rules: [rule()], store, now: T0, maxShelveMs: HOUR });
    first.ingest(level(T0 + 1000, -250));
    first.shelve('B-1/low', 'op', 'repair', 10 * 60_000, T0 + 2000);
    store.commit(first);
    const start = T0 + 3000 - 2 * HOUR;
    const second = new RuleEngine({ site: 's', rules: [rule()], store, now: start, maxShelveMs: HOUR });
    // Raised at T0 + 1 s, the latest saved time: it is moved to the restart's clock.
    expect(second.active()[0]!.shelvedUntil).toBe(start + 10 * 60_000 + 1000);
    // A saved shelve end beyond the maximum (no times to tell the step by) is cut to it.
    store.data.set('B-1/low', { active: false, acked: true, level: 'red', shelvedUntil: start + 5 * HOUR });
    const third = new RuleEngine({ site: 's', rules: [rule()], store, now: start, maxShelveMs: HOUR });
    expect(third.restartedBack).toBe(0);
    expect(third.tick(start + HOUR - 1)).toEqual([]);
    expect(third.tick(start + HOUR)).toMatchObject([{ type: 'unshelved' }]);
  });

  it('no step: saved times in the past are kept as they are', () => {
    const store = memoryStore();
    const first = new RuleEngine({ site: 's', rules: [rule({ onDelayMs: 10_000 })], store, now: T0 });
    first.ingest(level(T0 + 1000, -250));
    store.commit(first);
    const second = new RuleEngine({ site: 's', rules: [rule({ onDelayMs: 10_000 })], store, now: T0 + 6000 });
    expect(second.restartedBack).toBe(0);
    expect(second.ingest(level(T0 + 10_000, -250))).toEqual([]);
    expect(second.tick(T0 + 11_000)).toMatchObject([{ type: 'raised', ts: T0 + 11_000 }]);
  });
});
