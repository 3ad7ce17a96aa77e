// The `rules:` section of the site file: hazard rules over equipment points (README.md, "Hazard rules and
// alarms"; docs/configuration.md, generated from this file, is the reference).
// Expressions are parsed and checked against each selected equipment's points when the file loads.
import { z } from 'zod';
import { LEVELS } from '../rules/types.js';
import { duration, identifier, pointName } from '../drivers/common/primitives.js';

export const level = z.enum(LEVELS, { error: `expected a warning level: ${LEVELS.join(', ')}` });

/** A number, or the name of a limit of the equipment (`drum_level_lo`). */
const threshold = z.union([z.number(), pointName], { error: 'expected a number or the name of a limit' });

const selector = z
  .union(
    [identifier, z.array(identifier).min(1), z.strictObject({ category: z.string().min(1) }), z.strictObject({ template: identifier })],
    { error: 'expected an equipment id, a list of ids, { category: ... } or { template: ... }' },
  )
  .meta({
    description: 'Which equipment the rule applies to: an id, a list of ids, `{ category: boiler }` or `{ template: boiler-steam }`.',
    examples: ['B-07', ['B-07', 'B-08'], { category: 'boiler' }],
  });

const limits = z
  .strictObject({
    point: pointName.meta({ description: 'The point the limits are on.' }),
    hihi: threshold.optional().meta({ description: 'High-high limit: alarm at or above it.' }),
    hi: threshold.optional().meta({ description: 'High limit.' }),
    lo: threshold.optional().meta({ description: 'Low limit: alarm at or below it.' }),
    lolo: threshold.optional().meta({ description: 'Low-low limit.' }),
    levels: z
      .strictObject({ hihi: level.optional(), hi: level.optional(), lo: level.optional(), lolo: level.optional() })
      .default({})
      .meta({ description: 'Warning level per limit; defaults: hihi and lolo red, hi and lo yellow.' }),
  })
  .refine((l) => l.hihi !== undefined || l.hi !== undefined || l.lo !== undefined || l.lolo !== undefined, {
    error: 'expected at least one of hihi, hi, lo, lolo',
  })
  .meta({
    description: "Limit alarms on one point: each limit is an alarm of its own (`<id>.hihi`...), with the rule's deadband and delays.",
  });

const rate = z
  .strictObject({
    point: pointName,
    window: duration.prefault('60s').meta({ description: 'Time over which the change is measured.', 'x-examples': ['30s', '5m'] }),
    per: z.enum(['second', 'minute']).default('minute').meta({ description: 'The rate is per second or per minute.' }),
    above: z.number().optional().meta({ description: 'Alarm when the rate rises above this.' }),
    below: z.number().optional().meta({ description: 'Alarm when the rate falls below this (a negative number for a fall).' }),
  })
  .refine((r) => r.above !== undefined || r.below !== undefined, { error: 'expected above, below or both' })
  .meta({ description: 'Rate of change of one point over a window.' });

const stale = z
  .strictObject({
    intervals: z
      .int()
      .min(1)
      .default(3)
      .meta({ description: 'Poll intervals without any good reading of the equipment before the alarm.', examples: [3] }),
  })
  .meta({
    description:
      'Communication loss: no good reading of the equipment for that many poll intervals. One alarm per equipment, not one per point. A rule that selects by category or template leaves out equipment whose driver reports values on change (OPC UA subscriptions, ASTM, mqtt-in), where a quiet value is not a lost connection (the log says which at start); a rule that names such equipment means what it says: no reading for that long.',
  });

const codes = z
  .strictObject({
    point: pointName.meta({ description: 'The point that holds the fault or event code.' }),
    table: z
      .record(z.string().regex(/^-?\d+$/, { error: 'expected a numeric code' }), z.strictObject({ level, message: z.string().min(1) }))
      .refine((t) => Object.keys(t).length > 0, { error: 'expected at least one code' })
      .meta({ description: 'Code → { level, message }; each code is an alarm of its own (`<id>.<code>`).' }),
  })
  .meta({ description: 'Discrete codes (as elevators report faults): one alarm per code while the point holds it.' });

/** What a rule predicts with when it says nothing (`predict` left out). */
export const PREDICT_DEFAULTS = { window: 60_000, horizon: 600_000, min_readings: 10 } as const;

const predict = z
  .union(
    [
      z.literal(false),
      z.strictObject({
        window: duration.prefault('60s').meta({
          description: 'Time over which the trend is fitted (a robust straight line through the good readings).',
          'x-examples': ['20s', '60s', '10m'],
        }),
        horizon: duration.prefault('10m').meta({
          description:
            'A crossing of the limit projected nearer than this raises the predicted warning; it clears when the trend turns away, fades into the noise, or the crossing moves beyond twice this.',
          'x-examples': ['30s', '10m', '2h'],
        }),
        min_readings: z
          .int()
          .min(3)
          .default(PREDICT_DEFAULTS.min_readings)
          .meta({ description: 'Good readings the window must hold before there is a trend to judge.', examples: [5, 10] }),
      }),
    ],
    { error: 'expected false or { window, horizon, min_readings }' },
  )
  .meta({
    description:
      "Predicted warning for each limit of the rule (a `limits` part, or a `when` comparing one point with a limit): raised one level below the limit's own when the trend reaches the limit within the horizon (`<id>.predicted`). On by default with window 60s, horizon 10m, min_readings 10; `false` turns it off.",
    examples: [false, { window: '20s', horizon: '30s', min_readings: 5 }],
  });

/** `10%` of the span between normal and the limit, or an absolute margin in the point's unit. */
const PERCENT = /^(\d+(?:\.\d+)?)\s*%$/;

const nearMiss = z
  .union(
    [
      z.literal(false),
      z.strictObject({
        margin: z
          .union([z.number().positive(), z.string().regex(PERCENT)], {
            error: 'expected a positive number in the point\'s unit or a percentage such as "10%"',
          })
          .default('10%')
          .refine((m) => typeof m === 'number' || (Number(PERCENT.exec(m)![1]) > 0 && Number(PERCENT.exec(m)![1]) <= 100), {
            error: 'expected a percentage above 0 and at most 100',
          })
          .meta({
            description:
              "How close to the limit counts as a near miss: in the point's unit, or a percentage of the span between normal and the limit.",
            examples: ['10%', 20],
          }),
        normal: z
          .union([z.number(), pointName], { error: 'expected a number or the name of a limit' })
          .optional()
          .meta({
            description:
              "The point's normal value (a number or a limit's name). Left out: the equipment's limit `<point>_normal`, else the middle of the rule's opposite limits (hi with lo, hihi with lolo); with neither, no near misses.",
            examples: [0, 'drum_level_normal'],
          }),
      }),
    ],
    { error: 'expected false or { margin, normal }' },
  )
  .meta({
    description:
      "Near misses on the rule's limits: a value that came within the margin of a limit and went back without crossing it. `false` turns them off.",
    examples: [false, { normal: 0 }, { margin: '5%', normal: 'drum_level_normal' }],
  });

export const KINDS = ['when', 'limits', 'rate', 'stale', 'codes'] as const;

export const ruleSchema = z
  .strictObject({
    id: identifier.meta({ description: 'Rule id, unique in the site; alarms are `<equipment>/<id>`.', examples: ['drum-level-low-low'] }),
    equipment: selector,
    when: z
      .string()
      .min(1)
      .optional()
      .meta({
        description: "Condition over the equipment's points and limits: comparisons, + - * / %, && || !, abs() min() max() round().",
        examples: ['drum_level <= -200', 'flame == false && burner_on'],
      }),
    limits: limits.optional(),
    rate: rate.optional(),
    stale: stale.optional(),
    codes: codes.optional(),
    level: level.optional().meta({ description: 'Warning level (required for `when`, `rate` and `stale`).' }),
    message: z
      .string()
      .min(1)
      .optional()
      .meta({
        description: 'Text of the alarm; `{value}`, `{unit}`, `{equipment}`, `{name}`, `{level}` are filled in.',
        examples: ['Drum water level extremely low: {value} {unit}'],
      }),
    on_delay: duration
      .prefault('0s')
      .meta({ description: 'The condition must hold this long before the alarm is raised.', 'x-examples': ['2s'] }),
    off_delay: duration
      .prefault('0s')
      .meta({ description: 'The condition must be gone this long before the alarm clears.', 'x-examples': ['5s'] }),
    deadband: z
      .number()
      .min(0)
      .default(0)
      .meta({ description: "Hysteresis in the point's unit: an active alarm clears only this far past its limit.", examples: [10] }),
    latch: z.boolean().default(false).meta({ description: 'The alarm stays active after its condition goes, until acknowledged.' }),
    suppress_when: z
      .string()
      .min(1)
      .optional()
      .meta({
        description: 'While this holds the alarm is suppressed by design (for example a boiler that is not firing).',
        examples: ['!burner_on'],
      }),
    max_shelve: duration
      .prefault('8h')
      .meta({ description: 'Longest an operator can shelve this alarm; it returns by itself after that.', 'x-examples': ['8h', '30m'] }),
    escalate_after: duration
      .optional()
      .meta({ description: 'Unacknowledged this long: one level up, and again after the same time, up to red.', 'x-examples': ['10m'] }),
    predict: predict.optional(),
    near_miss: nearMiss.optional(),
  })
  .superRefine((r, ctx) => {
    const kinds = KINDS.filter((k) => r[k] !== undefined);
    if (kinds.length !== 1)
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: kinds.length === 0 ? `expected one of ${KINDS.join(', ')}` : `expected only one of ${kinds.join(', ')}`,
      });
    if ((r.when !== undefined || r.rate !== undefined || r.stale !== undefined) && r.level === undefined)
      ctx.addIssue({ code: 'custom', path: ['level'], message: `expected a warning level: ${LEVELS.join(', ')}` });
    // Only a limit can be predicted or nearly missed.
    const without = kinds.length === 1 && kinds[0] !== 'when' && kinds[0] !== 'limits' ? kinds[0] : undefined;
    for (const key of ['predict', 'near_miss'] as const)
      if (without && r[key] !== undefined && r[key] !== false)
        ctx.addIssue({ code: 'custom', path: [key], message: `applies to a limits or when rule, not to ${without}` });
  })
  .meta({ description: 'A hazard rule: exactly one of when, limits, rate, stale, codes.' });

export const rulesSection = z
  .array(ruleSchema)
  .default([])
  .meta({ description: 'Hazard rules, evaluated in the gateway on every reading, even when the site is cut off.' });

export type RuleConfig = z.output<typeof ruleSchema>;
