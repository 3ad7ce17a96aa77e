// The dashboard: its static files, with no external resources. They carry no data; the page asks
// for a token itself and reads the API with it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { packageRoot } from '../../package-root.js';

/** The dashboard's files, from the source tree or from dist/ (they are not compiled). */
const DASHBOARD = join(packageRoot(), 'gateway', 'http', 'dashboard');

export const dashboardPlugin: FastifyPluginAsync = async (app) => {
  // Read at each request and revalidated by the browser (the security headers' no-store is overridden).
  const page = (file: string, type: string) => async (_req: FastifyRequest, reply: FastifyReply) =>
    reply
      .header('Content-Type', type)
      .header('Cache-Control', 'no-cache')
      .send(readFileSync(join(DASHBOARD, file)));
  app.get('/', { schema: { hide: true } }, page('index.html', 'text/html; charset=utf-8'));
  app.get('/app.js', { schema: { hide: true } }, page('app.js', 'text/javascript; charset=utf-8'));
  app.get('/style.css', { schema: { hide: true } }, page('style.css', 'text/css; charset=utf-8'));
};
