// A device whose answers to one kind of read are malformed, through the whole gateway: only that
// request's points are bad, the equipment is `degraded` with the reason, and the reason reaches MQTT,
// the HTTP API and InfluxDB's quality field; nothing derived from the bad answer is published.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, expect, inject, it } from 'vitest';
import { parseSite } from '../../config/load.js';
import { BoilerDevice, BOILER_REGISTER_MAP, createModbusTcpSimulator } from '../../drivers/modbus/simulator.js';
import { hashToken } from '../../gateway/http/server.js';
import { createGateway } from '../../gateway/runtime.js';
import { subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/processes.js';

const silent = pino({ level: 'silent' });
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
});

it('a malformed answer to the register reads: those points bad with the reason everywhere, the rest good, equipment degraded', async () => {
  // The boiler with its interlock tripped: a `false` for interlock_tripped would be a lie.
  const boiler = new BoilerDevice({ normal: 0, hazard: 600_000, recovery: 0, repeat: false }, 3);
  const sim = createModbusTcpSimulator({ devices: new Map([[1, boiler]]) });
  await sim.start();
  cleanup.push(() => sim.stop());
  const influxdb = inject('influxdb');
  const db = `quality_${Date.now()}`;
  await fetch(`${influxdb.url}/query?q=${encodeURIComponent(`CREATE DATABASE "${db}"`)}`, { method: 'POST' });
  const mqttPort = await freePort();
  const httpPort = await freePort();
  const gw = createGateway(
    parseSite(
      `version: 1
gateway: { id: g, site: q, data_dir: ${mkdtempSync(join(tmpdir(), 'gw-quality-'))} }
mqtt: { port: ${mqttPort} }
influx: { api: v1, url: ${influxdb.url}, database: ${db}, flush_interval: 200ms }
http: { port: ${httpPort}, tokens: [{ name: v, role: viewer, hash: "${hashToken('viewer-token-0123456789abcdef')}" }] }
connections: [{ id: plc, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port()}, timeout: 500ms }]
equipment:
  - { id: B-07, category: boiler, connection: plc, unit_id: 1, poll_interval: 200ms, points: ${JSON.stringify(BOILER_REGISTER_MAP)} }
`,
      { env: {} },
    ),
    silent,
  );
  cleanup.push(() => gw.stop());
  await gw.start();
  const sub = await subscribe(`mqtt://127.0.0.1:${mqttPort}`, 'gw/q/B-07/#');
  cleanup.push(() => sub.close());
  await sub.waitFor((m) => m.topic === 'gw/q/B-07/status' && JSON.parse(m.payload).state === 'online', 5000, 'online');

  sim.control(1).fault = 'wrong-byte-count';
  sim.control(1).faultArea = 'hr';
  const on = Date.now();
  const status = await sub.waitFor((m) => m.topic === 'gw/q/B-07/status' && JSON.parse(m.payload).state === 'degraded', 5000, 'degraded');
  expect(JSON.parse(status.payload).reason).toMatch(
    /^steam_pressure: byte count 0, expected \d+; .*interlock_tripped: byte count 0, expected \d+$/,
  );

  // Every telemetry message since: hr points null and bad with the reason, di and ir points good.
  await new Promise((r) => setTimeout(r, 600));
  const telemetry = sub.messages
    .filter((m) => m.topic === 'gw/q/B-07/telemetry')
    .map(
      (m) =>
        JSON.parse(m.payload) as {
          ts: number;
          values: Record<string, unknown>;
          quality: Record<string, string>;
          reasons?: Record<string, string>;
        },
    )
    .filter((t) => t.ts > on);
  expect(telemetry.length).toBeGreaterThan(1);
  for (const t of telemetry) {
    for (const p of BOILER_REGISTER_MAP.filter((x) => x.address.startsWith('hr:'))) {
      expect([t.values[p.name], t.quality[p.name]], p.name).toEqual([null, 'bad']);
      expect(t.reasons?.[p.name]).toMatch(/^byte count 0, expected \d+$/);
    }
    expect([t.values.flame, t.quality.flame]).toEqual([boiler.stateAt(t.ts).flame, 'good']);
    expect([t.values.serial_number, t.quality.serial_number]).toEqual(['B07-2019-000117', 'good']);
  }

  const api = await fetch(`http://127.0.0.1:${httpPort}/api/equipment/B-07`, {
    headers: { authorization: 'Bearer viewer-token-0123456789abcdef' },
  });
  const detail = (await api.json()) as {
    status: string;
    points: Array<{ name: string; value: unknown; quality: string; reason?: string }>;
  };
  expect(detail.status).toBe('degraded');
  expect(detail.points.find((p) => p.name === 'interlock_tripped')).toMatchObject({
    value: null,
    quality: 'bad',
    reason: expect.stringMatching(/^byte count 0, expected \d+$/),
  });

  // The refused answers are counted where Prometheus scrapes.
  const metrics = await (
    await fetch(`http://127.0.0.1:${httpPort}/metrics`, { headers: { authorization: 'Bearer viewer-token-0123456789abcdef' } })
  ).text();
  const refused = /^gateway_driver_counter\{connection="plc",type="modbus-tcp",counter="badAnswers"\} (\d+)$/m.exec(metrics);
  expect(Number(refused?.[1])).toBeGreaterThan(0);

  const query = async () => {
    const res = await fetch(
      `${influxdb.url}/query?db=${db}&q=${encodeURIComponent(`SELECT quality, reason FROM boiler WHERE point = 'interlock_tripped'`)}`,
    );
    const json = (await res.json()) as { results: Array<{ series?: Array<{ values: unknown[][] }> }> };
    return json.results[0]?.series?.[0]?.values ?? [];
  };
  await expect.poll(query, { timeout: 10_000, interval: 300 }).not.toHaveLength(0);
  expect((await query()).at(-1)?.slice(1)).toEqual(['bad', expect.stringMatching(/^byte count 0, expected \d+$/)]);
  // Nothing derived from the bad answers was stored as a value.
  const values = await fetch(
    `${influxdb.url}/query?db=${db}&q=${encodeURIComponent(`SELECT interlock_tripped FROM boiler WHERE time > ${on}ms AND interlock_tripped = false`)}`,
  );
  expect(((await values.json()) as { results: Array<{ series?: unknown[] }> }).results[0]?.series).toBeUndefined();

  sim.control(1).fault = undefined;
  await sub.waitFor((m) => m.topic === 'gw/q/B-07/status' && JSON.parse(m.payload).state === 'online', 5000, 'online again');
});
