// `gateway simulate modbus`: a Modbus device anyone can run to reproduce a field fault. A steam
// boiler (or an empty register bank) over Modbus TCP or RTU, whose faults are switched while it runs
// by lines on standard input: `fault wrong-byte-count`, `fault garbage hr`, `fault none`, `pause`...
import { createInterface } from 'node:readline';
import { AREAS, type Area } from './address.js';
import {
  BoilerDevice,
  createModbusRtuSimulator,
  createModbusTcpSimulator,
  FAULTS,
  type Fault,
  type ModbusSimulator,
  RegisterBank,
  type SimDevice,
} from './simulator.js';

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

/** The options of `gateway simulate modbus`, as given on its command line (cli.ts). */
export interface SimulateOptions {
  host: string;
  port: string;
  path?: string | undefined;
  baudRate: string;
  parity: string;
  unit: string;
  device: string;
  fault?: string | undefined;
  faultArea?: string | undefined;
}

export async function simulateModbus(o: SimulateOptions, io: SimulateIo): Promise<number> {
  const unit = Number(o.unit);
  const port = Number(o.port);
  const baud = Number(o.baudRate);
  const problems = [
    ...(Number.isInteger(unit) && unit >= 0 && unit <= 255 ? [] : ['--unit: expected 0-255']),
    ...(o.path || (Number.isInteger(port) && port >= 1 && port <= 65535) ? [] : ['--port: expected 1-65535']),
    ...(Number.isInteger(baud) && baud > 0 ? [] : ['--baud-rate: expected a positive whole number']),
    ...(['none', 'even', 'odd'].includes(o.parity) ? [] : ['--parity: expected none, even or odd']),
    ...(o.device === 'boiler' || o.device === 'bank' ? [] : ['--device: expected boiler or bank']),
    ...(o.fault === undefined || o.fault === 'none' || isFault(o.fault) ? [] : [`--fault: expected one of ${FAULTS.join(', ')}`]),
    ...(o.faultArea === undefined || isArea(o.faultArea) ? [] : [`--fault-area: expected one of ${AREAS.join(', ')}`]),
  ];
  if (problems.length > 0) {
    io.err(`${problems.join('\n')} (GW_ERR_USAGE)`);
    return 2;
  }
  const device: SimDevice =
    o.device === 'boiler' ? new BoilerDevice({ normal: 120_000, hazard: 60_000, recovery: 60_000, repeat: true }, 1) : new RegisterBank();
  const devices = new Map([[unit, device]]);
  const sim = o.path
    ? createModbusRtuSimulator({ path: o.path, baudRate: baud, parity: o.parity as 'none' | 'even' | 'odd', devices })
    : createModbusTcpSimulator({ host: o.host, port, devices });
  try {
    await sim.start();
  } catch (err) {
    io.err(`Cannot start the simulator on ${o.path ?? `${o.host}:${port}`}: ${(err as Error).message}`);
    return 1;
  }
  if (o.fault && o.fault !== 'none') io.out(control(sim, unit, `fault ${o.fault} ${o.faultArea ?? ''}`));
  io.out(
    `Modbus ${o.path ? `RTU on ${o.path}` : `TCP on ${o.host}:${sim.port()}`}, unit ${unit} (${o.device}); type "status", "fault MODE", "fault none"...`,
  );
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
