// Schema pieces shared by the site schema and every driver's schema.
import { z } from 'zod';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** Parses `500ms`, `5s`, `1.5m`, `2h` into milliseconds; undefined when it is not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]);
}

/** A duration string in the site file, a number of milliseconds in the parsed config. */
export const duration = z
  .string({ error: 'expected a duration such as 500ms, 5s, 2m or 1h' })
  .regex(DURATION, { error: 'expected a duration such as 500ms, 5s, 2m or 1h' })
  .transform((s) => parseDuration(s) as number)
  .meta({ format: 'duration' });

/** Ids end up in MQTT topics and InfluxDB tags: no spaces, no `/`, no MQTT wildcards. */
export const identifier = z
  .string({ error: 'expected an id (letters, digits, "-", "_", ".")' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, {
    error: 'expected an id of at most 64 letters, digits, "-", "_" or "." starting with a letter or digit',
  });

/** Point names are referenced by rule expressions, so they are identifiers. */
export const pointName = z
  .string({ error: 'expected a point name' })
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, {
    error: 'expected a point name of letters, digits and "_" that does not start with a digit',
  });

export const port = z.int({ error: 'expected a TCP port number (1-65535)' }).min(1).max(65535);

/** The one reconnect/backoff defaults object shared by every driver and sink. */
export const RECONNECT_DEFAULTS = { initial_delay: '1s', max_delay: '30s', jitter: 0.2 } as const;

export const reconnect = z
  .strictObject({
    initial_delay: duration
      .prefault(RECONNECT_DEFAULTS.initial_delay)
      .meta({ description: 'Wait before the first reconnect attempt.', 'x-examples': ['500ms', '1s'] }),
    max_delay: duration
      .prefault(RECONNECT_DEFAULTS.max_delay)
      .meta({ description: 'Upper bound of the exponentially growing wait between attempts.', 'x-examples': ['30s', '2m'] }),
    jitter: z
      .number()
      .min(0)
      .max(1)
      .default(RECONNECT_DEFAULTS.jitter)
      .meta({ description: 'Random share (0-1) added to or taken from each wait, so many devices do not retry in step.', examples: [0.2] }),
  })
  .refine((r) => r.max_delay >= r.initial_delay, { error: 'max_delay must not be shorter than initial_delay' })
  .prefault({})
  .meta({ description: 'Reconnect backoff: exponential from initial_delay up to max_delay, with jitter.' });

export type ReconnectOptions = z.output<typeof reconnect>;
