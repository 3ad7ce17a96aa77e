// Hot reload of templates, points and equipment with live traffic (docs/reload.md): a real gateway
// polls a Modbus simulator every 100 ms, publishes on its embedded broker, forwards incidents to the
// reference platform inbox, and reloads its site file, whose equipment use a template from the
// site's own template folder (GATEWAY_TEMPLATES_DIR).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSiteFile } from '../../config/load.js';
import { forgetTemplates } from '../../config/templates.js';
import { hashToken } from '../../gateway/http/server.js';
import { hashPassword } from '../../gateway/mqtt/users.js';
import { createModbusTcpSimulator, RegisterBank, type ModbusSimulator } from '../../drivers/modbus/simulator.js';
import { createPlatformInbox, type PlatformInbox } from '../../gateway/platform/inbox.js';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { retained, subscribe, type Subscriber } from '../helpers/mqtt.js';
import { startSparkplugHost, type SparkplugHost } from '../helpers/sparkplug-host.js';
import { freePort } from '../helpers/processes.js';
import { sleep, until } from '../helpers/wait.js';

const silent = pino({ level: 'silent' });
const SECRET = 'reload-secret-0123456789';
const TOKEN = 'viewer-token-0123456789abcdef';
const SCADA = 'scada-password-0123456789';
const POLL_MS = 100;

/** The site's own template: points a and b, a rule on each. */
const template = (over: string) =>
  [
    'template: tank',
    'name: Test tank',
    'category: pressure_vessel',
    'points: [{ name: a, unit: bar }, { name: b }]',
    'limits: { a_max: 5 }',
    'rules:',
    '  - { id: a-high, when: a > a_max, level: orange, message: "a high" }',
    `  - { id: b-up, when: b > ${over}, level: red, message: "b up" }`,
    '',
  ].join('\n');

describe('hot reload of templates, points and equipment', () => {
  /** One register bank per Modbus unit: unit 1 is T-1, unit 2 is T-2. */
  const banks = [new RegisterBank(10), new RegisterBank(10)];
  let sim: ModbusSimulator;
  let inbox: PlatformInbox;
  let gw: Gateway;
  let sub: Subscriber;
  let host: SparkplugHost;
  /** The host's violations before its first NBIRTH (it came after the node's births): not the reload's. */
  let violationsBefore: number;
  let dir: string;
  let file: string;
  let templates: string;
  let mqttPort: number;
  let modbusPort: number;
  let inboxPort: number;
  let httpPort: number;
  /** When each batch of readings was taken (its newest reading's ts), per equipment. */
  const polled: Array<{ equipment: string; ts: number }> = [];

  const equipment = (id: string, unit: number, points: string[]) =>
    `  - { id: ${id}, template: tank, connection: plc, unit_id: ${unit}, poll_interval: ${POLL_MS}ms, points: [` +
    points.map((p, k) => `{ name: ${p}, address: "hr:${k}", type: int16 }`).join(', ') +
    '] }';
  const site = (entries: string[]) =>
    [
      'version: 2',
      `gateway: { id: gw-reload-eq, site: reload-eq, data_dir: ${join(dir, 'data')} }`,
      `mqtt: { port: ${mqttPort}, users: [{ name: scada, role: custom, hash: "${hashPassword(SCADA)}", subscribe: ["spBv1.0/#"], publish: ["spBv1.0/reload-eq/NCMD/gw-reload-eq"] }] }`,
      'sparkplug: { rebirth_interval: 100ms }',
      // Equipment added or removed is taken without the risk judgement (docs/reload.md).
      'risk: { enabled: false }',
      `connections: [{ id: plc, type: modbus-tcp, host: 127.0.0.1, port: ${modbusPort}, timeout: 1s }]`,
      'equipment:',
      ...entries,
      'platform:',
      `  url: http://127.0.0.1:${inboxPort}/incidents`,
      `  secret: ${SECRET}`,
      `http: { port: ${httpPort}, tokens: [{ name: viewer, role: viewer, hash: "${hashToken(TOKEN)}" }] }`,
      '',
    ].join('\n');
  const telemetry = (equipment: string) =>
    sub.messages
      .filter((m) => m.topic.endsWith(`/${equipment}/telemetry`))
      .map((m) => JSON.parse(m.payload) as { ts: number; values: Record<string, unknown> });
  const trend = async (equipment: string, point: string) => {
    const res = await fetch(`http://127.0.0.1:${httpPort}/api/equipment/${equipment}/history?point=${point}`, {
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    return { status: res.status, body: (await res.json()) as unknown };
  };
  /** The inbox's event types of an equipment's rule, in seq order. */
  const atInbox = (equipment: string, rule: string) =>
    [...inbox.incidents]
      .sort((x, y) => x.seq - y.seq)
      .filter((i) => i.rule.id === rule && i.equipment.id === equipment)
      .map((i) => i.type);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-reload-eq-'));
    templates = join(dir, 'templates');
    mkdirSync(templates);
    writeFileSync(join(templates, 'tank.yaml'), template('10'));
    process.env.GATEWAY_TEMPLATES_DIR = templates;
    forgetTemplates();
    sim = createModbusTcpSimulator({ port: await freePort(), devices: new Map(banks.map((b, i) => [i + 1, b])) });
    await sim.start();
    modbusPort = sim.port();
    inboxPort = await freePort();
    inbox = createPlatformInbox({ port: inboxPort, secret: SECRET, print: () => {} });
    await inbox.start();
    mqttPort = await freePort();
    httpPort = await freePort();
    file = join(dir, 'site.yaml');
    writeFileSync(file, site([equipment('T-1', 1, ['a', 'b'])]));
    gw = createGateway(loadSiteFile(file), silent, { siteFile: file });
    await gw.start();
    gw.pipeline.onBatch((batch) => {
      for (const r of batch) {
        const last = polled.at(-1);
        if (last?.equipment === r.equipment && last.ts === r.ts) continue;
        polled.push({ equipment: r.equipment, ts: r.ts });
      }
    });
    sub = await subscribe(`mqtt://127.0.0.1:${mqttPort}`, gw.topics.all());
    host = await startSparkplugHost(
      `mqtt://127.0.0.1:${mqttPort}`,
      { group: 'reload-eq', node: 'gw-reload-eq' },
      { username: 'scada', password: SCADA },
    );
    // The host came after the births: it asks for them.
    await host.rebirth();
    await host.waitFor((m) => m.type === 'DBIRTH' && m.device === 'T-1', 5000, 'DBIRTH of T-1');
    violationsBefore = host.violations.length;
  });
  afterAll(async () => {
    await sub?.close();
    await host?.close();
    await gw?.stop();
    await inbox?.stop();
    await sim?.stop();
    delete process.env.GATEWAY_TEMPLATES_DIR;
    forgetTemplates();
    rmSync(dir, { recursive: true, force: true });
  });

  it("applies an edited template file's rule at the reload", async () => {
    banks[0]!.set('hr', 1, [7]);
    const batches = gw.pipeline.stats().batches;
    await until('readings', () => gw.pipeline.stats().batches > batches + 3);
    expect(atInbox('T-1', 'b-up')).toEqual([]);
    // b-up's threshold goes from 10 to 3 in the template file (b = 7: it raises); the site file is the same.
    writeFileSync(join(templates, 'tank.yaml'), template('3'));
    const done = await gw.reload();
    expect(done).toMatchObject({ ok: true });
    await until('b-up raised at the inbox', () => atInbox('T-1', 'b-up').includes('raised'));
    expect(gw.alarms.active().map((a) => a.rule)).toEqual(['b-up']);
  });

  it('adds a point to an equipment: its readings on MQTT and in the trend, no reading of the others lost', async () => {
    banks[0]!.set('hr', 2, [42]);
    const from = Date.now();
    writeFileSync(file, site([equipment('T-1', 1, ['a', 'b', 'c'])]));
    await sleep(3 * POLL_MS);
    const done = await gw.reload();
    expect(done).toMatchObject({ ok: true, connections: { restarted: ['plc'] } });
    await until('c on MQTT', () => telemetry('T-1').some((m) => m.values.c === 42));
    await sleep(3 * POLL_MS);
    // Every batch the pipeline took since before the reload reached the subscriber, a and b in each.
    const taken = polled.filter((p) => p.equipment === 'T-1' && p.ts >= from).map((p) => p.ts);
    await until('telemetry in', () => taken.every((ts) => telemetry('T-1').some((m) => m.ts === ts)));
    for (const ts of taken) expect(telemetry('T-1').find((m) => m.ts === ts)!.values).toMatchObject({ a: 0, b: 7 });
    const gaps = taken.slice(1).map((t, i) => t - taken[i]!);
    expect(Math.max(...gaps), `gaps ${gaps.join(',')}`).toBeLessThan(4 * POLL_MS);
    // The HTTP API's trend has a ring for c, and b's kept its readings from before the reload.
    const c = await trend('T-1', 'c');
    expect(c.status).toBe(200);
    expect((c.body as Array<{ value: unknown }>).some((x) => x.value === 42)).toBe(true);
    const b = (await trend('T-1', 'b')).body as Array<{ ts: number }>;
    expect(b[0]!.ts).toBeLessThan(from);
    // A Sparkplug host is told of c in a new DBIRTH of T-1, and its values follow; the session rules hold.
    await host.waitFor((m) => m.type === 'DBIRTH' && m.device === 'T-1' && m.metrics.some((x) => x.name === 'c'), 5000, 'DBIRTH with c');
    expect(host.birth('T-1').get('a')?.properties?.engUnit?.value).toBe('bar');
    await host.waitFor(
      (m) => m.type === 'DDATA' && m.device === 'T-1' && m.metrics.some((x) => x.alias === host.birth('T-1').get('c')?.alias),
      5000,
      'DDATA of c',
    );
    expect(host.violations.slice(violationsBefore)).toEqual([]);
  });

  it('adds an equipment: its readings, its rule raising, its Sparkplug device; removes it: its incident closed, its status cleared', async () => {
    // T-2 on unit 2: b = 7 over the template's threshold (3 since the template was edited).
    banks[1]!.set('hr', 0, [1]);
    banks[1]!.set('hr', 1, [7]);
    const from = Date.now();
    writeFileSync(file, site([equipment('T-1', 1, ['a', 'b', 'c']), equipment('T-2', 2, ['a', 'b'])]));
    const done = await gw.reload();
    expect(done).toMatchObject({ ok: true, connections: { restarted: ['plc'] } });
    await until('T-2 on MQTT', () => telemetry('T-2').some((m) => m.values.b === 7));
    await until('T-2 b-up raised at the inbox', () => atInbox('T-2', 'b-up').includes('raised'));
    await host.waitFor((m) => m.type === 'DBIRTH' && m.device === 'T-2', 5000, 'DBIRTH of T-2');
    expect((await trend('T-2', 'b')).status).toBe(200);
    // T-1 went on: every batch the pipeline took reached the subscriber.
    await sleep(3 * POLL_MS);
    const taken = polled.filter((p) => p.equipment === 'T-1' && p.ts >= from).map((p) => p.ts);
    await until('T-1 telemetry in', () => taken.every((ts) => telemetry('T-1').some((m) => m.ts === ts)));
    const url = `mqtt://127.0.0.1:${mqttPort}`;
    expect(await retained(url, gw.topics.equipmentStatus('T-2'))).toBeDefined();

    writeFileSync(file, site([equipment('T-1', 1, ['a', 'b', 'c'])]));
    expect(await gw.reload()).toMatchObject({ ok: true });
    await until('T-2 b-up closed at the inbox', () => atInbox('T-2', 'b-up').includes('closed'));
    expect(atInbox('T-2', 'b-up')).toEqual(['raised', 'closed']);
    // The platform knows the equipment of both: its category (the template's), not `other`.
    expect(inbox.incidents.filter((i) => i.equipment.id === 'T-2').map((i) => i.equipment.category)).toEqual([
      'pressure_vessel',
      'pressure_vessel',
    ]);
    await host.waitFor((m) => m.type === 'DDEATH' && m.device === 'T-2', 5000, 'DDEATH of T-2');
    let left: string | undefined = 'not read';
    for (let k = 0; k < 10 && left !== undefined; k++) left = await retained(url, gw.topics.equipmentStatus('T-2'), 300);
    expect(left).toBeUndefined();
    expect((await trend('T-2', 'b')).status).toBe(404);
    expect(gw.alarms.active().filter((a) => a.equipment === 'T-2')).toEqual([]);
    expect(host.violations.slice(violationsBefore)).toEqual([]);
    // T-1's polls go on.
    const batches = gw.pipeline.stats().batches;
    await until('T-1 still polled', () => gw.pipeline.stats().batches > batches + 3);
  });

  it('refuses an equipment added while the risk judgement runs', async () => {
    writeFileSync(
      file,
      site([equipment('T-1', 1, ['a', 'b', 'c']), equipment('T-3', 3, ['a', 'b'])]).replace('risk: { enabled: false }', ''),
    );
    const refused = await gw.reload();
    expect(refused, JSON.stringify(refused)).toMatchObject({ ok: false, reason: 'restart' });
    expect(refused.ok === false && refused.problems).toContain('equipment: equipment added (T-3) with risk.enabled: needs a restart');
    expect(gw.config.equipment.map((e) => e.id)).toEqual(['T-1']);
  });
});
