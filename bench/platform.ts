// Durable outbox to the platform: incident events committed one by one (each its own transaction,
// synchronous=FULL, as alarm events arrive) and delivered to the reference receiver on loopback;
// throughput and latency from commit to the platform's 2xx.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createForwarder } from '../gateway/platform/forwarder.js';
import { createPlatformInbox } from '../gateway/platform/inbox.js';
import { Outbox } from '../gateway/platform/outbox.js';
import { freePort } from '../tests/helpers/processes.js';

const EVENTS = 5000;
/** The latency phase: a steady rate well below capacity, as a real site sends (even a flood is 10 in 10 min). */
const STEADY_RATE = 200;
const STEADY_EVENTS = 1000;
const SECRET = 'bench-secret-0123456789';

export async function platformOutbox(log: Logger): Promise<{ name: string; lines: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-outbox-'));
  const port = await freePort();
  const inbox = createPlatformInbox({ port, secret: SECRET, print: () => {} });
  await inbox.start();
  const lines: string[] = [];
  try {
    for (const [inFlight, steady] of [[1, false], [8, false], [1, true]] as const) {
      const events = steady ? STEADY_EVENTS : EVENTS;
      const outbox = new Outbox(join(dir, `outbox-${inFlight}-${steady}.db`));
      const config = { url: `http://127.0.0.1:${port}/incidents`, secret: SECRET, heartbeat_interval: 3_600_000, timeout: 10_000, max_in_flight: inFlight, min_level: 'blue' as const, mqtt_topic: '', retry: { initial_delay: 100, max_delay: 1000, jitter: 0.2 } };
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
      forwarder.start();
      const t0 = performance.now();
      let commitMs = 0;
      for (let n = 0; n < events; n++) {
        const c0 = performance.now();
        const [seq] = outbox.add([{ schema: 'gw.incident.v1', eventId: `e-${inFlight}-${n}`, incidentId: `i-${n}`, type: 'raised', level: 'red', gatewayId: `bench-${inFlight}`, site: 'bench', equipment: { id: 'B-1', category: 'boiler' }, rule: { id: 'r', message: 'Drum water level extremely low: -212 mm' }, point: 'drum_level', value: -212, unit: 'mm', occurredAt: new Date().toISOString() }]);
        committedAt.set(seq!, performance.now());
        commitMs += performance.now() - c0;
        forwarder.notify();
        if (steady) await new Promise((r) => setTimeout(r, 1000 / STEADY_RATE));
        // Let the forwarder run between events, as alarm events arrive between polls.
        else if (n % 50 === 49) await new Promise((r) => setImmediate(r));
      }
      await done;
      const seconds = (performance.now() - t0) / 1000;
      await forwarder.stop();
      outbox.close();
      latencies.sort((a, b) => a - b);
      const pct = (q: number) => latencies[Math.floor(q * (latencies.length - 1))]!.toFixed(1);
      lines.push(
        steady
          ? `steady ${STEADY_RATE} events/s (max_in_flight ${inFlight}), ${events} events: commit to the platform's 2xx p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${pct(1)} ms`
          : `as fast as possible, max_in_flight ${inFlight}: ${events} events committed one by one and delivered in ${seconds.toFixed(2)} s = ${Math.round(events / seconds).toLocaleString('en-US')} events/s; commit alone ${Math.round(events / (commitMs / 1000)).toLocaleString('en-US')} events/s`,
      );
    }
  } finally {
    await inbox.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return { name: 'Platform outbox (durable, to the reference receiver on loopback)', lines };
}
