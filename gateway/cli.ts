#!/usr/bin/env node
// The `gateway` command: run a site, check a site file.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, GatewayError } from '../config/errors.js';
import { loadSiteFile } from '../config/load.js';
import type { SiteConfig } from '../config/schema.js';
import { createLogger } from './log.js';
import { createGateway } from './runtime.js';

export const EXIT = { ok: 0, failure: 1, invalid: 2 } as const;

/** The package root, from the source tree or from dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the gateway sources');
    dir = up;
  }
  return dir;
}

const USAGE = `Usage:
  gateway run [-c FILE]     run a site (default: the demo, config/demo.yaml)
  gateway check FILE        validate a site file: exit 0 when valid, 2 with one "path: message" line per problem
  gateway --version`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return run(rest);
    case 'check':
      return check(rest);
    case '--version':
    case '-v':
      process.stdout.write(`${JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')).version}\n`);
      return EXIT.ok;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? EXIT.invalid : EXIT.ok;
    default:
      process.stderr.write(`Unknown command "${command}" (GW_ERR_USAGE)\n${USAGE}\n`);
      return EXIT.invalid;
  }
}

function check(args: string[]): number {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  if (positionals.length !== 1) {
    process.stderr.write(`gateway check takes one site file (GW_ERR_USAGE)\n${USAGE}\n`);
    return EXIT.invalid;
  }
  const file = positionals[0]!;
  const config = loadOrReport(file);
  if (!config) return EXIT.invalid;
  process.stdout.write(`${file}: valid (${config.connections.length} connection${config.connections.length === 1 ? '' : 's'}, ${config.equipment.length} equipment)\n`);
  return EXIT.ok;
}

function loadOrReport(file: string): SiteConfig | undefined {
  try {
    return loadSiteFile(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) process.stderr.write(`${p.path}: ${p.message}${p.line ? ` (line ${p.line})` : ''}\n`);
      return undefined;
    }
    if (err instanceof GatewayError) {
      process.stderr.write(`${err.message} (${err.code})\n`);
      return undefined;
    }
    throw err;
  }
}

async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } } });
  const file = values.config ?? join(packageRoot(), 'config', 'demo.yaml');
  const config = loadOrReport(file);
  if (!config) return EXIT.invalid;
  const log = createLogger({ level: config.gateway.log_level });
  const gateway = createGateway(config, log);

  process.on('unhandledRejection', (reason) => {
    log.fatal({ err: reason }, 'Unhandled promise rejection; exiting');
    process.exit(EXIT.failure);
  });

  try {
    await gateway.start();
  } catch (err) {
    const code = err instanceof GatewayError ? err.code : 'GW_ERR_COMPONENT_START';
    log.fatal({ code, err: (err as Error).message }, 'Gateway cannot start');
    process.stderr.write(`Gateway cannot start: ${(err as Error).message} (${code})\n`);
    return EXIT.failure;
  }
  printBanner(config, resolve(file), gateway.mqttUrl());

  return new Promise<number>((done) => {
    let firstSignalAt = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      if (firstSignalAt > 0) {
        // Ctrl-C reaches us twice at once: from the terminal's process group and forwarded by npm.
        if (Date.now() - firstSignalAt < REPEAT_SIGNAL_MS) return;
        log.warn({ signal }, 'Second signal: exiting without waiting');
        process.exit(EXIT.failure);
      }
      firstSignalAt = Date.now();
      log.info({ signal }, 'Stopping');
      gateway.stop().then(
        () => done(EXIT.ok),
        (err: unknown) => {
          log.error({ err }, 'Stop failed');
          done(EXIT.failure);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** A signal repeated within this time is the same request to stop, not an impatient second one. */
const REPEAT_SIGNAL_MS = 1000;

function printBanner(config: SiteConfig, file: string, url: string): void {
  const { hostname, port } = new URL(url);
  const host = hostname.replace(/^\[|\]$/g, '');
  const lines = [
    '',
    `  Gateway ${config.gateway.id} is running site "${config.gateway.site}" from ${file}`,
    `  ${config.equipment.length} equipment; MQTT ${config.mqtt.broker === 'embedded' ? 'embedded broker' : 'broker'} at ${host}:${port}`,
    `  Watch it:  mosquitto_sub -h ${host} -p ${port} -t '${config.mqtt.topic_prefix}/${config.gateway.site}/#' -v`,
    '  Stop with Ctrl-C.',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(EXIT.failure);
  },
);
