// `gateway audit verify`: check the audit journal's chain and name the first entry that breaks it.
import { dirname, join, resolve } from 'node:path';
import { Option } from '@commander-js/extra-typings';
import { demoSite, EXIT, loadOrReport, siteFileOf, usageError } from './common.js';
import { aFile, type CliCommand, type CliIo, configOption, examples, siteArgument } from './declare.js';

export async function auditVerifyCommand(o: { config?: string | undefined; file?: string | undefined }, io: CliIo): Promise<number> {
  let file = o.file;
  if (!file) {
    const config = await loadOrReport(o.config ?? demoSite());
    if (!config) return EXIT.invalid;
    file = join(resolve(config.gateway.data_dir), 'audit.jsonl');
  }
  const { checkJournal } = await import('../audit.js');
  const r = checkJournal(file);
  // What verify accepted but a reader should know (old unkeyed entries, repairs, files rotated away).
  for (const note of r.notes) io.out(`note: ${note}\n`);
  if (r.ok) {
    io.out(`${file}: ${r.entries} entries${r.files.length > 1 ? ` in ${r.files.length} files` : ''}, the chain is intact\n`);
    return EXIT.ok;
  }
  // The break may be in a rolled-over file (audit.<n>.jsonl) beside the one named.
  io.err(
    `${join(dirname(file), r.file)}: line ${r.line} breaks the chain: ${r.reason} (${r.entries} entries before it are intact) (GW_ERR_AUDIT)\n`,
  );
  return EXIT.failure;
}

export const command: CliCommand = {
  register(program, cli) {
    program
      .command('audit')
      .description('the audit journal')
      .command('verify')
      .description("check the audit journal's chain; names the first broken entry")
      .addArgument(siteArgument())
      .addOption(configOption())
      .addOption(
        new Option('--file <journal>', "the journal file itself (default: audit.jsonl in the site's data folder)").argParser(aFile),
      )
      .addHelpText(
        'after',
        examples(
          'gateway audit verify site.yaml',
          'gateway audit verify -c site.yaml',
          'gateway audit verify --file /var/lib/gateway/audit.jsonl',
        ),
      )
      .action(async (file, o) => {
        // FILE is the site file, as for every command; a journal given there is named back, not read as YAML.
        if (file?.endsWith('.jsonl')) {
          usageError('audit verify', `FILE is the site file (the same as -c FILE); give a journal with --file "${file}"`);
        }
        cli.done(await auditVerifyCommand({ config: siteFileOf('audit verify', file, o.config), file: o.file }, cli.io));
      });
  },
};
