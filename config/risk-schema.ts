// The site file's risk judgement keys: each equipment's administrative dates (inspection,
// maintenance, certificate of use) and consequence class, the top-level `risk:` scoring and the
// `report:` schedule. The scoring itself is rules/risk.ts; the defaults it starts from are here, so
// the reference (docs/configuration.md) and docs/risk.md show the same figures.
import { z } from 'zod';
import { parseDuration } from '../drivers/common/primitives.js';
import { isTimeZone } from '../drivers/common/time-zone.js';

const DAY_MS = 86_400_000;
const DAYS = /^(\d+(?:\.\d+)?)d$/;

/** Parses `30d` as well as every `duration` (`12h`, `5m`) into milliseconds; undefined when it is neither. */
export function parseDays(text: string): number | undefined {
  const m = DAYS.exec(text.trim());
  return m ? Math.round(Number(m[1]) * DAY_MS) : parseDuration(text);
}

/** A duration that may be counted in days (`30d`, `15d`) as well as in h, m, s or ms: milliseconds in the parsed config. */
export const days = z
  .string({ error: 'expected a duration such as 30d, 15d, 12h or 5m' })
  .refine((s) => parseDays(s) !== undefined, { error: 'expected a duration such as 30d, 15d, 12h or 5m' })
  .transform((s) => parseDays(s) as number)
  .meta({ format: 'duration' });

/** A `days` duration within `min`..`max` ms; `what` completes the error, as in "expected at most 100 years". */
function daysWithin(min: number, max: number, what: string) {
  return z
    .string({ error: 'expected a duration such as 30d, 15d, 12h or 5m' })
    .refine((s) => parseDays(s) !== undefined, { error: 'expected a duration such as 30d, 15d, 12h or 5m' })
    .transform((s) => parseDays(s) as number)
    .refine((ms) => ms >= min && ms <= max, { error: `expected ${what}`, abort: true })
    .meta({ format: 'duration' });
}

/**
 * A duration around an administrative date: up to 100 years. Far more is a typing error, and a date
 * computed from it would not be a date (the start would fail on it instead of the check).
 */
const dateDays = daysWithin(0, 100 * 365.25 * DAY_MS, 'a duration of at most 100 years (36525d)');

/** The last day a date can be written as YYYY-MM-DD. */
const LAST_DAY = Date.UTC(9999, 11, 31);

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** True for a real calendar date written `YYYY-MM-DD` (no 2026-02-30). */
export function isCalendarDate(text: string): boolean {
  const m = DATE.exec(text);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = new Date(Date.UTC(y, mo - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d;
}

/** A calendar date in the site's time zone, kept as written; it is due at the end of that day. */
export const calendarDate = z
  .string({ error: 'expected a date written YYYY-MM-DD' })
  .refine(isCalendarDate, { error: 'expected a date written YYYY-MM-DD, such as 2026-09-30' })
  .meta({ format: 'date' });

/** The time zone of the machine: the site's when gateway.timezone is left out. */
export function systemTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

export { isTimeZone };

export const timeZone = z
  .string({ error: 'expected an IANA time zone name such as Asia/Shanghai' })
  .refine(isTimeZone, { error: 'expected an IANA time zone name such as Asia/Shanghai or UTC' })
  .optional()
  // Resolved when the file is read, not in the schema's default: the reference must not show the machine it was generated on.
  .transform((tz) => tz ?? systemTimeZone())
  .meta({
    description:
      "Time zone of the site (IANA name): administrative dates are due at the end of their day here, and the daily report's time is read here. Default: the time zone of the machine the gateway runs on.",
    'x-examples': ['Asia/Shanghai', 'UTC'],
  });

export const inspectionSchema = z
  .strictObject({
    next: calendarDate.meta({ description: 'Date of the next periodic inspection (定期检验), YYYY-MM-DD.', examples: ['2027-03-31'] }),
    warn_before: dateDays.prefault('30d').meta({
      description: 'A blue warning is raised this long before the date; yellow once it has passed, orange when overdue and in use.',
      'x-examples': ['30d'],
    }),
  })
  .meta({ description: 'Periodic inspection (定期检验) of this equipment.' });

export const maintenanceSchema = z
  .strictObject({
    last: calendarDate.optional().meta({ description: 'Date of the last maintenance, YYYY-MM-DD.', examples: ['2026-11-20'] }),
    next: calendarDate
      .optional()
      .meta({ description: 'Date of the next maintenance, YYYY-MM-DD; when absent, last + interval.', examples: ['2026-12-05'] }),
    interval: dateDays.optional().meta({
      description: 'Time between maintenances (elevators: 15d by regulation, TSG T7001).',
      'x-examples': ['15d', '30d'],
    }),
    warn_before: dateDays.prefault('3d').meta({
      description: 'A blue warning is raised this long before the maintenance is due.',
      'x-examples': ['3d'],
    }),
  })
  .refine((m) => m.next !== undefined || (m.last !== undefined && m.interval !== undefined), {
    error: 'expected next, or last and interval (next is last + interval)',
  })
  // last + interval must itself be a date the gateway can write (up to 9999-12-31).
  .refine((m) => m.next !== undefined || m.last === undefined || m.interval === undefined || Date.parse(m.last) + m.interval <= LAST_DAY, {
    error: 'expected last + interval to be a date no later than 9999-12-31',
    path: ['interval'],
  })
  .meta({ description: 'Maintenance (维护保养) of this equipment: next, or last and interval.' });

export const certificateSchema = z
  .strictObject({
    valid_until: calendarDate.meta({
      description: 'Last day the certificate of use (使用登记证) is valid, YYYY-MM-DD.',
      examples: ['2028-06-30'],
    }),
    warn_before: dateDays
      .prefault('30d')
      .meta({ description: 'A blue warning is raised this long before the certificate expires.', 'x-examples': ['30d'] }),
  })
  .meta({ description: 'Certificate of use (使用登记证) of this equipment.' });

/** Consequence class 1..4: 4 catastrophic (a boiler or pressure vessel bursting), 1 minor (a lab result lost). */
export const consequence = z
  .int({ error: 'expected a consequence class from 1 (minor) to 4 (catastrophic)' })
  .min(1, { error: 'expected a consequence class from 1 (minor) to 4 (catastrophic)' })
  .max(4, { error: 'expected a consequence class from 1 (minor) to 4 (catastrophic)' });

/** The consequence class of equipment whose template gives none (or that has no template), by category. */
export const CONSEQUENCE_BY_CATEGORY: Readonly<Record<string, number>> = {
  boiler: 4,
  pressure_vessel: 4,
  pressure_piping: 4,
  pressure_piping_component: 3,
  elevator: 3,
  crane: 3,
  vehicle: 3,
  amusement_ride: 3,
  ropeway: 3,
  safety_accessory: 2,
  lab_analyzer: 1,
  other: 2,
};

export function defaultConsequence(category: string): number {
  return CONSEQUENCE_BY_CATEGORY[category] ?? 2;
}

/** The factors of the risk score (docs/risk.md says what each one counts and why). */
export const RISK_FACTORS = [
  'alarm_red',
  'alarm_orange',
  'alarm_yellow',
  'alarm_blue',
  'predicted',
  'near_misses',
  'chattering',
  'standing',
  'communication',
  'silence',
  'inspection_overdue',
  'maintenance_overdue',
  'certificate_overdue',
] as const;
export type RiskFactor = (typeof RISK_FACTORS)[number];

/**
 * Default weight (points per unit of the factor's value) and cap (most points it gives). The
 * likelihood classes and level thresholds below are chosen with them so that one active red alarm
 * makes a boiler, an elevator or a crane red, and a lab analyzer never goes above yellow.
 */
export const DEFAULT_FACTORS: Readonly<Record<RiskFactor, { weight: number; cap: number }>> = {
  alarm_red: { weight: 100, cap: 100 },
  alarm_orange: { weight: 40, cap: 100 },
  alarm_yellow: { weight: 10, cap: 40 },
  alarm_blue: { weight: 3, cap: 12 },
  predicted: { weight: 15, cap: 45 },
  near_misses: { weight: 2, cap: 20 },
  chattering: { weight: 5, cap: 15 },
  standing: { weight: 5, cap: 15 },
  communication: { weight: 0.5, cap: 25 },
  silence: { weight: 0.5, cap: 20 },
  inspection_overdue: { weight: 20, cap: 20 },
  maintenance_overdue: { weight: 15, cap: 15 },
  certificate_overdue: { weight: 20, cap: 20 },
};

/** Points from which the likelihood is class 2, 3, 4 and 5 (below the first: class 1). */
export const DEFAULT_LIKELIHOOD = [10, 25, 50, 100] as const;
/** Risk index (likelihood x consequence, 1..20) from which the level is yellow, orange and red (below: blue). */
export const DEFAULT_LEVELS = { yellow: 5, orange: 10, red: 15 } as const;

const factorOverride = z
  .strictObject({
    weight: z
      .number()
      .min(0)
      .optional()
      .meta({ description: "Points per unit of the factor's value (0 turns the factor off).", examples: [10] }),
    cap: z
      .number()
      .min(0)
      .optional()
      .meta({ description: 'Most points the factor gives.', examples: [40] }),
  })
  .meta({ description: 'Weight and cap of one factor; a key left out keeps its default.' });

export const factorOverrides = z
  .partialRecord(z.enum(RISK_FACTORS, { error: `expected a risk factor: ${RISK_FACTORS.join(', ')}` }), factorOverride)
  .default({})
  .meta({
    description: `Weights and caps of the risk factors (${RISK_FACTORS.join(', ')}); docs/risk.md lists their defaults.`,
    examples: [{ near_misses: { weight: 3, cap: 30 } }],
  });

export type FactorOverrides = Partial<Record<RiskFactor, { weight?: number | undefined; cap?: number | undefined }>>;

function ascending(list: readonly number[]): boolean {
  return list.every((x, i) => i === 0 || x > list[i - 1]!);
}

export const riskSection = z
  .strictObject({
    enabled: z.boolean().default(true).meta({ description: 'Judge the risk of each equipment (docs/risk.md).' }),
    hold: days.prefault('5m').meta({
      description:
        'Hysteresis: the level goes up at once, and down only after a lower level has held this long (then to the highest level seen during that time).',
      'x-examples': ['5m'],
    }),
    factors: factorOverrides,
    likelihood: z
      .array(z.number().min(0))
      .length(4, { error: 'expected 4 thresholds: the points from which the likelihood is class 2, 3, 4 and 5' })
      .refine(ascending, { error: 'expected thresholds in ascending order' })
      .default([...DEFAULT_LIKELIHOOD])
      .meta({
        description: 'Points from which the likelihood is class 2, 3, 4 and 5 (below the first, class 1).',
        examples: [[...DEFAULT_LIKELIHOOD]],
      }),
    levels: z
      .strictObject({
        yellow: z
          .int()
          .min(1)
          .max(20)
          .default(DEFAULT_LEVELS.yellow)
          .meta({ description: 'Risk index from which the level is yellow.', examples: [DEFAULT_LEVELS.yellow] }),
        orange: z
          .int()
          .min(1)
          .max(20)
          .default(DEFAULT_LEVELS.orange)
          .meta({ description: 'Risk index from which the level is orange.', examples: [DEFAULT_LEVELS.orange] }),
        red: z
          .int()
          .min(1)
          .max(20)
          .default(DEFAULT_LEVELS.red)
          .meta({ description: 'Risk index from which the level is red.', examples: [DEFAULT_LEVELS.red] }),
      })
      .refine((l) => l.yellow < l.orange && l.orange < l.red, { error: 'expected yellow < orange < red' })
      .prefault({})
      .meta({
        description: 'Risk index (likelihood 1..5 x consequence 1..4) from which the level is yellow, orange and red; below yellow, blue.',
        examples: [{ ...DEFAULT_LEVELS }],
      }),
    summary_every: daysWithin(60_000, DAY_MS, 'a duration from 1m to 1d')
      .prefault('1h')
      .meta({
        description: 'How often every equipment\'s risk is sent to the platform whether it changed or not (`gw.risk.v1`, kind "summary").',
        'x-examples': ['1h'],
      }),
  })
  .prefault({})
  .meta({ description: 'Risk judgement at the edge: a likelihood x consequence score per equipment, with its reasons (docs/risk.md).' });

export type RiskSection = z.output<typeof riskSection>;

const HH_MM = /^([01]\d|2[0-3]):([0-5]\d)$/;

export const reportSection = z
  .strictObject({
    enabled: z.boolean().default(true).meta({ description: 'Write the daily safety report.' }),
    at: z
      .string()
      .regex(HH_MM, { error: 'expected a time of day written HH:MM, such as 06:00' })
      .default('06:00')
      .meta({ description: "Time of day (site time zone) the previous day's report is written.", examples: ['06:00'] }),
    keep: daysWithin(DAY_MS, Number.MAX_SAFE_INTEGER, 'at least 1d: a shorter keep would delete the day being reported')
      .prefault('400d')
      .meta({
        description:
          "How long reports and the store's journal (alarm events, near misses, risk changes: what reports and KPIs read) are kept in the data folder; at least 1d.",
        'x-examples': ['400d'],
      }),
  })
  .prefault({})
  .meta({ description: 'The daily safety report (`gateway report daily`), kept in the data folder.' });

export type ReportSection = z.output<typeof reportSection>;

/** The administrative keys of one equipment entry, as parsed. */
export interface AdministrativeDates {
  inspection?: z.output<typeof inspectionSchema> | undefined;
  maintenance?: z.output<typeof maintenanceSchema> | undefined;
  certificate?: z.output<typeof certificateSchema> | undefined;
}

/** What a template may say about risk: its consequence class and its own weights. */
export const templateRiskShape = {
  consequence: consequence.optional(),
  risk: z.strictObject({ factors: factorOverrides }).optional(),
};
