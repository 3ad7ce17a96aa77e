// `gateway simulate modbus`: a Modbus device anyone can run to reproduce a field fault. A steam
// boiler (or an empty register bank) over Modbus TCP or RTU, whose faults are switched while it runs
// by lines on standard input: `fault wrong-byte-count`, `fault garbage hr`, `fault none`, `pause`...
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { AREAS, type Area } from './address.js';
import { BoilerDevice, createModbusRtuSimulator, createModbusTcpSimulator, FAULTS, type Fault, type ModbusSimulator, RegisterBank, type SimDevice } from './simulator.js';

export const SIMULATE_USAGE = `  gateway simulate modbus [--host 127.0.0.1] [--port 5020 | --path DEV [--baud-rate 9600] [--parity none|even|odd]]
                      [--unit 1] [--device boiler|bank] [--fault MODE [--fault-area hr|ir|co|di]]
                            a Modbus device that misbehaves on demand; while it runs, type on standard input:
                            fault MODE [AREA] | fault none | pause | resume | exception CODE | exception none |
                            delay MS | trickle MS | drop | status   (MODE: ${FAULTS.join(', ')})`;

export interface SimulateIo {
  out(line: string): void;
  err(line: string): void;
  input: NodeJS.ReadableStream;
  /** Resolves when the process is asked to stop (a signal). */
  stopped: Promise<void>;
}

const isFault = (v: string): v is Fault => (FAULTS as readonly string[]).includes(v);
const isArea = (v: string): v is Area => (AREAS as readonly string[]).includes(v);

/** Applies one control line to the simulator; returns what to print. */
export function control(sim: ModbusSimulator, unit: number, line: string): string {
  const [word, arg, extra] = line.trim().split(/\s+/);
  const c = sim.control(unit);
  const n = Number(arg);
  switch (word) {
    case undefined:
    case '':
      return '';
    case 'fault':
      if (arg === 'none') {
        c.fault = undefined;
        c.faultArea = undefined;
        return 'fault: none';
      }
      if (!arg || !isFault(arg)) return `unknown fault "${arg ?? ''}"; one of: none, ${FAULTS.join(', ')}`;
      if (extra !== undefined && !isArea(extra)) return `unknown area "${extra}"; one of: ${AREAS.join(', ')}`;
      c.fault = arg;
      c.faultArea = extra;
      return `fault: ${arg}${extra ? ` on ${extra} reads` : ''}`;
    case 'pause':
      c.paused = true;
      return 'paused: no answers';
    case 'resume':
      c.paused = false;
      return 'answering';
    case 'exception':
      if (arg === 'none') c.exception = undefined;
      else if (Number.isInteger(n) && n >= 1 && n <= 255) c.exception = n;
      else return 'exception takes a code 1-255 or none';
      return `exception: ${c.exception ?? 'none'}`;
    case 'delay':
    case 'trickle':
      if (!Number.isInteger(n) || n < 0 || n > 60_000) return `${word} takes milliseconds, 0-60000`;
      if (word === 'delay') c.delayMs = n;
      else c.trickleMs = Math.max(1, n);
      return `${word}: ${n} ms`;
    case 'drop':
      sim.dropConnections();
      return 'connections dropped';
    case 'status':
      return `unit ${unit}: ${c.paused ? 'paused' : 'answering'}, fault ${c.fault ?? 'none'}${c.faultArea ? ` on ${c.faultArea}` : ''}, exception ${c.exception ?? 'none'}, delay ${c.delayMs} ms, trickle ${c.trickleMs} ms; ${sim.counts.requests} requests, ${sim.counts.badFrames} unreadable frames`;
    default:
      return `unknown command "${word}"; one of: fault, pause, resume, exception, delay, trickle, drop, status`;
  }
}

export async function simulateModbus(args: string[], io: SimulateIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '5020' },
        path: { type: 'string' },
        'baud-rate': { type: 'string', default: '9600' },
        parity: { type: 'string', default: 'none' },
        unit: { type: 'string', default: '1' },
        device: { type: 'string', default: 'boiler' },
        fault: { type: 'string' },
        'fault-area': { type: 'string' },
      },
    }));
  } catch (err) {
    io.err(`${(err as Error).message} (GW_ERR_USAGE)\nUsage:\n${SIMULATE_USAGE}`);
    return 2;
  }
  const unit = Number(values.unit);
  const port = Number(values.port);
  const baud = Number(values['baud-rate']);
  const problems = [
    ...(Number.isInteger(unit) && unit >= 0 && unit <= 255 ? [] : ['--unit: expected 0-255']),
    ...(values.path || (Number.isInteger(port) && port >= 1 && port <= 65535) ? [] : ['--port: expected 1-65535']),
    ...(Number.isInteger(baud) && baud > 0 ? [] : ['--baud-rate: expected a positive whole number']),
    ...(['none', 'even', 'odd'].includes(values.parity) ? [] : ['--parity: expected none, even or odd']),
    ...(values.device === 'boiler' || values.device === 'bank' ? [] : ['--device: expected boiler or bank']),
    ...(values.fault === undefined || values.fault === 'none' || isFault(values.fault) ? [] : [`--fault: expected one of ${FAULTS.join(', ')}`]),
    ...(values['fault-area'] === undefined || isArea(values['fault-area']) ? [] : [`--fault-area: expected one of ${AREAS.join(', ')}`]),
  ];
  if (problems.length > 0) {
    io.err(`${problems.join('\n')} (GW_ERR_USAGE)`);
    return 2;
  }
  const device: SimDevice = values.device === 'boiler' ? new BoilerDevice({ normal: 120_000, hazard: 60_000, recovery: 60_000, repeat: true }, 1) : new RegisterBank();
  const devices = new Map([[unit, device]]);
  const sim = values.path
    ? createModbusRtuSimulator({ path: values.path, baudRate: baud, parity: values.parity as 'none' | 'even' | 'odd', devices })
    : createModbusTcpSimulator({ host: values.host, port, devices });
  try {
    await sim.start();
  } catch (err) {
    io.err(`Cannot start the simulator on ${values.path ?? `${values.host}:${port}`}: ${(err as Error).message}`);
    return 1;
  }
  if (values.fault && values.fault !== 'none') io.out(control(sim, unit, `fault ${values.fault} ${values['fault-area'] ?? ''}`));
  io.out(`Modbus ${values.path ? `RTU on ${values.path}` : `TCP on ${values.host}:${sim.port()}`}, unit ${unit} (${values.device}); type "status", "fault MODE", "fault none"...`);
  const lines = createInterface({ input: io.input, terminal: false });
  lines.on('line', (line) => {
    const answer = control(sim, unit, line);
    if (answer) io.out(answer);
  });
  await io.stopped;
  lines.close();
  await sim.stop();
  return 0;
}
