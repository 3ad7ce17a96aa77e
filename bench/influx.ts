// The InfluxDB writer against a real VictoriaMetrics (/api/v2/write, official client): sustained
// readings/s from telemetry message to acknowledged write, and the drain of a 10-million-line spool.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { parseSite } from '../config/load.js';
import { Spool } from '../gateway/spool.js';
import { createInfluxWriter } from '../gateway/influx/writer.js';
import { createMetrics } from '../gateway/metrics.js';
import { startVictoriaMetrics } from '../tests/helpers/processes.js';

const EQUIPMENT = 200;
const POINTS = 20;
const SECONDS = 10;
const DRAIN_LINES = 10_000_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The writer's settings for the bench's VictoriaMetrics (also used by the drain process). */
export function influxConfig(url: string) {
  const site = parseSite(
    `version: 1
gateway: { id: gw-bench, site: bench }
influx: { api: v2, url: ${url}, org: bench, bucket: bench, max_spool_size: 4GiB }
connections: [{ id: sim, type: sim }]
equipment: [{ id: idle, category: boiler, connection: sim, model: steam-boiler, points: [{ name: flame }] }]
`,
    { env: {} },
  );
  return site.influx!;
}

export async function influxWriter(log: Logger): Promise<{ name: string; lines: string[] }> {
  const vm = await startVictoriaMetrics();
  const out: string[] = [];
  try {
    // 1. Drain (first, so its RSS is not what the other run left behind): a spool holding 10 million lines (an outage's worth) written out after recovery.
    {
      const dir = mkdtempSync(join(tmpdir(), 'gw-bench-drain-'));
      const file = join(dir, 'influx-spool.db');
      const fill = new Spool({ file, maxBytes: 8 * 2 ** 30, log });
      const t0 = performance.now();
      const base = Date.now() - 86_400_000;
      for (let n = 0; n < DRAIN_LINES; n += 1000) {
        const lines: string[] = [];
        for (let k = 0; k < 1000; k++)
          lines.push(
            `boiler,site=bench,equipment=E-${(n + k) % 500} steam_pressure=${((n + k) % 997) / 100},drum_level=${(n + k) % 301} ${base + Math.floor((n + k) / 500)}000000`,
          );
        fill.append(lines);
      }
      fill.close();
      const fillSeconds = (performance.now() - t0) / 1000;
      const size = statSync(file).size;
      // The drain runs in a process of its own: its RSS is the writer's alone.
      const child = spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'influx-drain.ts'), dir, vm.url], {
        encoding: 'utf8',
        timeout: 600_000,
      });
      rmSync(dir, { recursive: true, force: true });
      if (child.status !== 0) throw new Error(`the drain process failed: ${child.stderr}`);
      const {
        seconds,
        written,
        rss0,
        peak: peakRss,
      } = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as { seconds: number; written: number; rss0: number; peak: number };
      out.push(
        `drain of a ${(DRAIN_LINES / 1e6).toFixed(0)}-million-line spool (${Math.round(size / 2 ** 20)} MiB on disk, filled in ${fillSeconds.toFixed(0)} s): ${seconds.toFixed(1)} s, ${Math.round(written / seconds).toLocaleString('en-US')} lines/s`,
        `  RSS of the draining process ${Math.round(rss0 / 2 ** 20)} MiB at start, peak ${Math.round(peakRss / 2 ** 20)} MiB while draining`,
      );
    }
    // 2. Sustained: EQUIPMENT messages of POINTS floats every 20 ms, as fast as the writer keeps up.
    {
      const dir = mkdtempSync(join(tmpdir(), 'gw-bench-influx-'));
      const equipment = Array.from({ length: EQUIPMENT }, (_, k) => ({ id: `E-${k}`, category: 'boiler', code: undefined }));
      const writer = createInfluxWriter({
        config: influxConfig(vm.url),
        site: 'bench',
        topicPrefix: 'gw',
        equipment,
        dataDir: dir,
        log,
        metrics: createMetrics(),
      });
      await writer.start();
      const topics = equipment.map((e) => `gw/bench/${e.id}/telemetry`);
      let ts = Date.now() - 3_600_000;
      const payload = (t: number, k: number) => {
        const values: Record<string, number> = {};
        for (let p = 0; p < POINTS; p++) values[`p${p}`] = Math.round(Math.sin(t + k + p) * 1e6) / 1e3;
        return Buffer.from(JSON.stringify({ ts: t, values, quality: {} }));
      };
      // Payloads are built before the clock starts: the broker hands the writer ready buffers.
      const ring = Array.from({ length: 50 }, (_, r) => topics.map((_, k) => payload(ts + r, k)));
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      let sent = 0;
      let round = 0;
      let peakRss = 0;
      while (performance.now() - t0 < SECONDS * 1000) {
        const batch = ring[round++ % ring.length]!;
        for (let k = 0; k < topics.length; k++) writer.accept(topics[k]!, batch[k]!);
        sent += topics.length * POINTS;
        ts++;
        // Keep the backlog bounded: this measures what the writer sustains, not how much it can queue.
        while (writer.stats().spoolLines + writer.stats().staged > 20_000) await sleep(5);
        await new Promise((r) => setImmediate(r));
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
      }
      writer.commit();
      while (writer.stats().spoolLines > 0) await sleep(10);
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const written = writer.stats().written;
      await writer.stop();
      rmSync(dir, { recursive: true, force: true });
      out.push(
        `sustained, ${EQUIPMENT} equipment × ${POINTS} points per message: ${Math.round((written * POINTS) / seconds).toLocaleString('en-US')} readings/s acknowledged (${Math.round(written / seconds).toLocaleString('en-US')} lines/s) over ${seconds.toFixed(1)} s`,
        `  writer process CPU ${(((cpu.user + cpu.system) / 1e6 / seconds) * 100).toFixed(0)} % of one core; peak RSS ${Math.round(peakRss / 2 ** 20)} MiB; readings offered ${sent.toLocaleString('en-US')}`,
      );
    }
  } finally {
    await vm.stop();
  }
  return { name: 'InfluxDB writer → VictoriaMetrics /api/v2/write (official client)', lines: out };
}
