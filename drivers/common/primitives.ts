// Schema pieces shared by every driver's schema and the site schema (config/ builds on drivers/, never the reverse).
import { z } from 'zod';
import { DURATION, parseDuration } from './duration.js';

export { parseDuration };

/** A duration string in the site file, a number of milliseconds in the parsed config. */
export const duration = z
  .string({ error: 'expected a duration such as 500ms, 5s, 2m or 1h' })
  .regex(DURATION, { error: 'expected a duration such as 500ms, 5s, 2m or 1h' })
  .transform((s) => parseDuration(s) as number)
  .meta({ format: 'duration' });

const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB|TB|TiB)$/;
const UNIT_BYTES = { B: 1, KB: 1e3, KiB: 1024, MB: 1e6, MiB: 1024 ** 2, GB: 1e9, GiB: 1024 ** 3, TB: 1e12, TiB: 1024 ** 4 } as const;

/** Parses `512MiB`, `1GiB`, `100MB` into bytes; undefined when it is not a size. */
export function parseSize(text: string): number | undefined {
  const m = SIZE.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNIT_BYTES[m[2] as keyof typeof UNIT_BYTES]);
}

/** A size string in the site file (`1GiB`), a number of bytes in the parsed config. */
export const size = z
  .string({ error: 'expected a size such as 512MiB, 1GiB or 100MB' })
  .regex(SIZE, { error: 'expected a size such as 512MiB, 1GiB or 100MB' })
  .transform((s) => parseSize(s) as number)
  .meta({ format: 'size' });

/** Ids end up in MQTT topics and InfluxDB tags: no spaces, no `/`, no MQTT wildcards. */
export const identifier = z
  .string({ error: 'expected an id (letters, digits, "-", "_", ".")' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, {
    error: 'expected an id of at most 64 letters, digits, "-", "_" or "." starting with a letter or digit',
  });

export const RESERVED_POINT_NAMES: readonly string[] = ['time', 'quality', 'reason'];

/** Point names are referenced by rule expressions, so they are identifiers. */
export const pointName = z
  .string({ error: 'expected a point name' })
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, {
    error: 'expected a point name of letters, digits and "_" that does not start with a digit',
  })
  // InfluxDB reserves `time`; the lines that report a point's quality use the fields quality and reason.
  .refine((name) => !RESERVED_POINT_NAMES.includes(name), {
    error: 'expected a point name other than time, quality and reason (InfluxDB uses them)',
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
