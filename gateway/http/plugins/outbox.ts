// The platform outbox: what waits to be sent, the dead letters, and (admin) sending them again. A
// site that forwards to no platform has no outbox: 404 with GW_HTTP_NO_PLATFORM.
import type { FastifyPluginAsync } from 'fastify';
import type { Outbox } from '../../platform/outbox.js';
import { errorSchema, sendError } from '../errors.js';
import type { AuditSink } from './auth.js';

export interface OutboxOptions {
  /** The outbox, once the platform link has made it; undefined on a site without a platform. */
  outbox: () => Pick<Outbox, 'stats' | 'list' | 'retry'> | undefined;
  audit: AuditSink;
}

const NO_PLATFORM = 'this site forwards to no platform';

export const outboxPlugin: FastifyPluginAsync<OutboxOptions> = async (app, opts) => {
  app.get(
    '/api/outbox',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'The platform outbox: pending and dead letters',
        response: { 200: { type: 'object', additionalProperties: true }, 404: errorSchema },
      },
    },
    async (_req, reply) => {
      const o = opts.outbox();
      if (!o) return sendError(reply, 'GW_HTTP_NO_PLATFORM', NO_PLATFORM);
      return {
        ...o.stats(),
        deadLetters: o
          .list('dead')
          .map((r) => ({ seq: r.seq, eventId: r.eventId, answer: r.answer, body: JSON.parse(r.incident) as unknown })),
      };
    },
  );
  app.post(
    '/api/outbox/retry',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Send dead letters again (all, or one seq)',
        body: { type: 'object', additionalProperties: false, properties: { seq: { type: 'integer', minimum: 1 } } },
        response: { 200: { type: 'object', properties: { retried: { type: 'integer' } } }, 404: errorSchema },
      },
    },
    async (req, reply) => {
      const o = opts.outbox();
      if (!o) return sendError(reply, 'GW_HTTP_NO_PLATFORM', NO_PLATFORM);
      const seq = (req.body as { seq?: number } | undefined)?.seq;
      const retried = o.retry(seq === undefined ? undefined : [seq]);
      opts.audit.append({
        who: req.who!,
        action: 'outbox retry',
        target: seq === undefined ? 'all dead letters' : `seq ${seq}`,
        outcome: `${retried} back in the queue`,
      });
      return { retried };
    },
  );
};
