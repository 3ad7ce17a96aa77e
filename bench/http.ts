// 200 Server-Sent Events clients following a gateway (its own process, as in production): the
// gateway's CPU and event-loop lag, and the latency of equipment detail requests meanwhile.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashToken } from '../gateway/http/server.js';
import { freePort } from '../tests/helpers/processes.js';
import { writeTestSite } from '../tests/helpers/site.js';

const CLIENTS = 200;
const REQUESTS = 2000;
const TOKEN = 'bench-viewer-token-0123456789';
const ROOT = join(import.meta.dirname, '..');

export async function sseClients(): Promise<{ name: string; lines: string[] }> {
  const port = await freePort();
  const file = writeTestSite({
    port: await freePort(),
    pollInterval: '200ms',
    extra: ['http:', `  port: ${port}`, '  tokens:', `    - { name: bench, role: viewer, hash: "${hashToken(TOKEN)}" }`],
  });
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'gateway', 'cli.ts'), 'run', '-c', file], {
    cwd: ROOT,
    stdio: 'ignore',
  });
  const base = `http://127.0.0.1:${port}`;
  const headers = { authorization: `Bearer ${TOKEN}` };
  try {
    for (let k = 0; ; k++) {
      try {
        if ((await fetch(`${base}/health`)).ok) break;
      } catch {
        if (k > 200) throw new Error('the gateway did not start');
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    // Let the first polls and the alarm engine settle.
    await new Promise((r) => setTimeout(r, 1000));
    const controller = new AbortController();
    let events = 0;
    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        const res = await fetch(`${base}/api/stream`, { headers, signal: controller.signal });
        const reader = res.body!.getReader();
        void (async () => {
          try {
            for (;;) {
              const { value, done } = await reader.read();
              if (done) return;
              events += new TextDecoder().decode(value).split('event: ').length - 1;
            }
          } catch {
            // aborted at the end
          }
        })();
        return res;
      }),
    );
    const cpu = () => {
      const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in seconds (USER_HZ 100)
    };
    const cpu0 = cpu();
    const t0 = performance.now();
    const latencies: number[] = [];
    for (let n = 0; n < REQUESTS; n++) {
      const s = performance.now();
      const res = await fetch(`${base}/api/equipment/B-07`, { headers });
      await res.json();
      latencies.push(performance.now() - s);
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpuShare = (cpu() - cpu0) / seconds;
    const metrics = await (await fetch(`${base}/metrics`, { headers })).text();
    const lag = (name: string) =>
      Number(new RegExp(`^gateway_nodejs_eventloop_lag_${name}_seconds (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN) * 1000;
    controller.abort();
    latencies.sort((a, b) => a - b);
    const pct = (q: number) => latencies[Math.floor(q * (latencies.length - 1))]!.toFixed(2);
    return {
      name: `HTTP API with ${CLIENTS} SSE clients`,
      lines: [
        `${clients.length} clients connected to /api/stream, ${events.toLocaleString('en-US')} events delivered over ${seconds.toFixed(1)} s (one boiler polled every 200 ms)`,
        `GET /api/equipment/B-07 meanwhile, ${REQUESTS} requests one after another: p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms`,
        `gateway process CPU ${(cpuShare * 100).toFixed(0)} % of one core; event-loop lag p50 ${lag('p50').toFixed(1)} ms, p99 ${lag('p99').toFixed(1)} ms`,
      ],
    };
  } finally {
    child.kill('SIGTERM');
  }
}
