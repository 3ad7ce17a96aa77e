// `gateway check FILE`: validate a site file and say so, or list every problem of it.
import { EXIT, loadOrReport, requiredSiteFile } from './common.js';
import { type CliCommand, examples, siteArgument, siteOption } from './declare.js';

export async function checkCommand(file: string): Promise<number> {
  const config = await loadOrReport(file);
  if (!config) return EXIT.invalid;
  process.stdout.write(
    `${file}: valid (${config.connections.length} connection${config.connections.length === 1 ? '' : 's'}, ${config.equipment.length} equipment)\n`,
  );
  return EXIT.ok;
}

export const command: CliCommand = {
  register(program, cli) {
    program
      .command('check')
      .description('validate a site file: exit 0 when valid, 2 with one "path: message" line per problem')
      .addArgument(siteArgument())
      .addOption(siteOption())
      .addHelpText('after', examples('gateway check site.yaml'))
      .action(async (file, o) => {
        const site = requiredSiteFile('check', file, o.config);
        cli.done(await checkCommand(site));
      });
  },
};
