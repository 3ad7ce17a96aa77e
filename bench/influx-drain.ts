// The drain half of the InfluxDB bench, in a process of its own, so its RSS is the writer's and not
// what filling the spool (or another bench) left behind. Prints one JSON line.
import { pino } from 'pino';
import { createInfluxWriter } from '../gateway/influx/writer.js';
import { createMetrics } from '../gateway/metrics.js';
import { influxConfig } from './influx.js';

const [dir, url] = process.argv.slice(2);
const influx = influxConfig(url!);
const rss0 = process.memoryUsage().rss;
const writer = createInfluxWriter({
  config: influx,
  site: 'bench',
  topicPrefix: 'gw',
  equipment: [],
  dataDir: dir!,
  log: pino({ level: 'silent' }),
  metrics: createMetrics(),
});
let peak = rss0;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
const t0 = performance.now();
await writer.start();
while (writer.stats().spoolLines > 0) await new Promise((r) => setTimeout(r, 50));
const seconds = (performance.now() - t0) / 1000;
clearInterval(sampler);
const written = writer.stats().written;
await writer.stop();
process.stdout.write(`${JSON.stringify({ seconds, written, rss0, peak })}\n`);
