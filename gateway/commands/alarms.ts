// `gateway alarms`: the alarms of a running gateway. The gateway holds them in memory, so the command
// goes through its HTTP API, where the token's role is checked and the action is written to the
// audit journal.
import { Option } from '@commander-js/extra-typings';
import { demoSite, EXIT, loadOrReport, siteFileOf } from './common.js';
import { type CliCommand, configOption, examples, integer, siteArgument } from './declare.js';

/** `gateway alarms` subcommands and the API action each one posts. */
export const ALARM_ACTIONS = {
  ack: 'acknowledge',
  shelve: 'shelve',
  unshelve: 'unshelve',
  'out-of-service': 'out-of-service',
  'in-service': 'in-service',
} as const;

export interface AlarmsOptions {
  config?: string | undefined;
  url?: string | undefined;
  comment?: string | undefined;
  minutes?: string | undefined;
}

/** `sub` is list or a key of ALARM_ACTIONS; `key` the alarm as EQUIPMENT/RULE (not for list). */
export async function alarmsCommand(sub: 'list' | keyof typeof ALARM_ACTIONS, key: string, o: AlarmsOptions): Promise<number> {
  const action = sub === 'list' ? undefined : ALARM_ACTIONS[sub];
  const slash = key.indexOf('/');
  const minutes = o.minutes === undefined ? undefined : Number(o.minutes);
  const problem =
    sub === 'list'
      ? undefined
      : slash <= 0 || slash === key.length - 1
        ? `gateway alarms ${sub} takes one alarm as EQUIPMENT/RULE (gateway alarms list shows them)`
        : action === 'out-of-service' && !o.comment?.trim()
          ? 'gateway alarms out-of-service needs --comment: why the alarm is taken out of service (it raises nothing until it is back)'
          : minutes !== undefined && !(minutes >= 1 && minutes <= 1440)
            ? `gateway alarms shelve: --minutes goes from 1 to 1440, not "${o.minutes}"`
            : undefined;
  if (problem) {
    process.stderr.write(`${problem} (GW_ERR_USAGE)\nSee \`gateway alarms ${sub} --help\` for its options and examples.\n`);
    return EXIT.invalid;
  }
  const token = process.env.GATEWAY_TOKEN;
  if (!token) {
    process.stderr.write(
      'gateway alarms needs an API token in the environment variable GATEWAY_TOKEN (gateway token new makes one) (GW_ERR_USAGE)\n',
    );
    return EXIT.invalid;
  }
  let base = o.url;
  if (!base) {
    const config = await loadOrReport(o.config ?? demoSite());
    if (!config) return EXIT.invalid;
    if (!config.http) {
      process.stderr.write(
        'The site file has no http: section: alarms are handled through the HTTP API, which it does not run (GW_ERR_USAGE)\n',
      );
      return EXIT.invalid;
    }
    const host = config.http.host === '0.0.0.0' ? '127.0.0.1' : config.http.host === '::' ? '::1' : config.http.host;
    base = `${config.http.cert ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
  }
  const path =
    sub === 'list'
      ? '/api/alarms'
      : `/api/alarms/${encodeURIComponent(key.slice(0, slash))}/${encodeURIComponent(key.slice(slash + 1))}/${action}`;
  const body =
    sub === 'list'
      ? undefined
      : JSON.stringify({
          ...(o.comment !== undefined ? { comment: o.comment } : {}),
          ...(minutes !== undefined ? { duration_minutes: minutes } : {}),
        });
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
  const answer = (await res.json().catch(() => ({}))) as
    | { error?: string; events?: Array<{ type: string; state: string }> }
    | Array<{ key: string; level: string; state: string; raisedAt: number; incidentId: string; message: string }>;
  if (!res.ok) {
    process.stderr.write(`${res.status}: ${(answer as { error?: string }).error ?? res.statusText}\n`);
    return EXIT.failure;
  }
  if (Array.isArray(answer)) {
    if (answer.length === 0) process.stdout.write('No alarm is active\n');
    for (const a of answer)
      process.stdout.write(
        `${a.key} ${a.level.toUpperCase()} ${a.state} since ${new Date(a.raisedAt).toISOString()} incident ${a.incidentId}: ${a.message}\n`,
      );
    return EXIT.ok;
  }
  for (const e of answer.events ?? []) process.stdout.write(`${key} ${e.type}, now ${e.state}\n`);
  return EXIT.ok;
}

const DESCRIPTIONS: Record<keyof typeof ALARM_ACTIONS, string> = {
  ack: 'acknowledge an alarm',
  shelve: 'silence an alarm for a while',
  unshelve: 'end a shelve before its time',
  'out-of-service': 'take an alarm out of service (admin; needs --comment): it raises nothing until it is back',
  'in-service': 'return an alarm to service (admin)',
};

/** The example of an action's help. */
function exampleOf(sub: keyof typeof ALARM_ACTIONS): string {
  if (sub === 'out-of-service') {
    return 'GATEWAY_TOKEN=$ADMIN_TOKEN gateway alarms out-of-service B-07/drum-level-low-low -c site.yaml --comment "level transmitter replaced"';
  }
  const extra = sub === 'shelve' ? ' --minutes 30' : sub === 'ack' ? ' --comment "seen, crew on the way"' : '';
  return `GATEWAY_TOKEN=$TOKEN gateway alarms ${sub} B-07/drum-level-low-low -c site.yaml${extra}`;
}

export const command: CliCommand = {
  register(program, cli) {
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
      .addArgument(siteArgument())
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
        cli.done(await alarmsCommand('list', '', { config: siteFileOf('alarms list', file, o.config), url: o.url }));
      });
    for (const sub of Object.keys(ALARM_ACTIONS) as Array<keyof typeof ALARM_ACTIONS>) {
      const action = alarms
        .command(sub)
        .description(DESCRIPTIONS[sub])
        .argument('<alarm>', 'the alarm, as EQUIPMENT/RULE (gateway alarms list shows them)')
        .addOption(configOption())
        .addOption(urlOption())
        .option(
          '--comment <text>',
          sub === 'out-of-service'
            ? 'why the alarm is taken out of service (required)'
            : 'a comment for the audit journal and the incident',
        );
      (sub === 'shelve'
        ? action.option('--minutes <n>', "how long, 1-1440 (default: the alarm rule's shelve time)", integer(1, 1440))
        : action
      )
        .addHelpText('after', examples(exampleOf(sub)))
        .action(async (key, o: AlarmsOptions) => {
          cli.done(await alarmsCommand(sub, key, o));
        });
    }
  },
};
