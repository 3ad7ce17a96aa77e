// API tokens as the site file holds them: a role and the token's SHA-256 hash. Free of fastify and
// zod, so that `gateway token new` and the banner of `gateway run` do not load them; the HTTP API
// and the config schema take them from here.
import { createHash } from 'node:crypto';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function hashToken(token: string): string {
  return `sha256:${createHash('sha256').update(token).digest('hex')}`;
}
