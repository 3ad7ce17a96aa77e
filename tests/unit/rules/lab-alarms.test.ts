import { describe, expect, it } from 'vitest';
import { resultFileConnectionsOf } from '../../../drivers/index.js';
import { labSpecsOf, qcRuleId, ruleIdPart } from '../../../rules/lab-alarms.js';
import { RuleEngine } from '../../../rules/engine.js';

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const config = {
  connections: [
    { id: 'astm-1', type: 'astm-tcp' },
    { id: 'drop', type: 'file-drop' },
  ],
  equipment: [
    {
      id: 'LA-1',
      name: 'Chemistry',
      connection: 'astm-1',
      qc: { targets: { GLU: { '1': { mean: 5.5, sd: 0.2 }, '2': { mean: 11, sd: 0.4 } }, 葡萄糖: { high: { mean: 1, sd: 1 } } } },
    },
    { id: 'UTM-1', connection: 'drop' },
    { id: 'LA-2', connection: 'astm-1' },
  ],
} as never;

describe('lab alarms', () => {
  it('gives a yellow external lab rule per analyte and level with QC targets, and file.rejected per watch-folder instrument', () => {
    const specs = labSpecsOf(config, resultFileConnectionsOf(config));
    expect(specs.map((s) => `${s.equipment}/${s.id}: ${s.message}`)).toEqual([
      'LA-1/qc.GLU.1.rejected: QC rejected: GLU level 1, rule {detail}',
      'LA-1/qc.GLU.2.rejected: QC rejected: GLU level 2, rule {detail}',
      `LA-1/${qcRuleId('葡萄糖', 'high')}: QC rejected: 葡萄糖 level high, rule {detail}`,
      'UTM-1/file.rejected: Result file rejected: {detail}',
    ]);
    expect(specs.every((s) => s.level === 'yellow' && s.condition.kind === 'external' && s.origin === 'lab')).toBe(true);
    expect(specs[0]!.equipmentName).toBe('Chemistry');
    for (const s of specs) expect(s.id).toMatch(ID);
  });

  it('makes rule-id parts of any name: plain short names as they are, others with a hash, never the same for two names', () => {
    expect(ruleIdPart('GLU', 24)).toBe('GLU');
    expect(ruleIdPart('葡萄糖', 24)).toMatch(/^[0-9a-f]{8}$/);
    expect(ruleIdPart('Na+', 24)).toMatch(/^Na-[0-9a-f]{8}$/);
    expect(ruleIdPart('Na+', 24)).not.toBe(ruleIdPart('Na-', 24));
    expect(ruleIdPart('Na', 24)).not.toBe(ruleIdPart('Na+', 24));
    const long = qcRuleId('x'.repeat(200), 'level with spaces and more than forty characters');
    expect(long).toMatch(ID);
  });

  it('fills the message with the rule that fired when the lab service sets the condition', () => {
    const engine = new RuleEngine({ site: 's', rules: labSpecsOf(config, resultFileConnectionsOf(config)) });
    const events = engine.setExternal('LA-1/qc.GLU.2.rejected', true, 0, '2-2s');
    expect(events.map((e) => [e.type, e.message])).toEqual([['raised', 'QC rejected: GLU level 2, rule 2-2s']]);
    expect(engine.setExternal('LA-1/qc.GLU.2.rejected', false, 1).map((e) => e.type)).toEqual(['cleared']);
  });
});
