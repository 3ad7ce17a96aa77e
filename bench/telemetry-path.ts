// Readings pushed into the pipeline, published by the gateway's MQTT client into the embedded broker
// and received by an outside subscriber: the path every reading takes before any sink. Then the
// cost of per-point time alone, in process: the pipeline (telemetry messages, status) and the rule
// engine per reading, for batches as a Modbus poll makes them (one receive time) and as an OPC UA
// publish does (a source time per value, out of order, several values of a point).
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Logger } from 'pino';
import mqtt from 'mqtt';
import { parseSite } from '../config/load.js';
import type { Reading } from '../drivers/types.js';
import type { MqttLink } from '../gateway/mqtt/link.js';
import { topicsFor } from '../gateway/mqtt/topics.js';
import { createPipeline } from '../gateway/pipeline.js';
import { createGateway } from '../gateway/runtime.js';
import { RuleEngine } from '../rules/engine.js';
import { compile } from '../rules/expression.js';
import type { RuleSpec } from '../rules/types.js';
import { freePort } from '../tests/helpers/processes.js';

const EQUIPMENT = 500;
const POINTS = 30;
const SECONDS = 5;

/**
 * How a batch carries time. poll: one receive time, no source time (Modbus). source: a source time
 * per value, in order. unordered: the same, not in order (sorted first). repeated: every point twice
 * at different source times (an OPC UA publish with queued values): two telemetry messages.
 */
type Shape = 'poll' | 'source' | 'unordered' | 'repeated';
const SHAPES: Shape[] = ['poll', 'source', 'unordered', 'repeated'];

/** The batches of one round, one per equipment, stamped at `ts`; values from `value`. */
function batchesOf(shape: Shape): { batches: Reading[][]; stamp: (batch: Reading[], ts: number, value: (k: number) => number) => void } {
  const perPoint = shape === 'repeated' ? 2 : 1;
  const batches: Reading[][] = [];
  for (let e = 0; e < EQUIPMENT; e++) {
    batches.push(
      Array.from({ length: POINTS * perPoint }, (_, k) => ({
        equipment: `E-${e}`,
        point: `p${k % POINTS}`,
        value: 0,
        quality: 'good' as const,
        ts: 0,
      })),
    );
  }
  const stamp = (batch: Reading[], ts: number, value: (k: number) => number) => {
    const n = batch.length;
    for (let k = 0; k < n; k++) {
      const r = batch[k]!;
      r.ts = ts;
      r.value = value(k);
      // Source times a little before receipt; `unordered` runs them backwards.
      if (shape === 'source' || shape === 'repeated') r.sourceTs = ts - n + k;
      else if (shape === 'unordered') r.sourceTs = ts - 1 - k;
    }
  };
  return { batches, stamp };
}

export async function telemetryPath(log: Logger): Promise<{ name: string; lines: string[] }> {
  // In process first: the code of both trees has then seen the same readings when it is timed.
  const lines = await inProcess();
  (globalThis as { gc?: () => void }).gc?.();
  for (const shape of ['poll', 'source', 'repeated'] as const) lines.push(...(await throughMqtt(log, shape)));
  return {
    name: `Telemetry path: pipeline → gateway MQTT client → embedded broker → subscriber (${EQUIPMENT} equipment × ${POINTS} points, one process); per-point time in process`,
    lines,
  };
}

async function throughMqtt(log: Logger, shape: Shape): Promise<string[]> {
  const port = await freePort();
  // The sim connection has one equipment that is never polled here: batches come from this loop.
  const config = parseSite(
    `version: 1
gateway: { id: gw-bench, site: bench, data_dir: /tmp/gw-bench }
mqtt: { port: ${port}, max_pending: 20000 }
connections: [{ id: sim, type: sim }]
equipment: [{ id: idle, category: boiler, connection: sim, model: steam-boiler, poll_interval: 1h, points: [{ name: flame }] }]
`,
    { env: {} },
  );
  const gw = createGateway(config, log);
  await gw.start();
  const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`);
  let received = 0;
  let readingsReceived = 0;
  sub.on('message', (topic, payload) => {
    if (topic.endsWith('/idle/telemetry')) return;
    received++;
    readingsReceived += Object.keys((JSON.parse(payload.toString()) as { values: object }).values).length;
  });
  await sub.subscribeAsync('gw/bench/+/telemetry', { qos: 1 });

  const { batches, stamp } = batchesOf(shape);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let sent = 0;
  let pushed = 0;
  let rss = 0;
  // Push as fast as the client keeps up (pending below the bound), yielding to I/O between rounds.
  while (performance.now() - t0 < SECONDS * 1000) {
    if (gw.link.stats().pending < 10_000) {
      for (const batch of batches) {
        stamp(batch, Date.now(), () => Math.random());
        gw.pipeline.push(batch);
        pushed += batch.length;
        sent += shape === 'repeated' ? 2 : 1;
      }
    }
    rss = Math.max(rss, process.memoryUsage().rss);
    await new Promise((r) => setImmediate(r));
  }
  const deadline = performance.now() + 10_000;
  while (received < sent && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await sub.endAsync();
  await gw.stop();
  return [
    `${shape}: readings pushed ${pushed}, received ${readingsReceived}; messages published ${sent}, received ${received}, dropped by the bound ${gw.link.stats().dropped}`,
    `${shape}: ${Math.round(readingsReceived / elapsed).toLocaleString('en')} readings/s (${Math.round(received / elapsed).toLocaleString('en')} messages/s) end to end over ${elapsed.toFixed(1)} s; CPU ${(((cpu.user + cpu.system) / 1e6 / elapsed) * 100).toFixed(0)} % of one core (gateway, broker and subscriber together), peak RSS ${Math.round(rss / 2 ** 20)} MiB`,
  ];
}

/** The pipeline and the rule engine of one source tree: this one, or a baseline to compare with. */
interface Tree {
  label: string;
  createPipeline: typeof createPipeline;
  RuleEngine: typeof RuleEngine;
  compile: typeof compile;
}

/**
 * BENCH_BASELINE=<folder of another checkout> (a `git worktree` of an older commit sharing
 * node_modules) runs that tree's pipeline and rule engine beside this one's, in the same process.
 */
async function baseline(): Promise<Tree | undefined> {
  const dir = process.env.BENCH_BASELINE;
  if (!dir) return undefined;
  const load = async <T>(file: string) => (await import(pathToFileURL(join(resolve(dir), file)).href)) as T;
  return {
    label: `baseline (${dir})`,
    createPipeline: (await load<Pick<Tree, 'createPipeline'>>('gateway/pipeline.ts')).createPipeline,
    RuleEngine: (await load<Pick<Tree, 'RuleEngine'>>('rules/engine.ts')).RuleEngine,
    compile: (await load<Pick<Tree, 'compile'>>('rules/expression.ts')).compile,
  };
}

const median = (xs: number[]) => Float64Array.from(xs).sort()[Math.floor(xs.length / 2)] ?? 0;

/**
 * Per reading, without MQTT: pipeline.push (telemetry messages and status; publishing is a no-op)
 * and RuleEngine.ingest with one limit rule on every point, so every reading is evaluated. With a
 * baseline, the two trees take each batch in turn (the order alternating), so the load of a shared
 * machine weighs on both alike; the figures are medians per batch.
 */
async function inProcess(): Promise<string[]> {
  const trees: Tree[] = [{ label: 'this tree', createPipeline, RuleEngine, compile }];
  const other = await baseline();
  if (other) trees.push(other);
  const points = Array.from({ length: POINTS }, (_, k) => `p${k}`);
  const names = { isPoint: (n: string) => points.includes(n), constant: () => undefined, describe: () => '' };
  const noop = () => {};
  const link = {
    start: async () => {},
    stop: async () => {},
    publishTelemetry: noop,
    publishStatus: noop,
    setGatewayHealth: noop,
    publishEvent: noop,
  } as unknown as MqttLink;
  const log = { child: () => log, info: noop, warn: noop, error: noop, debug: noop } as unknown as Logger;
  const ROUNDS = 20;
  const out: string[] = [];
  // A first pass of polls, not reported, warms up both trees: the first timed pass ran 30 % slower
  // in whichever tree ran first, the same code as baseline included.
  for (const [pass, shape] of (['poll', ...SHAPES] as const).entries()) {
    const runs = trees.map((tree) => {
      const rules: RuleSpec[] = [];
      for (let e = 0; e < EQUIPMENT; e++) {
        for (const p of points) {
          rules.push({
            id: `${p}-high`,
            equipment: `E-${e}`,
            level: 'orange',
            message: 'x {value}',
            condition: { kind: 'expression', expr: tree.compile(`${p} > 90`, names) },
            onDelayMs: 0,
            offDelayMs: 0,
            deadband: 1,
            latch: false,
          });
        }
      }
      const pipeline = tree.createPipeline({ link, topics: topicsFor('gw', 'bench'), equipment: [], log });
      return {
        tree,
        pipeline,
        engine: new tree.RuleEngine({ site: 'bench', rules, now: 0 }),
        pipelineNs: [] as number[],
        engineNs: [] as number[],
        events: 0,
        rules: rules.length,
      };
    });
    const { batches, stamp } = batchesOf(shape);
    let turn = 0;
    for (let round = 0; round < ROUNDS + 2; round++) {
      for (const [e, batch] of batches.entries()) {
        // About 2 % of batches cross a limit (and, repeated, come back within the batch).
        const hot = (e * 7 + round) % 50 === 0;
        stamp(batch, 1_000_000 + round * 1000, (k) => (hot && k === 1 ? 95 : 50));
        turn++;
        for (let j = 0; j < runs.length; j++) {
          const run = runs[(j + turn) % runs.length]!;
          const t0 = process.hrtime.bigint();
          run.pipeline.push(batch);
          const t1 = process.hrtime.bigint();
          run.events += run.engine.ingest(batch).length;
          const t2 = process.hrtime.bigint();
          // The first two rounds warm up.
          if (round < 2) continue;
          run.pipelineNs.push(Number(t1 - t0) / batch.length);
          run.engineNs.push(Number(t2 - t1) / batch.length);
        }
      }
    }
    if (pass === 0) continue;
    for (const run of runs) {
      out.push(
        `in process, ${shape}, ${run.tree.label}: pipeline ${median(run.pipelineNs).toFixed(0)} ns/reading, rule engine ${median(run.engineNs).toFixed(0)} ns/reading (medians of ${run.pipelineNs.length.toLocaleString('en')} batches of ${batches[0]!.length}; ${run.rules.toLocaleString('en')} rules, ${run.events} alarm events)`,
      );
    }
  }
  return out;
}
