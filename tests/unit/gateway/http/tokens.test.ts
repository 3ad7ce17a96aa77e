// gateway/http/tokens.ts repeats the roles of the config schema and the token hash of the HTTP API
// without loading zod or fastify (for `gateway token new`): the copies must agree.
import { expect, it } from 'vitest';
import { ROLES as SCHEMA_ROLES } from '../../../../config/http-schema.js';
import { hashToken as apiHashToken } from '../../../../gateway/http/server.js';
import { hashToken, ROLES } from '../../../../gateway/http/tokens.js';

it('has the roles of the config schema', () => {
  expect(ROLES).toEqual(SCHEMA_ROLES);
});

it('hashes a token as the HTTP API checks it', () => {
  for (const token of ['demo-operator-token', '', 'a token with spaces and ü']) expect(hashToken(token)).toBe(apiHashToken(token));
});
