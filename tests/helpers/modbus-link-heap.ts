// Run as `node --expose-gc --import tsx modbus-link-heap.ts '<json>'` by
// tests/integration/modbus-link-heap.test.ts: drives many reads through one Modbus TCP link and
// prints, as one JSON line, the heap after a full GC at each checkpoint. In a process of its own so
// that the heap holds the link and nothing else (not vitest, not the simulator), and so that gc()
// comes from the documented start-up flag. The test imports its types only: this module runs.
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { createModbusLink, toFailure } from '../../drivers/modbus/link.js';
import { modbusTcpConnectionSchema } from '../../drivers/modbus/schema.js';

export interface HeapRunOptions {
  port: number;
  /** Reads in all; the heap is measured once each checkpoint's count has completed. */
  checkpoints: number[];
  /** Connection keys as in a site file (timeout, max_in_flight, ...). */
  connection: Record<string, unknown>;
  /** Read n goes to the first route's unit where n % every === at; to unit 1 when none. */
  routes: Array<{ every: number; at: number; unit: number }>;
  /** Unit 1 holds register i = i at hr:0 to hr:registers-1: each answer is checked. */
  registers: number;
  /** Reads from this one on keep their values here, as a leak of about 100 bytes a read would: the control. */
  retainFrom?: number;
}

export interface HeapCheckpoint {
  requests: number;
  /** heapUsed + arrayBuffers after two full collections, in bytes. */
  held: number;
  heapUsed: number;
  arrayBuffers: number;
  /** Since the first read. */
  seconds: number;
}

export interface HeapRunResult {
  checkpoints: HeapCheckpoint[];
  /** Reads answered with the values unit 1 holds, answered wrongly, and failed by kind. */
  answered: number;
  wrong: number;
  failed: Record<string, number>;
  stats: Record<string, number>;
  connects: number;
  /** Answers the control run kept. */
  retained: number;
}

/** Registers a read asks for. */
const COUNT = 10;

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('Run with --expose-gc');

function measure(requests: number, t0: number): HeapCheckpoint {
  // The first collection can leave buffers whose memory is returned by the second.
  gc!();
  gc!();
  const m = process.memoryUsage();
  return {
    requests,
    held: m.heapUsed + m.arrayBuffers,
    heapUsed: m.heapUsed,
    arrayBuffers: m.arrayBuffers,
    seconds: (performance.now() - t0) / 1000,
  };
}

async function run(opts: HeapRunOptions): Promise<HeapRunResult> {
  const conn = modbusTcpConnectionSchema.parse({ id: 'heap', type: 'modbus-tcp', host: '127.0.0.1', port: opts.port, ...opts.connection });
  const link = createModbusLink(conn, pino({ level: 'silent' }));
  await link.start();
  if (!link.connected) throw new Error(`Not connected: ${link.downReason}`);
  const kept: number[][] = [];
  const result: HeapRunResult = { checkpoints: [], answered: 0, wrong: 0, failed: {}, stats: {}, connects: 0, retained: 0 };
  let issued = 0;
  // One loop per request the link may have outstanding, so it is always full.
  const worker = async (until: number) => {
    while (issued < until) {
      const n = issued++;
      const unit = opts.routes.find((r) => n % r.every === r.at)?.unit ?? 1;
      const start = n % (opts.registers - COUNT + 1);
      try {
        const values = await link.read(unit, 'hr', start, COUNT);
        if (values.every((v, i) => v === start + i)) result.answered++;
        else result.wrong++;
        if (opts.retainFrom !== undefined && n >= opts.retainFrom) kept.push(values);
      } catch (err) {
        const kind = toFailure(err).kind;
        result.failed[kind] = (result.failed[kind] ?? 0) + 1;
        // As a poller would wait for its next poll: no loop of reads failed at once while the link reopens.
        if (kind === 'connection') await new Promise((r) => setTimeout(r, 1));
      }
    }
  };
  const t0 = performance.now();
  for (const until of opts.checkpoints) {
    await Promise.all(Array.from({ length: conn.max_in_flight }, () => worker(until)));
    // Nothing is outstanding now: whatever the link still holds of these reads, it kept.
    result.checkpoints.push(measure(until, t0));
  }
  result.stats = { ...link.stats };
  result.connects = link.connects;
  await link.stop();
  result.retained = kept.length;
  return result;
}

const opts = JSON.parse(process.argv[2] ?? '') as HeapRunOptions;
run(opts).then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
