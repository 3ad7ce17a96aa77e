// The OPC UA driver's commands: `gateway browse ENDPOINT` (a server's variables, or point entries for
// the site file) and `gateway certs list|trust` (the certificates of a site's data folder). Loaded for
// every --help: node's own modules and types only at the top; node-opcua (seconds to load) and the
// schemas (zod) are imported when a command runs.
import { join, resolve } from 'node:path';
import type { DriverCliContext, DriverCommands } from '../commands.js';

export const opcuaCommands: DriverCommands = {
  register(program, cli) {
    const certs = cli.group('certs', 'OPC UA certificates trusted and rejected (data folder of the site)');
    certs
      .command('list')
      .description('the certificates trusted and rejected, with thumbprint, subject and expiry')
      .addArgument(cli.siteArgument())
      .addOption(cli.configOption())
      .addHelpText('after', cli.examples('gateway certs list site.yaml', 'gateway certs list -c site.yaml'))
      .action(async (file, o) => {
        cli.done(await certsList(cli.siteFileOf('certs list', file, o.config), cli));
      });
    certs
      .command('trust')
      .description('move a rejected server certificate to trusted (recorded in the audit journal)')
      .argument('<thumbprint>', 'the certificate, by its thumbprint or its start (gateway certs list shows them)')
      .addOption(cli.configOption())
      .addHelpText('after', cli.examples('gateway certs trust 9dde2d4daa00 -c site.yaml'))
      .action(async (thumbprint, o) => {
        cli.done(await certsTrust(thumbprint, o.config, cli));
      });

    program
      .command('browse')
      .description('list OPC UA variables with NodeId, data type and value, or as point entries')
      .argument('<endpoint>', 'the server, opc.tcp://host:port')
      .option('--node <id>', 'where to start (default: the Objects folder)')
      .option('--depth <n>', 'how many levels down, 1-20', cli.integer(1, 20), '4')
      .option('--points', 'print point entries for the site file instead of a list')
      .option('--security-mode <mode>', 'None, Sign or SignAndEncrypt', 'None')
      .option('--security-policy <policy>', 'Basic256Sha256, Aes128_Sha256_RsaOaep... (with Sign or SignAndEncrypt)')
      .option('--username <user>', 'log in as this user (default: anonymous)')
      .option('--password <password>', "the user's password")
      .addOption(cli.configOption("use the site's data folder for the client certificate (default: .data)"))
      .addHelpText(
        'after',
        cli.examples(
          'gateway browse opc.tcp://10.0.0.9:4840 --node "ns=2;s=Lift3" --points',
          'gateway browse opc.tcp://10.0.0.9:4840 --security-mode SignAndEncrypt --security-policy Basic256Sha256 -c site.yaml',
        ),
      )
      .action(async (endpoint, o) => {
        cli.done(await browse(endpoint, o, cli));
      });
  },
};

/** The options of `gateway browse`, as given on its command line. */
interface BrowseOptions {
  node?: string | undefined;
  depth: string;
  points?: boolean | undefined;
  securityMode: string;
  securityPolicy?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  config?: string | undefined;
}

async function browse(endpoint: string, o: BrowseOptions, cli: DriverCliContext): Promise<number> {
  const { opcuaConnectionSchema } = await import('./schema.js');
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
    cli.err(`${problems.join('\n')}\n`);
    return cli.exit.invalid;
  }
  const dataDir = o.config ? (await cli.loadSite(o.config))?.dataDir : resolve('.data');
  if (!dataDir) return cli.exit.invalid;
  const { browseEndpoint } = await import('./browse.js');
  try {
    const lines = await browseEndpoint(connection.data, join(dataDir, 'pki'), {
      node: o.node,
      depth: Number(o.depth),
      asPoints: o.points ?? false,
      log: await cli.logger(),
    });
    cli.out(`${lines.join('\n')}\n`);
    return cli.exit.ok;
  } catch (err) {
    const message = (err as Error).message.split('\n')[0]!;
    const hint = message.includes('BadCertificateUntrusted')
      ? `\nThe server's certificate is not trusted yet: see it with \`gateway certs list${o.config ? ` -c ${o.config}` : ''}\` and trust it with \`gateway certs trust <thumbprint>\`.`
      : '';
    cli.err(`Browse failed: ${message}${hint}\n`);
    return cli.exit.failure;
  }
}

async function certsList(siteFile: string | undefined, cli: DriverCliContext): Promise<number> {
  const site = await cli.loadSite(siteFile);
  if (!site) return cli.exit.invalid;
  const pki = join(site.dataDir, 'pki');
  const { listCertificates } = await import('./certs.js');
  const list = listCertificates(pki);
  if (list.length === 0) cli.out(`No certificates in ${pki}\n`);
  for (const c of list) cli.out(`${c.status.padEnd(8)} ${c.thumbprint}  ${c.subject}  valid until ${c.notAfter}\n`);
  return cli.exit.ok;
}

async function certsTrust(thumbprint: string, siteFile: string | undefined, cli: DriverCliContext): Promise<number> {
  const site = await cli.loadSite(siteFile);
  if (!site) return cli.exit.invalid;
  const { trustCertificate } = await import('./certs.js');
  // Trusting a certificate is a security decision: the audit journal records who made it.
  const journal = await cli.auditJournal(site.dataDir);
  try {
    const c = trustCertificate(join(site.dataDir, 'pki'), thumbprint);
    journal.append({ action: 'certificate trust', target: c.thumbprint, outcome: 'done', detail: c.subject });
    cli.out(`Trusted ${c.thumbprint} (${c.subject}); the gateway uses it at its next connection attempt\n`);
    return cli.exit.ok;
  } catch (err) {
    journal.append({ action: 'certificate trust', target: thumbprint, outcome: `refused: ${(err as Error).message}` });
    cli.err(`${(err as Error).message}\n`);
    return cli.exit.failure;
  }
}
