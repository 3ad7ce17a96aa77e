// `gateway rules test`: replay recorded readings through a site's rules and print the alarm events.
import { readFileSync } from 'node:fs';
import { EXIT, loadOrReport } from './common.js';

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
      rules: ruleSpecsOf(config),
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
