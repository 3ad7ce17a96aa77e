// The Modbus link frees each transaction when it ends (answered, refused, timed out, or failed by a
// reset): 100,000 reads through one connection to our simulator, the heap after a full GC measured
// at 20k, 60k and 100k. modbus-serial, which the link replaced, kept every finished transaction; a
// leak of even 100 bytes a read is 8 MB over the last 80,000 reads, nearly four times the bound;
// keeping each finished transaction whole (about 830 bytes) is 16 times it.
//
// The reads run in a child process (tests/helpers/modbus-link-heap.ts) started with --expose-gc:
// its heap holds the link alone, while this process (vitest's worker, the simulator and its
// sockets) allocates as it likes; and gc() comes from the documented start-up flag rather than
// from v8.setFlagsFromString after start-up (which Node's docs say may behave unpredictably or do nothing).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createModbusTcpSimulator, RegisterBank, type ModbusSimulator } from '../../drivers/modbus/simulator.js';
import { ROOT } from '../helpers/cli.js';
import type { HeapRunOptions, HeapRunResult } from '../helpers/modbus-link-heap.js';

const SCRIPT = join(ROOT, 'tests', 'helpers', 'modbus-link-heap.ts');
/** Reads done when the heap is measured; the first 20,000 warm up (JIT, pools, the map's size). */
const CHECKPOINTS = [20_000, 60_000, 100_000];
/** Growth allowed from the first checkpoint to the later ones: 26 bytes a read over 80,000 reads. */
const BOUND = 2 * 2 ** 20;
/** Unit 1 holds register i = i at hr:0-109. */
const REGISTERS = 110;

function runChild(opts: HeapRunOptions): Promise<HeapRunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', SCRIPT, JSON.stringify(opts)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve(JSON.parse(out) as HeapRunResult);
      else reject(new Error(`Heap run exited with ${code}: ${err}`));
    });
  });
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`;

/** What the child held after GC at `requests`, less what it held at the first checkpoint. */
const growthAt = (r: HeapRunResult, requests: number) => r.checkpoints.find((c) => c.requests === requests)!.held - r.checkpoints[0]!.held;

const summary = (what: string, r: HeapRunResult, upTo: number) => {
  const at = r.checkpoints.find((c) => c.requests === upTo)!;
  const points = r.checkpoints
    .map((c) => `${c.requests / 1000}k ${mib(c.held)} (heap ${mib(c.heapUsed)} + buffers ${mib(c.arrayBuffers)})`)
    .join(', ');
  return `${what}: held after GC at ${points}; ${Math.round(at.requests / at.seconds).toLocaleString('en')} reads/s; ${r.answered} answered, failed ${JSON.stringify(r.failed)}, ${r.connects} connects, stats ${JSON.stringify(r.stats)}`;
};

describe('Modbus link memory', () => {
  let sim: ModbusSimulator | undefined;
  afterEach(async () => {
    await sim?.stop();
    sim = undefined;
  });

  /** Unit 1 answers, 2 never does, 3 answers with garbage (the link resets), 4 with a wrong byte count. */
  const simulator = async () => {
    const bank = new RegisterBank();
    bank.set(
      'hr',
      0,
      Array.from({ length: REGISTERS }, (_, i) => i),
    );
    sim = createModbusTcpSimulator({ devices: new Map([1, 2, 3, 4].map((u) => [u, u === 1 ? bank : new RegisterBank()])) });
    await sim.start();
    sim.control(2).paused = true;
    sim.control(3).fault = 'garbage';
    sim.control(4).fault = 'wrong-byte-count';
    return sim;
  };

  it('100,000 answered reads through one connection: the heap after GC stays flat, and a leak of 100 bytes a read would show', async () => {
    const s = await simulator();
    // Past 100k, the helper keeps each answer (an array of 10 numbers, about 100 bytes): the same
    // measurement must see that, or it could not see a leak in the link either.
    const r = await runChild({
      port: s.port(),
      checkpoints: [...CHECKPOINTS, 120_000],
      connection: { timeout: '2s', max_in_flight: 16 },
      routes: [],
      registers: REGISTERS,
      retainFrom: 100_000,
    });
    console.log(summary('Answered reads', r, 100_000));
    expect(r.answered).toBe(120_000);
    expect(r.wrong).toBe(0);
    expect(r.connects).toBe(1);
    expect(growthAt(r, 60_000)).toBeLessThan(BOUND);
    expect(growthAt(r, 100_000)).toBeLessThan(BOUND);
    const leaked = r.checkpoints[3]!.held - r.checkpoints[2]!.held;
    console.log(`Control: 20,000 answers kept: ${mib(leaked)}, ${Math.round(leaked / 20_000)} bytes a read`);
    expect(r.retained).toBe(20_000);
    expect(leaked / 20_000).toBeGreaterThan(BOUND / 80_000);
  }, 90_000);

  it('100,000 reads of which some time out, are refused, or are failed by a reset: the heap after GC stays flat', async () => {
    const s = await simulator();
    const routes = [
      { every: 1000, at: 500, unit: 3 }, // 100 garbage answers: each resets the connection
      { every: 50, at: 49, unit: 2 }, // 2,000 timeouts
      { every: 100, at: 25, unit: 4 }, // 1,000 refused answers
    ];
    // timeouts_before_reset high: the timeouts leave the connection open, as one dead unit beside live ones does.
    const connection = {
      timeout: '25ms',
      max_in_flight: 16,
      timeouts_before_reset: 1000,
      reconnect: { initial_delay: '10ms', max_delay: '100ms' },
    };
    const r = await runChild({ port: s.port(), checkpoints: CHECKPOINTS, connection, routes, registers: REGISTERS });
    console.log(summary('Reads with failures', r, 100_000));
    expect(r.wrong).toBe(0);
    // Every route was taken (on a loaded machine some live reads time out too, and a reset fails what was in flight).
    expect(r.answered).toBeGreaterThan(80_000);
    expect(r.stats.timeouts).toBeGreaterThan(500);
    expect(r.stats.badAnswers).toBeGreaterThan(500);
    expect(r.stats.resets).toBeGreaterThan(50);
    expect(r.connects).toBeGreaterThan(50);
    expect(growthAt(r, 60_000)).toBeLessThan(BOUND);
    expect(growthAt(r, 100_000)).toBeLessThan(BOUND);
  }, 90_000);
});
