// The soak benchmark's short version (bench/soak.ts runs the long one): 2,000 points read every
// second through a gateway with its HTTP API on and 2 live-stream clients, for 2 minutes. The heap
// after a forced full GC must not grow over the second half. Not a timing: a least-squares slope,
// with a bound that a real leak exceeds many times over (an unbounded history of every reading at
// 2,000 readings/s × ~80 B would grow ~160 KB/s; a Modbus link keeping each finished transaction,
// ~1.5 KB × 67 requests/s, ~100 KB/s).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encode } from '../../drivers/modbus/codec.js';
import { createModbusTcpSimulator, RegisterBank, type ModbusSimulator } from '../../drivers/modbus/simulator.js';
import { hashToken } from '../../gateway/http/server.js';
import { ROOT } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';
import type { SoakSample } from '../helpers/soak-gateway.js';
import { openLiveStream, slope, type LiveStream } from '../helpers/soak.js';

const DEVICES = 67;
const POINTS_PER_DEVICE = 30;
/** From the gateway's start to its stop; with the start of its process, about 2 minutes. */
const RUN_MS = 112_000;
const SAMPLE_MS = 2000;
/** Bytes per second the heap (plus array buffers) may grow over the second half. */
const MAX_SLOPE = 20_000;
const TOKEN = 'soak-test-viewer-token-0123456789';

describe('soak: memory under a steady load', () => {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it(
    `keeps the heap after GC flat over the second half of ${RUN_MS / 1000} s of ${DEVICES * POINTS_PER_DEVICE} readings/s with the API and 2 live-stream clients`,
    { timeout: RUN_MS + 40_000 },
    async () => {
      const sims: ModbusSimulator[] = [];
      for (let i = 0; i < DEVICES; i++) {
        const bank = new RegisterBank(200);
        for (let r = 0; r < POINTS_PER_DEVICE * 2; r += 2) bank.set('hr', r, encode(20 + i / 100 + r, 'float32', 'ABCD'));
        const sim = createModbusTcpSimulator({ devices: new Map([[1, bank]]) });
        await sim.start();
        sims.push(sim);
      }
      cleanup.push(() => Promise.all(sims.map((s) => s.stop())));
      const httpPort = await freePort();
      const dir = mkdtempSync(join(tmpdir(), 'gw-soak-test-'));
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      const points = Array.from({ length: POINTS_PER_DEVICE }, (_, i) => `{name: p${i}, address: "hr:${i * 2}", type: float32}`).join(', ');
      const site = join(dir, 'site.yaml');
      writeFileSync(
        site,
        `version: 1
gateway: { id: gw-soak, site: soak, data_dir: ${join(dir, 'data')} }
mqtt: { port: ${await freePort()} }
http: { port: ${httpPort}, tokens: [{ name: soak, role: viewer, hash: "${hashToken(TOKEN)}" }] }
connections:
${sims.map((s, i) => `  - { id: c${i}, type: modbus-tcp, host: 127.0.0.1, port: ${s.port()} }`).join('\n')}
equipment:
${sims.map((_, i) => `  - { id: D-${i}, category: other, connection: c${i}, poll_interval: 1s, points: [${points}] }`).join('\n')}
`,
      );

      const child = spawn(
        process.execPath,
        ['--expose-gc', '--import', 'tsx', join(ROOT, 'tests', 'helpers', 'soak-gateway.ts'), site, String(SAMPLE_MS)],
        { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
      );
      const exited = new Promise((r) => child.once('exit', r));
      cleanup.push(async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      });
      const samples: SoakSample[] = [];
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        let nl;
        while ((nl = out.indexOf('\n')) >= 0) {
          samples.push(JSON.parse(out.slice(0, nl)) as SoakSample);
          out = out.slice(nl + 1);
        }
      });
      child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));

      // The HTTP API starts last: once it answers, the devices are being read.
      const base = `http://127.0.0.1:${httpPort}`;
      await expect
        .poll(
          () =>
            fetch(`${base}/health`).then(
              (r) => r.ok,
              () => false,
            ),
          { timeout: 30_000, interval: 200 },
        )
        .toBe(true);
      const streams: LiveStream[] = [openLiveStream(base, TOKEN), openLiveStream(base, TOKEN)];
      cleanup.push(() => streams.forEach((s) => s.close()));
      // Beside the streams, what an open dashboard asks for: one equipment's values and one point's trend.
      const headers = { authorization: `Bearer ${TOKEN}` };
      let asked = 0;
      const dashboard = setInterval(() => {
        const id = `D-${asked++ % DEVICES}`;
        void Promise.all([
          fetch(`${base}/api/equipment/${id}`, { headers }).then((r) => r.json()),
          fetch(`${base}/api/equipment/${id}/history?point=p0`, { headers }).then((r) => r.json()),
        ]).catch(() => undefined);
      }, 3000);
      cleanup.push(() => clearInterval(dashboard));

      await expect.poll(() => samples.at(-1)?.t ?? 0, { timeout: RUN_MS + 20_000, interval: 1000 }).toBeGreaterThanOrEqual(RUN_MS / 1000);
      const streamed = streams.map((s) => s.counts().readings);
      const reconnects = streams.map((s) => s.reconnects());
      for (const s of streams) s.close();
      child.stdin.end();
      await exited;

      const last = samples.at(-1)!;
      const secondHalf = samples.filter((s) => s.t >= last.t / 2);
      const first = secondHalf[0]!;
      const rate = (last.readings - first.readings) / (last.t - first.t);
      const growth = slope(secondHalf.map((s) => [s.t, s.heapUsed + s.arrayBuffers]));
      const mib = (b: number) => (b / 2 ** 20).toFixed(1);
      process.stdout.write(
        `soak: ${samples.length} samples over ${last.t.toFixed(0)} s; second half: ${Math.round(rate)} readings/s, heap + array buffers after GC ${mib(first.heapUsed + first.arrayBuffers)} → ${mib(last.heapUsed + last.arrayBuffers)} MiB, slope ${(growth / 1000).toFixed(1)} KB/s (bound ${MAX_SLOPE / 1000} KB/s); RSS ${mib(last.rss)} MiB; streamed ${streamed.join(', ')} readings; reconnects ${reconnects.join(', ')}\n`,
      );

      // The load was real: every point every second, and both clients read the stream.
      expect(rate, err).toBeGreaterThan(0.9 * DEVICES * POINTS_PER_DEVICE);
      for (const n of streamed) expect(n).toBeGreaterThan(0.5 * last.readings);
      expect(secondHalf.length).toBeGreaterThanOrEqual(20);
      expect(
        growth,
        `heap after GC grows ${(growth / 1000).toFixed(1)} KB/s over the second half; MiB: ${secondHalf.map((s) => mib(s.heapUsed + s.arrayBuffers)).join(' ')}`,
      ).toBeLessThan(MAX_SLOPE);
    },
  );
});
