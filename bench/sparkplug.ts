// The Sparkplug B edge node at default settings: batches pushed into the pipeline of a gateway on its
// embedded broker (the gateway's telemetry too, as always), encoded by the node as DDATA and received
// by an in-process subscription of the broker, decoded by nobody (the host's cost is not the gateway's). Then the encoder alone, for one equipment's DDATA.
import type { Logger } from 'pino';
import { parseSite } from '../config/load.js';
import type { Reading } from '../drivers/types.js';
import { createGateway } from '../gateway/runtime.js';
import { DataType, encodePayload, type Metric } from '../gateway/sparkplug/payload.js';
import { freePort } from '../tests/helpers/processes.js';

const EQUIPMENT = 100;
const POINTS = 30;
const SECONDS = 5;

export async function sparkplugNode(log: Logger): Promise<{ name: string; lines: string[] }> {
  const port = await freePort();
  const points = Array.from({ length: POINTS }, (_, k) => `{ name: p${k}, signal: drum_level }`).join(', ');
  const equipment = Array.from(
    { length: EQUIPMENT },
    (_, e) => `  - { id: E-${e}, category: boiler, connection: sim, model: steam-boiler, poll_interval: 1h, points: [${points}] }`,
  ).join('\n');
  const config = parseSite(
    `version: 1
gateway: { id: gw-bench, site: bench, data_dir: /tmp/gw-bench-sparkplug-${process.pid} }
mqtt: { port: ${port} }
sparkplug: {}
connections: [{ id: sim, type: sim }]
equipment:
${equipment}
`,
    { env: {} },
  );
  const gw = createGateway(config, log);
  await gw.start();
  let received = 0;
  // The node publishes over a real socket; the bench reads what the broker routes in process.
  const unsubscribe = await gw.broker!.subscribe('spBv1.0/bench/DDATA/gw-bench/+', () => received++);
  const batches: Reading[][] = Array.from({ length: EQUIPMENT }, (_, e) =>
    Array.from({ length: POINTS }, (_, k) => ({ equipment: `E-${e}`, point: `p${k}`, value: 0, quality: 'good' as const, ts: 0 })),
  );
  const node = () => (gw.services.find((s) => s.id === 'sparkplug') as unknown as { node(): { stats(): { sent: number } } }).node();
  const sent0 = node().stats().sent;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let pushed = 0;
  while (performance.now() - t0 < SECONDS * 1000) {
    for (const batch of batches) {
      const ts = Date.now();
      for (const r of batch) {
        r.ts = ts;
        r.value = Math.random();
      }
      gw.pipeline.push(batch);
      pushed++;
    }
    await new Promise((r) => setImmediate(r));
  }
  const deadline = performance.now() + 5000;
  // One DDATA per batch; the births are not counted.
  while (received < pushed && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const sent = node().stats().sent - sent0;
  await unsubscribe();
  await gw.stop();

  const metrics: Metric[] = Array.from({ length: POINTS }, (_, k) => ({
    alias: k + 2,
    timestamp: Date.now(),
    datatype: DataType.Double,
    value: Math.random(),
  }));
  let encoded = 0;
  let bytes = 0;
  const e0 = performance.now();
  while (performance.now() - e0 < 1000) {
    for (let i = 0; i < 100; i++) bytes += encodePayload({ timestamp: Date.now(), seq: encoded++ % 256, metrics }).length;
  }
  const encodeSeconds = (performance.now() - e0) / 1000;
  return {
    name: `Sparkplug B edge node: pipeline → node (DDATA, ${POINTS} metrics each) → embedded broker (${EQUIPMENT} equipment × ${POINTS} points, one process)`,
    lines: [
      `batches pushed ${pushed}; messages sent by the node ${sent} (births included), DDATA received ${received}`,
      `${Math.round(received / elapsed).toLocaleString('en')} DDATA/s (${Math.round((received * POINTS) / elapsed).toLocaleString('en')} readings/s) end to end over ${elapsed.toFixed(1)} s; CPU ${(((cpu.user + cpu.system) / 1e6 / elapsed) * 100).toFixed(0)} % of one core (gateway, node, broker and its client together)`,
      `encoder alone: ${Math.round(encoded / encodeSeconds).toLocaleString('en')} DDATA/s of ${POINTS} Double metrics (${Math.round(bytes / encoded)} bytes each)`,
    ],
  };
}
