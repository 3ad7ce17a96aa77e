// `gateway lab daily`: the daily upload summary of each lab instrument for one date, on demand, as
// the platform receives it (`gw.lab-daily.v1`). It reads the store read-only (also while the gateway
// runs), sends nothing and writes nothing.
import { InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { demoSite, EXIT, loadOrReport, siteFileOf, usageError } from './common.js';
import { type CliCommand, type CliIo, configOption, examples, siteArgument } from './declare.js';

export interface LabDailyOptions {
  config?: string | undefined;
  date?: string | undefined;
  json?: boolean | undefined;
}

/** `YYYY-MM-DD`, a real calendar date, checked while the command line is parsed. */
function calendarDate(value: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  const d = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : undefined;
  if (!m || !d || d.getUTCFullYear() !== Number(m[1]) || d.getUTCMonth() !== Number(m[2]) - 1 || d.getUTCDate() !== Number(m[3])) {
    throw new InvalidArgumentError(`takes a calendar date written YYYY-MM-DD, such as 2026-12-02, not "${value}"`);
  }
  return value;
}

export async function labDailyCommand(o: LabDailyOptions, io: CliIo): Promise<number> {
  const config = await loadOrReport(o.config ?? demoSite());
  if (!config) return EXIT.invalid;
  const { join, resolve } = await import('node:path');
  const { GatewayError } = await import('../../config/errors.js');
  const { STORE_FILE } = await import('../store.js');
  const { addDays, localDate, localDateTime, siteTimeZone } = await import('../report/time.js');
  const timeZone = siteTimeZone(config);
  const now = Date.now();
  const today = localDate(now, timeZone);
  const date = o.date ?? addDays(today, -1);
  if (date > today)
    usageError('lab daily', `--date ${date} is after today (${today} in ${timeZone}): a summary covers a day that has begun`);

  const { openDatabaseReadOnly } = await import('../report/source.js');
  const { buildLabDaily } = await import('../lab/daily.js');
  const { describeLabDaily, printable } = await import('../platform/contract.js');
  let db;
  try {
    db = openDatabaseReadOnly(join(resolve(config.gateway.data_dir), STORE_FILE));
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    io.err(`${err.message} (${err.code})\n`);
    return EXIT.failure;
  }
  let bodies;
  try {
    bodies = await buildLabDaily(db, config, date, now);
  } finally {
    db.close();
  }
  if (o.json) {
    io.out(`${JSON.stringify(bodies, null, 2)}\n`);
    return EXIT.ok;
  }
  if (bodies.length === 0) {
    io.out(`No lab instruments in ${o.config ?? demoSite()}: nothing to summarise for ${date}.\n`);
    return EXIT.ok;
  }
  const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;
  const at = (t: string) => localDateTime(Date.parse(t), timeZone).slice(11);
  const lines: string[] = [];
  for (const b of bodies) {
    lines.push(describeLabDaily(b));
    if (b.firstResultAt && b.lastResultAt)
      lines.push(`  results from ${at(b.firstResultAt)} to ${at(b.lastResultAt)} (${timeZone}), ${b.samples} samples`);
    if (b.files.taken > 0) lines.push(`  ${plural(b.files.taken, 'file')} taken`);
    for (const g of b.gaps.list)
      lines.push(`  gap from ${at(g.from)} to ${at(g.to)}: ${g.minutes} min without a result${g.offline ? ', the connection down' : ''}`);
    for (const r of b.refusals)
      lines.push(
        `  ${r.kind === 'file-rejected' ? `file "${r.file ?? '?'}" rejected` : `message${r.controlId ? ` ${r.controlId}` : ''} refused`} at ${at(r.at)}: ${r.reason}`,
      );
    for (const a of b.qc.analytes)
      lines.push(`  QC ${a.analyte}: ${plural(a.runs, 'run')}, ${plural(a.warnings, 'warning')}, ${plural(a.rejections, 'rejection')}`);
    for (const n of b.notes) lines.push(`  note: ${n}`);
  }
  // File names, reasons and analyte names are outside text: each line stays one line, in its order (printable).
  io.out(`${lines.map(printable).join('\n')}\n`);
  return EXIT.ok;
}

export const command: CliCommand = {
  register(program, cli) {
    program
      .command('lab')
      .description('lab instruments: their daily upload summary, from the store')
      .command('daily')
      .description(
        "each lab instrument's daily upload summary for one day, as the platform receives it at lab.daily_summary.at (gw.lab-daily.v1): results captured and uploaded, pending, held for QC or refused, files and messages refused, QC runs and rejections, gaps without results (it reads the store only, also while the gateway runs, and sends nothing)",
      )
      .addArgument(siteArgument())
      .addOption(configOption())
      .addOption(
        new Option('--date <date>', "the day, YYYY-MM-DD in the site's time zone (default: yesterday there)").argParser(calendarDate),
      )
      .option('--json', 'the JSON bodies (gw.lab-daily.v1, without their seq) instead of the lines')
      .addHelpText(
        'after',
        examples(
          'gateway lab daily -c site.yaml',
          'gateway lab daily -c site.yaml --date 2026-12-02',
          'gateway lab daily site.yaml --json',
        ),
      )
      .action(async (file, o) => {
        cli.done(await labDailyCommand({ ...o, config: siteFileOf('lab daily', file, o.config) }, cli.io));
      });
  },
};
