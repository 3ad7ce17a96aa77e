// Modbus figures for docs/BENCHMARKS.md: requests per cycle of a boiler-house map, and the ceiling of
// a many-device poll at 1 s (500 devices × 30 points first, then more until the gateway falls behind)
// with the gateway's CPU and memory.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { type Logger } from 'pino';
import { parseSite } from '../config/load.js';
import { freePort } from '../drivers/common/free-port.js';
import { REGISTER_COUNT } from '../drivers/modbus/codec.js';
import { planRequests, type PlannedRead } from '../drivers/modbus/planner.js';
import { checkReadAnswer, readAnswerPdu, tcpFrame, TcpDeframer } from '../drivers/modbus/protocol.js';
import { createGateway } from '../gateway/runtime.js';

/** A realistic boiler house: 6 boilers (unit ids) with 50 points each in typical PLC layouts. */
export function boilerHouseMap(): PlannedRead[] {
  const points: PlannedRead[] = [];
  for (let unit = 1; unit <= 6; unit++) {
    // analog block: 20 float32 measurements at hr:100.., 10 int16 at hr:200.., status words hr:300..
    for (let i = 0; i < 20; i++) points.push({ unit, area: 'hr', offset: 100 + i * 2, count: REGISTER_COUNT.float32 });
    for (let i = 0; i < 10; i++) points.push({ unit, area: 'hr', offset: 200 + i * 3, count: 1 });
    for (let i = 0; i < 8; i++) points.push({ unit, area: 'hr', offset: 300 + (i >> 2), count: 1 }); // bits of two status words
    for (let i = 0; i < 6; i++) points.push({ unit, area: 'ir', offset: 10 + i * 2, count: 2 });
    for (let i = 0; i < 6; i++) points.push({ unit, area: 'di', offset: i * 5, count: 1 });
  }
  return points;
}

export function requestsPerCycle(): { name: string; lines: string[] } {
  const map = boilerHouseMap();
  const planned = planRequests(map, { maxGap: 16, maxRegisters: 125 }).length;
  const noGap = planRequests(map, { maxGap: 0, maxRegisters: 125 }).length;
  return {
    name: `Modbus block planner: a ${map.length}-point boiler-house map (6 boilers)`,
    lines: [
      `one request per point: ${map.length}; planned (max_gap 16): ${planned} (${(map.length / planned).toFixed(1)} × fewer); planned with max_gap 0: ${noGap}`,
      `the planner's plan is the proven minimum for its gap (property test against dynamic programming in tests/unit/drivers/modbus/planner.test.ts)`,
    ],
  };
}

/** What one step of the poll offered and what the gateway delivered. */
export interface PollStep {
  devices: number;
  intervalMs: number;
  tuned: boolean;
  /** readings/s the devices offer: devices × 30 points / interval. */
  offered: number;
  achieved: number;
  seconds: number;
  bad: number;
  overruns: number;
  /** Telemetry messages the MQTT link dropped (max_pending reached). */
  dropped: number;
  /** The gateway's process and the devices' process, in % of one core. */
  gatewayCpu: number;
  simulatorCpu: number;
  /** What the rest of the machine used meanwhile (other processes on these 2 cores), in % of one core. */
  othersCpu: number;
  rssMiB: number;
  /** Event-loop delay in the gateway's process, p99, in ms. */
  lagP99: number;
}

/** Settings other than the defaults, as YAML keys of each connection and of the mqtt section. */
export interface Tuning {
  connection: string;
  mqtt: string;
}

/** What the gateway's process is asked to run (bench/modbus-gateway-process.ts). */
export interface StepRequest {
  ports: number[];
  /** The devices' process, whose CPU is read from /proc meanwhile. */
  simulatorPid: number;
  intervalMs: number;
  seconds: number;
  tuned?: Tuning;
}

/** Tried at the first step that does not hold: a longer timeout (late answers are not failures) and room for more unacknowledged telemetry. */
const TUNING: Tuning = { connection: 'timeout: 5s', mqtt: 'max_pending: 100000' };

/** A step holds when it delivers what is offered (window edges give ±1 poll per device) with no bad reading, overrun or drop. */
const holds = (s: PollStep) => s.achieved >= 0.98 * s.offered && s.bad === 0 && s.overruns === 0 && s.dropped === 0;

/** The simulated devices, one server each, in a process of their own so the gateway's CPU is measured alone. */
async function startDevices(count: number): Promise<{ ports: number[]; pid: number; stop(): void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'modbus-sim-process.ts'), String(count)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const ports = await firstLine(child, 'simulator process').then((l) => JSON.parse(l) as number[]);
  return { ports, pid: child.pid!, stop: () => void child.stdin!.end() };
}

function firstLine(child: ChildProcess, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}`)));
  });
}

/** utime + stime of a process, from /proc, in clock ticks of 10 ms (Linux's USER_HZ). */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU time the whole machine spent busy (all cores, every process), from /proc/stat. */
function machineBusySeconds(): number {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
  const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - ticks[3]! - ticks[4]!) / 100; // less idle and iowait
}

/**
 * One step, in the calling process: a gateway polling the given devices, 30 float32 points each,
 * every `intervalMs`, measured for `seconds` after a 3 s warm-up. Settings are the defaults
 * (timeout 1s, max_in_flight 1, max_pending 10,000) unless tuned.
 */
export async function pollStep(log: Logger, req: StepRequest): Promise<PollStep> {
  const { ports, intervalMs, seconds, tuned } = req;
  const points = Array.from({ length: 30 }, (_, i) => `{name: p${i}, address: "hr:${i * 2}", type: float32}`).join(', ');
  // Written tight (unit id 1 is the default), so that more devices fit in the 4 MiB a site file may hold.
  const yaml = `version: 1
gateway: { id: gw-bench, site: bench, data_dir: /tmp/gw-bench }
mqtt: { port: ${await freePort()}${tuned ? `, ${tuned.mqtt}` : ''} }
connections:
${ports.map((p, i) => `  - { id: c${i}, type: modbus-tcp, host: 127.0.0.1, port: ${p}${tuned ? `, ${tuned.connection}` : ''} }`).join('\n')}
equipment:
${ports.map((_, i) => `  - { id: D-${i}, category: pressure_vessel, connection: c${i}, poll_interval: ${intervalMs}ms, points: [${points}] }`).join('\n')}
`;
  const gw = createGateway(parseSite(yaml, { env: {} }), log);
  // What reading a large site file left behind is not the gateway's.
  (globalThis as { gc?: () => void }).gc?.();
  await gw.start();
  await new Promise((r) => setTimeout(r, 3000)); // warm up: connections open, first polls done
  const count = () => {
    const stats = gw.driverStats().map((d) => d.stats);
    return {
      readings: gw.pipeline.stats().readings,
      bad: stats.reduce((n, s) => n + (s.failures ?? 0), 0),
      overruns: stats.reduce((n, s) => n + (s.overruns ?? 0), 0),
      dropped: gw.link.stats().dropped,
    };
  };
  const before = count();
  const simCpu0 = cpuSecondsOf(req.simulatorPid);
  const busy0 = machineBusySeconds();
  const cpu0 = process.cpuUsage();
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const t0 = performance.now();
  let rss = 0;
  const sampler = setInterval(() => (rss = Math.max(rss, process.memoryUsage().rss)), 250);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  clearInterval(sampler);
  lag.disable();
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const gatewayCpu = (cpu.user + cpu.system) / 1e6;
  const simCpu = cpuSecondsOf(req.simulatorPid) - simCpu0;
  const busy = machineBusySeconds() - busy0;
  const after = count();
  await gw.stop();
  return {
    devices: ports.length,
    intervalMs,
    tuned: tuned !== undefined,
    offered: (ports.length * 30 * 1000) / intervalMs,
    achieved: (after.readings - before.readings) / elapsed,
    seconds: elapsed,
    bad: after.bad - before.bad,
    overruns: after.overruns - before.overruns,
    dropped: after.dropped - before.dropped,
    gatewayCpu: (gatewayCpu / elapsed) * 100,
    simulatorCpu: (simCpu / elapsed) * 100,
    othersCpu: Math.max(0, ((busy - simCpu - gatewayCpu) / elapsed) * 100),
    rssMiB: Math.round(rss / 2 ** 20),
    lagP99: lag.percentile(99) / 1e6,
  };
}

/** One step with the gateway in a fresh process of its own: its CPU and memory are its own, not what earlier steps left. */
async function stepInOwnProcess(req: StepRequest): Promise<PollStep> {
  // With the node flag the gateway runs with (gateway/cli.ts): the ceiling at its default settings.
  const child = spawn(
    process.execPath,
    ['--optimize-for-size', '--expose-gc', '--import', 'tsx', join(import.meta.dirname, 'modbus-gateway-process.ts')],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  child.stdin.end(JSON.stringify(req));
  return JSON.parse(await firstLine(child, 'gateway process')) as PollStep;
}

/** Gateway CPU time per reading delivered, in µs: what a step costs whatever else the machine runs. */
const cpuPerReading = (s: PollStep) => (s.gatewayCpu * 1e4) / s.achieved;

const stepLine = (s: PollStep) =>
  `${s.devices} devices at ${s.intervalMs} ms${s.tuned ? ` (tuned: ${TUNING.connection}, ${TUNING.mqtt})` : ''}: offered ${Math.round(s.offered).toLocaleString('en')}, achieved ${Math.round(s.achieved).toLocaleString('en')} readings/s (${((s.achieved / s.offered) * 100).toFixed(1)} %) over ${s.seconds.toFixed(0)} s; ${s.bad} bad, ${s.overruns} overruns, ${s.dropped} dropped; CPU: gateway ${s.gatewayCpu.toFixed(0)} % (${cpuPerReading(s).toFixed(1)} µs per reading), devices ${s.simulatorCpu.toFixed(0)} %, other processes ${s.othersCpu.toFixed(0)} % of one core; event-loop delay p99 ${s.lagP99.toFixed(0)} ms; peak RSS ${s.rssMiB} MiB${holds(s) ? '' : '; does not hold'}`;

/**
 * The 500-device poll at 1 s (the target workload), then the same devices polled faster until a step
 * no longer delivers what it offers, or polls fail, overrun or are dropped: the ceiling, not the
 * target; then one step halfway between the last that held and the first that did not. A step that
 * does not hold is run again, to tell the ceiling from a passing load of the shared machine, and
 * once tuned. Each poll costs about the same (one request, one answer, one telemetry message)
 * whether there are more devices or shorter intervals; faster polls keep the site file small (it
 * takes seconds to read, and holds at most 4 MiB: about 3,000 such devices). Right after the 250 ms
 * step, the same offered rate from 4 times the devices at 1 s checks that.
 */
export async function pollCeiling(
  devices = 500,
  intervals = [1000, 250, 167, 125, 100],
  seconds = 6,
): Promise<{ name: string; lines: string[] }> {
  const crossCheck = { interval: 250, devices: devices * 4 };
  const sim = await startDevices(crossCheck.devices);
  const lines: string[] = [];
  let highest: PollStep | undefined;
  let failed: PollStep | undefined;
  const held: PollStep[] = [];
  const step = async (count: number, intervalMs: number, tuned?: Tuning) => {
    const s = await stepInOwnProcess({
      ports: sim.ports.slice(0, count),
      simulatorPid: sim.pid,
      intervalMs,
      seconds,
      ...(tuned ? { tuned } : {}),
    });
    lines.push(stepLine(s));
    if (holds(s)) held.push(s);
    return s;
  };
  /** A step, run again when it does not hold. */
  const tryStep = async (intervalMs: number) => {
    const first = await step(devices, intervalMs);
    return holds(first) ? first : step(devices, intervalMs);
  };
  try {
    for (const interval of intervals) {
      const s = await tryStep(interval);
      if (interval === crossCheck.interval) await step(crossCheck.devices, 1000);
      if (holds(s)) {
        highest = s;
        continue;
      }
      failed = s;
      await step(devices, interval, TUNING);
      break;
    }
    if (highest && failed) {
      // Halfway in readings/s between the last step that held and the first that did not.
      const between = await tryStep(Math.round((2 * highest.intervalMs * failed.intervalMs) / (highest.intervalMs + failed.intervalMs)));
      if (holds(between)) highest = between;
      else failed = between;
    }
  } finally {
    sim.stop();
  }
  const rate = (s: PollStep) => Math.round(s.offered).toLocaleString('en');
  lines.push(
    !failed
      ? `every step held: the ceiling is above ${rate(highest!)} readings/s`
      : `ceiling at the default settings: ${highest ? `${rate(highest)} readings/s held, ${rate(failed)} did not` : `below ${rate(failed)} readings/s`}`,
  );
  // The gateway's work runs on one thread: CPU per reading says where one whole core would run out.
  const perReading = held.map(cpuPerReading).sort((a, b) => a - b);
  if (perReading.length > 0) {
    const median = perReading[Math.floor(perReading.length / 2)]!;
    lines.push(
      `gateway CPU per reading over the ${held.length} steps that held: ${perReading[0]!.toFixed(1)}-${perReading.at(-1)!.toFixed(1)} µs (median ${median.toFixed(1)}): one whole core would be used up at about ${Math.round(1e6 / median / 1000) * 1000} readings/s`,
    );
  }
  return {
    name: `Modbus TCP ceiling: ${devices} simulated devices × 30 float32 points, one connection each, polled faster step by step, through the whole gateway (embedded broker, no subscriber); gateway and devices in processes of their own`,
    lines,
  };
}

/**
 * A unit that never answers, polled fast for a while: the heap after a forced GC must not grow with
 * the number of failed polls (no stuck queue, no leaked timers or promises).
 */
export async function deadDeviceSoak(log: Logger, seconds = 40): Promise<{ name: string; lines: string[] }> {
  const { createModbusTcpSimulator, RegisterBank } = await import('../drivers/modbus/simulator.js');
  const sim = createModbusTcpSimulator({
    devices: new Map([
      [1, new RegisterBank()],
      [2, new RegisterBank()],
    ]),
  });
  await sim.start();
  sim.control(2).paused = true;
  const yaml = `version: 1
gateway: { id: gw-soak, site: soak, data_dir: /tmp/gw-soak }
mqtt: { port: ${await freePort()} }
connections: [{ id: c, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port()}, timeout: 20ms, max_in_flight: 2, failures_before_backoff: 1000000 }]
equipment:
  - { id: alive, category: other, connection: c, unit_id: 1, poll_interval: 25ms, points: [{ name: v, address: "hr:0", type: uint16 }] }
  - { id: dead, category: other, connection: c, unit_id: 2, poll_interval: 25ms, points: [{ name: v, address: "hr:0", type: uint16 }] }
`;
  const gw = createGateway(parseSite(yaml, { env: {} }), log);
  await gw.start();
  const gc = (globalThis as { gc?: () => void }).gc;
  const heap = () => {
    gc?.();
    return process.memoryUsage().heapUsed;
  };
  // Past a warm-up (JIT, first allocations) the heap must stay flat however many requests fail.
  await new Promise((r) => setTimeout(r, 10_000));
  const h0 = heap();
  const f0 = gw.driverStats()[0]!.stats.failures!;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const h1 = heap();
  const failures = gw.driverStats()[0]!.stats.failures! - f0;
  await gw.stop();
  await sim.stop();
  return {
    name: `Modbus: a unit that never answers, polled every 25 ms without backoff, beside a live one, for ${seconds} s`,
    lines: [
      `after a 10 s warm-up, ${failures.toLocaleString('en')} more timed-out requests: heap after GC ${(h0 / 2 ** 20).toFixed(2)} MiB → ${(h1 / 2 ** 20).toFixed(2)} MiB (${((h1 - h0) / 1024).toFixed(0)} KiB)${gc ? '' : ' (run with --expose-gc for exact figures)'}`,
    ],
  };
}

/**
 * What checking the answers costs: every answer of the 500-device poll (60 registers, 123-byte TCP
 * frames) split by the deframer and checked against its request, timed in a loop, then set against
 * the answers per second that poll takes.
 */
export function answerCheckCost(answersPerSecond = 500): { name: string; lines: string[] } {
  const req = { unit: 1, area: 'hr' as const, start: 0, count: 60 };
  const frame = tcpFrame(
    7,
    1,
    readAnswerPdu(
      3,
      'hr',
      Array.from({ length: 60 }, (_, i) => i * 997),
    ),
  );
  const deframer = new TcpDeframer();
  const run = (n: number) => {
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const [f] = deframer.push(frame);
      const check = checkReadAnswer(req, f!.unit, f!.pdu);
      if (check.ok) sum += check.values[59]!;
    }
    return sum;
  };
  run(20_000); // warm up the JIT
  const n = 500_000;
  const t0 = process.hrtime.bigint();
  run(n);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  return {
    name: 'Modbus answer checks: a 60-register answer split from the TCP stream and checked against its request',
    lines: [
      `${(ns / 1000).toFixed(2)} µs per answer; at the 500-device poll's ${answersPerSecond} answers/s that is ${((ns * answersPerSecond) / 1e7).toFixed(3)} % of one core`,
    ],
  };
}
