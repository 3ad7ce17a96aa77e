// The lab path's alarms: a quality-control rejection per instrument, analyte and control level, and a
// result file refused per watch-folder instrument. They are rules with an external condition (the
// engine raises and clears them like any other, acknowledged and sent to the platform the same way);
// what sets their conditions is the lab service (gateway/services/lab.ts): a control judged, a file
// taken or refused.
import { createHash } from 'node:crypto';
import type { SiteConfig } from '../config/schema.js';
import type { RuleSpec } from './types.js';

/** The rule of a watch-folder instrument's refused result file. */
export const FILE_REJECTED_RULE = 'file.rejected';

const PLAIN = /^[A-Za-z0-9_-]+$/;

/**
 * A name as a part of a rule id: rule ids are letters, digits, `-`, `_` and `.` (at most 64), the
 * parts separated by dots. A short plain name stays as it is (`GLU`, `2`); any other (`葡萄糖`, `Na+`,
 * a long one) keeps its plain characters, shortened, and gets 8 hex digits of its hash so that two
 * names never share a part.
 */
export function ruleIdPart(name: string, max: number): string {
  if (PLAIN.test(name) && name.length <= max) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  const plain = name.replace(/[^A-Za-z0-9_-]+/g, '').slice(0, max - 9);
  return plain ? `${plain}-${hash}` : hash;
}

/** `qc.<analyte>.<level>.rejected`: at most 3 + 24 + 1 + 16 + 9 = 53 characters. */
export function qcRuleId(analyte: string, level: string): string {
  return `qc.${ruleIdPart(analyte, 24)}.${ruleIdPart(level, 16)}.rejected`;
}

const base = {
  level: 'yellow',
  condition: { kind: 'external' },
  origin: 'lab',
  onDelayMs: 0,
  offDelayMs: 0,
  deadband: 0,
  latch: false,
} as const satisfies Partial<RuleSpec>;

/**
 * The lab alarms of a site: per instrument with QC targets, one per analyte and level (its message
 * names them; `{detail}` is the rule that fired); per instrument on a file-drop connection, one for
 * a refused file (`{detail}`: the file and why). `fileConnections`: the connections whose driver takes
 * result files (drivers/index.ts resultFileConnectionsOf).
 */
export function labSpecsOf(config: Pick<SiteConfig, 'equipment'>, fileConnections: ReadonlySet<string>): RuleSpec[] {
  return config.equipment.flatMap((e) => {
    const named = e.name !== undefined ? { equipmentName: e.name } : {};
    const qc = Object.entries(e.qc?.targets ?? {}).flatMap(([analyte, levels]) =>
      Object.keys(levels).map((level): RuleSpec => ({
        ...base,
        id: qcRuleId(analyte, level),
        equipment: e.id,
        message: `QC rejected: ${analyte} level ${level}, rule {detail}`,
        ...named,
      })),
    );
    const file: RuleSpec[] = fileConnections.has(e.connection)
      ? [{ ...base, id: FILE_REJECTED_RULE, equipment: e.id, message: 'Result file rejected: {detail}', ...named }]
      : [];
    return [...qc, ...file];
  });
}
