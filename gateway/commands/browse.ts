// `gateway browse ENDPOINT`: list an OPC UA server's variables, or write them as point entries.
import { join, resolve } from 'node:path';
import { dataDirOf, EXIT } from './common.js';

export interface BrowseOptions {
  node?: string | undefined;
  depth: string;
  points?: boolean | undefined;
  securityMode: string;
  securityPolicy?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  config?: string | undefined;
}

export async function browseCommand(endpoint: string, o: BrowseOptions): Promise<number> {
  const { opcuaConnectionSchema } = await import('../../drivers/opcua/schema.js');
  const connection = opcuaConnectionSchema.safeParse({
    id: 'browse',
    type: 'opcua',
    endpoint,
    security_mode: o.securityMode,
    ...(o.securityPolicy ? { security_policy: o.securityPolicy } : {}),
    ...(o.username ? { user: { type: 'username', username: o.username, password: o.password ?? '' } } : {}),
  });
  if (!connection.success) {
    const problems = connection.error.issues.map(
      (i) => `${i.path[0] === 'endpoint' ? 'ENDPOINT' : `--${String(i.path[0] ?? '').replace(/_/g, '-')}`}: ${i.message}`,
    );
    process.stderr.write(`${problems.join('\n')}\n`);
    return EXIT.invalid;
  }
  const dataDir = o.config ? await dataDirOf(o.config) : resolve('.data');
  if (!dataDir) return EXIT.invalid;
  const { browseEndpoint } = await import('../../drivers/opcua/browse.js');
  const { createLogger } = await import('../log.js');
  try {
    const log = createLogger({ level: 'warn', pretty: false, destination: process.stderr });
    const lines = await browseEndpoint(connection.data, join(dataDir, 'pki'), {
      node: o.node,
      depth: Number(o.depth),
      asPoints: o.points ?? false,
      log,
    });
    process.stdout.write(`${lines.join('\n')}\n`);
    return EXIT.ok;
  } catch (err) {
    const message = (err as Error).message.split('\n')[0]!;
    const hint = message.includes('BadCertificateUntrusted')
      ? `\nThe server's certificate is not trusted yet: see it with \`gateway certs list${o.config ? ` -c ${o.config}` : ''}\` and trust it with \`gateway certs trust <thumbprint>\`.`
      : '';
    process.stderr.write(`Browse failed: ${message}${hint}\n`);
    return EXIT.failure;
  }
}
