// `gateway token new`: a new API token, shown once, and the line with its hash for http.tokens.
import { randomBytes } from 'node:crypto';
import type { Role } from '../http/tokens.js';
import { EXIT, usageError } from './common.js';
import { type CliCommand, examples } from './declare.js';

export async function tokenNewCommand(name: string, role: string): Promise<number> {
  const { hashToken, ROLES } = await import('../http/tokens.js');
  if (!ROLES.includes(role as Role)) return usageError('token new', `--role takes ${ROLES.join(', ')}, not "${role}"`);
  // The name is what the audit journal records for every action taken with the token: it must say someone.
  if (!name.trim()) return usageError('token new', `--name takes who or what uses the token, not "${name}"`);
  const token = randomBytes(32).toString('base64url');
  process.stdout.write(
    `Token for ${name} (${role}); shown once, keep it secret:\n  ${token}\nAdd to the site file under http.tokens:\n  - { name: ${name}, role: ${role}, hash: "${hashToken(token)}" }\n`,
  );
  return EXIT.ok;
}

export const command: CliCommand = {
  register(program, cli) {
    program
      .command('token')
      .description('API tokens for the HTTP API and the dashboard')
      .command('new')
      .description("a new API token, shown once, and the line with its hash for the site file's http.tokens")
      .requiredOption('--name <name>', 'who or what uses the token (recorded in the audit journal)')
      .requiredOption('--role <role>', 'viewer, operator or admin')
      .addHelpText('after', examples('gateway token new --name wang.li --role operator'))
      .action(async (o) => {
        cli.done(await tokenNewCommand(o.name, o.role));
      });
  },
};
