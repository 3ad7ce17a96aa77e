// Hot reload with live traffic (docs/reload.md): a real gateway polls a Modbus simulator every
// 100 ms through a proxy that counts TCP connections, publishes on its embedded broker, forwards
// incidents to the reference platform inbox, and reloads its site file through POST
// /api/config/reload and, as its own process, on SIGHUP.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSiteFile } from '../../config/load.js';
import { createModbusTcpSimulator, RegisterBank, type ModbusSimulator } from '../../drivers/modbus/simulator.js';
import { createPlatformInbox, type PlatformInbox } from '../../gateway/platform/inbox.js';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { CLI, killGroup, startCommand, type Running } from '../helpers/cli.js';
import { subscribe, type Subscriber } from '../helpers/mqtt.js';
import { freePort } from '../helpers/processes.js';
import { httpLines } from '../helpers/site.js';
import { sleep, until } from '../helpers/wait.js';

const silent = pino({ level: 'silent' });
const SECRET = 'reload-secret-0123456789';
const TOKENS = { operator: 'operator-token-0123456789abcdef', admin: 'admin-token-0123456789abcdef' };
const REGISTERS = { a: 0, b: 1, c: 2 } as const;
const POLL_MS = 100;

/** A TCP proxy in front of the simulator: how many connections the gateway opened, and how many are open. */
async function countingProxy(target: number): Promise<{ port: number; opened: () => number; open: () => number; stop(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let opened = 0;
  const server = net.createServer((client) => {
    opened++;
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', () => sockets.delete(client) && end()).on('error', end);
    upstream.on('close', () => sockets.delete(upstream) && end()).on('error', end);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    opened: () => opened,
    open: () => [...sockets].length / 2,
    stop: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

interface SiteOptions {
  rules: string[];
  timeout?: string;
  site?: string;
}

describe('hot reload', () => {
  const bank = new RegisterBank(10);
  let sim: ModbusSimulator;
  let proxy: Awaited<ReturnType<typeof countingProxy>>;
  let inbox: PlatformInbox;
  let gw: Gateway;
  let sub: Subscriber;
  let dir: string;
  let file: string;
  let httpPort: number;
  let mqttPort: number;
  let inboxPort: number;
  const polled: number[] = [];

  const yaml = (o: SiteOptions) =>
    [
      'version: 1',
      `gateway: { id: gw-reload, site: ${o.site ?? 'reload-site'}, data_dir: ${join(dir, 'data')} }`,
      `mqtt: { port: ${mqttPort} }`,
      `connections: [{ id: plc, type: modbus-tcp, host: 127.0.0.1, port: ${proxy.port}, timeout: ${o.timeout ?? '1s'} }]`,
      'equipment:',
      `  - { id: B-07, category: boiler, connection: plc, unit_id: 1, poll_interval: ${POLL_MS}ms, points: [` +
        Object.entries(REGISTERS)
          .map(([name, k]) => `{ name: ${name}, address: "hr:${k}", type: int16 }`)
          .join(', ') +
        '] }',
      'rules:',
      ...o.rules,
      'platform:',
      `  url: http://127.0.0.1:${inboxPort}/incidents`,
      `  secret: ${SECRET}`,
      ...httpLines(httpPort, TOKENS),
      '',
    ].join('\n');
  const HOT = '  - { id: hot, equipment: B-07, when: a > 0, level: red, message: "a is up" }';
  const GONE = '  - { id: gone, equipment: B-07, when: c > 0, level: orange, message: "c is up" }';
  const thr = (limit: number) => `  - { id: thr, equipment: B-07, when: b > ${limit}, level: yellow, message: "b over ${limit}" }`;

  const reload = async (token?: string) => {
    const res = await fetch(`http://127.0.0.1:${httpPort}/api/config/reload`, {
      method: 'POST',
      headers: token ? { Authorization: `Bearer ${token}` } : {},
    });
    return {
      status: res.status,
      json: (await res.json()) as { code?: string; problems?: string[]; summary?: string; connections?: Record<string, string[]> },
    };
  };
  /** The inbox's event types of a rule, in seq order. */
  const atInbox = (rule: string) =>
    [...inbox.incidents]
      .sort((x, y) => x.seq - y.seq)
      .filter((i) => i.rule.id === rule)
      .map((i) => i.type);
  /** The MQTT alarm events of a rule. */
  const onMqtt = (rule: string) =>
    sub.messages
      .filter((m) => m.topic.endsWith('/B-07/alarms'))
      .map((m) => JSON.parse(m.payload) as { rule: string; type: string })
      .filter((e) => e.rule === rule)
      .map((e) => e.type);
  const telemetry = () =>
    sub.messages.filter((m) => m.topic.endsWith('/B-07/telemetry')).map((m) => JSON.parse(m.payload) as { ts: number });
  /** Telemetry messages take a few ms from the pipeline to the subscriber: the counts are compared once they are in. */
  const published = () => gw.pipeline.stats().batches;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-reload-'));
    sim = createModbusTcpSimulator({ port: await freePort(), devices: new Map([[1, bank]]) });
    await sim.start();
    proxy = await countingProxy(sim.port());
    inboxPort = await freePort();
    inbox = createPlatformInbox({ port: inboxPort, secret: SECRET, print: () => {} });
    await inbox.start();
    httpPort = await freePort();
    mqttPort = await freePort();
    file = join(dir, 'site.yaml');
    writeFileSync(file, yaml({ rules: [HOT, thr(10), GONE] }));
    gw = createGateway(loadSiteFile(file), silent, { siteFile: file });
    await gw.start();
    // When each batch of readings was taken, as the telemetry's ts says it.
    gw.pipeline.onBatch((batch) => polled.push(Math.max(...batch.map((r) => r.ts))));
    sub = await subscribe(`mqtt://127.0.0.1:${mqttPort}`, gw.topics.all());
  });
  afterAll(async () => {
    await sub?.close();
    await gw?.stop();
    await inbox?.stop();
    await proxy?.stop();
    await sim?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('swaps a changed rule in and ends a removed one, without losing a reading or raising twice', async () => {
    bank.set('hr', REGISTERS.a, [1]);
    bank.set('hr', REGISTERS.b, [5]);
    bank.set('hr', REGISTERS.c, [1]);
    await until('raised at the inbox', () => atInbox('hot').includes('raised') && atInbox('gone').includes('raised'));
    expect(proxy.opened()).toBe(1);
    const from = Date.now();

    // The threshold of thr goes from 10 to 3 (b = 5: it raises), gone is taken out, hot is as it was.
    writeFileSync(file, yaml({ rules: [HOT, thr(3)] }));
    await sleep(3 * POLL_MS);
    const t0 = Date.now();
    const res = await reload(TOKENS.admin);
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json.connections?.kept).toEqual(['plc']);
    await until('thr raised', () => atInbox('thr').includes('raised'));
    await until('gone closed', () => atInbox('gone').includes('closed'));
    await sleep(5 * POLL_MS);

    // Every reading the pipeline took around the reload reached the subscriber, and the polls went on
    // without a stall (a reload takes a few ms; the bound leaves room for a loaded 2-core machine,
    // where 543 ms between two 100 ms polls was seen).
    const taken = polled.filter((ts) => ts >= from);
    await until('telemetry in', () => taken.every((ts) => telemetry().some((m) => m.ts === ts)));
    const gaps = taken.slice(1).map((t, i) => t - taken[i]!);
    expect(Math.max(...gaps), `gaps ${gaps.join(',')}`).toBeLessThan(10 * POLL_MS);
    expect(taken[0]! < t0 && taken.at(-1)! > t0 + 3 * POLL_MS).toBe(true);
    // The connection is the one it was.
    expect(proxy.opened()).toBe(1);
    expect(proxy.open()).toBe(1);
    // hot was raised once, on MQTT and at the platform; gone's incident ended; thr raised on its new limit.
    expect(onMqtt('hot').filter((t) => t === 'raised')).toHaveLength(1);
    expect(atInbox('hot')).toEqual(['raised']);
    expect(atInbox('gone')).toEqual(['raised', 'closed']);
    expect(atInbox('thr')).toEqual(['raised']);
    expect(
      gw.alarms
        .active()
        .map((a) => a.rule)
        .sort(),
    ).toEqual(['hot', 'thr']);
    // The retained list of active alarms no longer has gone.
    await until('active list without gone', () => {
      const lists = sub.messages.filter((m) => m.topic.endsWith('/alarms/active'));
      const last = lists.at(-1);
      return last !== undefined && !last.payload.includes('"gone"') && last.payload.includes('"thr"');
    });
  });

  it('keeps the state of a changed rule whose condition still holds: no second raised', async () => {
    // hot: `a > 0` becomes `a >= 1` (a = 1 still), and the connection's timeout changes: it reopens.
    writeFileSync(file, yaml({ rules: [HOT.replace('a > 0', 'a >= 1'), thr(3)], timeout: '2s' }));
    const res = await reload(TOKENS.admin);
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json.connections?.restarted).toEqual(['plc']);
    const batches = published();
    await until('new readings', () => published() > batches + 5);
    await sleep(300);
    expect(proxy.opened()).toBe(2);
    expect(proxy.open()).toBe(1);
    expect(onMqtt('hot').filter((t) => t === 'raised')).toHaveLength(1);
    expect(atInbox('hot')).toEqual(['raised']);
    expect(gw.alarms.active().find((a) => a.rule === 'hot')?.state).toBe('active_unacknowledged');
  });

  it('refuses an invalid file with its `path: message` lines and goes on with the running one', async () => {
    writeFileSync(file, yaml({ rules: [HOT, '  - { id: bad, equipment: B-07, when: nowhere > 1, level: red, message: "x" }'] }));
    const res = await reload(TOKENS.admin);
    expect(res.status).toBe(422);
    expect(res.json.code).toBe('GW_HTTP_RELOAD_REFUSED');
    expect(
      res.json.problems?.some((p) => /^rules\[1\]\.when: .*nowhere/.test(p)),
      JSON.stringify(res.json.problems),
    ).toBe(true);
    expect(gw.config.rules.map((r) => r.id)).toEqual(['hot', 'thr']);
    const batches = published();
    await until('still polling', () => published() > batches + 2);
  });

  it('refuses a change that needs a restart, naming its path', async () => {
    writeFileSync(file, yaml({ rules: [HOT], site: 'other-site' }));
    const res = await reload(TOKENS.admin);
    expect(res.status).toBe(422);
    expect(res.json.problems).toEqual(['gateway.site: needs a restart']);
    // Nothing of it was applied: thr is still there.
    expect(gw.alarms.active().map((a) => a.rule)).toContain('thr');
  });

  it('refuses a reload while one is under way, and one before the gateway runs', async () => {
    writeFileSync(file, yaml({ rules: [HOT, thr(3)], timeout: '3s' }));
    const first = gw.reload();
    const second = await gw.reload();
    expect(second).toMatchObject({ ok: false, reason: 'busy' });
    expect(await first).toMatchObject({ ok: true, connections: { restarted: ['plc'] } });
    const idle = createGateway(loadSiteFile(file), silent, { siteFile: file });
    expect(await idle.reload()).toMatchObject({ ok: false, reason: 'busy', message: expect.stringMatching(/not started/) });
  });

  it('is for admins only, and every try is in the audit journal', async () => {
    expect((await reload()).status).toBe(401);
    expect((await reload(TOKENS.operator)).status).toBe(403);
    const journal = readFileSync(join(dir, 'data', 'audit.jsonl'), 'utf8');
    const reloads = journal
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { who: string; action: string; outcome: string })
      .filter((e) => e.action === 'config reload');
    expect(reloads.map((e) => e.who)).toEqual(['admin-user', 'admin-user', 'admin-user', 'admin-user']);
    expect(reloads[2]!.outcome).toMatch(/^refused \(invalid\)/);
    expect(journal).toMatch(/"action":"login","target":"\/api\/config\/reload","outcome":"refused: no token"/);
    expect(journal).toMatch(/"who":"operator-user","action":"forbidden","target":"\/api\/config\/reload"/);
  });
});

describe('SIGHUP', () => {
  let run: Running | undefined;
  afterAll(() => run && killGroup(run));

  it('reloads a spawned gateway instead of killing it, audited as the signal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-hup-'));
    const file = join(dir, 'site.yaml');
    const port = await freePort();
    const site = (limit: number) =>
      [
        'version: 1',
        `gateway: { id: gw-hup, site: hup-site, data_dir: ${join(dir, 'data')} }`,
        `mqtt: { port: ${port} }`,
        'connections: [{ id: sim, type: sim, seed: 3 }]',
        'equipment:',
        '  - { id: B-07, code: "10003101012019000117", connection: sim, model: steam-boiler, poll_interval: 200ms, points: [{ name: steam_pressure }] }',
        'rules:',
        `  - { id: p, equipment: B-07, when: steam_pressure > ${limit}, level: red, message: "p" }`,
        '',
      ].join('\n');
    writeFileSync(file, site(100));
    run = startCommand(process.execPath, ['--import', 'tsx', CLI, 'run', '-c', file]);
    await until('started', () => run!.output().includes('Gateway started') || run!.child.exitCode !== null, 15_000);
    expect(run.child.exitCode, run.output()).toBeNull();
    writeFileSync(file, site(50));
    process.kill(run.child.pid!, 'SIGHUP');
    await until('reloaded', () => run!.output().includes('Site file reloaded'), 10_000);
    expect(run.child.exitCode).toBeNull();
    expect(run.output()).toMatch(/alarms 0 unchanged, 2 changed/);
    const journal = join(dir, 'data', 'audit.jsonl');
    // Written just after the log line.
    await until('audited', () => existsSync(journal) && readFileSync(journal, 'utf8').includes('"who":"signal"'));
    const audit = readFileSync(journal, 'utf8');
    expect(audit).toMatch(/"who":"signal"[^\n]*"action":"config reload"/);
    const { code } = await run.interrupt('SIGTERM');
    expect(code).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);
});
