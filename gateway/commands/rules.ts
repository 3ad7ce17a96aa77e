// `gateway rules test`: replay recorded readings through a site's rules and print the alarm events.
import { readFileSync } from 'node:fs';
import { Option } from '@commander-js/extra-typings';
import { EXIT, loadOrReport, siteFileOf, usageError } from './common.js';
import { aFile, type CliCommand, examples, siteArgument, siteOption } from './declare.js';

export async function rulesTestCommand(
  siteFile: string,
  o: { input: string; actions?: string | undefined; json?: boolean | undefined },
): Promise<number> {
  const config = await loadOrReport(siteFile);
  if (!config) return EXIT.invalid;
  const { backtest, CsvError, formatEvent, parseActionsCsv, parseReadingsCsv } = await import('../../rules/backtest.js');
  const { ruleSpecsOf } = await import('../../rules/compile.js');
  const { RuleActionError } = await import('../../rules/engine.js');
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new CsvError(`Cannot read ${what} "${file}": ${(err as Error).message}`);
    }
  };
  try {
    const readings = parseReadingsCsv(read(o.input, 'readings'));
    const actions = o.actions ? parseActionsCsv(read(o.actions, 'actions')) : [];
    const events = backtest({
      site: config.gateway.site,
      rules: ruleSpecsOf(config, (await import('../../drivers/index.js')).reportsOnChangeOf(config)),
      readings,
      actions,
      chattering: config.alarms.chattering,
    });
    for (const e of events) process.stdout.write(`${o.json ? JSON.stringify(e) : formatEvent(e)}\n`);
    if (!o.json) process.stderr.write(`${readings.length} readings, ${events.length} alarm events\n`);
    return EXIT.ok;
  } catch (err) {
    if (!(err instanceof CsvError) && !(err instanceof RuleActionError)) throw err;
    process.stderr.write(`${err.message} (GW_ERR_INPUT)\n`);
    return EXIT.invalid;
  }
}

export const command: CliCommand = {
  register(program, cli) {
    program
      .command('rules')
      .description("a site's alarm rules")
      .command('test')
      .description(
        "replay recorded readings (ts,equipment,point,value,quality) through the site's rules and print the alarm events they would raise, with their times",
      )
      .addArgument(siteArgument())
      .addOption(siteOption())
      .addOption(new Option('--input <csv>', 'the readings: ts,equipment,point,value,quality').argParser(aFile).makeOptionMandatory())
      .addOption(new Option('--actions <csv>', 'operator actions to replay with them: ts,equipment,rule,action[,comment]').argParser(aFile))
      .option('--json', 'one JSON object per event instead of text')
      .addHelpText(
        'after',
        examples(
          'gateway rules test site.yaml --input readings.csv',
          'gateway rules test -c site.yaml --input readings.csv --actions actions.csv --json',
        ),
      )
      .action(async (file, o) => {
        const site = siteFileOf('rules test', file, o.config);
        if (!site) usageError('rules test', 'needs the site file, as FILE or -c FILE');
        cli.done(await rulesTestCommand(site, o));
      });
  },
};
