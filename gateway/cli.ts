#!/usr/bin/env -S node --optimize-for-size
// The `gateway` command: run a site, check a site file.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import type { SiteConfig } from '../config/schema.js';
import type { Role } from './http/tokens.js';
import type { IncidentBody, ResultBody } from './platform/contract.js';
import type { Gateway } from './runtime.js';

// Only node's own modules are imported above: `--version`, `--help` and every command's --help load
// nothing else. Each command imports what it needs when it runs (the config loader takes zod and
// yaml, a running gateway only the packages of the parts its site file configures).

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

// The usage of `gateway simulate` as drivers/modbus/simulate-command.ts has it (that module loads
// serialport, which --help must not); a test checks the two stay the same.
const SIMULATE_USAGE = `  gateway simulate modbus [--host 127.0.0.1] [--port 5020 | --path DEV [--baud-rate 9600] [--parity none|even|odd]]
                      [--unit 1] [--device boiler|bank] [--fault MODE [--fault-area hr|ir|co|di]]
                            a Modbus device that misbehaves on demand; while it runs, type on standard input:
                            fault MODE [AREA] | fault none | pause | resume | exception CODE | exception none |
                            delay MS | trickle MS | drop | status   (MODE: wrong-byte-count, short-data, wrong-unit, wrong-transaction, wrong-function, garbage, trickle, huge-length, duplicate, bad-crc, echo, silence)`;

const USAGE = `Usage:
  gateway run [-c FILE]     run a site (default: the demo, config/demo.yaml)
  gateway influx-writer -c FILE [--client-id ID]
                            only the InfluxDB writer, on the site's external broker (shared subscription)
  gateway rules test -c FILE --input readings.csv [--actions actions.csv] [--json]
                            replay recorded readings (ts,equipment,point,value,quality) through the site's
                            rules and print the alarm events they would raise, with their times
  gateway platform-inbox --port P --secret S [--host 127.0.0.1] [--out incidents.jsonl]
                      [--cert server.pem --key server.key [--ca clients-ca.pem]]
                            the reference platform receiver: verifies signatures, de-duplicates,
                            reports seq gaps, prints each incident as a line
  gateway outbox list [-c FILE]             incident events waiting for the platform, and dead letters
  gateway alarms list [-c FILE] [--url URL]
  gateway alarms ack|shelve|unshelve|out-of-service|in-service EQUIPMENT/RULE [--comment TEXT] [--minutes N]
                      [-c FILE] [--url URL]
                            the alarms of a running gateway, through its HTTP API with the token in
                            GATEWAY_TOKEN; out-of-service and in-service need an admin token, and
                            out-of-service a comment (the alarm stays silent until it is back in service)
  gateway outbox retry [-c FILE] [--seq N]  send dead letters again (all, or one)
  gateway token new --name NAME --role viewer|operator|admin
                            a new API token, and the line with its hash for the site file's http.tokens
  gateway audit verify [-c FILE | --file audit.jsonl]
                            check the audit journal's hash chain; names the first broken entry
  gateway check FILE        validate a site file: exit 0 when valid, 2 with one "path: message" line per problem
  gateway scan modbus (--host H [--port 502] [--rtu-over-tcp] | --path DEV [--baud-rate 9600] [--parity none|even|odd])
                      [--unit 1] --address hr:100 [--count 10] [--timeout 1s]
                            read registers and print every decoding (types and byte orders) side by side
${SIMULATE_USAGE}
  gateway certs list [-c FILE]              OPC UA certificates trusted and rejected (data folder of the site)
  gateway certs trust THUMBPRINT [-c FILE]  move a rejected server certificate to trusted
  gateway browse ENDPOINT [--node ID] [--depth 4] [--points] [--security-mode None] [--security-policy P]
                      [--username U --password P] [-c FILE]
                            list OPC UA variables with NodeId, data type and value, or as point entries
  gateway --version`;

/** The usage lines of one command (its line and the indented lines under it). */
function usageOf(command: string): string {
  const lines = USAGE.split('\n');
  const out: string[] = [];
  let taking = false;
  for (const line of lines) {
    if (/^ {2}gateway /.test(line)) taking = line.startsWith(`  gateway ${command}`);
    if (taking) out.push(line);
  }
  return out.length > 0 ? `Usage:\n${out.join('\n')}` : USAGE;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command && !command.startsWith('-') && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(`${usageOf(command)}\n`);
    return EXIT.ok;
  }
  switch (command) {
    case 'run':
      return run(rest);
    case 'check':
      return check(rest);
    case 'influx-writer':
      return run(rest, 'influx-writer');
    case 'scan':
      return scan(rest);
    case 'rules':
      return rules(rest);
    case 'platform-inbox':
      return platformInbox(rest);
    case 'outbox':
      return outboxCommand(rest);
    case 'alarms':
      return alarmsCommand(rest);
    case 'token':
      return tokenCommand(rest);
    case 'audit':
      return auditCommand(rest);
    case 'certs':
      return certs(rest);
    case 'browse':
      return browse(rest);
    case 'simulate':
      return simulate(rest);
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

async function check(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  if (positionals.length !== 1) {
    process.stderr.write(`gateway check takes one site file (GW_ERR_USAGE)\n${USAGE}\n`);
    return EXIT.invalid;
  }
  const file = positionals[0]!;
  const config = await loadOrReport(file);
  if (!config) return EXIT.invalid;
  process.stdout.write(`${file}: valid (${config.connections.length} connection${config.connections.length === 1 ? '' : 's'}, ${config.equipment.length} equipment)\n`);
  return EXIT.ok;
}

/** The data folder of the site file given with -c (the demo's by default), for certificate commands. */
async function dataDirOf(file: string | undefined): Promise<string | undefined> {
  const config = await loadOrReport(file ?? join(packageRoot(), 'config', 'demo.yaml'));
  return config && resolve(config.gateway.data_dir);
}

async function certs(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { config: { type: 'string', short: 'c' } } });
  const [action, thumbprint] = positionals;
  if (!(action === 'list' && !thumbprint) && !(action === 'trust' && thumbprint)) {
    process.stderr.write(`gateway certs takes "list" or "trust THUMBPRINT" (GW_ERR_USAGE)\n${USAGE}\n`);
    return EXIT.invalid;
  }
  const dataDir = await dataDirOf(values.config);
  if (!dataDir) return EXIT.invalid;
  const pki = join(dataDir, 'pki');
  const { listCertificates, trustCertificate } = await import('../drivers/opcua/certs.js');
  const { AuditJournal } = await import('./http/audit.js');
  if (action === 'list') {
    const list = listCertificates(pki);
    if (list.length === 0) process.stdout.write(`No certificates in ${pki}\n`);
    for (const c of list) process.stdout.write(`${c.status.padEnd(8)} ${c.thumbprint}  ${c.subject}  valid until ${c.notAfter}\n`);
    return EXIT.ok;
  }
  // Trusting a certificate is a security decision: the audit journal records who made it.
  const journal = new AuditJournal(join(dataDir, 'audit.jsonl'));
  const who = `os:${userInfo().username}`;
  try {
    const c = trustCertificate(pki, thumbprint!);
    journal.append({ who, action: 'certificate trust', target: c.thumbprint, outcome: 'done', detail: c.subject });
    process.stdout.write(`Trusted ${c.thumbprint} (${c.subject}); the gateway uses it at its next connection attempt\n`);
    return EXIT.ok;
  } catch (err) {
    journal.append({ who, action: 'certificate trust', target: thumbprint!, outcome: `refused: ${(err as Error).message}` });
    process.stderr.write(`${(err as Error).message}\n`);
    return EXIT.failure;
  }
}

async function browse(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      node: { type: 'string' },
      depth: { type: 'string', default: '4' },
      points: { type: 'boolean' },
      'security-mode': { type: 'string', default: 'None' },
      'security-policy': { type: 'string' },
      username: { type: 'string' },
      password: { type: 'string' },
      config: { type: 'string', short: 'c' },
    },
  });
  const endpoint = positionals[0];
  const { opcuaConnectionSchema } = await import('../drivers/opcua/schema.js');
  const connection = opcuaConnectionSchema.safeParse({
    id: 'browse',
    type: 'opcua',
    endpoint,
    security_mode: values['security-mode'],
    ...(values['security-policy'] ? { security_policy: values['security-policy'] } : {}),
    ...(values.username ? { user: { type: 'username', username: values.username, password: values.password ?? '' } } : {}),
  });
  if (!connection.success || positionals.length !== 1) {
    const problems = connection.success ? [] : connection.error.issues.map((i) => `${i.path[0] === 'endpoint' ? 'ENDPOINT' : `--${String(i.path[0] ?? '').replace(/_/g, '-')}`}: ${i.message}`);
    process.stderr.write(`${problems.join('\n') || 'gateway browse takes one endpoint (GW_ERR_USAGE)'}\n`);
    return EXIT.invalid;
  }
  const dataDir = values.config ? await dataDirOf(values.config) : resolve('.data');
  if (!dataDir) return EXIT.invalid;
  const { browseEndpoint } = await import('../drivers/opcua/browse.js');
  const { createLogger } = await import('./log.js');
  try {
    const log = createLogger({ level: 'warn', pretty: false, destination: process.stderr });
    const lines = await browseEndpoint(connection.data, join(dataDir, 'pki'), { node: values.node, depth: Number(values.depth), asPoints: values.points ?? false, log });
    process.stdout.write(`${lines.join('\n')}\n`);
    return EXIT.ok;
  } catch (err) {
    const message = (err as Error).message.split('\n')[0]!;
    const hint = message.includes('BadCertificateUntrusted') ? `\nThe server's certificate is not trusted yet: see it with \`gateway certs list${values.config ? ` -c ${values.config}` : ''}\` and trust it with \`gateway certs trust <thumbprint>\`.` : '';
    process.stderr.write(`Browse failed: ${message}${hint}\n`);
    return EXIT.failure;
  }
}

async function scan(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      path: { type: 'string' },
      'rtu-over-tcp': { type: 'boolean' },
      'baud-rate': { type: 'string' },
      parity: { type: 'string' },
      'data-bits': { type: 'string' },
      'stop-bits': { type: 'string' },
      unit: { type: 'string', default: '1' },
      address: { type: 'string' },
      count: { type: 'string', default: '10' },
      timeout: { type: 'string', default: '1s' },
    },
  });
  if (positionals[0] !== 'modbus' || !values.address || (!values.host && !values.path)) {
    process.stderr.write(`gateway scan modbus needs --host or --path, and --address (GW_ERR_USAGE)\n${USAGE}\n`);
    return EXIT.invalid;
  }
  const { isBitArea, MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ, parseAddress } = await import('../drivers/modbus/address.js');
  const { modbusRtuConnectionSchema, modbusRtuOverTcpConnectionSchema, modbusTcpConnectionSchema } = await import('../drivers/modbus/schema.js');
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const raw = values.path
    ? { id: 'scan', type: 'modbus-rtu', path: values.path, baud_rate: num(values['baud-rate']), parity: values.parity, data_bits: num(values['data-bits']), stop_bits: num(values['stop-bits']), timeout: values.timeout }
    : { id: 'scan', type: values['rtu-over-tcp'] ? 'modbus-rtu-over-tcp' : 'modbus-tcp', host: values.host, port: num(values.port) ?? 502, timeout: values.timeout };
  const schema = values.path ? modbusRtuConnectionSchema : values['rtu-over-tcp'] ? modbusRtuOverTcpConnectionSchema : modbusTcpConnectionSchema;
  const connection = schema.safeParse(Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)));
  const address = parseAddress(values.address);
  const unit = Number(values.unit);
  const count = Number(values.count);
  const limit = address && isBitArea(address.area) ? MAX_BITS_PER_READ : MAX_REGISTERS_PER_READ;
  const problems = [
    ...(connection.success ? [] : connection.error.issues.map((i) => `--${String(i.path[0] ?? '').replace(/_/g, '-')}: ${i.message}`)),
    ...(address && address.bit === undefined ? [] : ['--address: expected area:offset such as hr:100, ir:0, co:0 or di:0']),
    ...(Number.isInteger(unit) && unit >= 0 && unit <= 255 ? [] : ['--unit: expected 0-255']),
    ...(Number.isInteger(count) && count >= 1 && count <= limit ? [] : [`--count: expected 1-${limit}`]),
  ];
  if (problems.length > 0 || !connection.success || !address) {
    process.stderr.write(`${problems.join('\n')}\n`);
    return EXIT.invalid;
  }
  const { createLogger } = await import('./log.js');
  const { createModbusLink } = await import('../drivers/modbus/link.js');
  const { describeRegisters } = await import('../drivers/modbus/scan.js');
  const log = createLogger({ level: 'warn', pretty: false, destination: process.stderr });
  const link = createModbusLink(connection.data, log);
  try {
    await link.start();
    if (!link.connected) {
      process.stderr.write(`Cannot connect: ${link.downReason}\n`);
      return EXIT.failure;
    }
    const words = await link.read(unit, address.area, address.offset, count);
    const where = values.path ?? `${values.host}:${connection.data.type === 'modbus-rtu' ? '' : String((connection.data as { port: number }).port)}`;
    process.stdout.write(`${address.area}:${address.offset}-${address.offset + count - 1} of unit ${unit} at ${where}\n${describeRegisters(address.area, address.offset, words).join('\n')}\n`);
    return EXIT.ok;
  } catch (err) {
    process.stderr.write(`Read failed: ${(err as Error).message}\n`);
    return EXIT.failure;
  } finally {
    await link.stop();
  }
}

async function rules(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'test') {
    process.stderr.write(`gateway rules takes the subcommand test (GW_ERR_USAGE)\n${USAGE}\n`);
    return EXIT.invalid;
  }
  let values: { config?: string; input?: string; actions?: string; json?: boolean };
  try {
    ({ values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, input: { type: 'string' }, actions: { type: 'string' }, json: { type: 'boolean' } } }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message} (GW_ERR_USAGE)\n${USAGE}\n`);
    return EXIT.invalid;
  }
  if (!values.config || !values.input) {
    process.stderr.write(`gateway rules test needs -c FILE and --input readings.csv (GW_ERR_USAGE)\n${USAGE}\n`);
    return EXIT.invalid;
  }
  const config = await loadOrReport(values.config);
  if (!config) return EXIT.invalid;
  const { backtest, CsvError, formatEvent, parseActionsCsv, parseReadingsCsv } = await import('../rules/backtest.js');
  const { ruleSpecsOf } = await import('../rules/compile.js');
  const { RuleActionError } = await import('../rules/engine.js');
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new CsvError(`Cannot read ${what} "${file}": ${(err as Error).message}`);
    }
  };
  try {
    const readings = parseReadingsCsv(read(values.input, 'readings'));
    const actions = values.actions ? parseActionsCsv(read(values.actions, 'actions')) : [];
    const events = backtest({ site: config.gateway.site, rules: ruleSpecsOf(config), readings, actions, chattering: config.alarms.chattering });
    for (const e of events) process.stdout.write(`${values.json ? JSON.stringify(e) : formatEvent(e)}\n`);
    if (!values.json) process.stderr.write(`${readings.length} readings, ${events.length} alarm events\n`);
    return EXIT.ok;
  } catch (err) {
    if (!(err instanceof CsvError) && !(err instanceof RuleActionError)) throw err;
    process.stderr.write(`${err.message} (GW_ERR_INPUT)\n`);
    return EXIT.invalid;
  }
}

async function platformInbox(args: string[]): Promise<number> {
  let values: { port?: string; secret?: string; host?: string; out?: string; cert?: string; key?: string; ca?: string };
  try {
    ({ values } = parseArgs({ args, options: { port: { type: 'string' }, secret: { type: 'string' }, host: { type: 'string' }, out: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' }, ca: { type: 'string' } } }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message} (GW_ERR_USAGE)\n${USAGE}\n`);
    return EXIT.invalid;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535 || !values.secret) {
    process.stderr.write(`gateway platform-inbox needs --port (1-65535) and --secret (GW_ERR_USAGE)\n${USAGE}\n`);
    return EXIT.invalid;
  }
  if ((values.cert === undefined) !== (values.key === undefined) || (values.ca !== undefined && values.cert === undefined)) {
    process.stderr.write(`gateway platform-inbox: --cert and --key go together, and --ca needs them (GW_ERR_USAGE)\n`);
    return EXIT.invalid;
  }
  const tls = values.cert && values.key ? { cert: values.cert, key: values.key, ...(values.ca ? { ca: values.ca } : {}) } : undefined;
  const { createPlatformInbox, summaryOf } = await import('./platform/inbox.js');
  let inbox;
  try {
    inbox = createPlatformInbox({ port, secret: values.secret, host: values.host, out: values.out, tls });
  } catch (err) {
    process.stderr.write(`Platform inbox cannot read its certificate files: ${(err as Error).message} (GW_ERR_USAGE)\n`);
    return EXIT.invalid;
  }
  try {
    await inbox.start();
  } catch (err) {
    process.stderr.write(`Platform inbox cannot listen on ${values.host ?? '127.0.0.1'}:${port}: ${(err as Error).message} (GW_ERR_LISTEN)\n`);
    return EXIT.failure;
  }
  const { host } = inbox.address();
  process.stdout.write(`Platform inbox listening on ${tls ? 'https' : 'http'}://${host}:${port}/${tls?.ca ? ' (clients need a certificate signed by the CA)' : ''} (Ctrl-C stops it)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await inbox.stop();
  process.stdout.write(`${summaryOf(inbox).join('\n')}\n`);
  return EXIT.ok;
}

/** `gateway alarms` subcommands and the API action each one posts. */
const ALARM_ACTIONS: Record<string, string> = { ack: 'acknowledge', shelve: 'shelve', unshelve: 'unshelve', 'out-of-service': 'out-of-service', 'in-service': 'in-service' };

/**
 * The alarms of a running gateway. The gateway holds them in memory, so the command goes through its
 * HTTP API, where the token's role is checked and the action is written to the audit journal.
 */
async function alarmsCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  let values: { config?: string; url?: string; comment?: string; minutes?: string };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { config: { type: 'string', short: 'c' }, url: { type: 'string' }, comment: { type: 'string' }, minutes: { type: 'string' } } }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message} (GW_ERR_USAGE)\n${usageOf('alarms')}\n`);
    return EXIT.invalid;
  }
  const action = sub === undefined ? undefined : ALARM_ACTIONS[sub];
  const key = positionals[0] ?? '';
  const slash = key.indexOf('/');
  const minutes = values.minutes === undefined ? undefined : Number(values.minutes);
  const problem =
    sub !== 'list' && !action
      ? 'gateway alarms takes list, ack, shelve, unshelve, out-of-service or in-service'
      : sub === 'list'
        ? positionals.length > 0 ? 'gateway alarms list takes no alarm' : undefined
        : positionals.length !== 1 || slash <= 0 || slash === key.length - 1
          ? `gateway alarms ${sub} takes one alarm as EQUIPMENT/RULE (gateway alarms list shows them)`
          : action === 'out-of-service' && !values.comment?.trim()
            ? 'gateway alarms out-of-service needs --comment: why the alarm is taken out of service (it raises nothing until it is back)'
            : minutes !== undefined && (sub !== 'shelve' || !(minutes >= 1 && minutes <= 1440))
              ? '--minutes goes with shelve, from 1 to 1440'
              : undefined;
  if (problem) {
    process.stderr.write(`${problem} (GW_ERR_USAGE)\n${usageOf('alarms')}\n`);
    return EXIT.invalid;
  }
  const token = process.env.GATEWAY_TOKEN;
  if (!token) {
    process.stderr.write('gateway alarms needs an API token in the environment variable GATEWAY_TOKEN (gateway token new makes one) (GW_ERR_USAGE)\n');
    return EXIT.invalid;
  }
  let base = values.url;
  if (!base) {
    const config = await loadOrReport(values.config ?? join(packageRoot(), 'config', 'demo.yaml'));
    if (!config) return EXIT.invalid;
    if (!config.http) {
      process.stderr.write('The site file has no http: section: alarms are handled through the HTTP API, which it does not run (GW_ERR_USAGE)\n');
      return EXIT.invalid;
    }
    const host = config.http.host === '0.0.0.0' ? '127.0.0.1' : config.http.host === '::' ? '::1' : config.http.host;
    base = `${config.http.cert ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
  }
  const path = sub === 'list' ? '/api/alarms' : `/api/alarms/${encodeURIComponent(key.slice(0, slash))}/${encodeURIComponent(key.slice(slash + 1))}/${action}`;
  const body = sub === 'list' ? undefined : JSON.stringify({ ...(values.comment !== undefined ? { comment: values.comment } : {}), ...(minutes !== undefined ? { duration_minutes: minutes } : {}) });
  let res: Response;
  try {
    res = await fetch(new URL(path, base), {
      method: body === undefined ? 'GET' : 'POST',
      headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    process.stderr.write(`Cannot reach the gateway's API at ${base}: ${cause ?? (err as Error).message}\n`);
    return EXIT.failure;
  }
  const answer = (await res.json().catch(() => ({}))) as { error?: string; events?: Array<{ type: string; state: string }> } | Array<{ key: string; level: string; state: string; raisedAt: number; incidentId: string; message: string }>;
  if (!res.ok) {
    process.stderr.write(`${res.status}: ${(answer as { error?: string }).error ?? res.statusText}\n`);
    return EXIT.failure;
  }
  if (Array.isArray(answer)) {
    if (answer.length === 0) process.stdout.write('No alarm is active\n');
    for (const a of answer) process.stdout.write(`${a.key} ${a.level.toUpperCase()} ${a.state} since ${new Date(a.raisedAt).toISOString()} incident ${a.incidentId}: ${a.message}\n`);
    return EXIT.ok;
  }
  for (const e of answer.events ?? []) process.stdout.write(`${key} ${e.type}, now ${e.state}\n`);
  return EXIT.ok;
}

async function outboxCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  let values: { config?: string; seq?: string };
  try {
    ({ values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, seq: { type: 'string' } } }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message} (GW_ERR_USAGE)\n${USAGE}\n`);
    return EXIT.invalid;
  }
  if (sub !== 'list' && sub !== 'retry') {
    process.stderr.write(`gateway outbox takes list or retry (GW_ERR_USAGE)\n${USAGE}\n`);
    return EXIT.invalid;
  }
  const config = await loadOrReport(values.config ?? join(packageRoot(), 'config', 'demo.yaml'));
  if (!config) return EXIT.invalid;
  const { STORE_FILE } = await import('./store.js');
  const { Outbox } = await import('./platform/outbox.js');
  const { RESULT_SCHEMA } = await import('./platform/contract.js');
  const { GatewayError } = await import('../config/errors.js');
  const dataDir = resolve(config.gateway.data_dir);
  const file = join(dataDir, STORE_FILE);
  if (!existsSync(file)) {
    // The data folder of an earlier version: `gateway run` takes it over, never this command (the
    // gateway that wrote it may still be running).
    if (existsSync(join(dataDir, 'outbox.db'))) {
      process.stderr.write(`${dataDir} holds the outbox.db of an earlier gateway version: start this version's \`gateway run\` once to take it over into ${STORE_FILE}, then try again.\n`);
      return EXIT.failure;
    }
    process.stdout.write(`No outbox yet (${file}): nothing was sent to the platform from here.\n`);
    return EXIT.ok;
  }
  let outbox;
  try {
    outbox = new Outbox(file);
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    process.stderr.write(`${err.message} (${err.code})\n`);
    return EXIT.failure;
  }
  try {
    if (sub === 'retry') {
      const seq = values.seq === undefined ? undefined : Number(values.seq);
      if (seq !== undefined && !Number.isInteger(seq)) {
        process.stderr.write(`--seq takes a number, not "${values.seq}" (GW_ERR_USAGE)\n`);
        return EXIT.invalid;
      }
      const n = outbox.retry(seq === undefined ? undefined : [seq]);
      process.stdout.write(`${n} dead letter${n === 1 ? '' : 's'} back in the queue; a running gateway sends ${n === 1 ? 'it' : 'them'} within a second\n`);
      return seq !== undefined && n === 0 ? EXIT.failure : EXIT.ok;
    }
    const s = outbox.stats();
    process.stdout.write(`${s.pending} pending, ${s.dead} dead letters, last seq ${s.lastSeq}\n`);
    for (const state of ['pending', 'dead'] as const) {
      for (const row of outbox.list(state)) {
        const body = JSON.parse(row.incident) as { schema: string };
        const what =
          body.schema === RESULT_SCHEMA
            ? ((r: ResultBody) => `${r.resultAt} result ${r.instrument.id} sample ${r.sampleId} ${r.analyte} = ${String(r.value)}${r.unit ? ` ${r.unit}` : ''}`)(body as ResultBody)
            : ((i: IncidentBody) => `${i.occurredAt} ${i.level} ${i.type} ${i.equipment.id}/${i.rule.id}: ${i.rule.message}`)(body as IncidentBody);
        process.stdout.write(`${state === 'dead' ? 'DEAD   ' : 'pending'} seq ${row.seq} ${what}${row.answer ? ` | answer: ${row.answer}` : ''}\n`);
      }
    }
    return EXIT.ok;
  } finally {
    outbox.close();
  }
}

async function tokenCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  let values: { name?: string; role?: string };
  try {
    ({ values } = parseArgs({ args: rest, options: { name: { type: 'string' }, role: { type: 'string' } } }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message} (GW_ERR_USAGE)\n${USAGE}\n`);
    return EXIT.invalid;
  }
  const { hashToken, ROLES } = await import('./http/tokens.js');
  if (sub !== 'new' || !values.name || !ROLES.includes(values.role as Role)) {
    process.stderr.write(`gateway token new needs --name and --role (${ROLES.join(', ')}) (GW_ERR_USAGE)\n`);
    return EXIT.invalid;
  }
  const token = randomBytes(32).toString('base64url');
  process.stdout.write(`Token for ${values.name} (${values.role}); shown once, keep it secret:\n  ${token}\nAdd to the site file under http.tokens:\n  - { name: ${values.name}, role: ${values.role}, hash: "${hashToken(token)}" }\n`);
  return EXIT.ok;
}

async function auditCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  let values: { config?: string; file?: string };
  try {
    ({ values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, file: { type: 'string' } } }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message} (GW_ERR_USAGE)\n${USAGE}\n`);
    return EXIT.invalid;
  }
  if (sub !== 'verify') {
    process.stderr.write(`gateway audit takes verify (GW_ERR_USAGE)\n${USAGE}\n`);
    return EXIT.invalid;
  }
  let file = values.file;
  if (!file) {
    const config = await loadOrReport(values.config ?? join(packageRoot(), 'config', 'demo.yaml'));
    if (!config) return EXIT.invalid;
    file = join(resolve(config.gateway.data_dir), 'audit.jsonl');
  }
  const { verifyJournal } = await import('./http/audit.js');
  const r = verifyJournal(file);
  if (r.ok) {
    process.stdout.write(`${file}: ${r.entries} entries, the chain is intact\n`);
    return EXIT.ok;
  }
  process.stderr.write(`${file}: line ${r.line} breaks the chain: ${r.reason} (${r.entries} entries before it are intact) (GW_ERR_AUDIT)\n`);
  return EXIT.failure;
}

/** The site file, or undefined once its problems are printed. */
async function loadOrReport(file: string): Promise<SiteConfig | undefined> {
  const { ConfigError, GatewayError } = await import('../config/errors.js');
  const { loadSiteFile } = await import('../config/load.js');
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

async function run(args: string[], mode: 'gateway' | 'influx-writer' = 'gateway'): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, 'client-id': { type: 'string' } } });
  // A gateway runs for months on a box with little memory: V8 keeps its heap small (collects sooner)
  // instead of growing it for speed. 10,000 points at 1 s: about 135 MiB resident instead of
  // 200-300 MiB (docs/BENCHMARKS.md). Given on the command line (the installed command, npm start,
  // the Docker image) it also sizes the young generation; set here it covers `node cli.js run`.
  setFlagsFromString('--optimize-for-size');
  if (mode === 'influx-writer' && !values.config) {
    process.stderr.write(`gateway influx-writer needs -c FILE (GW_ERR_USAGE)\n${USAGE}\n`);
    return EXIT.invalid;
  }
  const file = values.config ?? join(packageRoot(), 'config', 'demo.yaml');
  const config = await loadOrReport(file);
  if (!config) return EXIT.invalid;
  const { GatewayError } = await import('../config/errors.js');
  const { createLogger } = await import('./log.js');
  const { createGateway, createInfluxWriterService } = await import('./runtime.js');
  const log = createLogger({ level: config.gateway.log_level });
  let gateway: { start(): Promise<void>; stop(): Promise<void> };
  try {
    gateway = mode === 'gateway' ? createGateway(config, log) : createInfluxWriterService(config, log, values['client-id']);
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    process.stderr.write(`${err.message} (${err.code})\n`);
    return EXIT.invalid;
  }

  process.on('unhandledRejection', (reason) => {
    log.fatal({ err: reason }, 'Unhandled promise rejection; exiting');
    process.exit(EXIT.failure);
  });

  // Signals are handled from the start: a Ctrl-C while components start stops them once started.
  let stopRequested: ((code: number) => void) | undefined;
  let firstSignalAt = 0;
  const stopped = new Promise<number>((resolve) => (stopRequested = resolve));
  const stop = () =>
    gateway.stop().then(
      () => stopRequested!(EXIT.ok),
      (err: unknown) => {
        log.error({ err }, 'Stop failed');
        stopRequested!(EXIT.failure);
      },
    );
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstSignalAt > 0) {
      // Ctrl-C reaches us twice at once: from the terminal's process group and forwarded by npm.
      if (Date.now() - firstSignalAt < REPEAT_SIGNAL_MS) return;
      log.warn({ signal }, 'Second signal: exiting without waiting');
      process.exit(EXIT.failure);
    }
    firstSignalAt = Date.now();
    log.info({ signal }, 'Stopping');
    void stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    await gateway.start();
  } catch (err) {
    const code = err instanceof GatewayError ? err.code : 'GW_ERR_COMPONENT_START';
    log.fatal({ code, err: (err as Error).message }, 'Gateway cannot start');
    process.stderr.write(`Gateway cannot start: ${(err as Error).message} (${code})\n`);
    return EXIT.failure;
  }
  if (firstSignalAt === 0 && 'mqttUrl' in gateway) await printBanner(config, resolve(file), (gateway as Gateway).mqttUrl());
  return stopped;
}

/** The demo site's operator token; its hash is in config/demo.yaml, and the banner shows it. */
const DEMO_TOKEN = 'demo-operator-token';

/** A signal repeated within this time is the same request to stop, not an impatient second one. */
const REPEAT_SIGNAL_MS = 1000;

async function printBanner(config: SiteConfig, file: string, url: string): Promise<void> {
  const { hashToken } = await import('./http/tokens.js');
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

async function simulate(args: string[]): Promise<number> {
  const [what, ...rest] = args;
  if (what !== 'modbus') {
    process.stderr.write(`gateway simulate takes the device kind modbus (GW_ERR_USAGE)\n${usageOf('simulate')}\n`);
    return EXIT.invalid;
  }
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  const { simulateModbus } = await import('../drivers/modbus/simulate-command.js');
  return simulateModbus(rest, { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`), input: process.stdin, stopped });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // An option the command does not know is the user's mistake, not a crash: no stack trace.
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(err as Error).message} (GW_ERR_USAGE)\n${usageOf(process.argv[2] ?? '')}\n`);
      process.exit(EXIT.invalid);
    }
    process.stderr.write(`Unexpected error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(EXIT.failure);
  },
);
