// The Modbus driver's commands: `gateway scan modbus` (read registers once, every decoding side by
// side) and `gateway simulate modbus` (a device that misbehaves on demand). Loaded for every --help:
// types only at the top, the work (scan.ts, simulate-command.ts) is imported when a command runs.
import type { DriverCommands } from '../commands.js';

// The fault modes of the simulator (simulator.ts FAULTS): written out here because that module loads
// the simulator's dependencies, which --help must not. A test checks that every mode is named.
const SIMULATE_CONTROL = `
While it runs, type on standard input:
  fault MODE [AREA] | fault none | pause | resume | exception CODE | exception none |
  delay MS | trickle MS | drop | status
MODE: wrong-byte-count, short-data, wrong-unit, wrong-transaction, wrong-function, garbage, trickle,
      huge-length, duplicate, bad-crc, echo, silence`;

export const modbusCommands: DriverCommands = {
  register(_program, cli) {
    cli
      .group('scan', 'read a device once, to find where its values are')
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
        cli.examples(
          'gateway scan modbus --host 10.0.0.5 --port 502 --unit 3 --address hr:100 --count 10',
          'gateway scan modbus --path /dev/ttyUSB0 --baud-rate 19200 --parity even --unit 3 --address hr:100',
        ),
      )
      .action(async (o) => {
        const { scanModbus } = await import('./scan.js');
        cli.done(await scanModbus(o, cli));
      });

    cli
      .group('simulate', 'run a device that misbehaves on demand')
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
        `${SIMULATE_CONTROL}\n${cli.examples('gateway simulate modbus --port 5020', 'gateway simulate modbus --device bank --fault wrong-byte-count --fault-area hr')}`,
      )
      .action(async (o) => {
        // Listened for before the simulator's modules load: a stop asked for meanwhile is not lost.
        const stopped = cli.stopped();
        const { simulateModbus } = await import('./simulate-command.js');
        cli.done(
          await simulateModbus(o, {
            out: (l) => cli.out(`${l}\n`),
            err: (l) => cli.err(`${l}\n`),
            input: cli.input,
            stopped,
          }),
        );
      });
  },
};
