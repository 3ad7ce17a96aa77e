// `gateway rules test`: replay recorded readings through a site's rules and print the alarm events;
// with --risk, through the risk judgement too (near misses and risk level changes among them).
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { parseDuration } from '../../drivers/common/duration.js';
import { EXIT, loadOrReport, requiredSiteFile } from './common.js';
import { aFile, type CliCommand, examples, siteArgument, siteOption } from './declare.js';

export async function rulesTestCommand(
  siteFile: string,
  o: { input: string; actions?: string | undefined; json?: boolean | undefined; risk?: boolean | undefined; tail?: number | undefined },
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
    const reportsOnChange = (await import('../../drivers/index.js')).reportsOnChangeOf(config);
    const tail = o.tail !== undefined ? { tailMs: o.tail } : {};
    if (o.risk) {
      const { formatEntry, siteRiskReplay } = await import('../../rules/replay.js');
      // Trying risk settings before switching the judgement on is a use of the replay: it judges, and says so.
      if (!config.risk.enabled)
        process.stderr.write('The site has risk.enabled: false; the replay judges risk with its settings all the same\n');
      const entries = siteRiskReplay(config, reportsOnChange, { readings, actions, ...tail });
      for (const e of entries) process.stdout.write(`${o.json ? JSON.stringify(e) : formatEntry(e)}\n`);
      const count = (kind: string) => entries.filter((e) => e.kind === kind).length;
      if (!o.json)
        process.stderr.write(
          `${readings.length} readings, ${count('alarm')} alarm events, ${count('near_miss')} near misses, ${count('risk')} risk changes\n`,
        );
      return EXIT.ok;
    }
    const events = backtest({
      site: config.gateway.site,
      rules: ruleSpecsOf(config, reportsOnChange),
      readings,
      actions,
      chattering: config.alarms.chattering,
      ...tail,
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

/** The replay runs a loop step every 100 ms of replayed time: a day is the longest tail that stays quick. */
const MAX_TAIL_MS = 86_400_000;

function aDuration(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms > MAX_TAIL_MS)
    throw new InvalidArgumentError(`takes a duration up to 24h, such as 30s, 10m or 1h, not "${value}"`);
  return ms;
}

export const command: CliCommand = {
  register(program, cli) {
    program
      .command('rules')
      .description("a site's alarm rules")
      .command('test')
      .description(
        "replay recorded readings (ts,equipment,point,value,quality) through the site's rules and print the alarm events they would raise, with their times; with --risk, the near misses and risk level changes too",
      )
      .addArgument(siteArgument())
      .addOption(siteOption())
      .addOption(new Option('--input <csv>', 'the readings: ts,equipment,point,value,quality').argParser(aFile).makeOptionMandatory())
      .addOption(
        new Option(
          '--actions <csv>',
          'operator actions to replay with them: ts,action,alarm,by,comment[,duration_ms] (alarm: <equipment>/<rule>; action: ack, shelve, unshelve, out_of_service or in_service)',
        ).argParser(aFile),
      )
      .option(
        '--risk',
        "judge risk as the gateway does (the site's risk settings and administrative dates): near misses and risk level changes, with their factors, among the alarm events (a CSV holds no connection states: communication counts as up)",
      )
      .addOption(
        new Option(
          '--tail <duration>',
          "time to let pass after the last reading, e.g. 10m to see the risk come down after the site's risk.hold",
        ).argParser(aDuration),
      )
      .option('--json', 'one JSON object per event instead of text (with --risk, each with a kind: alarm, near_miss or risk)')
      .addHelpText(
        'after',
        examples(
          'gateway rules test site.yaml --input readings.csv',
          'gateway rules test -c site.yaml --input readings.csv --actions actions.csv --json',
          'gateway rules test site.yaml --input readings.csv --risk --tail 10m',
        ),
      )
      .action(async (file, o) => {
        const site = requiredSiteFile('rules test', file, o.config);
        cli.done(await rulesTestCommand(site, o));
      });
  },
};
