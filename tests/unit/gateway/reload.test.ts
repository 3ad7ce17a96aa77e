// What of a changed site file needs a restart (gateway/reload.ts): the paths, never the values.
import { describe, expect, it } from 'vitest';
import { pointsChanged, restartNeeded } from '../../../gateway/reload.js';
import { testSite, testSiteYaml } from '../../helpers/site.js';
import { parseSite } from '../../../config/load.js';

const site = (edit: (yaml: string) => string = (y) => y) => parseSite(edit(testSiteYaml({ dataDir: '/tmp/gw-reload-unit' })), { env: {} });

describe('restartNeeded', () => {
  it('is empty for rules, limits, poll intervals and connection settings', () => {
    const running = site();
    const next = site((y) =>
      y
        .replace('poll_interval: 200ms', 'poll_interval: 500ms\n    limits: { lo: 3 }')
        .replace('seed: 11', 'seed: 12')
        .concat('rules:\n  - { id: r, equipment: B-07, when: steam_pressure > lo, level: red, message: "m" }\n'),
    );
    expect(restartNeeded(running, next)).toEqual([]);
    expect(testSite().equipment).toHaveLength(1);
  });

  it('names each path of what needs a restart, and no value', () => {
    const running = site();
    const next = site((y) =>
      y
        .replace('site: test-site', 'site: other-site')
        .replace('port: 1883', 'port: 1884')
        .replace('{ name: flue_o2 }', '{ name: flue_o2, unit: "%" }'),
    );
    expect(restartNeeded(running, next)).toEqual(['gateway.site: needs a restart', 'mqtt.port: needs a restart']);
  });

  it("takes an equipment's points added, removed or changed, except a lab instrument's", () => {
    const running = site();
    const unit = site((y) => y.replace('{ name: flue_o2 }', '{ name: flue_o2, unit: "%" }'));
    const fewer = site((y) => y.replace(', { name: flue_o2 }', ''));
    expect(restartNeeded(running, unit)).toEqual([]);
    expect(restartNeeded(running, fewer)).toEqual([]);
    expect(pointsChanged(running, unit)).toEqual(['B-07']);
    expect(pointsChanged(running, fewer)).toEqual(['B-07']);
    expect(pointsChanged(running, site())).toEqual([]);
    // The lab services take an instrument's analytes as points once at start.
    const lab = (s: ReturnType<typeof site>) => ({
      ...s,
      equipment: s.equipment.map((e) => ({ ...e, category: 'lab_analyzer' as const })),
    });
    expect(restartNeeded(lab(running), lab(unit))).toEqual(['equipment[0].points[4].unit: needs a restart']);
  });

  it('refuses equipment added or removed while the risk judgement runs', () => {
    const running = site();
    const next = site((y) =>
      y.replace(
        'equipment:\n',
        'equipment:\n  - { id: B-08, code: "10003101012019000118", connection: sim, model: steam-boiler, points: [{ name: flame }] }\n',
      ),
    );
    expect(restartNeeded(running, next)).toEqual(['equipment: equipment added (B-08) with risk.enabled: needs a restart']);
    expect(restartNeeded(next, running)).toEqual(['equipment: equipment removed (B-08) with risk.enabled: needs a restart']);
    // Without the risk judgement they are taken, except a lab instrument.
    const noRisk = (s: ReturnType<typeof site>) => ({ ...s, risk: { ...s.risk, enabled: false } });
    expect(restartNeeded(noRisk(running), noRisk(next))).toEqual([]);
    expect(restartNeeded(noRisk(next), noRisk(running))).toEqual([]);
    const lab = (s: ReturnType<typeof site>) => ({
      ...noRisk(s),
      equipment: s.equipment.map((e) => (e.id === 'B-08' ? { ...e, category: 'lab_analyzer' as const } : e)),
    });
    expect(restartNeeded(lab(running), lab(next))).toEqual(['equipment: equipment added (B-08) (lab instruments): needs a restart']);
  });
});
