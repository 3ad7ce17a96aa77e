// The API's tokens, kept as SHA-256 hashes, and the roles they hold.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { HttpSection, Role } from '../../../config/http-schema.js';
import { ROLES } from '../../../config/http-schema.js';

export type TokenHolder = HttpSection['tokens'][number];

/** What an `Authorization` header presents: the token it carries (if any) and whose it is (if anyone's). */
export interface Presented {
  token: string | undefined;
  holder: TokenHolder | undefined;
}

export class TokenTable {
  private readonly tokens: Array<TokenHolder & { digest: Buffer }>;

  constructor(tokens: HttpSection['tokens']) {
    this.tokens = tokens.map((t) => ({ ...t, digest: Buffer.from(t.hash.slice('sha256:'.length), 'hex') }));
  }

  /** The Bearer token of an `Authorization` header, and its holder, compared in constant time. */
  present(header: string | undefined): Presented {
    const token = /^Bearer (.+)$/.exec(header ?? '')?.[1];
    const digest = token ? createHash('sha256').update(token).digest() : undefined;
    const holder = digest ? this.tokens.find((t) => t.digest.length === digest.length && timingSafeEqual(t.digest, digest)) : undefined;
    return { token, holder };
  }
}

/** Whether a holder's role is at least `role` (roles are ordered, each allowing what the ones before it do). */
export function holds(holder: TokenHolder, role: Role): boolean {
  return ROLES.indexOf(holder.role) >= ROLES.indexOf(role);
}
