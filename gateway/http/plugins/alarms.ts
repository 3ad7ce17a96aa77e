// Alarms: those that are not normal, recent events, and their handling. An operator acknowledges,
// shelves and unshelves; an admin also takes an alarm out of service and returns it. Every action,
// done or refused, goes to the audit journal with who asked.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Role } from '../../../config/http-schema.js';
import { RuleActionError } from '../../../rules/engine.js';
import type { AlarmService } from '../../alarms/service.js';
import { errorSchema, sendError } from '../errors.js';
import type { AuditSink } from './auth.js';

export interface AlarmsOptions {
  alarms: Pick<AlarmService, 'active' | 'history' | 'acknowledge' | 'shelve' | 'unshelve' | 'setOutOfService'>;
  audit: AuditSink;
}

export const eventSchema = {
  type: 'object',
  additionalProperties: true,
  properties: { eventId: { type: 'string' }, type: { type: 'string' }, state: { type: 'string' }, level: { type: 'string' } },
} as const;

type Action = 'acknowledge' | 'shelve' | 'unshelve' | 'out-of-service' | 'in-service';

export const alarmsPlugin: FastifyPluginAsync<AlarmsOptions> = async (app, opts) => {
  const { alarms, audit } = opts;

  app.get(
    '/api/alarms',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Alarms that are not normal',
        response: { 200: { type: 'array', items: { type: 'object', additionalProperties: true } } },
      },
    },
    async () => alarms.active(),
  );
  app.get(
    '/api/alarms/history',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Recent alarm events, newest first (optionally of one equipment)',
        querystring: {
          type: 'object',
          properties: { equipment: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
        },
        response: { 200: { type: 'array', items: eventSchema } },
      },
    },
    async (req) => {
      const { equipment, limit } = req.query as { equipment?: string; limit: number };
      return [...alarms.history()]
        .reverse()
        .filter((e) => !equipment || e.equipment === equipment)
        .slice(0, limit);
    },
  );

  const action = (name: Action) => async (req: FastifyRequest, reply: FastifyReply) => {
    const { equipment, rule } = req.params as { equipment: string; rule: string };
    const body = (req.body ?? {}) as { comment?: string; duration_minutes?: number };
    const key = `${equipment}/${rule}`;
    const who = req.who!;
    try {
      const comment = body.comment ?? '';
      const events =
        name === 'acknowledge'
          ? alarms.acknowledge(key, who, comment)
          : name === 'shelve'
            ? alarms.shelve(key, who, comment, (body.duration_minutes ?? 60) * 60_000)
            : name === 'unshelve'
              ? alarms.unshelve(key, who, comment)
              : alarms.setOutOfService(key, name === 'out-of-service', who, comment);
      // The engine answers nothing when the alarm already is where it was asked to go.
      if (events.length === 0 && (name === 'out-of-service' || name === 'in-service'))
        throw new RuleActionError(`${key} is ${name === 'out-of-service' ? 'already' : 'not'} out of service`);
      audit.append({ who, action: name, target: key, outcome: 'done', ...(body.comment ? { detail: body.comment } : {}) });
      return { events };
    } catch (err) {
      if (!(err instanceof RuleActionError)) throw err;
      audit.append({ who, action: name, target: key, outcome: `refused: ${err.message}` });
      return sendError(reply, 'GW_HTTP_CONFLICT', err.message);
    }
  };
  const commentSchema = { type: 'string', maxLength: 500 } as const;
  const actionSchema = (summary: string, o: { role?: Role; extra?: Record<string, unknown>; commentRequired?: boolean } = {}) => ({
    config: { role: o.role ?? ('operator' as const) },
    schema: {
      summary,
      params: {
        type: 'object',
        properties: { equipment: { type: 'string' }, rule: { type: 'string' } },
        required: ['equipment', 'rule'],
      },
      body: o.commentRequired
        ? {
            type: 'object',
            additionalProperties: false,
            properties: { comment: { ...commentSchema, pattern: '\\S' }, ...o.extra },
            required: ['comment'],
          }
        : { type: 'object', additionalProperties: false, properties: { comment: commentSchema, ...o.extra } },
      response: { 200: { type: 'object', properties: { events: { type: 'array', items: eventSchema } } }, 409: errorSchema },
    },
  });
  app.post('/api/alarms/:equipment/:rule/acknowledge', actionSchema('Acknowledge an alarm'), action('acknowledge'));
  app.post(
    '/api/alarms/:equipment/:rule/shelve',
    actionSchema('Shelve an alarm for a while', { extra: { duration_minutes: { type: 'number', minimum: 1, maximum: 1440 } } }),
    action('shelve'),
  );
  app.post('/api/alarms/:equipment/:rule/unshelve', actionSchema('Unshelve an alarm'), action('unshelve'));
  // Out of service hides a hazard until someone returns the alarm: an admin's decision, with the reason.
  app.post(
    '/api/alarms/:equipment/:rule/out-of-service',
    actionSchema(
      'Take an alarm out of service (admin; a comment is required): it ends its open incident and raises nothing until returned to service',
      { role: 'admin', commentRequired: true },
    ),
    action('out-of-service'),
  );
  app.post(
    '/api/alarms/:equipment/:rule/in-service',
    actionSchema(
      'Return an alarm to service (admin): its readings are evaluated again, and a condition that still holds raises a new incident',
      { role: 'admin' },
    ),
    action('in-service'),
  );
};
