import { describe, expect, it } from 'vitest';
import { DEFAULT_LEVELS, DEFAULT_LIKELIHOOD } from '../../../config/risk-schema.js';
import type { Reading } from '../../../drivers/types.js';
import { Judge, type JudgeEquipment, type JudgeOptions } from '../../../rules/judge.js';
import { applyHysteresis, initialRisk, score, effectiveWeights } from '../../../rules/risk.js';
import type { ActiveAlarm, AlarmOrigin, Level } from '../../../rules/types.js';

const T0 = 1_800_000_000_000;
const S = 1000;
const MIN = 60_000;
const config = { hold: 5 * MIN, factors: {}, likelihood: [...DEFAULT_LIKELIHOOD], levels: { ...DEFAULT_LEVELS } };

const boiler: JudgeEquipment = {
  id: 'B-07',
  name: 'No.7 steam boiler',
  category: 'boiler',
  consequence: 4,
  pollIntervalMs: 1000,
  reportsOnChange: false,
};
const lift: JudgeEquipment = { id: 'L-1', category: 'elevator', consequence: 3, pollIntervalMs: 1000, reportsOnChange: false };
const crane: JudgeEquipment = { id: 'C-1', category: 'crane', consequence: 3, pollIntervalMs: 1000, reportsOnChange: false };
const lab: JudgeEquipment = { id: 'LAB-1', category: 'lab_analyzer', consequence: 1, pollIntervalMs: 1000, reportsOnChange: true };

function judge(extra: Partial<JudgeOptions> = {}) {
  return new Judge({ site: 'plant-1', equipment: [boiler, lift, crane, lab], thresholds: [], config, now: T0, ...extra });
}

function alarm(
  equipment: string,
  rule: string,
  level: Level,
  opts: { origin?: AlarmOrigin; raisedAt?: number; message?: string } = {},
): ActiveAlarm {
  return {
    key: `${equipment}/${rule}`,
    equipment,
    rule,
    state: 'active_unacknowledged',
    level,
    incidentId: `${equipment}/${rule}`,
    message: opts.message ?? rule,
    raisedAt: opts.raisedAt ?? T0,
    uncertain: false,
    ...(opts.origin ? { origin: opts.origin } : {}),
  };
}

/** Good readings of every equipment at `ts`, so silence does not count. */
function heartbeat(j: Judge, ts: number) {
  j.ingest(['B-07', 'L-1', 'C-1', 'LAB-1'].map((equipment): Reading => ({ equipment, point: 'x', value: 1, quality: 'good', ts })));
}

/** An assessment as docs/risk.md shows it: the table of factors and the result line. */
function render(j: Judge, id: string): string {
  const a = j.assessment(id)!;
  const rows = a.factors.map((f) => `| ${f.factor} | ${f.value} | ${f.weight} | ${f.cap} | ${f.points} |`);
  return [
    '| factor | value | weight | cap | points |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
    `Points ${a.points}: likelihood ${a.likelihood} x consequence ${a.consequence} = risk index ${a.score}: **${a.computedLevel}**.`,
  ].join('\n');
}

describe('the default weights', () => {
  const w = effectiveWeights();
  const levelOf = (consequence: number, ...values: Array<[Parameters<typeof score>[0][number]['factor'], number]>) =>
    score(
      values.map(([factor, value]) => ({ factor, value })),
      w,
      consequence,
    ).level;

  it('leave a quiet boiler blue, and one red alarm makes a boiler, an elevator and a crane red', () => {
    expect(levelOf(4)).toBe('blue');
    expect(levelOf(4, ['alarm_red', 1])).toBe('red');
    expect(levelOf(3, ['alarm_red', 1])).toBe('red');
  });

  it('make a predicted warning and a yellow alarm on a boiler at least orange', () => {
    expect(['orange', 'red']).toContain(levelOf(4, ['predicted', 1], ['alarm_yellow', 1]));
  });

  it('never put a lab analyzer above yellow', () => {
    const everything = effectiveWeights();
    const all = Object.keys(everything).map((factor) => ({ factor: factor as keyof typeof everything, value: 1000 }));
    expect(score(all, everything, 1).level).toBe('yellow');
  });

  it('take the template, then the site, over the defaults', () => {
    const e = effectiveWeights({ near_misses: { weight: 3 } }, { near_misses: { cap: 30 }, standing: { weight: 0 } });
    expect(e.near_misses).toEqual({ weight: 3, cap: 30 });
    expect(e.standing).toEqual({ weight: 0, cap: 15 });
  });
});

describe('hysteresis', () => {
  it('goes up at once and down after the hold, to the highest level of the hold', () => {
    let s = initialRisk(0);
    s = applyHysteresis(s, 'red', 1000, 300_000);
    expect(s).toEqual({ level: 'red', since: 1000, changes: 1 });
    s = applyHysteresis(s, 'blue', 2000, 300_000);
    s = applyHysteresis(s, 'orange', 3000, 300_000);
    s = applyHysteresis(s, 'blue', 301_999, 300_000);
    expect(s.level).toBe('red');
    s = applyHysteresis(s, 'blue', 302_000, 300_000);
    // Orange was computed during the hold: down to orange, and blue waits a hold of its own.
    expect(s).toEqual({ level: 'orange', since: 302_000, changes: 2, pendingSince: 302_000, pendingLevel: 'blue' });
    // Back up to the level before the hold ends: the pending step down is forgotten.
    s = applyHysteresis(s, 'orange', 400_000, 300_000);
    expect(s).toEqual({ level: 'orange', since: 302_000, changes: 2 });
    // Nothing moved: the same object, so nothing to persist.
    expect(applyHysteresis(s, 'orange', 500_000, 300_000)).toBe(s);
  });
});

describe('the judge', () => {
  it('takes the boiler from blue to red through a predicted warning, and back down after the hold', () => {
    const j = judge();
    const at = (t: number, active: ActiveAlarm[]) => {
      heartbeat(j, T0 + t);
      j.activeAlarms(active);
      return j.tick(T0 + t).map((c) => `${c.equipment} ${c.from}->${c.to} #${c.change}`);
    };
    const predicted = alarm('B-07', 'drum-level-low-low.predicted', 'orange', { origin: 'predicted' });
    const low = alarm('B-07', 'drum-level.lo', 'yellow');
    const lowLow = alarm('B-07', 'drum-level-low-low', 'red');
    expect(at(0, [])).toEqual([]);
    expect(j.assessment('B-07')).toMatchObject({ level: 'blue', score: 4, points: 0, factors: [] });
    expect(at(10 * S, [predicted])).toEqual(['B-07 blue->yellow #1']);
    expect(at(20 * S, [predicted, low])).toEqual(['B-07 yellow->orange #2']);
    expect(at(30 * S, [predicted, low, lowLow])).toEqual(['B-07 orange->red #3']);
    expect(j.assessment('B-07')!.factors.map((f) => [f.factor, f.value, f.points, f.detail])).toEqual([
      ['alarm_red', 1, 100, 'drum-level-low-low'],
      ['predicted', 1, 15, 'drum-level-low-low.predicted'],
      ['alarm_yellow', 1, 10, 'drum-level.lo'],
    ]);
    expect(j.takeStates().get('B-07')).toEqual({ level: 'red', since: T0 + 30 * S, changes: 3 });
    // The red alarm clears: orange computed, red held.
    expect(at(40 * S, [predicted, low])).toEqual([]);
    expect(j.assessment('B-07')).toMatchObject({ level: 'red', computedLevel: 'orange' });
    expect(at(60 * S, [])).toEqual([]);
    for (let t = 65 * S; t < 40 * S + 5 * MIN; t += 5 * S) expect(at(t, [])).toEqual([]);
    // Five minutes after the first lower level: down to the highest level of the hold, orange.
    expect(at(40 * S + 5 * MIN, [])).toEqual(['B-07 red->orange #4']);
    expect(at(40 * S + 10 * MIN - S, [])).toEqual([]);
    expect(at(40 * S + 10 * MIN, [])).toEqual(['B-07 orange->blue #5']);
    // Restarted from its persisted state, the counter goes on.
    const states = j.takeStates();
    const again = judge({ restored: states, now: T0 + 11 * MIN });
    heartbeat(again, T0 + 11 * MIN);
    again.activeAlarms([lowLow]);
    expect(again.tick(T0 + 11 * MIN).map((c) => c.change)).toEqual([6]);
  });

  it('counts near misses from readings, by the thresholds of the rules', () => {
    const j = judge({
      thresholds: [
        {
          equipment: 'B-07',
          rule: 'drum-level.lo',
          level: 'yellow',
          threshold: { point: 'drum_level', limit: -50, direction: 'below', nearMiss: { normal: 0, margin: 5 } },
        },
        {
          equipment: 'B-07',
          rule: 'pressure-high',
          level: 'orange',
          threshold: { point: 'steam_pressure', limit: 1.6, direction: 'above' },
        },
      ],
    });
    const r = (point: string, value: number | null, ts: number, quality: Reading['quality'] = 'good'): Reading => ({
      equipment: 'B-07',
      point,
      value,
      quality,
      ts,
    });
    const found = j.ingest([r('drum_level', -20, T0 + S), r('drum_level', -47, T0 + 2 * S), r('drum_level', null, T0 + 3 * S, 'bad')]);
    expect(found).toEqual([]);
    const back = j.ingest([r('steam_pressure', 1.59, T0 + 4 * S), r('drum_level', -10, T0 + 5 * S)]);
    expect(back.map((n) => [n.rule, n.closest, n.enteredAt, n.ts])).toEqual([['drum-level.lo', -47, T0 + 2 * S, T0 + 5 * S]]);
    expect(j.nearMissCount('B-07', T0)).toBe(1);
    expect(j.nearMissCount('B-07', T0 + 6 * S)).toBe(0);
    j.tick(T0 + 6 * S);
    expect(j.assessment('B-07')!.factors).toEqual([
      { factor: 'near_misses', value: 1, weight: 2, cap: 20, points: 2, detail: 'in the last 24 h' },
    ]);
    // 24 h later it no longer counts.
    heartbeat(j, T0 + 25 * 60 * MIN);
    j.tick(T0 + 25 * 60 * MIN);
    expect(j.assessment('B-07')!.factors).toEqual([]);
  });

  it('counts silence beyond three poll intervals, except for equipment that reports on change', () => {
    const j = judge();
    j.tick(T0 + 3 * S);
    expect(j.assessment('B-07')!.factors).toEqual([]);
    j.tick(T0 + 2 * MIN);
    expect(j.assessment('B-07')!.factors).toEqual([
      { factor: 'silence', value: 2, weight: 0.5, cap: 20, points: 1, detail: 'no good reading for 2 min' },
    ]);
    expect(j.assessment('LAB-1')!.factors).toEqual([]);
  });

  it('counts the share of the last hour the connection was down', () => {
    const j = judge();
    j.status('C-1', false, T0 + 10 * MIN);
    j.status('C-1', true, T0 + 16 * MIN);
    j.status('C-1', false, T0 + 60 * MIN);
    heartbeat(j, T0 + 66 * MIN);
    j.tick(T0 + 66 * MIN);
    // The hour from 6 to 66 min: down 10..16 (6 min) and 60..66 (6 min) = 12 of 60 min = 20 %, x 0.5 = 10 points.
    expect(j.assessment('C-1')!.factors).toEqual([
      { factor: 'communication', value: 20, weight: 0.5, cap: 25, points: 10, detail: 'connection down 20 % of the last hour' },
    ]);
  });

  it('counts chattering, standing and overdue administrative alarms, and not a due-soon reminder', () => {
    const j = judge();
    const now = T0 + 25 * 60 * MIN;
    heartbeat(j, now);
    j.alarmEvents([
      {
        eventId: 'x',
        incidentId: 'i',
        type: 'chattering',
        state: 'active_unacknowledged',
        level: 'yellow',
        site: 'plant-1',
        equipment: 'C-1',
        rule: 'wind',
        message: '',
        ts: now,
      },
    ]);
    j.activeAlarms([
      alarm('C-1', 'wind', 'yellow', { raisedAt: T0 }),
      alarm('C-1', 'inspection.overdue-in-use', 'orange', {
        origin: 'administrative',
        message: 'Periodic inspection overdue since 2026-11-30 and the equipment is in use',
      }),
      alarm('C-1', 'maintenance.due-soon', 'blue', { origin: 'administrative' }),
    ]);
    j.tick(now);
    expect(j.assessment('C-1')!.factors.map((f) => [f.factor, f.value, f.points, f.detail])).toEqual([
      ['inspection_overdue', 1, 20, 'Periodic inspection overdue since 2026-11-30 and the equipment is in use'],
      ['alarm_yellow', 1, 10, 'wind'],
      ['chattering', 1, 5, 'wind'],
      ['standing', 1, 5, 'active for more than 24 h: wind'],
    ]);
  });

  it('gives KPIs through the same history', () => {
    const j = judge({ operators: 2 });
    j.alarmEvents([
      {
        eventId: 'x',
        incidentId: 'i',
        type: 'raised',
        state: 'active_unacknowledged',
        level: 'red',
        site: 'plant-1',
        equipment: 'C-1',
        rule: 'r',
        message: '',
        ts: T0,
      },
    ]);
    expect(j.kpi(10 * MIN, T0 + MIN)).toMatchObject({ annunciated: 1, operators: 2, perOperatorPer10Min: 0.5 });
    expect(j.kpi(10 * MIN, T0 + MIN, 'B-07').annunciated).toBe(0);
  });
});

describe('the worked examples of docs/risk.md', async () => {
  const { readFile } = await import('node:fs/promises');
  const doc = await readFile(new URL('../../../docs/risk.md', import.meta.url), 'utf8');
  const examples: Array<{ title: string; id: string; setup: (j: Judge, now: number) => void }> = [
    { title: 'boiler, quiet', id: 'B-07', setup: () => {} },
    {
      title: 'boiler, predicted',
      id: 'B-07',
      setup: (j) => j.activeAlarms([alarm('B-07', 'drum-level-low-low.predicted', 'orange', { origin: 'predicted' })]),
    },
    {
      title: 'boiler, predicted and low',
      id: 'B-07',
      setup: (j) =>
        j.activeAlarms([
          alarm('B-07', 'drum-level-low-low.predicted', 'orange', { origin: 'predicted' }),
          alarm('B-07', 'drum-level.lo', 'yellow'),
        ]),
    },
    {
      title: 'boiler, low-low',
      id: 'B-07',
      setup: (j) =>
        j.activeAlarms([
          alarm('B-07', 'drum-level-low-low.predicted', 'orange', { origin: 'predicted' }),
          alarm('B-07', 'drum-level.lo', 'yellow'),
          alarm('B-07', 'drum-level-low-low', 'red'),
          alarm('B-07', 'low-water-interlock', 'orange'),
        ]),
    },
    {
      title: 'elevator, overdue',
      id: 'L-1',
      setup: (j, now) => {
        j.activeAlarms([alarm('L-1', 'maintenance.overdue-in-use', 'orange', { origin: 'administrative' })]);
        j.status('L-1', false, now - 12 * MIN);
        j.status('L-1', true, now);
      },
    },
    {
      title: 'elevator, overspeed',
      id: 'L-1',
      setup: (j, now) => {
        j.activeAlarms([
          alarm('L-1', 'maintenance.overdue-in-use', 'orange', { origin: 'administrative' }),
          alarm('L-1', 'overspeed', 'red'),
        ]);
        j.status('L-1', false, now - 12 * MIN);
        j.status('L-1', true, now);
      },
    },
    {
      title: 'crane, wind',
      id: 'C-1',
      setup: (j, now) => {
        j.alarmEvents([
          {
            eventId: 'x',
            incidentId: 'i',
            type: 'chattering',
            state: 'active_unacknowledged',
            level: 'yellow',
            site: 'plant-1',
            equipment: 'C-1',
            rule: 'wind-speed-high',
            message: '',
            ts: now,
          },
        ]);
        j.activeAlarms([
          alarm('C-1', 'wind-speed-high', 'yellow'),
          alarm('C-1', 'inspection.overdue', 'yellow', { origin: 'administrative' }),
        ]);
      },
    },
    {
      title: 'crane, overload',
      id: 'C-1',
      setup: (j, now) => {
        j.alarmEvents([
          {
            eventId: 'x',
            incidentId: 'i',
            type: 'chattering',
            state: 'active_unacknowledged',
            level: 'yellow',
            site: 'plant-1',
            equipment: 'C-1',
            rule: 'wind-speed-high',
            message: '',
            ts: now,
          },
        ]);
        j.activeAlarms([
          alarm('C-1', 'wind-speed-high', 'yellow'),
          alarm('C-1', 'inspection.overdue', 'yellow', { origin: 'administrative' }),
          alarm('C-1', 'load-high', 'orange'),
        ]);
      },
    },
    {
      title: 'lab analyzer, red',
      id: 'LAB-1',
      setup: (j) => j.activeAlarms([alarm('LAB-1', 'result-critical', 'red'), alarm('LAB-1', 'qc-failed', 'red')]),
    },
  ];
  for (const ex of examples) {
    it(`shows the ${ex.title} example as the judge computes it`, () => {
      // An hour after start, so the availability covers a whole hour.
      const now = T0 + 60 * MIN;
      const j = judge();
      heartbeat(j, now);
      ex.setup(j, now);
      j.tick(now);
      const block = render(j, ex.id);
      if (!doc.includes(block)) throw new Error(`docs/risk.md lacks the ${ex.title} example as computed:\n\n${block}\n`);
    });
  }
});

describe('which alarms are a risk', () => {
  it('counts an alarm only while its condition is present: not once it returned, nor while shelved or out of service', () => {
    const j = judge();
    heartbeat(j, T0);
    const red = alarm('L-1', 'trapped-passenger', 'red');
    j.activeAlarms([red]);
    j.tick(T0);
    expect(j.assessment('L-1')).toMatchObject({ level: 'red', factors: [{ factor: 'alarm_red', value: 1 }] });
    for (const state of ['returned_unacknowledged', 'shelved', 'out_of_service'] as const) {
      j.activeAlarms([{ ...red, state }]);
      j.tick(T0 + S);
      expect(j.assessment('L-1')!.factors, state).toEqual([]);
      expect(j.assessment('L-1')!.computedLevel, state).toBe('blue');
    }
    j.activeAlarms([{ ...red, state: 'active_acknowledged' }]);
    j.tick(T0 + 2 * S);
    expect(j.assessment('L-1')!.factors.map((f) => f.factor)).toEqual(['alarm_red']);
  });
});

describe('clocks', () => {
  it('counts silence by when readings arrive, not by the device time of a value that has not changed', () => {
    const j = judge();
    // An OPC UA Read of an idle lift: the same value every second, its source time that of its last change.
    for (let t = 0; t <= 45 * MIN; t += S) {
      j.ingest([{ equipment: 'L-1', point: 'load', value: 0, quality: 'good', ts: T0 + t, sourceTs: T0 }]);
      j.tick(T0 + t);
    }
    expect(j.assessment('L-1')).toMatchObject({ level: 'blue', factors: [] });
  });

  it('re-assesses at once after the clock is stepped back, not once it has caught up again', () => {
    const j = judge();
    j.tick(T0 + MIN);
    const back = T0 + MIN - 60 * MIN;
    j.tick(back);
    expect(j.assessment('B-07')!.computedAt).toBe(back);
    j.tick(back + 10 * S);
    expect(j.assessment('B-07')!.computedAt).toBe(back + 10 * S);
    // A boiler silent since the step counts its silence from the step, not from when the clock catches up.
    j.tick(back + 2 * MIN);
    expect(j.assessment('B-07')!.factors.map((f) => [f.factor, f.value])).toEqual([['silence', 2]]);
  });

  it('holds a lower level for the hold after the clock is stepped back, not until the clock catches up', () => {
    let s = applyHysteresis(initialRisk(0), 'red', 1000, 300_000);
    s = applyHysteresis(s, 'blue', 3_600_000, 300_000);
    expect(s).toMatchObject({ level: 'red', pendingSince: 3_600_000 });
    // NTP steps the clock back an hour: the hold starts again from now.
    s = applyHysteresis(s, 'blue', 10_000, 300_000);
    expect(s).toMatchObject({ level: 'red', pendingSince: 10_000 });
    expect(applyHysteresis(s, 'blue', 310_000, 300_000)).toEqual({ level: 'blue', since: 310_000, changes: 2 });
  });
});

describe('predicted warnings', () => {
  it('count one trend once: the lo and lolo predictions of one point are one factor, at the higher level', () => {
    const j = judge();
    heartbeat(j, T0);
    const on = (rule: string, level: Level, point: string) => ({ ...alarm('B-07', rule, level, { origin: 'predicted' }), point });
    j.activeAlarms([
      on('drum-level.lo.predicted', 'blue', 'drum_level'),
      on('drum-level.lolo.predicted', 'orange', 'drum_level'),
      on('steam-pressure.hi.predicted', 'blue', 'steam_pressure'),
    ]);
    j.tick(T0);
    const f = j.assessment('B-07')!.factors.find((x) => x.factor === 'predicted')!;
    expect(f).toMatchObject({ value: 2, points: 30, detail: 'drum-level.lolo.predicted, steam-pressure.hi.predicted' });
  });
});
