// The replay extended to risk (rules/replay.ts): readings through the real rule engine and the real
// Judge, driven as the gateway's alarm and risk services drive them. The demo boiler's recorded
// feed-pump trip is foretold before its red alarm and its risk rises through the predicted warning;
// a steady noisy signal gives nothing; near misses are counted; the risk comes down only after risk.hold.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSite } from '../../../config/load.js';
import { reportsOnChangeOf } from '../../../drivers/index.js';
import type { Reading } from '../../../drivers/types.js';
import { backtest, parseReadingsCsv } from '../../../rules/backtest.js';
import { ruleSpecsOf } from '../../../rules/compile.js';
import { formatEntry, siteRiskReplay, type ReplayEntry } from '../../../rules/replay.js';
import { LEVELS as LEVEL_ORDER } from '../../../rules/types.js';

/**
 * The demo boiler B-07 through a feed-pump trip, polled once a second for 100 s. Made once with
 * drivers/sim/steam-boiler.ts: `steamBoilerAt(s * 1000, { normal: 40_000, hazard: 30_000, recovery:
 * 30_000, repeat: false }, 7)` for s = 0..100, every signal of STEAM_BOILER_SIGNALS, values rounded
 * to 3 decimals, `ts` = 2026-03-01T08:00:00Z + s seconds. It is kept as a file, not recomputed, so
 * that a change to the simulator cannot move what this test replays.
 */
const TRIP = readFileSync(new URL('../../fixtures/boiler-feed-pump-trip.csv', import.meta.url), 'utf8');

/** The demo's boiler as config/demo.yaml declares it (its points from the simulator's device profile). */
const BOILER_SITE = `version: 1
gateway: { id: gw-1, site: plant-1, timezone: Asia/Shanghai }
connections: [{ id: boiler-plc, type: modbus-tcp, host: 127.0.0.1, port: 502 }]
equipment:
  - id: B-07
    name: No.7 steam boiler
    profile: gateway-sim-steam-boiler
    limits: { design_pressure: 1.6, safety_valve_pressure: 1.7 }
    connection: boiler-plc
    unit_id: 1
    poll_interval: 1s
`;

/** A tank with a low limit at -50 (near misses from normal 0: a 5 mm margin) and a red high-pressure rule, no predictions. */
const TANK_SITE = `version: 1
gateway: { id: gw-1, site: plant-1, timezone: Asia/Shanghai }
connections: [{ id: plc, type: modbus-tcp, host: 127.0.0.1, port: 502 }]
equipment:
  - id: V-1
    category: pressure_vessel
    connection: plc
    poll_interval: 1s
    points:
      - { name: level, address: "hr:0", type: int16, unit: mm }
      - { name: pressure, address: "hr:1", type: float32, unit: MPa }
rules:
  - id: level-low
    equipment: V-1
    when: level < -50
    level: yellow
    predict: false
    near_miss: { normal: 0 }
  - id: overpressure
    equipment: V-1
    when: pressure > 1.5
    level: red
    predict: false
risk: { hold: 30s }
`;

const T0 = Date.parse('2026-03-01T08:00:00Z');

function replay(siteYaml: string, readings: readonly Reading[], tailMs?: number): ReplayEntry[] {
  const site = parseSite(siteYaml, { env: {} });
  return siteRiskReplay(site, reportsOnChangeOf(site), { readings, ...(tailMs !== undefined ? { tailMs } : {}) });
}

/** One reading per second per point: `values(s)` gives each point's value at second s. */
function series(equipment: string, seconds: number, values: (s: number) => Record<string, number>): Reading[] {
  const out: Reading[] = [];
  for (let s = 0; s <= seconds; s++)
    for (const [point, value] of Object.entries(values(s))) out.push({ ts: T0 + s * 1000, equipment, point, value, quality: 'good' });
  return out;
}

const risks = (entries: ReplayEntry[]) => entries.flatMap((e) => (e.kind === 'risk' ? [e] : []));
const alarms = (entries: ReplayEntry[]) => entries.flatMap((e) => (e.kind === 'alarm' ? [e] : []));

describe('the recorded feed-pump trip of the demo boiler, replayed with risk', () => {
  const entries = replay(BOILER_SITE, parseReadingsCsv(TRIP));
  const raised = (rule: string) => alarms(entries).find((e) => e.type === 'raised' && e.rule === rule);

  it('raises the predicted low-low warning before the red drum-level alarm', () => {
    const predicted = raised('drum-level-low-low.predicted');
    const red = raised('drum-level-low-low');
    expect(predicted?.origin).toBe('predicted');
    expect(red?.level).toBe('red');
    // Measured: the level falls from 40 s; the prediction comes at 45 s, the red alarm at 54 s (after its 2 s on-delay): 9 s ahead.
    const lead = (red!.ts - predicted!.ts) / 1000;
    expect(lead, `lead ${lead} s`).toBeGreaterThanOrEqual(8);
  });

  it('lets the risk rise blue -> yellow on the predicted warning, orange with the low alarm, then red on the red alarm, each change with its factors', () => {
    const changes = risks(entries);
    expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual(['blue->yellow', 'yellow->orange', 'orange->red']);
    expect(changes.map((c) => c.change)).toEqual([1, 2, 3]);
    const red = raised('drum-level-low-low')!;
    // Yellow comes from the prediction alone, before any alarm of the readings.
    expect(changes[0]!.ts).toBeLessThan(raised('drum-level.lo')!.ts);
    expect(changes[0]!.factors.map((f) => f.factor)).toEqual(['predicted']);
    // The lo and lolo predictions of the drum level are one trend: counted once, even with both active.
    expect(changes[1]!.ts).toBe(raised('drum-level.lo')!.ts);
    expect(changes[1]!.ts).toBeLessThan(red.ts);
    expect(changes[1]!.factors.map((f) => [f.factor, f.value])).toEqual([
      ['predicted', 1],
      ['alarm_yellow', 1],
    ]);
    expect(changes[2]!.ts).toBe(red.ts);
    expect(changes[2]!.factors.map((f) => f.factor)).toEqual(expect.arrayContaining(['alarm_red', 'predicted']));
    for (const c of changes)
      for (const f of c.factors) {
        expect(f.points).toBeGreaterThan(0);
        expect(f.points).toBe(Math.min(f.cap, f.weight * f.value));
      }
    expect(formatEntry(changes[1]!)).toBe(
      '2026-03-01T08:00:48.000Z risk B-07 yellow -> orange (index 12: predicted 1 = 15, alarm_yellow 1 = 10)',
    );
  });

  it('keeps the entries in time order, the alarm events as the plain replay gives them', () => {
    const times = entries.map((e) => e.ts);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    // The judge watches: it changes nothing the engine does.
    const site = parseSite(BOILER_SITE, { env: {} });
    const plain = backtest({ site: 'plant-1', rules: ruleSpecsOf(site, reportsOnChangeOf(site)), readings: parseReadingsCsv(TRIP) });
    expect(plain.length).toBe(10);
    expect(alarms(entries).map(({ kind: _, ...e }) => e)).toEqual(plain);
  });
});

describe("docs/risk.md's boiler example", () => {
  const doc = readFileSync(new URL('../../../docs/risk.md', import.meta.url), 'utf8');
  const from = doc.indexOf('### A steam boiler (consequence 4): a feed-pump trip');
  const section = doc.slice(from, doc.indexOf('\n### ', from + 1));
  // The recorded trip and 12 minutes after it, as the section says it was replayed.
  const changes = risks(replay(BOILER_SITE, parseReadingsCsv(TRIP), 12 * 60_000));
  const time = (ts: number) => new Date(ts).toISOString().slice(11, 19);

  it('shows each rise of the replay with its factors, in the order of the replay', () => {
    expect(from).toBeGreaterThan(0);
    const rise = changes.filter((c) => c.to !== 'blue' && LEVEL_ORDER.indexOf(c.to) > LEVEL_ORDER.indexOf(c.from));
    // The section's results in order: the quiet boiler's blue, then each rise.
    const levels = [...section.matchAll(/= risk index \d+: \*\*(\w+)\*\*/g)].map((m) => m[1]);
    expect(levels).toEqual(['blue', ...rise.map((c) => c.to)]);
    for (const c of rise) {
      const block = [
        '| factor | value | weight | cap | points |',
        '| --- | --- | --- | --- | --- |',
        ...c.factors.map((f) => `| ${f.factor} | ${f.value} | ${f.weight} | ${f.cap} | ${f.points} |`),
        '',
        `Points ${c.points}: likelihood ${c.likelihood} x consequence ${c.consequence} = risk index ${c.score}: **${c.to}**.`,
      ].join('\n');
      if (!section.includes(block))
        throw new Error(`docs/risk.md's boiler example lacks the replay's change at ${time(c.ts)}:\n\n${block}\n`);
      expect(section).toContain(`At ${time(c.ts)}`);
    }
  });

  it('gives the steps down as the replay with --tail 12m has them', () => {
    const down = changes.filter((c) => LEVEL_ORDER.indexOf(c.to) < LEVEL_ORDER.indexOf(c.from));
    expect(down.length).toBeGreaterThan(0);
    const line = `Replayed with \`--tail 12m\`: ${down.map((c) => `${c.from} -> ${c.to} at ${time(c.ts)}`).join(', ')}.`;
    expect(section.replace(/\s+/g, ' ')).toContain(line);
  });
});

describe('a steady noisy signal', () => {
  it('gives no predicted warning, no alarm, no near miss and no risk change over 10 minutes', () => {
    // The drum level wanders +/-10 mm around normal (a fixed pseudo-random sequence, uniform), far from
    // the +/-50 mm limits and their 5 mm margins. Measured: from +/-12 mm the template's 10 s window
    // (8 readings) starts to foretell the +/-50 mm limits now and then; the simulator's own noise is about +/-6 mm.
    let x = 7;
    const noise = () => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return Math.round(((x / 2 ** 31) * 2 - 1) * 10);
    };
    const readings = series('B-07', 600, () => ({ drum_level: noise(), steam_pressure: 1.25, feedwater_flow: 10, flue_o2: 3.5 }));
    expect(readings.filter((r) => r.point === 'drum_level' && Math.abs(r.value as number) >= 9).length).toBeGreaterThan(50);
    expect(replay(BOILER_SITE, readings)).toEqual([]);
  });
});

describe('near misses', () => {
  it('counts a value that came within the margin and went back, with its closest approach, and not one that crossed', () => {
    // -44 is outside the 5 mm margin of -50; -47 and -48 are within it; -55 is beyond the limit (an alarm, no near miss).
    const path = [0, -20, -40, -47, -46, -40, -20, 0, -30, -45, -48, -42, -20, 0, -40, -55, -40, -20, 0, -44, -30, 0];
    const entries = replay(
      TANK_SITE,
      series('V-1', path.length - 1, (s) => ({ level: path[s]!, pressure: 1 })),
    );
    const misses = entries.flatMap((e) => (e.kind === 'near_miss' ? [e] : []));
    expect(misses.map((n) => [n.closest, n.ts - T0])).toEqual([
      [-47, 5000],
      [-48, 11_000],
    ]);
    expect(misses[0]).toMatchObject({ equipment: 'V-1', point: 'level', rule: 'level-low', limit: -50, unit: 'mm', level: 'yellow' });
    expect(formatEntry(misses[0]!)).toBe('2026-03-01T08:00:05.000Z near-miss V-1 level closest -47 mm (limit -50, level-low)');
    // The crossing is the alarm's business.
    expect(
      alarms(entries)
        .filter((e) => e.type === 'raised')
        .map((e) => e.rule),
    ).toEqual(['level-low']);
  });
});

describe('administrative dates in the replay', () => {
  it('sets them at the start and again when the site date changes: the inspection overdue at midnight, Shanghai time, counts in the risk', () => {
    const site = TANK_SITE.replace('    poll_interval: 1s\n', "    poll_interval: 1s\n    inspection: { next: '2026-03-01' }\n");
    // From 23:59:00 to 00:01:00 on the night of 1 to 2 March, Shanghai (UTC+8), polled every second.
    const from = Date.parse('2026-03-01T15:59:00Z');
    const readings = series('V-1', 120, () => ({ level: 0, pressure: 1 })).map((r) => ({ ...r, ts: r.ts - T0 + from }));
    const entries = replay(site, readings);
    const midnight = Date.parse('2026-03-01T16:00:00Z');
    expect(alarms(entries).map((e) => `${e.ts - from} ${e.type} ${e.rule} ${e.level}`)).toEqual([
      '0 raised inspection.due-soon blue',
      `${midnight - from} cleared inspection.due-soon blue`,
      // Heard from since the start: in use.
      `${midnight - from} raised inspection.overdue-in-use orange`,
    ]);
    // Due soon is a reminder, not a risk; overdue is.
    const changes = risks(entries);
    expect(changes).toHaveLength(1);
    // On the judge's next tick, a second later: as in the gateway, the alarms set between two ticks are judged on the next.
    expect(changes[0]!.ts).toBe(midnight + 1000);
    expect(changes[0]!.from).toBe('blue');
    expect(changes[0]!.factors).toMatchObject([{ factor: 'inspection_overdue', value: 1 }]);
  });
});

describe('risk hysteresis (risk.hold 30 s)', () => {
  it('goes up at once and comes down only once the lower level has held for the hold, a second alarm within it holding the level', () => {
    // Red from 10 s to 20 s and again from 30 s to 35 s; readings go on to 100 s so that silence plays no part.
    const red = (s: number) => (s >= 10 && s < 20) || (s >= 30 && s < 35);
    const entries = replay(
      TANK_SITE,
      series('V-1', 100, (s) => ({ level: 0, pressure: red(s) ? 1.6 : 1 })),
    );
    const changes = risks(entries);
    expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual(['blue->red', 'red->blue']);
    expect(changes[0]!.ts - T0).toBe(10_000);
    expect(changes[0]!.factors).toMatchObject([{ factor: 'alarm_red', value: 1 }]);
    // The last red alarm cleared at 35 s: the level comes down 30 s later, on the judge's next 1 s tick.
    const down = (changes[1]!.ts - T0) / 1000;
    expect(down).toBeGreaterThanOrEqual(65);
    expect(down).toBeLessThanOrEqual(66);
    expect(changes[1]!.factors).toEqual([]);
  });
});
