// Durable outbox to the platform: incident events committed (synchronous=FULL) and delivered to the
// reference receiver on loopback; throughput and latency from commit to the platform's 2xx.
// Commits are, as the gateway makes them, one transaction per batch of readings (here 10 events per
// batch, as in a flood), and one event each (the worst case: every event pays its own fsync). Each at
// the default max_in_flight (1) first, and tuned (8) beside it.
// The receiver runs as `gateway platform-inbox` in a process of its own, as a platform is not in the
// gateway's process; the same runs with the receiver inside the bench process are shown beside them.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { platformSection } from '../config/platform-schema.js';
import { createForwarder } from '../gateway/platform/forwarder.js';
import { createPlatformInbox } from '../gateway/platform/inbox.js';
import { Outbox } from '../gateway/platform/outbox.js';
import { CLI, killGroup, startCommand, type Running } from '../tests/helpers/cli.js';
import { freePort } from '../tests/helpers/processes.js';

const EVENTS = 5000;
/** The latency phase: a steady rate well below capacity, as a real site sends (even a flood is 10 in 10 min). */
const STEADY_RATE = 200;
const STEADY_EVENTS = 1000;
const SECRET = 'bench-secret-0123456789';

/** The reference receiver as users start it, in a process of its own. */
async function inboxProcess(port: number): Promise<Running> {
  const inbox = startCommand(process.execPath, ['--import', 'tsx', CLI, 'platform-inbox', '--port', String(port), '--secret', SECRET]);
  const deadline = Date.now() + 30_000;
  while (!inbox.output().includes('Platform inbox listening')) {
    if (Date.now() > deadline || inbox.child.exitCode !== null) {
      killGroup(inbox);
      throw new Error(`the platform inbox did not start: ${inbox.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return inbox;
}

type Where = 'own process' | 'bench process';
interface Phase {
  where: Where;
  inFlight: number;
  /** Events per transaction; 0: one event at a time at STEADY_RATE. */
  perCommit: number;
  events: number;
}

const BATCH = 10;
/** platform.max_in_flight when the site file does not set it, read from the schema. */
const DEFAULT_IN_FLIGHT = platformSection.parse({ url: 'http://127.0.0.1/incidents', secret: SECRET })!.max_in_flight;
/** What a site may set instead when its platform takes requests side by side. */
const TUNED_IN_FLIGHT = 8;

export async function platformOutbox(log: Logger): Promise<{ name: string; lines: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-outbox-'));
  const lines: string[] = [];
  try {
    const phases: Phase[] = [];
    for (const where of ['own process', 'bench process'] as const) {
      // The default max_in_flight first, the tuned one beside it; commits as the gateway makes them (a batch's events together), then one by one.
      for (const perCommit of [BATCH, 1])
        phases.push(
          { where, inFlight: DEFAULT_IN_FLIGHT, perCommit, events: EVENTS },
          { where, inFlight: TUNED_IN_FLIGHT, perCommit, events: EVENTS },
        );
    }
    phases.push({ where: 'own process', inFlight: DEFAULT_IN_FLIGHT, perCommit: 0, events: STEADY_EVENTS });
    // Warm-up, not measured: the first thousand events run while the JIT compiles the path.
    await withReceiver('own process', (port) =>
      phase(log, join(dir, 'warm-up.db'), port, { where: 'own process', inFlight: TUNED_IN_FLIGHT, perCommit: 1, events: 1000 }),
    );
    for (const p of phases) lines.push(await withReceiver(p.where, (port) => phase(log, join(dir, `outbox-${lines.length}.db`), port, p)));
    // The floor under one-by-one commits: a bare SQLite commit with synchronous=FULL on this disk.
    lines.push(
      `fsync floor on this disk: ${Math.round(bareCommitsPerSecond(join(dir, 'bare.db'))).toLocaleString('en-US')} bare SQLite commits/s (WAL, synchronous=FULL, one 300-byte row each)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { name: 'Platform outbox (durable, to the reference receiver on loopback)', lines };
}

function bareCommitsPerSecond(file: string): number {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  const row = 'x'.repeat(300);
  const t0 = performance.now();
  for (let n = 0; n < 2000; n++) insert.run(row);
  const seconds = (performance.now() - t0) / 1000;
  db.close();
  return 2000 / seconds;
}

/** Runs `fn` against a reference receiver on a free port, started where asked, and stops it after. */
async function withReceiver<T>(where: Where, fn: (port: number) => Promise<T>): Promise<T> {
  const port = await freePort();
  const inbox = where === 'own process' ? await inboxProcess(port) : createPlatformInbox({ port, secret: SECRET, print: () => {} });
  if (!('child' in inbox)) await inbox.start();
  try {
    return await fn(port);
  } finally {
    if ('child' in inbox) {
      await Promise.race([inbox.interrupt('SIGTERM'), new Promise((r) => setTimeout(r, 5000))]);
      killGroup(inbox);
    } else await inbox.stop();
  }
}

/** One run: events committed and delivered; its figures as a line. */
async function phase(log: Logger, file: string, port: number, p: Phase): Promise<string> {
  const { inFlight, events } = p;
  const outbox = new Outbox(file);
  const config = {
    url: `http://127.0.0.1:${port}/incidents`,
    secret: SECRET,
    heartbeat_interval: 3_600_000,
    timeout: 10_000,
    max_in_flight: inFlight,
    min_level: 'blue' as const,
    mqtt_topic: '',
    reconnect: { initial_delay: 100, max_delay: 1000, jitter: 0.2 },
  };
  const forwarder = createForwarder({ config, gatewayId: `bench-${inFlight}`, site: 'bench', outbox, log, activeIncidents: () => 0 });
  const latencies: number[] = [];
  const committedAt = new Map<number, number>();
  let delivered = 0;
  const done = new Promise<void>((resolve) =>
    forwarder.onDelivered((seq) => {
      latencies.push(performance.now() - committedAt.get(seq)!);
      if (++delivered === events) resolve();
    }),
  );
  const event = (n: number) => ({
    schema: 'gw.incident.v1' as const,
    eventId: `e-${inFlight}-${n}`,
    incidentId: `i-${n}`,
    type: 'raised' as const,
    level: 'red' as const,
    gatewayId: `bench-${inFlight}`,
    site: 'bench',
    equipment: { id: 'B-1', category: 'boiler' },
    rule: { id: 'r', message: 'Drum water level extremely low: -212 mm' },
    point: 'drum_level',
    value: -212,
    unit: 'mm',
    occurredAt: new Date().toISOString(),
  });
  forwarder.start();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let commitMs = 0;
  const perCommit = Math.max(1, p.perCommit);
  for (let n = 0; n < events; n += perCommit) {
    const c0 = performance.now();
    const seqs = outbox.add(Array.from({ length: perCommit }, (_, k) => event(n + k)));
    const at = performance.now();
    for (const seq of seqs) committedAt.set(seq, at);
    commitMs += at - c0;
    forwarder.notify();
    if (p.perCommit === 0) await new Promise((r) => setTimeout(r, 1000 / STEADY_RATE));
    // Let the forwarder run between commits, as alarm events arrive between polls.
    else if ((n + perCommit) % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  await done;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await forwarder.stop();
  outbox.close();
  latencies.sort((a, b) => a - b);
  const pct = (q: number) => latencies[Math.floor(q * (latencies.length - 1))]!.toFixed(1);
  const receiver = p.where === 'own process' ? 'receiver in its own process' : 'receiver in the bench process';
  if (p.perCommit === 0)
    return `${receiver}, steady ${STEADY_RATE} events/s (max_in_flight ${inFlight}${inFlight === DEFAULT_IN_FLIGHT ? ', the default' : ''}), ${events} events: commit to the platform's 2xx p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${pct(1)} ms`;
  const how = perCommit === 1 ? 'committed one by one' : `committed ${perCommit} per transaction`;
  return `${receiver}, as fast as possible, max_in_flight ${inFlight}${inFlight === DEFAULT_IN_FLIGHT ? ' (default)' : ' (tuned)'}: ${events} events ${how} and delivered in ${seconds.toFixed(2)} s = ${Math.round(events / seconds).toLocaleString('en-US')} events/s; commits alone ${Math.round(events / (commitMs / 1000)).toLocaleString('en-US')} events/s; bench process ${(((cpu.user + cpu.system) / 1e6 / seconds) * 100).toFixed(0)} % of one core`;
}
