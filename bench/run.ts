// `npm run bench`: measured figures for docs/BENCHMARKS.md. Each benchmark is bounded in time and
// talks only to servers it starts on loopback.
import { cpus, totalmem } from 'node:os';
import { pino } from 'pino';
import { answerCheckCost, deadDeviceSoak, pollCeiling, requestsPerCycle } from './modbus.js';
import { manyMonitoredItems } from './opcua.js';
import { telemetryPath } from './telemetry-path.js';
import { influxWriter } from './influx.js';
import { rulesEngine } from './rules.js';
import { riskBeside } from './risk.js';
import { platformOutbox } from './platform.js';
import { labFileDrop } from './lab.js';
import { sseClients } from './http.js';
import { soakFromArgs } from './soak.js';
import { sparkplugNode } from './sparkplug.js';

const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
process.stdout.write(`Machine: ${machine}\n\n`);

const log = pino({ level: 'silent' });
// The Modbus poll runs its gateways in processes of their own; the other sections share this one.
const benches: Array<[string, () => Promise<{ name: string; lines: string[] }>]> = [
  ['modbus', () => pollCeiling()],
  ['modbus-plan', async () => requestsPerCycle()],
  ['modbus-checks', async () => answerCheckCost()],
  ['modbus-dead', () => deadDeviceSoak(log)],
  ['opcua', () => manyMonitoredItems(log)],
  ['telemetry', () => telemetryPath(log)],
  ['influx', () => influxWriter(log)],
  ['rules', () => rulesEngine()],
  ['risk', () => riskBeside()],
  ['platform', () => platformOutbox(log)],
  ['lab', () => labFileDrop(log)],
  ['http', () => sseClients()],
  ['sparkplug', () => sparkplugNode(log)],
];
const print = (r: { name: string; lines: string[] }) => process.stdout.write(`${r.name}\n${r.lines.map((l) => `  ${l}`).join('\n')}\n\n`);
const args = process.argv.slice(2);
if (args[0] === 'soak') {
  // `npm run bench -- soak [--variant modbus] [--minutes 2] ...`: the long soak (30 minutes per variant),
  // only when asked for by name; its options are its own (bench/soak.ts).
  for (const r of await soakFromArgs(args.slice(1))) print(r);
} else {
  // `npm run bench -- influx rules` runs only those sections (memory figures are cleanest on their own).
  if (args.includes('soak')) throw new Error('soak runs on its own: npm run bench -- soak [options]');
  for (const [key, bench] of benches) {
    if (args.length > 0 && !args.includes(key)) continue;
    print(await bench());
  }
}
