// Liveness (/health, open), readiness (/ready, open: each component's state, 503 with
// GW_HTTP_NOT_READY while one is not ready) and Prometheus metrics (/metrics, viewer).
import type { FastifyPluginAsync } from 'fastify';
import type { Metrics } from '../../metrics.js';
import { errorBody, HTTP_ERRORS } from '../errors.js';

export interface HealthOptions {
  metrics: Pick<Metrics, 'contentType' | 'metrics'>;
  /** Each component's state for /ready. */
  ready: () => Record<string, { ok: boolean; detail?: unknown }>;
}

export const healthPlugin: FastifyPluginAsync<HealthOptions> = async (app, opts) => {
  app.get(
    '/health',
    {
      schema: {
        summary: 'Liveness',
        response: { 200: { type: 'object', properties: { status: { const: 'ok' } }, required: ['status'] } },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/ready',
    {
      schema: {
        summary: "Readiness: each component's state (503 with a code while one is not ready)",
        response: { 200: { type: 'object', additionalProperties: true }, 503: { type: 'object', additionalProperties: true } },
      },
    },
    async (_req, reply) => {
      const components = opts.ready();
      const ready = Object.values(components).every((c) => c.ok);
      if (ready) return { ready, components };
      const waiting = Object.keys(components).filter((k) => !components[k]!.ok);
      return reply
        .code(HTTP_ERRORS.GW_HTTP_NOT_READY)
        .send({ ready, components, ...errorBody('GW_HTTP_NOT_READY', `not ready: ${waiting.join(', ')}`) });
    },
  );

  app.get(
    '/metrics',
    { config: { role: 'viewer' }, schema: { summary: 'Prometheus metrics (text format)', response: { 200: { type: 'string' } } } },
    async (_req, reply) => reply.header('Content-Type', opts.metrics.contentType).send(await opts.metrics.metrics()),
  );
};
