// The site file: its JSON Schema, and a check of someone else's site file. The check runs in a
// worker with a time and memory cap (a hostile text cannot stall polling), with no access to this
// process's environment (a `${PLATFORM_SECRET}` in it is reported as a placeholder, never expanded),
// and repeats no value of the file. A problem list is a finished check: 200, as `gateway check`
// prints it; too many checks at once: 503 with GW_HTTP_CHECK_BUSY.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { checkCounters, checkSiteText } from '../../../config/check.js';
import { SITE_FILE_LIMITS } from '../../../config/load.js';
import { siteJsonSchema } from '../../../config/reference.js';
import { rateLimited } from '../../../drivers/common/log-budget.js';
import type { Logger } from '../../log.js';
import { describeOutcome, type ReloadOutcome } from '../../reload.js';
import type { AuditSink } from './auth.js';
import { errorSchema, sendError } from '../errors.js';

export interface ConfigOptions {
  log: Logger;
  audit: AuditSink;
  /** Re-reads the site file and applies it; absent when the gateway was not started from a file. */
  reload?: () => Promise<ReloadOutcome>;
}

const problemSchema = {
  type: 'object',
  properties: { path: { type: 'string' }, message: { type: 'string' }, line: { type: 'integer' } },
} as const;

/**
 * A site file comes as YAML or plain text, kept as the string it is. Added on the whole API (as it
 * always was), not in the plugin: a text body to another route stays a 400 for its schema.
 */
export function acceptSiteFiles(app: FastifyInstance): void {
  app.addContentTypeParser(['application/yaml', 'text/yaml', 'text/plain'], { parseAs: 'string' }, (_req, body, done) => done(null, body));
}

export const configPlugin: FastifyPluginAsync<ConfigOptions> = async (app, opts) => {
  const checkBusyLog = rateLimited();

  app.post(
    '/api/config/check',
    {
      config: { role: 'viewer' },
      bodyLimit: SITE_FILE_LIMITS.maxBytes,
      schema: {
        summary:
          "Check a site file (YAML in the body), as `gateway check` does, without the gateway's environment: placeholders come back as notes",
        response: {
          200: {
            type: 'object',
            properties: {
              valid: { type: 'boolean' },
              problems: { type: 'array', items: problemSchema },
              notes: { type: 'array', items: problemSchema },
            },
          },
          503: errorSchema,
        },
      },
    },
    async (req, reply) => {
      const result = await checkSiteText(String(req.body ?? ''));
      if ('busy' in result) {
        checkBusyLog((notLogged) =>
          opts.log.warn(
            { ip: req.ip, refused: checkCounters.busy, ...(notLogged ? { notLogged } : {}) },
            'Site-file checks: too many at once; refused with 503',
          ),
        );
        return sendError(
          reply.header('Retry-After', String(result.retryAfterS)),
          'GW_HTTP_CHECK_BUSY',
          `too many site-file checks under way; try again in ${result.retryAfterS} s`,
        );
      }
      return { valid: result.ok, problems: result.ok ? [] : result.problems, notes: result.notes };
    },
  );
  app.post(
    '/api/config/reload',
    {
      config: { role: 'admin', auditForbidden: true },
      schema: {
        summary:
          'Re-read the site file the gateway runs and apply it without a restart (docs/reload.md); refused with the problems as `path: message` when it is invalid or changes what needs a restart',
        response: {
          200: {
            type: 'object',
            properties: {
              reloaded: { type: 'boolean' },
              summary: { type: 'string' },
              alarms: { type: 'object', additionalProperties: { type: 'integer' } },
              connections: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } },
              ms: { type: 'integer' },
            },
          },
          409: errorSchema,
          422: {
            type: 'object',
            properties: { ...errorSchema.properties, problems: { type: 'array', items: { type: 'string' } } },
            required: ['error', 'code', 'problems'],
          },
        },
      },
    },
    async (req, reply) => {
      const outcome: ReloadOutcome = opts.reload
        ? await opts.reload()
        : { ok: false, reason: 'busy', message: 'the gateway was not started from a site file', problems: [] };
      const summary = describeOutcome(outcome);
      opts.audit.append({
        who: req.who!,
        action: 'config reload',
        target: 'site file',
        outcome: summary,
        ...(!outcome.ok && outcome.problems.length > 0 ? { detail: outcome.problems.join('\n').slice(0, 4000) } : {}),
      });
      if (outcome.ok) {
        opts.log.info({ by: req.who }, `Site file reloaded: ${summary}`);
        return { reloaded: true, summary, alarms: outcome.alarms, connections: outcome.connections, ms: outcome.ms };
      }
      opts.log.warn({ by: req.who, problems: outcome.problems }, `Site file reload ${summary}`);
      if (outcome.reason === 'busy') return sendError(reply, 'GW_HTTP_RELOAD_BUSY', outcome.message);
      return reply.code(422).send({ error: outcome.message, code: 'GW_HTTP_RELOAD_REFUSED', problems: outcome.problems });
    },
  );
  app.get(
    '/api/config/schema',
    {
      config: { role: 'viewer' },
      schema: { summary: 'The JSON Schema of the site file', response: { 200: { type: 'object', additionalProperties: true } } },
    },
    async () => siteJsonSchema(),
  );
};
