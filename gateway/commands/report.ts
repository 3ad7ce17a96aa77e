// `gateway report daily`: the daily safety report of one date, on demand. It reads the store
// read-only (also while the gateway runs) and writes only the report files.
import { resolve } from 'node:path';
import { InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { demoSite, EXIT, loadOrReport, siteFileOf, usageError } from './common.js';
import { aFile, type CliCommand, type CliIo, configOption, examples, siteArgument } from './declare.js';

export interface ReportOptions {
  config?: string | undefined;
  date?: string | undefined;
  out?: string | undefined;
  json?: boolean | undefined;
}

/** `YYYY-MM-DD`, a real calendar date, checked while the command line is parsed. */
function calendarDate(value: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  const d = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : undefined;
  if (!m || !d || d.getUTCFullYear() !== Number(m[1]) || d.getUTCMonth() !== Number(m[2]) - 1 || d.getUTCDate() !== Number(m[3])) {
    throw new InvalidArgumentError(`takes a calendar date written YYYY-MM-DD, such as 2026-03-08, not "${value}"`);
  }
  return value;
}

export async function reportDailyCommand(o: ReportOptions, io: CliIo): Promise<number> {
  const config = await loadOrReport(o.config ?? demoSite());
  if (!config) return EXIT.invalid;
  const { join } = await import('node:path');
  const { GatewayError } = await import('../../config/errors.js');
  const { STORE_FILE } = await import('../store.js');
  const { addDays, localDate, siteTimeZone } = await import('../report/time.js');
  const timeZone = siteTimeZone(config);
  const now = Date.now();
  const today = localDate(now, timeZone);
  const date = o.date ?? addDays(today, -1);
  if (date > today)
    usageError('report daily', `--date ${date} is after today (${today} in ${timeZone}): a report covers a day that has begun`);

  const { openStoreReadOnly } = await import('../report/source.js');
  const { buildDailyReport, renderDailyReport } = await import('../report/daily.js');
  const { writeDailyReport, writeFileAtomic } = await import('../report/files.js');
  const dataDir = resolve(config.gateway.data_dir);
  let source;
  try {
    source = openStoreReadOnly(join(dataDir, STORE_FILE));
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    io.err(`${err.message} (${err.code})\n`);
    return EXIT.failure;
  }
  let report;
  try {
    report = buildDailyReport(source, config, date, now);
  } finally {
    source.close();
  }
  try {
    if (o.out === '-') {
      io.out(o.json ? `${JSON.stringify(report, null, 2)}\n` : renderDailyReport(report));
    } else if (o.out !== undefined) {
      writeFileAtomic(o.out, o.json ? `${JSON.stringify(report, null, 2)}\n` : renderDailyReport(report));
      io.out(`${resolve(o.out)}\n`);
    } else {
      const files = writeDailyReport(dataDir, report);
      io.out(`${o.json ? files.json : files.html}\n`);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined) throw err;
    // A folder that is not there or not writable: the user's to fix, said in one line with the system's code.
    io.err(`Cannot write the report: ${(err as Error).message} (${code})\n`);
    return EXIT.failure;
  }
  return EXIT.ok;
}

export const command: CliCommand = {
  register(program, cli) {
    program
      .command('report')
      .description('reports of the site, from the store')
      .command('daily')
      .description(
        "the daily safety report of one day (risk levels, alarms and their handling times, near misses, predicted warnings, inspection dates, availability, lab results): a printable HTML page and a JSON body, written to the data folder's reports/ (it reads the store only, also while the gateway runs)",
      )
      .addArgument(siteArgument())
      .addOption(configOption())
      .addOption(
        new Option('--date <date>', "the day, YYYY-MM-DD in the site's time zone (default: yesterday there)").argParser(calendarDate),
      )
      .addOption(new Option('--out <file>', "write to this file instead of the data folder ('-': print it)").argParser(aFile))
      .option('--json', 'the JSON body (gw.report.daily.v1) instead of the page')
      .addHelpText(
        'after',
        examples(
          'gateway report daily -c site.yaml',
          'gateway report daily -c site.yaml --date 2026-03-08',
          'gateway report daily site.yaml --date 2026-03-08 --out /tmp/report.html',
          'gateway report daily -c site.yaml --json --out -',
        ),
      )
      .action(async (file, o) => {
        cli.done(await reportDailyCommand({ ...o, config: siteFileOf('report daily', file, o.config) }, cli.io));
      });
  },
};
