// The `gateway` command line: every command with its arguments, options, defaults and examples,
// parsed by commander. Each command's work lives in a module of its own (gateway/commands/*.ts),
// imported when the command runs, so that --help and --version load this file, common.ts and
// commander only.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, type CommanderError, Option } from '@commander-js/extra-typings';
import { EXIT, packageRoot, siteFileOf, usageError, UsageError, usageLine } from './common.js';

/** Where the command line writes (a test gives its own, to run many command lines in one process). */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

const PROCESS_IO: CliIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

/** Set in the environment, an unexpected error prints its stack as well as its one line. */
export const DEBUG_VARIABLE = 'GATEWAY_DEBUG';

/** A commander exit (help, version, usage error) from the command named by `path`. */
class CliExit extends Error {
  constructor(
    readonly path: string,
    readonly exit: CommanderError,
    /** The names of the command's own subcommands. */
    readonly subcommands: string[],
  ) {
    super(exit.message);
  }
}

// The fault modes of the Modbus simulator (drivers/modbus/simulator.ts FAULTS): written out here
// because that module loads the simulator's dependencies, which --help must not. A test checks that
// every mode the simulator has is named.
const SIMULATE_CONTROL = `
While it runs, type on standard input:
  fault MODE [AREA] | fault none | pause | resume | exception CODE | exception none |
  delay MS | trickle MS | drop | status
MODE: wrong-byte-count, short-data, wrong-unit, wrong-transaction, wrong-function, garbage, trickle,
      huge-length, duplicate, bad-crc, echo, silence`;

const configOption = () => new Option('-c, --config <file>', 'the site file (default: the demo, config/demo.yaml)');

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}`;
}

/** The command's name as typed after `gateway` (`alarms ack`), empty for gateway itself. */
function pathOf(command: { name(): string; parent: unknown }): string {
  const names: string[] = [];
  for (let c = command as { name(): string; parent: unknown } | null; c && c.parent; c = c.parent as typeof c) names.unshift(c.name());
  return names.join(' ');
}

/**
 * Parses `argv` (without node and the script) and runs the command; resolves with its exit code:
 * 0 done, 1 failed, 2 not understood (GW_ERR_USAGE, one line and where the help is, never a stack).
 */
export async function runCli(argv: string[], io: CliIo = PROCESS_IO): Promise<number> {
  let code: number = EXIT.ok;
  let current = '';
  // Help asked for with a mistake (a command without its subcommand) goes here and is printed only
  // for `gateway` alone; a subcommand's mistake is one line.
  let errHelp = '';
  const done = (c: number) => {
    code = c;
  };
  const version = (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;

  const program = new Command('gateway')
    .description('Edge gateway for special equipment and lab instruments: Modbus/OPC UA in, MQTT and InfluxDB out, local alarm rules.')
    .version(version, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show the help of a command')
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => (errHelp += s),
      // Errors are printed by runCli, one line naming the command.
      outputError: () => undefined,
    })
    .addHelpText(
      'after',
      `${examples('gateway run site.yaml', 'gateway check site.yaml', 'gateway alarms --help')}\n\nEach command has its own help: gateway COMMAND --help.`,
    );
  program.hook('preAction', (_root, action) => {
    current = pathOf(action);
  });

  program
    .command('run')
    .description('run a site (default: the demo, config/demo.yaml)')
    .argument('[file]', 'the site file (the same as -c FILE)')
    .addOption(configOption())
    .addHelpText('after', examples('gateway run site.yaml', 'gateway run -c site.yaml', 'MQTT_PORT=1884 gateway run'))
    .action(async (file, o) => {
      const site = siteFileOf('run', file, o.config);
      const { runCommand } = await import('./run.js');
      done(await runCommand('gateway', site));
    });

  program
    .command('check')
    .description('validate a site file: exit 0 when valid, 2 with one "path: message" line per problem')
    .argument('[file]', 'the site file (the same as -c FILE)')
    .addOption(new Option('-c, --config <file>', 'the site file'))
    .addHelpText('after', examples('gateway check site.yaml'))
    .action(async (file, o) => {
      const site = siteFileOf('check', file, o.config);
      if (!site) usageError('check', 'needs the site file, as FILE or -c FILE');
      const { checkCommand } = await import('./check.js');
      done(await checkCommand(site));
    });

  program
    .command('influx-writer')
    .description("only the InfluxDB writer, on the site's external broker (shared subscription)")
    .argument('[file]', 'the site file (the same as -c FILE)')
    .addOption(new Option('-c, --config <file>', 'the site file'))
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
      done(await runCommand('influx-writer', site, o.clientId));
    });

  const rules = program.command('rules').description("a site's alarm rules");
  rules
    .command('test')
    .description(
      "replay recorded readings (ts,equipment,point,value,quality) through the site's rules and print the alarm events they would raise, with their times",
    )
    .argument('[file]', 'the site file (the same as -c FILE)')
    .addOption(new Option('-c, --config <file>', 'the site file'))
    .requiredOption('--input <csv>', 'the readings: ts,equipment,point,value,quality')
    .option('--actions <csv>', 'operator actions to replay with them: ts,equipment,rule,action[,comment]')
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
      const { rulesTestCommand } = await import('./rules.js');
      done(await rulesTestCommand(site, o));
    });

  program
    .command('platform-inbox')
    .description('the reference platform receiver: verifies signatures, de-duplicates, reports seq gaps, prints each incident as a line')
    .requiredOption('--port <port>', 'the port to listen on (1-65535)')
    .requiredOption('--secret <secret>', "the shared secret of the gateways' signatures")
    .option('--host <host>', 'the address to listen on (default: 127.0.0.1)')
    .option('--out <file>', 'also append each incident to this JSON-lines file')
    .option(
      '--state <file>',
      'keep the de-duplication state in this file, so that a restarted inbox still knows what it took (default: ./.data/platform-inbox-PORT.db)',
    )
    .option('--cert <file>', 'serve HTTPS with this certificate (with --key)')
    .option('--key <file>', "the certificate's private key")
    .option('--ca <file>', 'require client certificates signed by this CA (with --cert and --key)')
    .addHelpText(
      'after',
      examples(
        'gateway platform-inbox --port 8787 --secret "$PLATFORM_SECRET" --out incidents.jsonl --state inbox.db',
        'gateway platform-inbox --port 8443 --secret S --cert server.pem --key server.key --ca clients-ca.pem',
      ),
    )
    .action(async (o) => {
      const { platformInboxCommand } = await import('./platform-inbox.js');
      done(await platformInboxCommand(o));
    });

  const outbox = program.command('outbox').description('incident events waiting for the platform, and dead letters');
  outbox
    .command('list')
    .description('incident events waiting for the platform, and dead letters with the answer that refused them')
    .argument('[file]', 'the site file (the same as -c FILE)')
    .addOption(configOption())
    .addHelpText('after', examples('gateway outbox list site.yaml', 'gateway outbox list -c site.yaml'))
    .action(async (file, o) => {
      const site = siteFileOf('outbox list', file, o.config);
      const { outboxCommand } = await import('./outbox.js');
      done(await outboxCommand('list', { config: site }));
    });
  outbox
    .command('retry')
    .description('send dead letters again (all, or one); a running gateway sends them within a second')
    .argument('[file]', 'the site file (the same as -c FILE)')
    .addOption(configOption())
    .option('--seq <n>', 'only the dead letter with this sequence number (default: all)')
    .addHelpText('after', examples('gateway outbox retry site.yaml', 'gateway outbox retry -c site.yaml --seq 42'))
    .action(async (file, o) => {
      const site = siteFileOf('outbox retry', file, o.config);
      const { outboxCommand } = await import('./outbox.js');
      done(await outboxCommand('retry', { config: site, seq: o.seq }));
    });

  const alarms = program
    .command('alarms')
    .description('the alarms of a running gateway, through its HTTP API with the token in GATEWAY_TOKEN')
    .addHelpText(
      'after',
      '\nout-of-service and in-service need an admin token, and out-of-service a comment (the alarm stays silent until it is back in service).',
    );
  const urlOption = () => new Option('--url <url>', "the gateway's API (default: from the site file's http: section)");
  alarms
    .command('list')
    .description('the active alarms, with their state and incident')
    .argument('[file]', 'the site file (the same as -c FILE)')
    .addOption(configOption())
    .addOption(urlOption())
    .addHelpText(
      'after',
      examples(
        'GATEWAY_TOKEN=$TOKEN gateway alarms list site.yaml',
        'GATEWAY_TOKEN=$TOKEN gateway alarms list --url https://10.0.0.7:8080',
      ),
    )
    .action(async (file, o) => {
      const site = siteFileOf('alarms list', file, o.config);
      const { alarmsCommand } = await import('./alarms.js');
      done(await alarmsCommand('list', '', { config: site, url: o.url }));
    });
  const alarmActions = [
    ['ack', 'acknowledge an alarm'],
    ['shelve', 'silence an alarm for a while'],
    ['unshelve', 'end a shelve before its time'],
    ['out-of-service', 'take an alarm out of service (admin; needs --comment): it raises nothing until it is back'],
    ['in-service', 'return an alarm to service (admin)'],
  ] as const;
  for (const [sub, description] of alarmActions) {
    const command = alarms
      .command(sub)
      .description(description)
      .argument('<alarm>', 'the alarm, as EQUIPMENT/RULE (gateway alarms list shows them)')
      .addOption(configOption())
      .addOption(urlOption())
      .option(
        '--comment <text>',
        sub === 'out-of-service' ? 'why the alarm is taken out of service (required)' : 'a comment for the audit journal and the incident',
      );
    const withMinutes =
      sub === 'shelve' ? command.option('--minutes <n>', "how long, 1-1440 (default: the alarm rule's shelve time)") : command;
    withMinutes
      .addHelpText(
        'after',
        examples(
          sub === 'out-of-service'
            ? 'GATEWAY_TOKEN=$ADMIN_TOKEN gateway alarms out-of-service B-07/drum-level-low-low -c site.yaml --comment "level transmitter replaced"'
            : `GATEWAY_TOKEN=$TOKEN gateway alarms ${sub} B-07/drum-level-low-low -c site.yaml${sub === 'shelve' ? ' --minutes 30' : ''}${sub === 'ack' ? ' --comment "seen, crew on the way"' : ''}`,
        ),
      )
      .action(async (key, o: { config?: string; url?: string; comment?: string; minutes?: string }) => {
        const { alarmsCommand } = await import('./alarms.js');
        done(await alarmsCommand(sub, key, o));
      });
  }

  const token = program.command('token').description('API tokens for the HTTP API and the dashboard');
  token
    .command('new')
    .description("a new API token, shown once, and the line with its hash for the site file's http.tokens")
    .requiredOption('--name <name>', 'who or what uses the token (recorded in the audit journal)')
    .requiredOption('--role <role>', 'viewer, operator or admin')
    .addHelpText('after', examples('gateway token new --name wang.li --role operator'))
    .action(async (o) => {
      const { tokenNewCommand } = await import('./token.js');
      done(await tokenNewCommand(o.name, o.role));
    });

  const mqtt = program.command('mqtt').description('the embedded MQTT broker');
  const mqttUser = mqtt.command('user').description("the embedded broker's users");
  mqttUser
    .command('new')
    .description("a new broker user: its password, shown once, and the lines with its hash for the site file's mqtt.users")
    .requiredOption('--name <name>', 'the MQTT username')
    .requiredOption(
      '--role <role>',
      'reader (telemetry, status, alarms), lab (lab results), writer (the influx-writer) or custom (topic ACLs you write)',
    )
    .addHelpText(
      'after',
      examples('gateway mqtt user new --name scada-1 --role reader', 'gateway mqtt user new --name influx-writer-1 --role writer'),
    )
    .action(async (o) => {
      const { mqttUserNewCommand } = await import('./mqtt-user.js');
      done(await mqttUserNewCommand(o.name, o.role));
    });

  const audit = program.command('audit').description('the audit journal');
  audit
    .command('verify')
    .description("check the audit journal's chain; names the first broken entry")
    .addOption(configOption())
    .option('--file <journal>', "the journal file itself (default: audit.jsonl in the site's data folder)")
    .addHelpText('after', examples('gateway audit verify -c site.yaml', 'gateway audit verify --file /var/lib/gateway/audit.jsonl'))
    .action(async (o) => {
      const { auditVerifyCommand } = await import('./audit.js');
      done(await auditVerifyCommand(o));
    });

  const scan = program.command('scan').description('read a device once, to find where its values are');
  scan
    .command('modbus')
    .description('read registers and print every decoding (types and byte orders) side by side')
    .option('--host <host>', 'the Modbus TCP device (or --path)')
    .option('--port <port>', 'its TCP port (default: 502)')
    .option('--rtu-over-tcp', 'RTU frames over TCP (a serial gateway in transparent mode)')
    .option('--path <device>', 'the serial line, for Modbus RTU (or --host)')
    .option('--baud-rate <n>', 'serial speed (default: 9600)')
    .option('--parity <parity>', 'none, even or odd (default: none)')
    .option('--data-bits <n>', 'serial data bits (default: 8)')
    .option('--stop-bits <n>', 'serial stop bits (default: 1)')
    .option('--unit <id>', 'the unit id, 0-255', '1')
    .requiredOption('--address <area:offset>', 'the first register: hr:100, ir:0, co:0 or di:0')
    .option('--count <n>', 'how many registers or bits', '10')
    .option('--timeout <duration>', 'how long to wait for the answer', '1s')
    .addHelpText(
      'after',
      examples(
        'gateway scan modbus --host 10.0.0.5 --port 502 --unit 3 --address hr:100 --count 10',
        'gateway scan modbus --path /dev/ttyUSB0 --baud-rate 19200 --parity even --unit 3 --address hr:100',
      ),
    )
    .action(async (o) => {
      const { scanCommand } = await import('./scan.js');
      done(await scanCommand(o));
    });

  const simulate = program.command('simulate').description('run a device that misbehaves on demand');
  simulate
    .command('modbus')
    .description('a Modbus device (a steam boiler or an empty register bank) whose faults are switched while it runs')
    .option('--host <host>', 'the address to listen on', '127.0.0.1')
    .option('--port <port>', 'the TCP port to listen on', '5020')
    .option('--path <device>', 'a serial line instead of TCP (Modbus RTU)')
    .option('--baud-rate <n>', 'serial speed', '9600')
    .option('--parity <parity>', 'none, even or odd', 'none')
    .option('--unit <id>', 'the unit id it answers, 0-255', '1')
    .option('--device <kind>', 'boiler or bank', 'boiler')
    .option('--fault <mode>', 'start with this fault (MODE below)')
    .option('--fault-area <area>', 'the fault only on reads of hr, ir, co or di')
    .addHelpText(
      'after',
      `${SIMULATE_CONTROL}\n${examples('gateway simulate modbus --port 5020', 'gateway simulate modbus --device bank --fault wrong-byte-count --fault-area hr')}`,
    )
    .action(async (o) => {
      const stopped = new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      const { simulateModbus } = await import('../../drivers/modbus/simulate-command.js');
      done(
        await simulateModbus(o, {
          out: (l) => process.stdout.write(`${l}\n`),
          err: (l) => process.stderr.write(`${l}\n`),
          input: process.stdin,
          stopped,
        }),
      );
    });

  const certs = program.command('certs').description('OPC UA certificates trusted and rejected (data folder of the site)');
  certs
    .command('list')
    .description('the certificates trusted and rejected, with thumbprint, subject and expiry')
    .argument('[file]', 'the site file (the same as -c FILE)')
    .addOption(configOption())
    .addHelpText('after', examples('gateway certs list site.yaml', 'gateway certs list -c site.yaml'))
    .action(async (file, o) => {
      const site = siteFileOf('certs list', file, o.config);
      const { certsCommand } = await import('./certs.js');
      done(await certsCommand('list', undefined, site));
    });
  certs
    .command('trust')
    .description('move a rejected server certificate to trusted (recorded in the audit journal)')
    .argument('<thumbprint>', 'the certificate, by its thumbprint or its start (gateway certs list shows them)')
    .addOption(configOption())
    .addHelpText('after', examples('gateway certs trust 9dde2d4daa00 -c site.yaml'))
    .action(async (thumbprint, o) => {
      const { certsCommand } = await import('./certs.js');
      done(await certsCommand('trust', thumbprint, o.config));
    });

  program
    .command('browse')
    .description('list OPC UA variables with NodeId, data type and value, or as point entries')
    .argument('<endpoint>', 'the server, opc.tcp://host:port')
    .option('--node <id>', 'where to start (default: the Objects folder)')
    .option('--depth <n>', 'how many levels down', '4')
    .option('--points', 'print point entries for the site file instead of a list')
    .option('--security-mode <mode>', 'None, Sign or SignAndEncrypt', 'None')
    .option('--security-policy <policy>', 'Basic256Sha256, Aes128_Sha256_RsaOaep... (with Sign or SignAndEncrypt)')
    .option('--username <user>', 'log in as this user (default: anonymous)')
    .option('--password <password>', "the user's password")
    .addOption(new Option('-c, --config <file>', "use the site's data folder for the client certificate (default: .data)"))
    .addHelpText(
      'after',
      examples(
        'gateway browse opc.tcp://10.0.0.9:4840 --node "ns=2;s=Lift3" --points',
        'gateway browse opc.tcp://10.0.0.9:4840 --security-mode SignAndEncrypt --security-policy Basic256Sha256 -c site.yaml',
      ),
    )
    .action(async (endpoint, o) => {
      const { browseCommand } = await import('./browse.js');
      done(await browseCommand(endpoint, o));
    });

  // Every command reports its own commander exits, so the usage line names it.
  const withExits = (command: Command<unknown[], Record<string, unknown>>): void => {
    const path = pathOf(command);
    command.exitOverride((err) => {
      throw new CliExit(
        path,
        err,
        command.commands.map((c) => c.name()),
      );
    });
    for (const sub of command.commands) withExits(sub as unknown as Command<unknown[], Record<string, unknown>>);
  };
  withExits(program as unknown as Command<unknown[], Record<string, unknown>>);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CliExit) {
      // Help and version.
      if (err.exit.exitCode === 0) return EXIT.ok;
      if (err.exit.code === 'commander.help') {
        // A command that takes a subcommand, without one: its help for `gateway` alone, else a line.
        if (err.path === '') io.err(errHelp);
        else io.err(`${usageLine(err.path, `needs one of its commands: ${err.subcommands.join(', ')}`)}\n`);
        return EXIT.invalid;
      }
      // Commander's message is "error: what" and a suggestion on its own line: one line of it.
      const what = err.exit.message
        .replace(/^error: /, '')
        .replace(/\s*\n\s*/g, ' ')
        .replace(/\(Did you mean/, '(did you mean')
        .replace(/\.$/, '');
      io.err(`${usageLine(err.path, what)}\n`);
      return EXIT.invalid;
    }
    if (err instanceof UsageError) {
      io.err(`${usageLine(err.command, err.what)}\n`);
      return EXIT.invalid;
    }
    // A failure nobody expected: one line with its code, the stack only when asked for, and no
    // credentials of a URL it may quote (loaded here: --help does not need it).
    const { redact } = await import('../redact.js');
    const e = err instanceof Error ? err : new Error(String(err));
    const errCode = (e as { code?: unknown }).code;
    io.err(
      redact(
        `gateway${current ? ` ${current}` : ''}: unexpected error: ${e.message.split('\n')[0]} (${typeof errCode === 'string' ? errCode : e.name})${process.env[DEBUG_VARIABLE] ? `\n${e.stack}` : `; ${DEBUG_VARIABLE}=1 shows where`}\n`,
      ),
    );
    return EXIT.failure;
  }
}
