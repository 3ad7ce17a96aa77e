// A running gateway loads the packages of the parts its site file configures, not the others: a
// Modbus site on an external broker without http:, influx: or platform: loads no HTTP server, InfluxDB
// client, platform link, embedded broker or OPC UA. Each site runs in a process of its own
// (tests/helpers/traced-gateway.ts), so the test sees that site's modules only.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { traceSync } from '../helpers/modules.js';
import { freePort } from '../helpers/processes.js';

const SCRIPT = join(ROOT, 'tests', 'helpers', 'traced-gateway.ts');
const folders: string[] = [];
afterAll(() => {
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

/** A boiler read over Modbus TCP from the simulator the gateway starts itself. */
async function modbusSite(o: { broker: string; extra?: string[] }): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-site-modules-'));
  folders.push(dir);
  const port = await freePort();
  const file = join(dir, 'site.yaml');
  writeFileSync(
    file,
    [
      'version: 2',
      `gateway: { id: gw-modules, site: modules, data_dir: ${join(dir, 'data')} }`,
      `mqtt: { broker: "${o.broker}", port: ${await freePort()} }`,
      ...(o.extra ?? []),
      `simulators: [{ type: modbus-boiler, port: ${port}, unit_id: 1 }]`,
      `connections: [{ id: plc, type: modbus-tcp, host: 127.0.0.1, port: ${port} }]`,
      'equipment:',
      '  - { id: B-1, category: boiler, connection: plc, unit_id: 1, poll_interval: 200ms, points: [{ name: drum_level, address: "hr:110", type: int16 }] }',
      '',
    ].join('\n'),
  );
  return file;
}

/** The packages of the parts a site may leave out: HTTP API, InfluxDB writer, embedded broker, OPC UA, the XML reader of result files. */
const OPTIONAL_PACKAGES = /^(fastify|@fastify\/|@influxdata\/|aedes|node-opcua|saxes|protobufjs)/;
/** Their modules, the platform link's and the other drivers' (the registry's schemas are loaded for every site). */
const OPTIONAL_FILES =
  /^gateway\/(http\/server|influx\/(writer|client)|platform\/(forwarder|uplink|inbox)|mqtt\/broker|sparkplug\/(node|payload|queue))\.ts$|^drivers\/(opcua\/(driver|simulator|certs)|astm\/(driver|simulator)|hl7\/(driver|simulator|hl7-message|mllp|oru|ack)|mqtt-in\/(driver|simulator)|file-drop\/(driver|simulator|reader|csv|xml|json|mapping|decode|watcher))\.ts$/;

describe('modules a site loads', () => {
  let mosquitto: string;
  beforeAll(() => {
    mosquitto = inject('mosquitto').url;
  });

  it('a Modbus site on an external broker, without http, influx or platform, loads none of their packages', async () => {
    const r = traceSync([SCRIPT, await modbusSite({ broker: mosquitto })]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^[1-9]\d* readings/);
    // What it uses is there: the Modbus driver, the MQTT client and the store; no serial port library for TCP.
    for (const p of ['mqtt', 'better-sqlite3']) expect(r.packages).toContain(p);
    expect(r.packages).not.toContain('serialport');
    expect(r.files).toContain('drivers/modbus/driver.ts');
    expect([...r.packages].filter((p) => OPTIONAL_PACKAGES.test(p))).toEqual([]);
    expect([...r.files].filter((f) => OPTIONAL_FILES.test(f))).toEqual([]);
  });

  it('the same site with the embedded broker and the HTTP API loads aedes and fastify, and still no InfluxDB client or OPC UA', async () => {
    const r = traceSync([SCRIPT, await modbusSite({ broker: 'embedded', extra: ['http:', `  port: ${await freePort()}`] })]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const p of ['aedes', 'fastify', '@fastify/swagger']) expect(r.packages).toContain(p);
    expect([...r.packages].filter((p) => /^(@influxdata\/|node-opcua)/.test(p))).toEqual([]);
    expect([...r.files].filter((f) => OPTIONAL_FILES.test(f)).sort()).toEqual(['gateway/http/server.ts', 'gateway/mqtt/broker.ts']);
  });

  it('the Modbus site with a sparkplug: section loads protobufjs and the edge node, and nothing else optional', async () => {
    const r = traceSync([SCRIPT, await modbusSite({ broker: mosquitto, extra: ['sparkplug: {}'] })]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect([...r.packages].filter((p) => OPTIONAL_PACKAGES.test(p))).toEqual(['protobufjs']);
    expect([...r.files].filter((f) => OPTIONAL_FILES.test(f)).sort()).toEqual([
      'gateway/sparkplug/node.ts',
      'gateway/sparkplug/payload.ts',
      'gateway/sparkplug/queue.ts',
    ]);
  });
});
