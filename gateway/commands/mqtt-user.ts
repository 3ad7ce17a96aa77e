// `gateway mqtt user new`: a user of the embedded broker, its password shown once and the lines with
// its hash for the site file's mqtt.users (as `gateway token new` does for API tokens).
import { EXIT, usageError } from './common.js';
import { type CliCommand, examples } from './declare.js';

export async function mqttUserNewCommand(name: string, role: string): Promise<number> {
  const { MQTT_ROLES, MQTT_USER_NAME, newMqttUser } = await import('../mqtt/users.js');
  if (!(MQTT_ROLES as readonly string[]).includes(role))
    return usageError('mqtt user new', `--role takes ${MQTT_ROLES.join(', ')}, not "${role}"`);
  if (!MQTT_USER_NAME.test(name))
    return usageError(
      'mqtt user new',
      `--name takes at most 64 letters, digits, "-", "_", "." or "@", starting with a letter or digit, not "${name}"`,
    );
  const user = newMqttUser(name, role);
  const yaml = user.yaml
    .trimEnd()
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
  process.stdout.write(
    `MQTT password for ${name} (${role}); shown once, keep it secret:\n  ${user.password}\nAdd to the site file under mqtt.users:\n${yaml}\n`,
  );
  return EXIT.ok;
}

export const command: CliCommand = {
  register(program, cli) {
    program
      .command('mqtt')
      .description('the embedded MQTT broker')
      .command('user')
      .description("the embedded broker's users")
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
        cli.done(await mqttUserNewCommand(o.name, o.role));
      });
  },
};
