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
import { createModbusTcpSimulator, RegisterBank, type ModbusSimulator } from '../../drivers/modbus/simulator.js';
import { createPlatformInbox, type PlatformInbox } from '../../gateway/platform/inbox.js';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { subscribe, type Subscriber } from '../helpers/mqtt.js';
import { freePort } from '../helpers/processes.js';

const silent = pino({ level: 'silent' });
const SECRET = 'reload-secret-0123456789';
const POLL_MS = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await sleep(25);
  }
}

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
  let dir: string;
  let file: string;
  let templates: string;
  let mqttPort: number;
  let modbusPort: number;
  let inboxPort: number;

  const equipment = (id: string, unit: number, points: string[]) =>
    `  - { id: ${id}, template: tank, connection: plc, unit_id: ${unit}, poll_interval: ${POLL_MS}ms, points: [` +
    points.map((p, k) => `{ name: ${p}, address: "hr:${k}", type: int16 }`).join(', ') +
    '] }';
  const site = (entries: string[]) =>
    [
      'version: 2',
      `gateway: { id: gw-reload-eq, site: reload-eq, data_dir: ${join(dir, 'data')} }`,
      `mqtt: { port: ${mqttPort} }`,
      `connections: [{ id: plc, type: modbus-tcp, host: 127.0.0.1, port: ${modbusPort}, timeout: 1s }]`,
      'equipment:',
      ...entries,
      'platform:',
      `  url: http://127.0.0.1:${inboxPort}/incidents`,
      `  secret: ${SECRET}`,
      '',
    ].join('\n');
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
    file = join(dir, 'site.yaml');
    writeFileSync(file, site([equipment('T-1', 1, ['a', 'b'])]));
    gw = createGateway(loadSiteFile(file), silent, { siteFile: file });
    await gw.start();
    sub = await subscribe(`mqtt://127.0.0.1:${mqttPort}`, gw.topics.all());
  });
  afterAll(async () => {
    await sub?.close();
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
});
