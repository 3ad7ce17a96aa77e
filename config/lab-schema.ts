// The site file's quality-control keys of a lab instrument (`qc:` on its equipment entry): which
// results are control samples and of which level, the control targets per analyte and level, the
// Westgard rules in force and what happens to results after a rejection. The rules themselves are
// rules/westgard.ts; gateway/lab/qc.ts applies them.
import { z } from 'zod';
import { duration } from '../drivers/common/primitives.js';
import { DEFAULT_RUN_WINDOW_MS, WESTGARD_RULES } from '../rules/westgard.js';

/** The default pattern: `QC`, then the level as one digit when there is one (`QC1`, `QC-2-0815`). */
export const DEFAULT_CONTROL_SAMPLES = '^QC(?:[-_]?(?<level>\\d))?';

const finite = z.number({ error: 'expected a number' }).refine(Number.isFinite, { error: 'expected a finite number' });

const target = z
  .strictObject({
    mean: finite.meta({ description: 'Target mean of the control at this level, in the result unit.', examples: [11] }),
    sd: finite
      .refine((sd) => sd > 0, { error: 'expected a standard deviation greater than 0' })
      .meta({ description: 'Target standard deviation (> 0), in the result unit.', examples: [0.4] }),
  })
  .meta({ description: "One control level's target." });

const analyteName = z.string().min(1, { error: 'expected an analyte name' }).max(200, { error: 'expected at most 200 characters' });
const levelName = z
  .string()
  .regex(/^[^\s]{1,40}$/u, { error: 'expected a level name of at most 40 characters without spaces' })
  .meta({ examples: ['1', '2', 'high'] });

/** Compiles a control-sample pattern; the error says what is wrong with it, undefined when it is fine. */
export function patternProblem(source: string): string | undefined {
  try {
    new RegExp(source, 'u');
    return undefined;
  } catch (err) {
    return `expected a regular expression: ${(err as Error).message}`;
  }
}

export const qcSchema = z
  .strictObject({
    control_samples: z
      .string()
      .min(1)
      .superRefine((s, ctx) => {
        const problem = patternProblem(s);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .default(DEFAULT_CONTROL_SAMPLES)
      .meta({
        description:
          "A regular expression on the sample id that marks a result as a control sample; its group named `level` (else its first group) is the control level. A result the instrument itself marked as a control (an ASTM/HL7 QC flag, a file's QC column) is one too, with the level it gave. A control whose level is found nowhere takes its analyte's only level when it has one; otherwise it is counted and not judged.",
        examples: ['^QC(?:[-_]?(?<level>\\d))?', '^CTRL-(?<level>L|N|H)-'],
      }),
    targets: z
      .record(
        analyteName,
        z.record(levelName, target).refine((l) => Object.keys(l).length > 0, { error: 'expected at least one level' }),
      )
      .refine((t) => Object.keys(t).length > 0, { error: 'expected at least one analyte' })
      .meta({
        description:
          'Control targets: per analyte (as the instrument names it), per level, the mean and standard deviation. Controls of an analyte without targets are counted and logged once, not judged.',
        examples: [{ GLU: { '1': { mean: 5.5, sd: 0.2 }, '2': { mean: 11, sd: 0.4 } } }],
      }),
    rules: z
      .array(z.enum(WESTGARD_RULES, { error: `expected one of the rules ${WESTGARD_RULES.join(', ')}` }))
      .min(1)
      .refine((r) => new Set(r).size === r.length, { error: 'expected each rule once' })
      .default([...WESTGARD_RULES])
      .meta({
        description:
          'The Westgard rules in force: 1-2s is a warning, the others reject (docs/labs.md says what each one means, across which runs and levels).',
        examples: [
          ['1-2s', '1-3s', '2-2s', 'R-4s', '4-1s', '10x'],
          ['1-3s', '2-2s', 'R-4s'],
        ],
      }),
    run_window: duration
      .refine((ms) => ms > 0, { error: 'expected more than 0' })
      .prefault(`${DEFAULT_RUN_WINDOW_MS / 60_000}m`)
      .meta({
        description:
          'Controls of different levels whose result times are at most this far apart are one run (for 2-2s and R-4s across levels), unless a level was measured twice in between.',
        'x-examples': ['30m', '2h'],
      }),
    on_reject: z
      .enum(['pass', 'hold'])
      .default('pass')
      .meta({
        description:
          "After a rejected control, the analyte's later results carry qc status pending until every rejected level has passed again. `pass`: they are uploaded to the platform at once, marked; `hold`: their upload waits until then (they are still stored, published on MQTT and written to InfluxDB at once, and the wait survives a restart).",
        examples: ['pass', 'hold'],
      }),
  })
  .meta({
    description:
      'Quality control of this lab instrument: control samples judged by the Westgard multirules against their targets; a rejection raises a yellow alarm per analyte and level (`qc.<analyte>.<level>.rejected`) and marks later results of the analyte.',
  });

export type QcConfig = z.output<typeof qcSchema>;
