// Starts a gateway from a site file in a process of its own, waits for its first readings and stops
// it, so that a test can read which modules a site loads (tests/helpers/trace-modules.mjs):
//   TRACE_MODULES_FILE=m.txt node --import tsx --import ./tests/helpers/trace-modules.mjs tests/helpers/traced-gateway.ts site.yaml
import { pino } from 'pino';
import { loadSiteFile } from '../../config/load.js';
import { createGateway } from '../../gateway/runtime.js';

const gw = createGateway(loadSiteFile(process.argv[2]!), pino({ level: 'silent' }));
await gw.start();
const deadline = Date.now() + 10_000;
while (gw.pipeline.stats().readings === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
await gw.stop();
process.stdout.write(`${gw.pipeline.stats().readings} readings\n`);
