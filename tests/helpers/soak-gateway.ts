// Child process of the soak test: a gateway built from a site file (createGateway, as `gateway run`
// does), started, and its memory after a forced full GC printed as one JSON line every few seconds,
// so what the heap keeps is measured apart from the test's own. Run with
// `node --expose-gc --import tsx soak-gateway.ts SITE.yaml [EVERY_MS]`; it stops when its stdin ends.
import { pino } from 'pino';
import { loadSiteFile } from '../../config/load.js';
import { createGateway } from '../../gateway/runtime.js';

/** One line of this process's output. */
export interface SoakSample {
  /** Seconds since the gateway started. */
  t: number;
  heapUsed: number;
  arrayBuffers: number;
  external: number;
  rss: number;
  /** Readings through the pipeline since the start. */
  readings: number;
}

const [file, everyMs = '5000'] = process.argv.slice(2);
const gc = (globalThis as { gc?: () => void }).gc;
if (!file || !gc) {
  process.stderr.write('usage: node --expose-gc --import tsx tests/helpers/soak-gateway.ts SITE.yaml [EVERY_MS]\n');
  process.exit(2);
}
const gateway = createGateway(loadSiteFile(file, {}), pino({ level: 'warn' }, process.stderr));
await gateway.start();
const t0 = performance.now();
const timer = setInterval(() => {
  gc();
  const m = process.memoryUsage();
  const sample: SoakSample = {
    t: (performance.now() - t0) / 1000,
    heapUsed: m.heapUsed,
    arrayBuffers: m.arrayBuffers,
    external: m.external,
    rss: m.rss,
    readings: gateway.pipeline.stats().readings,
  };
  process.stdout.write(`${JSON.stringify(sample)}\n`);
}, Number(everyMs));
process.stdin.resume();
process.stdin.on('end', () => {
  clearInterval(timer);
  void gateway.stop().then(() => process.exit(0));
});
