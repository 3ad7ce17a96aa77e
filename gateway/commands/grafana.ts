// `gateway grafana export`: Grafana provisioning files (InfluxDB data sources, a dashboard provider)
// and dashboards made from the site file and its templates (gateway/grafana/, docs/grafana.md).
import { InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { EXIT, loadOrReport, siteFileOf, usageError } from './common.js';
import { type CliCommand, type CliIo, examples, siteArgument, siteOption } from './declare.js';

export interface GrafanaExportOptions {
  config?: string | undefined;
  out: string;
  flavor?: 'influxql' | 'flux' | 'both' | undefined;
  dashboardsPath?: string | undefined;
  folder?: string | undefined;
}

const FLAVORS = ['influxql', 'flux', 'both'] as const;

/** The --flavor value, checked while the command line is parsed. */
function flavor(value: string): (typeof FLAVORS)[number] {
  const found = FLAVORS.find((f) => f === value);
  if (!found) throw new InvalidArgumentError(`takes influxql, flux or both, not "${value}"`);
  return found;
}

export async function grafanaExportCommand(o: GrafanaExportOptions, io: CliIo): Promise<number> {
  if (o.config === undefined) return usageError('grafana export', 'needs the site file: gateway grafana export -c FILE');
  const config = await loadOrReport(o.config);
  if (!config) return EXIT.invalid;
  const { readFileSync } = await import('node:fs');
  const { join, resolve } = await import('node:path');
  const { loadTemplates } = await import('../../config/templates.js');
  const { ExportError, exportTree, writeTree } = await import('../grafana/export.js');
  let tree;
  try {
    tree = exportTree(config, loadTemplates(), {
      siteText: readFileSync(o.config, 'utf8'),
      flavor: o.flavor,
      dashboardsPath: o.dashboardsPath,
      folder: o.folder,
    });
  } catch (err) {
    if (!(err instanceof ExportError)) throw err;
    io.err(`${err.message}\n`);
    return EXIT.failure;
  }
  const out = resolve(o.out);
  let result;
  try {
    result = writeTree(out, config.gateway.site, tree);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined) throw err;
    io.err(`Cannot write the export to ${out}: ${(err as Error).message} (${code})\n`);
    return EXIT.failure;
  }
  for (const f of result.written) io.out(`${join(out, f)}\n`);
  for (const f of result.removed) io.out(`Removed ${join(out, f)}: a dashboard of an earlier export this site no longer has\n`);
  for (const s of tree.secrets) io.out(`Grafana reads ${s.variable} from its environment: ${s.holds}\n`);
  return EXIT.ok;
}

export const command: CliCommand = {
  register(program, cli) {
    program
      .command('grafana')
      .description('Grafana dashboards and data sources for the site')
      .command('export')
      .description(
        'Grafana provisioning files made from the site file: InfluxDB data sources (InfluxQL, Flux), a dashboard provider, one dashboard per equipment template the site uses with its own equipment and points, and a site overview of alarms and risk (docs/grafana.md). Secrets are never written: Grafana reads them from its environment.',
      )
      .addArgument(siteArgument())
      .addOption(siteOption())
      .option('--out <dir>', 'the folder to write provisioning/ and dashboards/ into', 'grafana')
      .addOption(
        new Option(
          '--flavor <flavor>',
          'query language of the data sources and dashboards (default: influxql for api: v1, both for api: v2)',
        ).argParser(flavor),
      )
      .option('--dashboards-path <path>', 'where Grafana finds the dashboard files (default: /var/lib/grafana/dashboards/<site>)')
      .option('--folder <name>', 'the Grafana folder of the dashboards (default: Gateway <site>)')
      .addHelpText(
        'after',
        examples(
          'gateway grafana export -c site.yaml',
          'gateway grafana export -c site.yaml --out /etc/grafana-export --flavor flux',
          'gateway grafana export site.yaml --dashboards-path /var/lib/grafana/dashboards/plant-3 --folder "Plant 3"',
        ),
      )
      .action(async (file, o) => {
        cli.done(await grafanaExportCommand({ ...o, config: siteFileOf('grafana export', file, o.config) }, cli.io));
      });
  },
};
