import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../config/errors.js';
import { parseSite } from '../../../config/load.js';

/** A site with one ASTM analyzer whose `qc:` is given (YAML lines, indented under it), and a boiler on a simulator. */
const site = (qc: string[], on = 'astm-1') => `
version: 1
gateway: { id: gw-1, site: lab-1 }
connections: [{ id: astm-1, type: astm-tcp, port: 5100 }, { id: sim, type: sim }]
equipment:
  - { id: B-1, code: "10003101012019000117", connection: sim, model: steam-boiler, points: [{ name: drum_level }] }
  - id: LA-1
    category: lab_analyzer
    connection: ${on}
    qc:
${qc.map((l) => `      ${l}`).join('\n')}
`;

const problems = (text: string) => {
  try {
    parseSite(text, { env: {} });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
};

describe('qc: on lab equipment', () => {
  it('fills the defaults: the QC pattern, all six rules, a 30 min run window, pass', () => {
    const config = parseSite(site(['targets: { GLU: { "1": { mean: 5.5, sd: 0.2 } } }']), { env: {} });
    expect(config.equipment[1]!.qc).toEqual({
      control_samples: '^QC(?:[-_]?(?<level>\\d))?',
      targets: { GLU: { '1': { mean: 5.5, sd: 0.2 } } },
      rules: ['1-2s', '1-3s', '2-2s', 'R-4s', '4-1s', '10x'],
      run_window: 1_800_000,
      on_reject: 'pass',
    });
    expect(config.equipment[0]!.qc).toBeUndefined();
  });

  it('names each wrong value by its path', () => {
    expect(
      problems(
        site([
          'control_samples: "^QC(\\\\d"',
          'targets: { GLU: { "1": { mean: 5.5, sd: 0 }, "2": { mean: x, sd: -1 } }, ALT: {} }',
          'rules: [1-2s, 3-1s]',
          'on_reject: drop',
        ]),
      ).map((p) => p.replace(/ \(line \d+\)$/, '')),
    ).toEqual([
      expect.stringMatching(/^equipment\[1\]\.qc\.control_samples: expected a regular expression: .*/),
      'equipment[1].qc.targets.GLU.1.sd: expected a standard deviation greater than 0',
      expect.stringMatching(/^equipment\[1\]\.qc\.targets\.GLU\.2\.mean: expected a number/),
      'equipment[1].qc.targets.GLU.2.sd: expected a standard deviation greater than 0',
      'equipment[1].qc.targets.ALT: expected at least one level',
      expect.stringMatching(/^equipment\[1\]\.qc\.rules\[1\]: expected one of the rules 1-2s, 1-3s, 2-2s, R-4s, 4-1s, 10x/),
      expect.stringMatching(/^equipment\[1\]\.qc\.on_reject: expected one of pass, hold/),
    ]);
  });

  it('is refused on equipment whose connection gives no lab results', () => {
    expect(problems(site(['targets: { GLU: { "1": { mean: 5.5, sd: 0.2 } } }'], 'sim')).join('\n')).toMatch(
      /equipment\[1\]\.qc: qc is for lab instruments: a sim connection gives no lab results/,
    );
  });
});
