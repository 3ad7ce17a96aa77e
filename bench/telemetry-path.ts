// Readings pushed into the pipeline, published by the gateway's MQTT client into the embedded broker
// and received by an outside subscriber: the path every reading takes before any sink.
import { type Logger } from 'pino';
import mqtt from 'mqtt';
import { parseSite } from '../config/load.js';
import type { Reading } from '../drivers/types.js';
import { createGateway } from '../gateway/runtime.js';
import { freePort } from '../tests/helpers/processes.js';

const EQUIPMENT = 500;
const POINTS = 30;
const SECONDS = 5;

export async function telemetryPath(log: Logger): Promise<{ name: string; lines: string[] }> {
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
  sub.on('message', () => received++);
  await sub.subscribeAsync('gw/bench/+/telemetry', { qos: 1 });

  const batches: Reading[][] = [];
  for (let e = 0; e < EQUIPMENT; e++) {
    batches.push(Array.from({ length: POINTS }, (_, p) => ({ equipment: `E-${e}`, point: `p${p}`, value: 0, quality: 'good' as const, ts: 0 })));
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let sent = 0;
  let rss = 0;
  // Push as fast as the client keeps up (pending below the bound), yielding to I/O between rounds.
  while (performance.now() - t0 < SECONDS * 1000) {
    if (gw.link.stats().pending < 10_000) {
      for (const batch of batches) {
        const ts = Date.now();
        for (const r of batch) {
          r.ts = ts;
          r.value = Math.random();
        }
        gw.pipeline.push(batch);
        sent++;
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

  const readings = received * POINTS;
  return {
    name: `Telemetry path: pipeline → gateway MQTT client → embedded broker → subscriber (${EQUIPMENT} equipment × ${POINTS} points, one process)`,
    lines: [
      `messages published ${sent}, received ${received}, dropped by the bound ${gw.link.stats().dropped}`,
      `${Math.round(readings / elapsed).toLocaleString('en')} readings/s (${Math.round(received / elapsed).toLocaleString('en')} messages/s) end to end over ${elapsed.toFixed(1)} s`,
      `CPU ${(((cpu.user + cpu.system) / 1e6 / elapsed) * 100).toFixed(0)} % of one core (gateway, broker and subscriber together), peak RSS ${Math.round(rss / 2 ** 20)} MiB`,
    ],
  };
}
