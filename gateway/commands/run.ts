// `gateway run` and `gateway influx-writer`: a site's gateway, or only its InfluxDB writer, until a
// signal stops it.
import { resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import type { SiteConfig } from '../../config/schema.js';
import type { Logger } from '../log.js';
import type { Gateway } from '../runtime.js';
import { redact } from '../redact.js';
import { demoSite, EXIT, loadOrReport, siteFileOf, usageError } from './common.js';
import { type CliCommand, configOption, examples, siteArgument } from './declare.js';

/** The demo site's operator token; its hash is in config/demo.yaml, and the banner shows it. */
const DEMO_TOKEN = 'demo-operator-token';

/** A signal repeated within this time is the same request to stop, not an impatient second one. */
const REPEAT_SIGNAL_MS = 1000;

/**
 * How many copies of one request to stop reach this process. Under npm (`npm start`) a Ctrl-C comes
 * twice: from the terminal's process group and forwarded by npm, whose copy has been seen 2 s late
 * on a loaded machine; only a signal beyond those copies is an impatient operator's second one.
 */
const COPIES_PER_SIGNAL = process.env.npm_lifecycle_event ? 2 : 1;

export async function runCommand(mode: 'gateway' | 'influx-writer', siteFile: string | undefined, clientId?: string): Promise<number> {
  // A gateway runs for months on a box with little memory: V8 keeps its heap small (collects sooner)
  // instead of growing it for speed. 10,000 points at 1 s: about 135 MiB resident instead of
  // 200-300 MiB (docs/BENCHMARKS.md). Given on the command line (the installed command, npm start,
  // the Docker image) it also sizes the young generation; set here it covers `node cli.js run`.
  setFlagsFromString('--optimize-for-size');
  // From the first moment: SIGHUP's default action ends the process, and a reload needs the gateway built.
  const hangup: { reload?: () => void } = {};
  process.on('SIGHUP', () =>
    hangup.reload ? hangup.reload() : process.stderr.write('SIGHUP before the gateway runs: nothing to reload\n'),
  );
  if (mode === 'influx-writer' && !siteFile) return usageError('influx-writer', 'needs the site file, as FILE or -c FILE');
  const file = siteFile ?? demoSite();
  const config = await loadOrReport(file);
  if (!config) return EXIT.invalid;
  const { GatewayError } = await import('../../config/errors.js');
  const { createLogger } = await import('../log.js');
  const { createGateway, createInfluxWriterService } = await import('../runtime.js');
  const log = createLogger({ level: config.gateway.log_level });
  let gateway: { start(): Promise<void>; stop(): Promise<void> };
  try {
    gateway =
      mode === 'gateway' ? createGateway(config, log, { siteFile: resolve(file) }) : createInfluxWriterService(config, log, clientId);
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    process.stderr.write(`${redact(err.message)} (${err.code})\n`);
    return EXIT.invalid;
  }

  process.on('unhandledRejection', (reason) => {
    log.fatal({ err: reason }, 'Unhandled promise rejection; exiting');
    process.exit(EXIT.failure);
  });
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'Uncaught exception; exiting');
    process.exit(EXIT.failure);
  });

  // Under systemd (Type=notify): READY=1 once started, WATCHDOG=1 while well, STOPPING=1 (gateway/systemd.ts).
  const systemd = process.env.NOTIFY_SOCKET
    ? await import('../systemd.js').then(({ ownLinkOverLoopback, systemdNotifier, watchdogVerdict }) =>
        systemdNotifier(process.env, log.child({ component: 'systemd' }), () =>
          'services' in gateway
            ? watchdogVerdict(
                (gateway as Gateway).services,
                config.mqtt.broker === 'embedded' && ownLinkOverLoopback((gateway as Gateway).mqttUrl()),
              )
            : { ok: true },
        ),
      )
    : undefined;

  // Signals are handled from the start: a Ctrl-C while components start stops them once started.
  let stopRequested: ((code: number) => void) | undefined;
  let firstSignalAt = 0;
  let signals = 0;
  const stopped = new Promise<number>((resolve) => (stopRequested = resolve));
  const stop = () => {
    systemd?.stopping();
    return gateway.stop().then(
      () => stopRequested!(EXIT.ok),
      (err: unknown) => {
        log.error({ err }, 'Stop failed');
        stopRequested!(EXIT.failure);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      if (signals <= COPIES_PER_SIGNAL || Date.now() - firstSignalAt < REPEAT_SIGNAL_MS) return;
      log.warn({ signal }, 'Second signal: exiting without waiting');
      process.exit(EXIT.failure);
    }
    firstSignalAt = Date.now();
    log.info({ signal }, 'Stopping');
    void stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // SIGHUP (a closing terminal, a log rotator, `systemctl reload`) re-reads the site file: it never stops the gateway.
  hangup.reload = () => void onHangup(gateway, mode, config, log);

  try {
    await gateway.start();
  } catch (err) {
    const code = err instanceof GatewayError ? err.code : 'GW_ERR_COMPONENT_START';
    log.fatal({ code, err: (err as Error).message }, 'Gateway cannot start');
    // The message may name a URL of the site file, credentials and all (the log line is redacted too).
    process.stderr.write(`Gateway cannot start: ${redact((err as Error).message)} (${code})\n`);
    return EXIT.failure;
  }
  if (firstSignalAt === 0) systemd?.ready(`Running site ${config.gateway.site} (${config.equipment.length} equipment)`);
  if (firstSignalAt === 0 && 'mqttUrl' in gateway) await printBanner(config, resolve(file), (gateway as Gateway).mqttUrl());
  return stopped.finally(() => systemd?.close());
}

/** A SIGHUP: the gateway reloads its site file (docs/reload.md), audited with the actor `signal`. */
async function onHangup(
  gateway: { start(): Promise<void> },
  mode: 'gateway' | 'influx-writer',
  config: SiteConfig,
  log: Logger,
): Promise<void> {
  if (mode !== 'gateway' || !('reload' in gateway)) {
    log.warn('SIGHUP: the InfluxDB writer reloads nothing; restart it to apply a changed site file');
    return;
  }
  const { describeOutcome } = await import('../reload.js');
  let summary: string;
  try {
    const outcome = await (gateway as Gateway).reload();
    summary = describeOutcome(outcome);
    if (outcome.ok) log.info({ by: 'signal' }, `Site file reloaded: ${summary}`);
    else log.warn({ by: 'signal', problems: outcome.problems }, `Site file reload ${summary}`);
    await auditHangup(
      config,
      { outcome: summary, ...(!outcome.ok && outcome.problems.length > 0 ? { detail: outcome.problems.join('\n').slice(0, 4000) } : {}) },
      log,
    );
  } catch (err) {
    log.error({ err }, 'Site file reload failed');
    await auditHangup(config, { outcome: `failed: ${(err as Error).message}` }, log);
  }
}

async function auditHangup(config: SiteConfig, entry: { outcome: string; detail?: string }, log: Logger): Promise<void> {
  try {
    const { AuditJournal } = await import('../audit.js');
    const { join } = await import('node:path');
    new AuditJournal(join(resolve(config.gateway.data_dir), 'audit.jsonl')).append({
      who: 'signal',
      action: 'config reload',
      target: 'site file',
      ...entry,
    });
  } catch (err) {
    log.error({ err: (err as Error).message }, 'Cannot write the reload to the audit journal');
  }
}

async function printBanner(config: SiteConfig, file: string, url: string): Promise<void> {
  const { hashToken } = await import('../http/tokens.js');
  const { hostname, port } = new URL(url);
  const host = hostname.replace(/^\[|\]$/g, '');
  const lines = [
    '',
    `  Gateway ${config.gateway.id} is running site "${config.gateway.site}" from ${file}`,
    `  ${config.equipment.length} equipment; MQTT ${config.mqtt.broker === 'embedded' ? 'embedded broker' : 'broker'} at ${host}:${port}`,
    `  Watch it:  mosquitto_sub -h ${host} -p ${port} -t '${config.mqtt.topic_prefix}/${config.gateway.site}/#' -v`,
    ...(config.http
      ? [
          `  Dashboard: ${config.http.cert ? 'https' : 'http'}://${config.http.host === '0.0.0.0' ? '127.0.0.1' : config.http.host}:${config.http.port}/${config.http.tokens.some((t) => t.hash === hashToken(DEMO_TOKEN)) ? `  (demo token: ${DEMO_TOKEN})` : ''}`,
        ]
      : []),
    '  Stop with Ctrl-C.',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** `gateway run [file]`: the gateway of a site, the demo's by default. */
export const command: CliCommand = {
  register(program, cli) {
    program
      .command('run')
      .description('run a site (default: the demo, config/demo.yaml)')
      .addArgument(siteArgument())
      .addOption(configOption())
      .addHelpText('after', examples('gateway run site.yaml', 'gateway run -c site.yaml', 'MQTT_PORT=1884 gateway run'))
      .action(async (file, o) => {
        cli.done(await runCommand('gateway', siteFileOf('run', file, o.config)));
      });
  },
};
