// The `http:` section: the gateway's own HTTP API (and, later, its dashboard).
import { z } from 'zod';
import { duration, port, size } from '../drivers/common/primitives.js';

import { ROLES } from '../gateway/http/tokens.js';

export { ROLES, type Role } from '../gateway/http/tokens.js';

export const httpSection = z
  .strictObject({
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .meta({
        description: 'Address the API listens on. Anything but loopback exposes it to the network: use TLS then.',
        examples: ['127.0.0.1', '0.0.0.0'],
      }),
    port: port.default(8080).meta({ description: 'TCP port of the API.', examples: [8080] }),
    tokens: z
      .array(
        z.strictObject({
          name: z
            .string()
            .min(1)
            .meta({ description: 'Who holds the token: it names them in the audit journal.', examples: ['wang.li'] }),
          role: z.enum(ROLES).meta({
            description:
              '`viewer` reads; `operator` also acknowledges and shelves alarms; `admin` also takes alarms out of service and back, and retries the outbox.',
            examples: ['operator'],
          }),
          hash: z
            .string()
            .regex(/^sha256:[0-9a-f]{64}$/, {
              error: 'expected sha256:<64 hex digits>: the hash `gateway token new` prints, never the token itself',
            })
            .meta({
              description: 'SHA-256 of the token, as `gateway token new` prints it. The token itself is never written here.',
              examples: ['sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'],
            }),
        }),
      )
      .default([])
      .meta({ description: 'API tokens. A request without a valid token gets 401; with a role too low, 403.' }),
    cert: z
      .string()
      .optional()
      .meta({ description: 'PEM certificate: HTTPS instead of HTTP.', examples: ['/etc/gateway/api.pem'] }),
    key: z
      .string()
      .optional()
      .meta({ description: 'PEM private key that goes with cert.', examples: ['/etc/gateway/api.key'] }),
    max_body_size: size
      .refine((n) => n >= 1024 && n <= 16 * 1024 * 1024, { error: 'expected a size from 1KiB to 16MiB' })
      .prefault('64KiB')
      .meta({
        description:
          'Largest request body the API reads (alarm actions, outbox retry); a bigger one gets 413 before it is read. POST /api/config/check takes a site file up to 4 MiB, the site-file limit.',
        'x-examples': ['64KiB'],
      }),
    request_timeout: duration
      .refine((ms) => ms >= 1000, { error: 'expected at least 1s' })
      .prefault('30s')
      .meta({
        description:
          'A request (headers and body) must arrive within this, or its connection is closed: a client that sends a byte now and then cannot hold a connection. The live stream is not affected once it is open.',
        'x-examples': ['30s'],
      }),
    history: z
      .strictObject({
        keep: z
          .union(
            [
              duration.transform((ms) => ({ ms })),
              z
                .int()
                .min(2)
                .max(1_000_000)
                .transform((samples) => ({ samples })),
            ],
            { error: 'expected a duration such as 10m, or a number of samples' },
          )
          .prefault('10m')
          .meta({
            description:
              "Recent readings kept per point for the trend: a time span (each point keeps that span at its equipment's poll_interval) or a number of samples.",
            'x-examples': ['10m', 600],
          }),
        max_memory: size
          .refine((n) => n >= 64 * 1024 && n <= 4 * 1024 ** 3, { error: 'expected a size from 64KiB to 4GiB' })
          .prefault('8MiB')
          .meta({
            description:
              "Memory all points' recent readings take together: 17 bytes a sample, and an eighth of it kept for text values. When `keep` would need more, every point keeps proportionally fewer, and the log says so at start.",
            'x-examples': ['8MiB', '64MiB'],
          }),
      })
      .prefault({})
      .meta({
        description:
          "The recent readings the API keeps in memory for the dashboard's trend. Older readings come from InfluxDB when the site writes to one.",
      }),
    max_connections: z
      .int()
      .min(1)
      .max(100_000)
      .default(500)
      .meta({
        description: 'Connections the API holds at once (each open live stream is one); beyond that a new connection is closed at once.',
        examples: [500],
      }),
  })
  .refine((h) => (h.cert === undefined) === (h.key === undefined), { error: 'cert and key go together', path: ['cert'] })
  .optional()
  .meta({ description: 'The HTTP API: health, metrics, equipment, alarms, outbox, live stream. Absent: no API.' });

export type HttpSection = NonNullable<z.output<typeof httpSection>>;
