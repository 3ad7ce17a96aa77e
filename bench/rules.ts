// Rule engine: 10,000 rules over 50,000 points (5,000 equipment × 10 points, two rules each), fed
// batches of one equipment's readings as drivers produce them. Throughput of readings evaluated,
// and the latency from a batch's arrival to the alarm events it causes.
import { compile } from '../rules/expression.js';
import { RuleEngine } from '../rules/engine.js';
import type { RuleSpec } from '../rules/types.js';
import type { Reading } from '../drivers/types.js';

const EQUIPMENT = 5000;
const POINTS = 10;

export async function rulesEngine(): Promise<{ name: string; lines: string[] }> {
  const points = Array.from({ length: POINTS }, (_, k) => `p${k}`);
  const names = { isPoint: (n: string) => points.includes(n), constant: () => undefined, describe: () => '' };
  const limit = compile('p0 > 90', names);
  const combined = compile('p1 < 10 && p2 > 0.5 * p3', names);
  const rules: RuleSpec[] = [];
  for (let e = 0; e < EQUIPMENT; e++) {
    const base = { equipment: `E-${e}`, level: 'orange' as const, message: 'x {value}', onDelayMs: 0, offDelayMs: 0, deadband: 1, latch: false };
    rules.push({ ...base, id: 'limit', condition: { kind: 'expression', expr: limit } });
    rules.push({ ...base, id: 'combined', condition: { kind: 'expression', expr: combined } });
  }
  const engine = new RuleEngine({ site: 'bench', rules, now: 0 });
  // One batch per equipment per poll; values cross the limits now and then (about 2 % of batches).
  const batchOf = (e: number, n: number): Reading[] => {
    const ts = 1000 + n;
    const hot = (e * 7 + n) % 50 === 0;
    return points.map((p, k) => ({ equipment: `E-${e}`, point: p, value: k === 0 ? (hot ? 95 : 50) : k === 1 ? (hot ? 5 : 50) : 40, quality: 'good' as const, ts }));
  };
  // Warm up, then measure.
  for (let n = 0; n < 2; n++) for (let e = 0; e < EQUIPMENT; e++) engine.ingest(batchOf(e, n));
  const rounds = 20;
  const latencies: number[] = [];
  let readings = 0;
  let events = 0;
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  for (let n = 2; n < 2 + rounds; n++) {
    for (let e = 0; e < EQUIPMENT; e++) {
      const batch = batchOf(e, n);
      const s = process.hrtime.bigint();
      events += engine.ingest(batch).length;
      latencies.push(Number(process.hrtime.bigint() - s) / 1e6);
      readings += batch.length;
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  const pct = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return {
    name: 'Rule engine (10,000 rules over 50,000 points)',
    lines: [
      `${engine.ruleCount} alarms (rule × equipment), ${EQUIPMENT * POINTS} points, batches of ${POINTS} readings`,
      `${Math.round(readings / seconds).toLocaleString('en-US')} readings/s evaluated on one thread (${readings.toLocaleString('en-US')} readings, ${events} alarm events, ${seconds.toFixed(2)} s; CPU ${((cpu.user + cpu.system) / 1e6 / seconds * 100).toFixed(0)} % of one core)`,
      `latency from a batch's arrival to its alarm events: p50 ${(pct(0.5) * 1000).toFixed(1)} µs, p99 ${(pct(0.99) * 1000).toFixed(1)} µs, max ${(latencies.at(-1)! * 1000).toFixed(0)} µs`,
    ],
  };
}
