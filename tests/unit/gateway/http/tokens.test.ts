// Tokens are kept as SHA-256 hashes in the site file: the hash `gateway token new` prints is the
// one the API compares with, in the format the config schema takes.
import { expect, it } from 'vitest';
import { httpSection } from '../../../../config/http-schema.js';
import { hashToken } from '../../../../gateway/http/tokens.js';

it('hashes a token as sha256:<hex> that the http.tokens schema takes', () => {
  expect(hashToken('test')).toBe('sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08');
  const parsed = httpSection.parse({ tokens: [{ name: 'x', role: 'viewer', hash: hashToken('a token with spaces and ü') }] });
  expect(parsed?.tokens[0]?.hash).toMatch(/^sha256:[0-9a-f]{64}$/);
});
