// OPC UA figure for docs/BENCHMARKS.md: 10,000 monitored items at 1 s on one connection.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { freePort } from '../drivers/common/free-port.js';
import { parseSite } from '../config/load.js';
import { createGateway } from '../gateway/runtime.js';

export async function manyMonitoredItems(log: Logger, items = 10_000, seconds = 10): Promise<{ name: string; lines: string[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'opcua-server-process.ts'), String(items)], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^(\d+)\n/m.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`OPC UA bench server exited with ${code}`)));
  });
  const perEquipment = 100;
  const equipment = Array.from({ length: items / perEquipment }, (_, e) => {
    const points = Array.from({ length: perEquipment }, (_, p) => `{ name: v${p}, node: "ns=1;s=Bench.V${e * perEquipment + p}" }`).join(
      ', ',
    );
    return `  - { id: E-${e}, category: other, connection: ua, poll_interval: 1s, points: [${points}] }`;
  });
  const dataDir = mkdtempSync(join(tmpdir(), 'gw-bench-ua-gw-'));
  const config = parseSite(
    `version: 1
gateway: { id: gw-bench, site: bench, data_dir: ${dataDir} }
mqtt: { port: ${await freePort()}, max_pending: 100000 }
connections: [{ id: ua, type: opcua, endpoint: "opc.tcp://127.0.0.1:${port}/bench", security_mode: None, request_timeout: 30s }]
equipment:
${equipment.join('\n')}
`,
    { env: {} },
  );
  const gw = createGateway(config, log);
  const seen = new Set<string>();
  let firstFullSet = 0;
  const t0 = performance.now();
  gw.pipeline.onBatch((batch) => {
    if (firstFullSet) return;
    for (const r of batch) if (r.quality === 'good') seen.add(`${r.equipment}/${r.point}`);
    if (seen.size === items) firstFullSet = performance.now() - t0;
  });
  await gw.start();
  while (!firstFullSet && performance.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 3000)); // subscriptions settle
  const before = gw.pipeline.stats().readings;
  const cpu0 = process.cpuUsage();
  const t1 = performance.now();
  let rss = 0;
  const sampler = setInterval(() => (rss = Math.max(rss, process.memoryUsage().rss)), 250);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  clearInterval(sampler);
  const elapsed = (performance.now() - t1) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const rate = (gw.pipeline.stats().readings - before) / elapsed;
  const stats = gw.driverStats()[0]!.stats;
  await gw.stop();
  child.stdin.end();
  return {
    name: `OPC UA: ${items.toLocaleString('en')} monitored items at 1 s on one connection (security None), values changing every second, through the whole gateway; server in a separate process`,
    lines: [
      `connect to first full set of values: ${(firstFullSet / 1000).toFixed(1)} s (monitored items created: ${stats.monitoredItems}, refused: ${stats.badItems})`,
      `${Math.round(rate).toLocaleString('en')} readings/s delivered to the pipeline over ${elapsed.toFixed(0)} s`,
      `gateway CPU ${(((cpu.user + cpu.system) / 1e6 / elapsed) * 100).toFixed(1)} % of one core, peak RSS ${Math.round(rss / 2 ** 20)} MiB`,
    ],
  };
}
