// `gateway token new`: a new API token, shown once, and the line with its hash for http.tokens.
import { randomBytes } from 'node:crypto';
import type { Role } from '../http/tokens.js';
import { EXIT, usageError } from './common.js';

export async function tokenNewCommand(name: string, role: string): Promise<number> {
  const { hashToken, ROLES } = await import('../http/tokens.js');
  if (!ROLES.includes(role as Role)) return usageError('token new', `--role takes ${ROLES.join(', ')}, not "${role}"`);
  const token = randomBytes(32).toString('base64url');
  process.stdout.write(
    `Token for ${name} (${role}); shown once, keep it secret:\n  ${token}\nAdd to the site file under http.tokens:\n  - { name: ${name}, role: ${role}, hash: "${hashToken(token)}" }\n`,
  );
  return EXIT.ok;
}
