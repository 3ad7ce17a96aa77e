// One plugin of the HTTP API with the auth plugin in front, as a fastify instance for inject(): the
// audit journal is a list, the log a list of lines, and the clock the test's own.
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { AuditInput } from '../../../../gateway/audit.js';
import { frameworkErrors, handleErrors } from '../../../../gateway/http/errors.js';
import { authPlugin } from '../../../../gateway/http/plugins/auth.js';
import { hashToken } from '../../../../gateway/http/tokens.js';

export const TOKENS = { viewer: 'viewer-token-0123456789', operator: 'operator-token-0123456789', admin: 'admin-token-0123456789' };
export const as = (role: keyof typeof TOKENS) => ({ authorization: `Bearer ${TOKENS[role]}` });

export interface PluginApp {
  app: FastifyInstance;
  audit: AuditInput[];
  logs: Array<{ level: number; msg: string } & Record<string, unknown>>;
  clock: { now: number };
}

/** `register` adds the plugin under test (auth is there already, in front of it). */
export async function pluginApp(register?: (app: FastifyInstance) => unknown): Promise<PluginApp> {
  const audit: AuditInput[] = [];
  const logs: PluginApp['logs'] = [];
  const clock = { now: 1_700_000_000_000 };
  const log = pino({ level: 'debug' }, { write: (l: string) => void logs.push(JSON.parse(l) as PluginApp['logs'][number]) });
  const app = Fastify({ logger: false, frameworkErrors });
  handleErrors(app, log);
  await app.register(authPlugin, {
    tokens: (['viewer', 'operator', 'admin'] as const).map((role) => ({ name: `${role}-user`, role, hash: hashToken(TOKENS[role]) })),
    audit: { append: (e: AuditInput) => audit.push(e) },
    log,
    now: () => clock.now,
  });
  await register?.(app);
  return { app, audit, logs, clock };
}
