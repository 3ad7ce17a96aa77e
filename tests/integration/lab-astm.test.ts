// An ASTM analyzer (the project's simulator, over real TCP) sending results to the gateway: each
// result arrives exactly once on MQTT, in InfluxDB and at the platform inbox, with its sample id and
// value; a corrupted frame is NAKed and resent; a restart does not upload a result twice.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Ajv } from 'ajv';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createAstmAnalyzer, sessionRecords, type AstmAnalyzer } from '../../drivers/astm/simulator.js';
import { AstmSender } from '../../drivers/astm/astm-sender.js';
import { SerialPort } from 'serialport';
import { startPtyPair } from '../helpers/socat.js';
import { createPlatformInbox } from '../../gateway/platform/inbox.js';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { CLI, ROOT } from '../helpers/cli.js';
import { subscribe, type Subscriber } from '../helpers/mqtt.js';
import { freePort } from '../helpers/processes.js';
import { testSite } from '../helpers/site.js';
import { parseSite } from '../../config/load.js';

const silent = pino({ level: 'silent' });
const SECRET = 'lab-secret-0123456789';

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('lab results over ASTM', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  it('captures every result once: MQTT, InfluxDB and the platform get the same results with their sample ids; the corrupted frame was NAKed and resent', async () => {
    const influxdb = inject('influxdb');
    const db = `lab_${Date.now()}`;
    await fetch(`${influxdb.url}/query?q=${encodeURIComponent(`CREATE DATABASE "${db}"`)}`, { method: 'POST' });
    const inboxPort = await freePort();
    const inbox = createPlatformInbox({ port: inboxPort, secret: SECRET, print: () => {} });
    await inbox.start();
    cleanup.push(() => inbox.stop());
    const astmPort = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-lab-'));
    const site = parseSite(
      [
        'version: 1',
        `gateway: { id: gw-test, site: test-site, data_dir: ${dataDir} }`,
        `mqtt: { port: ${await freePort()} }`,
        'influx:',
        '  api: v1',
        `  url: ${influxdb.url}`,
        `  database: ${db}`,
        '  flush_interval: 200ms',
        'platform:',
        `  url: http://127.0.0.1:${inboxPort}/`,
        `  secret: ${SECRET}`,
        `connections: [{ id: astm-1, type: astm-tcp, port: ${astmPort} }]`,
        'equipment:',
        '  # A result is also a reading of the point named after its analyte: rules see it.',
        '  - { id: LA-2, name: Chemistry analyzer, category: lab_analyzer, connection: astm-1, points: [{ name: GLU, unit: mmol/L }] }',
        'rules:',
        '  - { id: glucose-high, equipment: LA-2, when: GLU > 6.1, level: yellow, message: "Glucose {value} {unit}" }',
        '',
      ].join('\n'),
      { env: {} },
    );
    const gw: Gateway = createGateway(site, silent);
    const alarms: Array<{ type: string; rule: string; value?: unknown }> = [];
    gw.alarms.onEvents((e) => alarms.push(...e));
    cleanup.push(() => gw.stop());
    await gw.start();
    const sub: Subscriber = await subscribe(gw.mqttUrl(), 'gw/test-site/LA-2/results');
    cleanup.push(() => sub.close());
    const analyzer: AstmAnalyzer = createAstmAnalyzer({
      type: 'astm-analyzer',
      host: '127.0.0.1',
      port: astmPort,
      name: 'ChemAnalyzer',
      interval: 300,
      samples: 3,
      seed: 5,
    });
    await analyzer.start();
    cleanup.push(() => analyzer.stop());
    await until('three sessions', () => analyzer.sessions() >= 3);
    await analyzer.stop();
    const sent = analyzer.sent.map((r) => `${r.sampleId}/${r.analyte}=${r.value}`).sort();
    expect(sent.length).toBeGreaterThanOrEqual(27);

    await until('every result on MQTT', () => sub.messages.length >= sent.length);
    const onMqtt = sub.messages.map((m) => JSON.parse(m.payload) as { sampleId: string; analyte: string; value: number; resultId: string });
    expect(onMqtt.map((r) => `${r.sampleId}/${r.analyte}=${r.value}`).sort()).toEqual(sent);
    expect(new Set(onMqtt.map((r) => r.resultId)).size).toBe(sent.length);

    await until('every result at the platform', () => inbox.results.length >= sent.length);
    expect(inbox.results.map((r) => `${r.sampleId}/${r.analyte}=${String(r.value)}`).sort()).toEqual(sent);
    const validate = new Ajv().compile(JSON.parse(readFileSync(join(ROOT, 'docs', 'platform-contract.schema.json'), 'utf8')) as object);
    for (const r of inbox.results) expect(validate(r), JSON.stringify(validate.errors)).toBe(true);

    const rows = async () => {
      const res = await fetch(`${influxdb.url}/query?db=${db}&q=${encodeURIComponent('SELECT sample_id, analyte, value FROM lab_result')}`);
      const json = (await res.json()) as { results: Array<{ series?: Array<{ values: Array<[number, string, string, number]> }> }> };
      return (json.results[0]?.series?.[0]?.values ?? []).map(([, sample, analyte, value]) => `${sample}/${analyte}=${value}`).sort();
    };
    await until('every result in InfluxDB', async () => (await rows()).length >= sent.length);
    expect(await rows()).toEqual(sent);

    // Glucose above 6.1 mmol/L raised the site's rule, through the same engine as telemetry.
    const highGlucose = analyzer.sent.filter((r) => r.analyte === 'GLU' && r.value > 6.1);
    expect(highGlucose.length).toBeGreaterThan(0);
    expect(alarms.filter((a) => a.rule === 'glucose-high' && a.type === 'raised').length).toBeGreaterThan(0);

    // The first session's corrupted frame: refused once, then taken.
    const stats = gw.driverStats().find((d) => d.connection === 'astm-1')!.stats;
    expect(stats.naks).toBe(1);
    expect(stats.aborted).toBe(0);
  });

  it('killed with -9 after capturing results the platform had not taken yet: after the restart each is uploaded once', async () => {
    const astmPort = await freePort();
    const inboxPort = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-lab-kill-'));
    const file = join(dataDir, 'site.yaml');
    writeFileSync(
      file,
      [
        'version: 1',
        `gateway: { id: gw-lab, site: lab-site, data_dir: ${dataDir} }`,
        'mqtt:',
        `  port: ${await freePort()}`,
        'platform:',
        `  url: http://127.0.0.1:${inboxPort}/`,
        `  secret: ${SECRET}`,
        '  retry: { initial_delay: 200ms, max_delay: 1s }',
        'connections:',
        `  - { id: astm-1, type: astm-tcp, port: ${astmPort} }`,
        'equipment:',
        '  - { id: LA-2, category: lab_analyzer, connection: astm-1 }',
        '',
      ].join('\n'),
    );
    // The platform is down: results wait in the outbox.
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'run', '-c', file], { cwd: ROOT, stdio: 'ignore' });
    cleanup.push(async () => void child.kill('SIGKILL'));
    const analyzer = createAstmAnalyzer({
      type: 'astm-analyzer',
      host: '127.0.0.1',
      port: astmPort,
      name: 'ChemAnalyzer',
      interval: 60_000,
      samples: 2,
      seed: 3,
    });
    await analyzer.start();
    cleanup.push(() => analyzer.stop());
    await until('a session acknowledged', () => analyzer.sessions() >= 1, 30_000);
    await analyzer.stop();
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;

    const inbox = createPlatformInbox({ port: inboxPort, secret: SECRET, print: () => {} });
    await inbox.start();
    cleanup.push(() => inbox.stop());
    const again = spawn(process.execPath, ['--import', 'tsx', CLI, 'run', '-c', file], { cwd: ROOT, stdio: 'ignore' });
    cleanup.push(async () => void again.kill('SIGKILL'));
    await until('the results at the platform', () => inbox.results.length >= analyzer.sent.length, 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(inbox.results.map((r) => `${r.sampleId}/${r.analyte}=${String(r.value)}`).sort()).toEqual(
      analyzer.sent.map((r) => `${r.sampleId}/${r.analyte}=${r.value}`).sort(),
    );
    expect(inbox.stats().duplicates).toBe(0);
  }, 60_000);

  it('takes results from an analyzer on a serial line (a socat pseudo-terminal pair)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-astm-serial-'));
    const pty = await startPtyPair(dir);
    cleanup.push(() => pty.stop());
    const site = testSite({ port: await freePort(), dataDir: dir });
    site.connections.push({
      id: 'com1',
      type: 'astm-serial',
      path: pty.a,
      baud_rate: 9600,
      data_bits: 8,
      parity: 'none',
      stop_bits: 1,
      receive_timeout: 30_000,
      max_message_size: 1024 * 1024,
      max_session: 600_000,
      reconnect: { initial_delay: 200, max_delay: 1000, jitter: 0.2 },
    } as never);
    site.equipment.push({ id: 'LA-3', category: 'lab_analyzer', connection: 'com1', poll_interval: 1000, points: [] } as never);
    const gw = createGateway(site, silent);
    cleanup.push(() => gw.stop());
    const captured: string[] = [];
    gw.results.onResults((r) => captured.push(...r.map((x) => `${x.sampleId}/${x.analyte}=${String(x.value)}`)));
    await gw.start();

    const port = new SerialPort({ path: pty.b, baudRate: 9600 });
    cleanup.push(() => new Promise((r) => port.close(() => r(undefined))));
    await new Promise((r) => port.once('open', r));
    const sender = new AstmSender({ write: (b) => void port.write(b) });
    port.on('data', (d: Buffer) => sender.receive(d));
    const { records, results } = sessionRecords('SerialAnalyzer', 1, 2, 7, new Date());
    expect(await sender.send(records)).toMatchObject({ ok: true });
    await until('the serial results', () => captured.length === results.length);
    expect(captured.sort()).toEqual(results.map((r) => `${r.sampleId}/${r.analyte}=${r.value}`).sort());
  });

  it('a session sent again (the analyzer missed the last ACK) is not captured twice, also after a restart', async () => {
    const astmPort = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-lab-again-'));
    const site = (mqttPort: number) => {
      const s = testSite({ port: mqttPort, dataDir });
      s.connections.push({
        id: 'astm-1',
        type: 'astm-tcp',
        mode: 'listen',
        host: '127.0.0.1',
        port: astmPort,
        receive_timeout: 30_000,
        max_message_size: 1024 * 1024,
        max_session: 600_000,
        max_connections: 4,
        idle_timeout: 300_000,
        reconnect: { initial_delay: 200, max_delay: 1000, jitter: 0.2 },
      } as never);
      s.equipment.push({ id: 'LA-2', category: 'lab_analyzer', connection: 'astm-1', poll_interval: 1000, points: [] } as never);
      return s;
    };
    // One session, sent as a resending analyzer sends it: the same records, the same timestamps.
    const session = sessionRecords('ChemAnalyzer', 1, 2, 9, new Date('2026-11-24T08:30:00'));
    const sendSession = async () => {
      const socket = net.connect(astmPort, '127.0.0.1');
      await new Promise((r, e) => socket.once('connect', r).once('error', e));
      const sender = new AstmSender({ write: (b) => void socket.write(b) });
      socket.on('data', (d: Buffer) => sender.receive(d));
      const sent = await sender.send(session.records);
      socket.destroy();
      return sent;
    };
    const run = async (times: number) => {
      const gw = createGateway(site(await freePort()), silent);
      const captured: string[] = [];
      gw.results.onResults((r) => captured.push(...r.map((x) => x.resultId)));
      await gw.start();
      for (let i = 0; i < times; i++) {
        await until('the listener', () =>
          sendSession().then(
            (r) => r.ok,
            () => false,
          ),
        );
      }
      await new Promise((r) => setTimeout(r, 300));
      await gw.stop();
      return captured;
    };
    const first = await run(2);
    expect(first).toHaveLength(session.results.length);
    expect(new Set(first).size).toBe(session.results.length);
    const again = await run(1);
    expect(again).toEqual([]);
  });
});
