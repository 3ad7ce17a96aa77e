// Modbus figures for docs/BENCHMARKS.md: requests per cycle of a boiler-house map, and a sustained
// 500-device × 30-point poll at 1 s with the gateway's CPU and memory.
import { spawn } from 'node:child_process';
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

export async function pollManyDevices(log: Logger, devices = 500, seconds = 10): Promise<{ name: string; lines: string[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'modbus-sim-process.ts'), String(devices)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const ports = await new Promise<number[]>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as number[]);
    });
    child.once('exit', (code) => reject(new Error(`simulator process exited with ${code}`)));
  });
  const points = Array.from({ length: 30 }, (_, i) => `{ name: p${i}, address: "hr:${i * 2}", type: float32 }`).join(', ');
  const yaml = `version: 1
gateway: { id: gw-bench, site: bench, data_dir: /tmp/gw-bench }
mqtt: { port: ${await freePort()} }
connections:
${ports.map((p, i) => `  - { id: c${i}, type: modbus-tcp, host: 127.0.0.1, port: ${p}, timeout: 1s }`).join('\n')}
equipment:
${ports.map((_, i) => `  - { id: D-${i}, category: pressure_vessel, connection: c${i}, unit_id: 1, poll_interval: 1s, points: [${points}] }`).join('\n')}
`;
  const config = parseSite(yaml, { env: {} });
  const gw = createGateway(config, log);
  await gw.start();
  await new Promise((r) => setTimeout(r, 3000)); // warm up: connections open, first polls done
  const before = gw.pipeline.stats();
  const badBefore = countBad(gw);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let rss = 0;
  const sampler = setInterval(() => (rss = Math.max(rss, process.memoryUsage().rss)), 250);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  clearInterval(sampler);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const after = gw.pipeline.stats();
  const overruns = gw.driverStats().reduce((n, d) => n + (d.stats.overruns ?? 0), 0);
  const requests = gw.driverStats().reduce((n, d) => n + (d.stats.requests ?? 0), 0);
  const bad = countBad(gw) - badBefore;
  await gw.stop();
  child.stdin.end();
  const rate = (after.readings - before.readings) / elapsed;
  return {
    name: `Modbus TCP: ${devices} simulated devices × 30 float32 points at 1 s, through the whole gateway (embedded broker, no subscriber); devices in a separate process`,
    lines: [
      `${Math.round(rate).toLocaleString('en')} readings/s sustained over ${elapsed.toFixed(0)} s (target 15,000), ${bad} bad, ${overruns} overruns, ${requests} requests in all`,
      `gateway CPU ${(((cpu.user + cpu.system) / 1e6 / elapsed) * 100).toFixed(1)} % of one core (target under 50 %), peak RSS ${Math.round(rss / 2 ** 20)} MiB`,
    ],
  };
}

function countBad(gw: ReturnType<typeof createGateway>): number {
  return gw.driverStats().reduce((n, d) => n + (d.stats.failures ?? 0), 0);
}

/**
 * A unit that never answers, polled fast for a while: the heap after a forced GC must not grow with
 * the number of failed polls (no stuck queue, no leaked timers or promises).
 */
export async function deadDeviceSoak(log: Logger, seconds = 40): Promise<{ name: string; lines: string[] }> {
  const { createModbusTcpSimulator, RegisterBank } = await import('../drivers/modbus/simulator.js');
  const sim = createModbusTcpSimulator({ devices: new Map([[1, new RegisterBank()], [2, new RegisterBank()]]) });
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
  const frame = tcpFrame(7, 1, readAnswerPdu(3, 'hr', Array.from({ length: 60 }, (_, i) => i * 997)));
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
    lines: [`${(ns / 1000).toFixed(2)} µs per answer; at the 500-device poll's ${answersPerSecond} answers/s that is ${((ns * answersPerSecond) / 1e7).toFixed(3)} % of one core`],
  };
}
