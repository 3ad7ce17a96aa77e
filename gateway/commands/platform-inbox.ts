// `gateway platform-inbox`: the reference platform receiver, until a signal stops it.
import { join } from 'node:path';
import { Option } from '@commander-js/extra-typings';
import { EXIT, usageError } from './common.js';
import { aFile, type CliCommand, examples, integer } from './declare.js';

export interface InboxOptions {
  port: string;
  secret: string;
  host?: string | undefined;
  out?: string | undefined;
  state?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  ca?: string | undefined;
}

export async function platformInboxCommand(o: InboxOptions): Promise<number> {
  const port = Number(o.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return usageError('platform-inbox', `--port takes 1-65535, not "${o.port}"`);
  if (!o.secret) return usageError('platform-inbox', '--secret must not be empty');
  if ((o.cert === undefined) !== (o.key === undefined) || (o.ca !== undefined && o.cert === undefined)) {
    return usageError('platform-inbox', '--cert and --key go together, and --ca needs them');
  }
  const tls = o.cert && o.key ? { cert: o.cert, key: o.key, ...(o.ca ? { ca: o.ca } : {}) } : undefined;
  const { createPlatformInbox, summaryOf } = await import('../platform/inbox.js');
  let inbox;
  try {
    // The de-duplication state outlives the process by default: in ./.data, like a demo site's data folder, one file per port.
    inbox = createPlatformInbox({
      port,
      secret: o.secret,
      host: o.host,
      out: o.out,
      state: o.state ?? join('.data', `platform-inbox-${port}.db`),
      tls,
    });
  } catch (err) {
    process.stderr.write(
      `Platform inbox cannot read its certificate files or open its state file: ${(err as Error).message} (GW_ERR_USAGE)\n`,
    );
    return EXIT.invalid;
  }
  try {
    await inbox.start();
  } catch (err) {
    process.stderr.write(`Platform inbox cannot listen on ${o.host ?? '127.0.0.1'}:${port}: ${(err as Error).message} (GW_ERR_LISTEN)\n`);
    return EXIT.failure;
  }
  const { host } = inbox.address();
  process.stdout.write(
    `Platform inbox listening on ${tls ? 'https' : 'http'}://${host}:${port}/${tls?.ca ? ' (clients need a certificate signed by the CA)' : ''} (Ctrl-C stops it)\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await inbox.stop();
  process.stdout.write(`${summaryOf(inbox).join('\n')}\n`);
  return EXIT.ok;
}

export const command: CliCommand = {
  register(program, cli) {
    const file = (flags: string, description: string) => new Option(flags, description).argParser(aFile);
    program
      .command('platform-inbox')
      .description('the reference platform receiver: verifies signatures, de-duplicates, reports seq gaps, prints each incident as a line')
      .addOption(new Option('--port <port>', 'the port to listen on (1-65535)').argParser(integer(1, 65535)).makeOptionMandatory())
      .requiredOption('--secret <secret>', "the shared secret of the gateways' signatures")
      .option('--host <host>', 'the address to listen on (default: 127.0.0.1)')
      .addOption(file('--out <file>', 'also append each incident to this JSON-lines file'))
      .addOption(
        file(
          '--state <file>',
          'keep the de-duplication state in this file, so that a restarted inbox still knows what it took (default: ./.data/platform-inbox-PORT.db)',
        ),
      )
      .addOption(file('--cert <file>', 'serve HTTPS with this certificate (with --key)'))
      .addOption(file('--key <file>', "the certificate's private key"))
      .addOption(file('--ca <file>', 'require client certificates signed by this CA (with --cert and --key)'))
      .addHelpText(
        'after',
        examples(
          'gateway platform-inbox --port 8787 --secret "$PLATFORM_SECRET" --out incidents.jsonl --state inbox.db',
          'gateway platform-inbox --port 8443 --secret S --cert server.pem --key server.key --ca clients-ca.pem',
        ),
      )
      .action(async (o) => {
        cli.done(await platformInboxCommand(o));
      });
  },
};
