// docs/labs.md is checked against the code: its site-file examples load (the instruments of each
// kind, the QC section, the daily summary's settings), and its worked QC example is what the
// Westgard rules (rules/westgard.ts) make of those controls, row by row.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseSite } from '../../../../config/load.js';
import { judge, remember, zScore, type ControlHistory } from '../../../../rules/westgard.js';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');
const doc = readFileSync(join(ROOT, 'docs', 'labs.md'), 'utf8');
const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parse(m[1]!) as Record<string, unknown>);

describe('docs/labs.md', () => {
  it('its site-file examples load together as one site', () => {
    expect(blocks).toHaveLength(3);
    const [instruments, qc, lab] = blocks as [
      { connections: unknown[]; equipment: Array<{ id: string }> },
      { equipment: Array<{ id: string }> },
      { lab: unknown },
    ];
    const site = parseSite(
      stringify({
        version: 1,
        gateway: { id: 'gw-doc', site: 'doc-site', data_dir: '/tmp/gw-doc', timezone: 'Asia/Shanghai' },
        mqtt: { port: 1883 },
        platform: { url: 'http://127.0.0.1:9/', secret: 'a-secret-of-at-least-16-chars' },
        connections: instruments.connections,
        // The QC example's LA-2 in place of the first example's.
        equipment: instruments.equipment.map((e) => qc.equipment.find((q) => q.id === e.id) ?? e),
        lab: lab.lab,
      }),
      { env: {} },
    );
    expect(site.equipment.map((e) => [e.id, e.category])).toEqual([
      ['LA-2', 'lab_analyzer'],
      ['LA-5', 'lab_analyzer'],
      ['UTS-1', 'lab_analyzer'],
    ]);
    expect(site.equipment[0]!.qc).toMatchObject({ on_reject: 'hold', targets: { GLU: { '2': { mean: 11, sd: 0.4 } } } });
    expect(site.lab.daily_summary).toEqual({ enabled: true, at: '00:30', gap: 2 * 3_600_000 });
  });

  it("its worked QC example is the Westgard rules' verdict on each control", () => {
    const section = doc.slice(doc.indexOf('### A worked example'), doc.indexOf('## The daily upload summary'));
    const rows = [...section.matchAll(/^\| (\d\d:\d\d) \| QC(\d)-\d+ \| ([\d.]+) \| ([+-][\d.]+) \| (\w+) \| ([^|]*)\|$/gm)];
    expect(rows).toHaveLength(6);
    const targets: Record<string, { mean: number; sd: number }> = { '1': { mean: 5.5, sd: 0.2 }, '2': { mean: 11, sd: 0.4 } };
    let history: ControlHistory = {};
    rows.forEach(([, time, level, value, z, verdict, rules], seq) => {
      const ts = Date.parse(`2026-12-02T${time}:00+08:00`);
      const j = judge(history, level!, { z: zScore(Number(value), targets[level!]!), ts });
      expect([time, j.z.toFixed(2), j.status, j.rules.join(', ')]).toEqual([time, Number(z).toFixed(2), verdict, rules!.trim()]);
      history = remember(history, level!, { z: j.z, seq, ts }, j.status);
    });
  });
});
