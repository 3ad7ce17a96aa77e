import { describe, expect, it } from 'vitest';
import { AlarmKpi, median, percentile } from '../../../rules/kpi.js';
import type { ActiveAlarm, AlarmEvent, AlarmOrigin, Level } from '../../../rules/types.js';

const N = 1_800_000_000_000;
const MIN = 60_000;
const S = 1000;
/** `x` minutes before now. */
const ago = (x: number) => N - x * MIN;

let seq = 0;
function ev(type: AlarmEvent['type'], ts: number, key: string, incidentId: string, level: Level, origin?: AlarmOrigin): AlarmEvent {
  const [equipment, rule] = key.split('/') as [string, string];
  return {
    eventId: `e${++seq}`,
    incidentId,
    type,
    state: 'active_unacknowledged',
    level,
    site: 'plant-1',
    equipment,
    rule,
    message: '',
    ts,
    ...(origin ? { origin } : {}),
  };
}

function active(key: string, state: ActiveAlarm['state'], raisedAt: number, origin?: AlarmOrigin): ActiveAlarm {
  const [equipment, rule] = key.split('/') as [string, string];
  return {
    key,
    equipment,
    rule,
    state,
    level: 'yellow',
    incidentId: key,
    message: '',
    raisedAt,
    uncertain: false,
    ...(origin ? { origin } : {}),
  };
}

/**
 * The history, by 10-minute period of the last hour (p0 = 60..50 min ago ... p5 = the last 10 min):
 *  p5: B-1/a (yellow) raised 12 times 30 s apart from 9 min ago, each cleared 5 s later; flagged chattering 8 min ago.
 *  p2: B-1/b (orange) raised 35 min ago, acknowledged 34 min ago; E-1/c (red) raised 33 min ago, acknowledged 28 min ago,
 *      shelved 30 min ago and unshelved 10 min ago.
 *  p0: E-1/d (blue) raised 55 min ago, acknowledged 30 s later, cleared 50 min ago.
 *  Before the hour: E-1/e (yellow) raised 80 min ago, shelved 70 min ago, acknowledged 50 min ago, unshelved 45 min ago.
 *  Not ISA alarms: B-1/a.predicted raised 20 min ago (predicted), L-1/inspection.overdue raised 25 min ago (administrative).
 */
function history(): AlarmEvent[] {
  const out: AlarmEvent[] = [ev('raised', ago(80), 'E-1/e', 'e1', 'yellow'), ev('shelved', ago(70), 'E-1/e', 'e1', 'yellow')];
  out.push(ev('raised', ago(55), 'E-1/d', 'd1', 'blue'), ev('acknowledged', ago(55) + 30 * S, 'E-1/d', 'd1', 'blue'));
  out.push(ev('cleared', ago(50), 'E-1/d', 'd1', 'blue'), ev('acknowledged', ago(50), 'E-1/e', 'e1', 'yellow'));
  out.push(ev('unshelved', ago(45), 'E-1/e', 'e1', 'yellow'));
  out.push(ev('raised', ago(35), 'B-1/b', 'b1', 'orange'), ev('acknowledged', ago(34), 'B-1/b', 'b1', 'orange'));
  out.push(ev('raised', ago(33), 'E-1/c', 'c1', 'red'), ev('shelved', ago(30), 'E-1/c', 'c1', 'red'));
  out.push(ev('acknowledged', ago(28), 'E-1/c', 'c1', 'red'));
  out.push(ev('raised', ago(25), 'L-1/inspection.overdue', 'l1', 'yellow', 'administrative'));
  out.push(ev('raised', ago(20), 'B-1/a.predicted', 'p1', 'yellow', 'predicted'));
  out.push(ev('unshelved', ago(10), 'E-1/c', 'c1', 'red'));
  for (let k = 0; k < 12; k++) {
    const t = ago(9) + k * 30 * S;
    out.push(ev('raised', t, 'B-1/a', `a${k}`, 'yellow'), ev('cleared', t + 5 * S, 'B-1/a', `a${k}`, 'yellow'));
    if (k === 2) out.push(ev('chattering', ago(8), 'B-1/a', `a${k}`, 'yellow'));
  }
  return out;
}

const activeNow = [
  active('E-1/c', 'active_acknowledged', ago(33)),
  active('S-1/old', 'active_unacknowledged', ago(25 * 60)),
  active('S-1/old2', 'active_acknowledged', ago(30 * 60)),
  active('S-1/sh', 'shelved', ago(120)),
  active('L-1/inspection.overdue', 'active_unacknowledged', ago(48 * 60), 'administrative'),
];

function kpi(operators = 1) {
  const k = new AlarmKpi({ operators });
  k.add(history());
  k.setActive(activeNow);
  return k;
}

describe('ISA-18.2 alarm KPIs', () => {
  it('computes the site figures of the last hour', () => {
    const r = kpi().report(60 * MIN, N);
    // ISA alarms raised in the hour: 12 (a) + 1 (b) + 1 (c) + 1 (d) = 15; e was raised before the hour.
    expect(r.annunciated).toBe(15);
    expect(r.predicted).toBe(1);
    expect(r.administrative).toBe(1);
    // 15 alarms / 1 operator / 6 periods = 2.5.
    expect(r.perOperatorPer10Min).toBe(2.5);
    // Periods: p5 = 12 (> 10: a flood), p2 = 2, p0 = 1, the others 0: 1 of 6 = 16.67 %.
    expect(r.floodPercent).toBe(16.67);
    expect(r.peakPer10Min).toBe(12);
    // Active now, ISA only: S-1/old (25 h, unacknowledged) and S-1/old2 (30 h, acknowledged) are standing; only old is stale.
    expect([r.standing, r.stale, r.shelvedNow]).toEqual([2, 1, 1]);
    expect(r.chattering).toBe(1);
    // Each of the 12 a's cleared 5 s after it was raised; d took 5 minutes.
    expect(r.fleeting).toBe(12);
    // Shelves that ended in the hour: c 30 -> 10 min ago = 20 min; e 70 -> 45 min ago = 25 min. Median (20 + 25) / 2 = 22.5 min.
    expect(r.shelveDurations).toEqual({ count: 2, median: 22.5 * MIN, max: 25 * MIN });
    // Raised in the hour and acknowledged: d 30 s, b 60 s, c 5 min = 300 s. Median 60 s; p90 by nearest rank: ceil(0.9 x 3) = 3rd = 300 s.
    expect(r.timeToAcknowledge).toEqual({ count: 3, median: 60 * S, p90: 300 * S, max: 300 * S });
    expect(r.top.map((t) => [t.key, t.count])).toEqual([
      ['B-1/a', 12],
      ['B-1/b', 1],
      ['E-1/c', 1],
      ['E-1/d', 1],
    ]);
    // Low = yellow + blue = 12 + 1 = 13 of 15 = 86.67 %; medium (orange) 1 = 6.67 %; high (red) 1 = 6.67 %.
    expect(r.priority).toEqual({ low: 86.67, medium: 6.67, high: 6.67, target: { low: 80, medium: 15, high: 5 } });
    expect(r.dropped).toBe(0);
  });

  it('computes the last 10 minutes', () => {
    const r = kpi().report(10 * MIN, N);
    // Only the 12 a's: 12 per operator in the one period, which is a flood.
    expect([r.annunciated, r.perOperatorPer10Min, r.floodPercent, r.peakPer10Min, r.fleeting]).toEqual([12, 12, 100, 12, 12]);
    // c's shelve ended exactly 10 minutes ago, at the window's start: counted.
    expect(r.shelveDurations.count).toBe(1);
    expect(r.timeToAcknowledge).toEqual({ count: 0, median: undefined, p90: undefined, max: undefined });
  });

  it('computes one equipment', () => {
    const r = kpi().report(60 * MIN, N, 'E-1');
    // c (red) and d (blue): 2 alarms, 1 high and 1 low.
    expect(r.annunciated).toBe(2);
    expect(r.priority).toMatchObject({ low: 50, medium: 0, high: 50 });
    // d 30 s and c 300 s: median (30 + 300) / 2 = 165 s; p90 rank ceil(1.8) = 2nd = 300 s.
    expect(r.timeToAcknowledge).toEqual({ count: 2, median: 165 * S, p90: 300 * S, max: 300 * S });
    expect([r.standing, r.stale, r.shelvedNow, r.fleeting, r.chattering]).toEqual([0, 0, 0, 0, 0]);
  });

  it('divides the rates by the operators', () => {
    const r = kpi(2).report(60 * MIN, N);
    // 15 / 2 operators / 6 periods = 1.25; the 12 of p5 are 6 per operator: no flood.
    expect(r.perOperatorPer10Min).toBe(1.25);
    expect(r.floodPercent).toBe(0);
    expect(r.peakPer10Min).toBe(12);
  });

  it('keeps a bounded history and counts what it dropped', () => {
    const k = new AlarmKpi({ operators: 1, maxEvents: 2000 });
    const raised = Array.from({ length: 5000 }, (_, i) => ev('raised', ago(50) + i, 'B-1/x', `x${i}`, 'blue'));
    k.add(raised);
    expect(k.size).toBe(2000);
    const r = k.report(60 * MIN, N);
    expect(r.annunciated).toBe(2000);
    expect(r.dropped).toBe(3000);
    // Beyond 24 h everything goes, and that is no loss: only what the bound forced out is counted.
    k.prune(N + 25 * 60 * MIN);
    expect(k.size).toBe(0);
    expect(k.report(60 * MIN, N).dropped).toBe(3000);
  });

  it('counts nothing dropped when the events only aged out', () => {
    const k = new AlarmKpi({ operators: 1 });
    k.add([ev('raised', ago(25 * 60), 'B-1/x', 'x1', 'blue'), ev('raised', ago(5), 'B-1/x', 'x2', 'blue')]);
    k.prune(N);
    expect(k.size).toBe(1);
    expect(k.report(60 * MIN, N).dropped).toBe(0);
  });

  it('counts as standing and stale only alarms whose condition is present now', () => {
    const k = new AlarmKpi({ operators: 1 });
    const old = ago(25 * 60);
    k.setActive([
      active('S-1/on', 'active_unacknowledged', old),
      active('S-1/acked', 'active_acknowledged', old),
      active('S-1/returned', 'returned_unacknowledged', old),
      active('S-1/shelved', 'shelved', old),
      active('S-1/oos', 'out_of_service', old),
    ]);
    const r = k.report(60 * MIN, N);
    expect([r.standing, r.stale, r.shelvedNow]).toEqual([2, 1, 1]);
  });

  it('finds the start of a shelve that ended in a short window, up to 24 h back', () => {
    const k = new AlarmKpi({ operators: 1 });
    k.add([ev('shelved', ago(5 * 60), 'E-1/s', 's1', 'yellow'), ev('unshelved', ago(30), 'E-1/s', 's1', 'yellow')]);
    k.prune(N);
    expect(k.report(60 * MIN, N).shelveDurations).toMatchObject({ count: 1, max: 270 * MIN });
  });

  it('takes medians and nearest-rank percentiles', () => {
    expect(median([1, 2, 3, 4])).toBe(2.5);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90)).toBe(9);
    expect(percentile([], 90)).toBeUndefined();
  });
});
