// `gateway influx-writer FILE`: only the InfluxDB writer of a site, on its external broker (a shared
// subscription, so that several writers share the load). Its work is `gateway run`'s (run.ts).
import { siteFileOf } from './common.js';
import { type CliCommand, examples, siteArgument, siteOption } from './declare.js';

export const command: CliCommand = {
  register(program, cli) {
    program
      .command('influx-writer')
      .description("only the InfluxDB writer, on the site's external broker (shared subscription)")
      .addArgument(siteArgument())
      .addOption(siteOption())
      .option(
        '--client-id <id>',
        "the writer's MQTT client id; several writers with different ids share the load (default: from the site's gateway id)",
      )
      .addHelpText(
        'after',
        examples('gateway influx-writer site.yaml --client-id writer-1', 'gateway influx-writer -c site.yaml --client-id writer-2'),
      )
      .action(async (file, o) => {
        const site = siteFileOf('influx-writer', file, o.config);
        const { runCommand } = await import('./run.js');
        cli.done(await runCommand('influx-writer', site, o.clientId));
      });
  },
};
