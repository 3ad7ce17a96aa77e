// The site file's top-level `lab:` section: the daily upload summary of each lab instrument
// (`gw.lab-daily.v1`, gateway/lab/daily.ts), sent to the platform at a time of day in the site's time zone.
import { z } from 'zod';
import { duration } from '../drivers/common/primitives.js';

const HH_MM = /^([01]\d|2[0-3]):([0-5]\d)$/;
const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

export const labDailySection = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .meta({ description: "Send each lab instrument's daily upload summary to the platform (a site with a `platform:` section)." }),
    at: z
      .string()
      .regex(HH_MM, { error: 'expected a time of day written HH:MM, such as 00:30' })
      .default('00:30')
      .meta({
        description:
          "Time of day (site time zone) the previous day's summaries are sent. Results of the last minutes of the day still waiting for the platform then count as pending.",
        examples: ['00:30'],
      }),
    gap: duration
      .refine((ms) => ms >= MINUTE_MS && ms <= DAY_MS, { error: 'expected a duration from 1m to 24h', abort: true })
      .prefault('2h')
      .meta({
        description:
          'A quiet period between two results of one instrument longer than this is listed as a gap in its summary (docs/labs.md); from 1m to 24h.',
        'x-examples': ['2h'],
      }),
  })
  .prefault({})
  .meta({ description: "The daily upload summary of each lab instrument (`gw.lab-daily.v1`), sent through the platform's outbox." });

export const labSection = z
  .strictObject({ daily_summary: labDailySection })
  .prefault({})
  .meta({ description: 'Settings of the lab-results path that concern the whole site (per-instrument settings are on the equipment).' });

export type LabSection = z.output<typeof labSection>;
