// `gateway init`: a first site file in minutes. It asks (on a terminal) or takes from its options the
// equipment's template, its connection and address, reads the device once to confirm it answers and
// to show each point's value, and writes a commented site file that passes `gateway check`. The work
// (gateway/init/) is imported when the command runs.
import { Option } from '@commander-js/extra-typings';
import { type CliCommand, examples } from './declare.js';

export const command: CliCommand = {
  register(program, cli) {
    program
      .command('init')
      .description('write a first site file: asks for (or takes) the equipment, its connection and address, and reads the device')
      .option('--out <file>', 'the site file to write', 'site.yaml')
      .option('--category <category>', 'the equipment category (boiler, elevator, crane, pressure_vessel, lab_analyzer)')
      .option('--template <template>', 'the equipment template (config/templates: boiler-steam, elevator-traction...)')
      .addOption(new Option('--connection <type>', 'how the device is read').choices(['modbus-tcp', 'modbus-rtu', 'opcua'] as const))
      .option('--host <host>', 'modbus-tcp: the device address')
      .option('--port <port>', 'modbus-tcp: its TCP port (default: 502)')
      .option('--unit <id>', 'modbus: the unit id, 0-255 (default: 1)')
      .option('--device <path>', 'modbus-rtu: the serial line (/dev/ttyUSB0)')
      .option('--baud <n>', 'modbus-rtu: serial speed (default: 9600)')
      .option('--endpoint <url>', 'opcua: the server, opc.tcp://host:port/path')
      .addOption(
        new Option('--security-mode <mode>', 'opcua: message security (default: SignAndEncrypt)').choices([
          'None',
          'Sign',
          'SignAndEncrypt',
        ] as const),
      )
      .option('--equipment-id <id>', 'the equipment id, used in topics (default: from the template, as boiler-1)')
      .option('--site <id>', 'the site id, the second level of every MQTT topic (default: my-site)')
      .option('--gateway-id <id>', 'the id of this gateway (default: gw-1)')
      .option(
        '--profile <profile>',
        "the device profile (profiles/) with the controller's register map or nodes, or none; default: the one that fits",
      )
      .option(
        '--point <name=where>',
        'a point and where it is: steam_pressure=hr:100:float32 (Modbus area:offset[:type]), floor=ns=1;s=Lift3.Floor (OPC UA NodeId); repeatable',
        (value: string, previous: string[] = []) => [...previous, value],
      )
      .option('--no-scan', 'do not read the device: write the file with placeholders for the values')
      .option('--yes', 'ask nothing: take the defaults for what the options do not give')
      .option('--force', 'overwrite the file if it exists')
      .addHelpText(
        'after',
        `
On a terminal it asks for what the options do not give; without one (a script, CI) it takes only the
options and says which are missing. It reads each point once and writes the value read beside it;
a template point nobody knows the address of is written commented out, with a TODO.
${examples(
  'gateway init',
  'gateway init --template boiler-steam --connection modbus-tcp --host 10.0.0.5 --port 502 --unit 1',
  'gateway init --template elevator-traction --connection opcua --endpoint opc.tcp://10.0.0.9:4840 --security-mode None',
  'gateway init --template boiler-hot-water --connection modbus-rtu --device /dev/ttyUSB0 --baud 9600 --no-scan --yes',
)}`,
      )
      .action(async (o) => {
        const { runInit } = await import('../init/init.js');
        cli.done(await runInit(o, cli.io));
      });
  },
};
