// Safe defaults on disk, in logs and on the uplink (issue 17, attack 7): the data folder and every
// file in it are the gateway user's alone; credentials written inside URLs never reach a log line or
// an API answer; an unencrypted platform URL to another machine is refused unless allowed; the MQTT
// uplink is signed and verifies the central broker's certificate; the reference inbox remembers
// what it took across a restart.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSite } from '../../config/load.js';
import { hashToken } from '../../gateway/http/tokens.js';
import { createLogger } from '../../gateway/log.js';
import { headersFor, incidentBody, verify } from '../../gateway/platform/contract.js';
import { createPlatformInbox } from '../../gateway/platform/inbox.js';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { GatewayStore, STORE_FILE } from '../../gateway/store.js';
import { CLI, gatewaySync, killGroup, startCommand, type Running } from '../helpers/cli.js';
import { freePort, makeTestPki, startMosquitto, type RunningMosquitto } from '../helpers/processes.js';
import { BOILER_POINTS } from '../helpers/site.js';

const SECRET = 'safe-defaults-secret-0123456789';
const TOKEN = 'safe-defaults-viewer-token';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const silent = pino({ level: 'silent' });
// The simulated boiler's pressure wanders around 1.25 MPa: this rule raises and clears every few polls.
const RULES = [
  'rules:',
  '  - { id: pressure-wobble, equipment: B-07, when: steam_pressure > 1.25, level: yellow, message: "Pressure {value} {unit}" }',
];

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await sleep(100);
  }
}

function siteYaml(o: { dataDir: string; broker: string; extra: string[]; logLevel?: string }): string {
  return [
    'version: 1',
    `gateway: { id: gw-safe, site: safe-site, data_dir: ${o.dataDir}, log_level: ${o.logLevel ?? 'info'} }`,
    'mqtt:',
    `  broker: "${o.broker}"`,
    '  reconnect: { initial_delay: 200ms, max_delay: 1s }',
    ...o.extra,
    'connections: [{ id: sim, type: sim, seed: 11 }]',
    'equipment:',
    '  - id: B-07',
    '    connection: sim',
    '    code: "10003101012019000117"',
    '    model: steam-boiler',
    '    poll_interval: 200ms',
    `    points: [${BOILER_POINTS.map((p) => `{ name: ${p} }`).join(', ')}]`,
    ...RULES,
    '',
  ].join('\n');
}

/** Every entry under `dir` (itself included) whose group or other permission bits are set. */
function openToOthers(dir: string): string[] {
  const found: string[] = [];
  const walk = (path: string) => {
    const st = statSync(path);
    if ((st.mode & 0o077) !== 0) found.push(`${relative(dir, path) || '.'} ${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
  };
  walk(dir);
  return found;
}

function entries(dir: string): string[] {
  const out: string[] = [];
  const walk = (path: string) => {
    for (const name of readdirSync(path)) {
      const p = join(path, name);
      out.push(relative(dir, p));
      if (statSync(p).isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

describe('safe defaults', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  const running: Running[] = [];
  afterEach(async () => {
    for (const r of running.splice(0)) killGroup(r);
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it('a gateway with platform, HTTP API, InfluxDB spool and external-broker queue keeps its data folder 0700 and every file 0600, tightens what was left open, and logs and answers no credential written in a URL', async () => {
    const work = mkdtempSync(join(tmpdir(), 'gw-safe-'));
    cleanup.push(() => rmSync(work, { recursive: true, force: true }));
    const secrets = {
      mqtt: 'mqtt-pw-5f1e2d',
      influx: 'influx-pw-9a8b7c',
      platform: 'platform-pw-3c4d5e',
      platformToken: 'platform-token-7e6f5a',
      uplink: 'uplink-pw-1b2c3d',
      influxToken: 'influx-token-4d3c2b',
    };
    const broker: RunningMosquitto = await startMosquitto({ users: { gw: secrets.mqtt } });
    cleanup.push(() => broker.stop());

    // A data folder as an older version left it: open to everyone, with a store and a folder of its own.
    const dataDir = join(work, 'data');
    mkdirSync(join(dataDir, 'pki', 'own'), { recursive: true });
    new GatewayStore(join(dataDir, STORE_FILE)).close();
    writeFileSync(join(dataDir, 'pki', 'own', 'private_key.pem'), 'not a real key\n');
    for (const [p, mode] of [
      [dataDir, 0o755],
      [join(dataDir, 'pki'), 0o755],
      [join(dataDir, 'pki', 'own'), 0o775],
      [join(dataDir, STORE_FILE), 0o644],
      [join(dataDir, 'pki', 'own', 'private_key.pem'), 0o644],
    ] as const)
      chmodSync(p, mode);
    expect(openToOthers(dataDir)).toHaveLength(5);

    // Nothing listens on these: each connection fails, and the failures are logged with their URLs.
    const [closed1, closed2, closed3, httpPort, inboxPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const site = join(work, 'site.yaml');
    writeFileSync(
      site,
      siteYaml({
        dataDir,
        logLevel: 'debug',
        broker: `mqtt://gw:${secrets.mqtt}@127.0.0.1:${broker.port}`,
        extra: [
          'influx:',
          '  api: v1',
          `  url: "http://admin:${secrets.influx}@127.0.0.1:${closed1}/?token=${secrets.influxToken}"`,
          '  database: plant',
          '  flush_interval: 200ms',
          'http:',
          '  host: 127.0.0.1',
          `  port: ${httpPort}`,
          `  tokens: [{ name: viewer, role: viewer, hash: "${hashToken(TOKEN)}" }]`,
          'platform:',
          `  url: "http://plat:${secrets.platform}@127.0.0.1:${closed2}/incidents?token=${secrets.platformToken}"`,
          `  secret: ${SECRET}`,
          '  timeout: 1s',
          '  retry: { initial_delay: 200ms, max_delay: 1s }',
          `  mqtt_url: "mqtt://up:${secrets.uplink}@127.0.0.1:${closed3}"`,
          'simulators:',
          `  - { type: platform-inbox, port: ${inboxPort}, secret: ${SECRET} }`,
        ],
      }),
    );
    const gw = startCommand(process.execPath, ['--import', 'tsx', CLI, 'run', '-c', site]);
    running.push(gw);
    const api = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${httpPort}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return `${res.status} ${JSON.stringify([...res.headers])} ${await res.text()}`;
    };
    await until('the HTTP API', async () => (await api('/ready').catch(() => '')).length > 0);
    // Every part has written its file and logged its failing URL.
    await until(
      'the store, the outbox, the queue, the spool and the failures in the log',
      () => {
        const have = entries(dataDir);
        const out = gw.output();
        return (
          ['mqtt-queue.db', 'influx-spool.db', `platform-inbox-${inboxPort}.db`].every((f) => have.includes(f)) &&
          /Platform did not take the event/.test(out) &&
          /spool/i.test(out) &&
          /Uplink broker not reachable/.test(out)
        );
      },
      45_000,
    );
    // An unauthenticated request: the audit journal records it.
    await fetch(`http://127.0.0.1:${httpPort}/api/alarms`, { headers: { authorization: 'Bearer wrong' } });
    const answers = await Promise.all(['/ready', '/api/outbox', '/api/equipment', '/metrics', '/api/alarms'].map(api));

    // SQLite's WAL and shared-memory files exist while it runs (a clean stop removes them).
    const files = entries(dataDir);
    expect(files).toEqual(
      expect.arrayContaining([
        STORE_FILE,
        `${STORE_FILE}-wal`,
        `${STORE_FILE}-shm`,
        'mqtt-queue.db',
        'mqtt-queue.db-wal',
        'influx-spool.db',
        'influx-spool.db-wal',
        `platform-inbox-${inboxPort}.db`,
        'audit.jsonl',
      ]),
    );
    expect(openToOthers(dataDir), 'entries open to other users while running').toEqual([]);
    expect((await gw.interrupt('SIGINT')).code).toBe(0);
    expect(openToOthers(dataDir), 'entries open to other users after the stop').toEqual([]);

    const out = gw.output();
    // What an older version left open was tightened, and said so once.
    const tightened = out.split('\n').filter((l) => l.includes('tightened to owner only'));
    expect(tightened).toHaveLength(1);
    expect(tightened[0]).toContain('"count":5');
    expect(tightened[0]).toContain('pki/own/private_key.pem');
    // The URLs were logged (redacted), and no credential in them was.
    expect(out).toContain(`mqtt://***@127.0.0.1:${broker.port}`);
    expect(out).toContain(`http://***@127.0.0.1:${closed2}/incidents?token=***`);
    expect(out).toContain(`mqtt://***@127.0.0.1:${closed3}`);
    expect(out).toContain(`http://***@127.0.0.1:${closed1}/?token=***`);
    for (const [name, secret] of Object.entries(secrets)) {
      expect(out.includes(secret), `the ${name} credential in the log`).toBe(false);
      for (const a of answers) expect(a.includes(secret), `the ${name} credential in an API answer`).toBe(false);
    }
  }, 120_000);

  it('refuses an unencrypted platform URL to another machine unless platform.allow_insecure, which warns at every start', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-safe-'));
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const platform = (url: string, mqttUrl: string | undefined, allow: boolean) => [
      'platform:',
      `  url: "${url}"`,
      `  secret: ${SECRET}`,
      ...(mqttUrl ? [`  mqtt_url: "${mqttUrl}"`] : []),
      ...(allow ? ['  allow_insecure: true'] : []),
    ];
    const write = (lines: string[]) => {
      const file = join(dataDir, `site-${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(file, siteYaml({ dataDir, broker: 'embedded', extra: ['  port: 1883', ...lines] }));
      return file;
    };
    const refused = gatewaySync([
      'check',
      write(platform('http://u:pw-in-url@192.0.2.10/incidents', 'mqtt://broker.example.org:1883', false)),
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr + refused.stdout).toContain(
      'platform.url: an unencrypted URL to 192.0.2.10, which is not this machine: use https://, or set platform.allow_insecure: true',
    );
    expect(refused.stderr + refused.stdout).toContain(
      'platform.mqtt_url: an unencrypted URL to broker.example.org, which is not this machine',
    );
    expect(refused.stderr + refused.stdout).not.toContain('pw-in-url');
    // Loopback in every spelling, and encrypted URLs anywhere, are fine without it.
    for (const [url, mqttUrl] of [
      ['http://127.0.0.1:8787/incidents', 'mqtt://localhost:1883'],
      ['http://[::1]:8787/', 'ws://127.3.2.1:9001'],
      ['https://192.0.2.10/incidents', 'mqtts://broker.example.org:8883'],
    ] as const) {
      const r = gatewaySync(['check', write(platform(url, mqttUrl, false))]);
      expect(r.stdout + r.stderr, `${url} ${mqttUrl}`).toContain('valid');
    }

    // Allowed: the gateway starts, and says at its start that the link is readable on the way.
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const config = parseSite(
      siteYaml({
        dataDir,
        broker: 'embedded',
        extra: [`  port: ${await freePort()}`, ...platform('http://u:pw-in-url@192.0.2.10/incidents', undefined, true), '  timeout: 1s'],
      }),
      { env: {} },
    );
    const gw: Gateway = createGateway(config, createLogger({ pretty: false, destination }));
    cleanup.push(() => gw.stop());
    await gw.start();
    const warnings = lines.filter((l) => l.includes('Platform URL is unencrypted to another machine'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('"url":"http://***@192.0.2.10/incidents"');
  }, 60_000);

  it('the MQTT uplink signs every message like the HTTP POST (MQTT v5 user properties) over TLS with platform.ca; a broker certificate from another CA is refused', async () => {
    const broker = await startMosquitto({ tls: true });
    cleanup.push(() => broker.stop());
    const inboxPort = await freePort();
    const inbox = createPlatformInbox({ port: inboxPort, secret: SECRET, print: () => {} });
    await inbox.start();
    cleanup.push(() => inbox.stop());
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-safe-'));
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const topic = `incidents/signed-${Date.now()}`;
    const received: Array<{ payload: string; contentType: string | undefined; props: Record<string, string | string[]> }> = [];
    const sub = await mqtt.connectAsync(broker.url, { protocolVersion: 5, ca: readFileSync(broker.caFile!), reconnectPeriod: 200 });
    cleanup.push(() => sub.endAsync(true));
    sub.on('message', (_t, payload, packet) =>
      received.push({
        payload: payload.toString(),
        contentType: packet.properties?.contentType,
        props: (packet.properties?.userProperties ?? {}) as Record<string, string | string[]>,
      }),
    );
    await sub.subscribeAsync(topic, { qos: 1 });

    const gatewayWith = async (settings: string[]) => {
      const port = await freePort();
      return createGateway(
        parseSite(
          siteYaml({
            dataDir: mkdtempSync(join(dataDir, 'gw-')),
            broker: 'embedded',
            extra: [
              `  port: ${port}`,
              'platform:',
              `  url: http://127.0.0.1:${inboxPort}/incidents`,
              `  secret: ${SECRET}`,
              `  mqtt_url: "${broker.url}"`,
              `  mqtt_topic: ${topic}`,
              '  retry: { initial_delay: 200ms, max_delay: 1s }',
              ...settings.map((s) => `  ${s}`),
            ],
          }),
          { env: {} },
        ),
        silent,
      );
    };
    const good = await gatewayWith([`ca: ${broker.caFile!}`]);
    cleanup.push(() => good.stop());
    await good.start();
    await until('signed incidents over mqtts', () => received.length >= 4);
    await good.stop();
    for (const m of received) {
      const one = (k: string) => (Array.isArray(m.props[k]) ? (m.props[k] as string[])[0]! : (m.props[k] as string));
      const body = JSON.parse(m.payload) as { eventId: string; gatewayId: string };
      expect(m.contentType).toBe('application/json');
      expect(one('X-Gateway-Id')).toBe('gw-safe');
      expect(one('Idempotency-Key')).toBe(body.eventId);
      expect(verify(SECRET, one('X-Gateway-Timestamp'), m.payload, one('X-Gateway-Signature')), m.payload).toBe(true);
      // The signature covers the body: another body, or another secret, does not verify.
      expect(
        verify(SECRET, one('X-Gateway-Timestamp'), m.payload.replace('"level":"yellow"', '"level":"blue"'), one('X-Gateway-Signature')),
      ).toBe(false);
      expect(verify('another-secret-0123456789', one('X-Gateway-Timestamp'), m.payload, one('X-Gateway-Signature'))).toBe(false);
    }
    // The signature is the one the HTTP POST carries for the same body and time.
    const first = received[0]!;
    const ts = Number(first.props['X-Gateway-Timestamp'] as string);
    expect(first.props['X-Gateway-Signature']).toBe(headersFor(SECRET, 'gw-safe', first.payload, undefined, ts)['X-Gateway-Signature']);

    // A broker whose certificate another CA signed (or only the system CAs): no connection, nothing published.
    const otherPki = makeTestPki(mkdtempSync(join(dataDir, 'other-ca-')));
    for (const settings of [[`ca: ${otherPki.ca}`], []]) {
      const before = received.length;
      const wrong = await gatewayWith(settings);
      cleanup.push(() => wrong.stop());
      await wrong.start();
      await until('incidents in the outbox for the uplink', () => (wrong.platform!.outbox()!.stats().uplinkPending ?? 0) > 0, 20_000);
      await sleep(2000);
      expect(wrong.platform!.uplink()!.stats()).toMatchObject({ connected: false, published: 0 });
      expect(received.length).toBe(before);
      await wrong.stop();
    }
  }, 120_000);

  it('the reference inbox recognises an event it took before a restart as a duplicate, from its state file (no --out)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-safe-inbox-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const state = join(dir, 'state', 'inbox.db');
    let port = await freePort();
    const send = async (n: number) => {
      const body = incidentBody(
        JSON.stringify({
          schema: 'gw.incident.v1',
          eventId: `evt-${n}`,
          incidentId: 'inc-1',
          type: 'raised',
          level: 'red',
          gatewayId: 'gw-x',
          site: 's',
          equipment: { id: 'B-07', category: 'boiler' },
          rule: { id: 'r', message: 'm' },
          occurredAt: new Date().toISOString(),
        }),
        n,
      );
      const res = await fetch(`http://127.0.0.1:${port}/incidents`, {
        method: 'POST',
        headers: headersFor(SECRET, 'gw-x', body, `evt-${n}`),
        body,
      });
      return ((await res.json()) as { status: string }).status;
    };
    const first = createPlatformInbox({ port, secret: SECRET, state, print: () => {} });
    await first.start();
    expect(await send(1)).toBe('accepted');
    expect(await send(2)).toBe('accepted');
    await first.stop();
    expect((statSync(state).mode & 0o077).toString(8)).toBe('0');

    // Another port: fetch would try the old server's kept-alive connection first.
    port = await freePort();
    const second = createPlatformInbox({ port, secret: SECRET, state, print: () => {} });
    await second.start();
    cleanup.push(() => second.stop());
    expect(await send(2)).toBe('duplicate');
    expect(await send(1)).toBe('duplicate');
    expect(await send(3)).toBe('accepted');
    expect(second.stats()).toMatchObject({ accepted: 1, duplicates: 2 });
    expect(second.incidents.map((i) => i.eventId)).toEqual(['evt-3']);
  });

  it('the inbox state is bounded: past the bound the oldest ids are forgotten, counted and reported', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-safe-inbox-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    const printed: string[] = [];
    const inbox = createPlatformInbox({
      port,
      secret: SECRET,
      state: join(dir, 'inbox.db'),
      maxRememberedIds: 10,
      print: (l) => printed.push(l),
    });
    await inbox.start();
    cleanup.push(() => inbox.stop());
    for (let n = 1; n <= 11; n++) {
      const body = incidentBody(
        JSON.stringify({
          schema: 'gw.incident.v1',
          eventId: `evt-${n}`,
          incidentId: `inc-${n}`,
          type: 'raised',
          level: 'red',
          gatewayId: 'gw-x',
          site: 's',
          equipment: { id: 'B-07', category: 'boiler' },
          rule: { id: 'r', message: 'm' },
          occurredAt: new Date().toISOString(),
        }),
        n,
      );
      const res = await fetch(`http://127.0.0.1:${port}/incidents`, {
        method: 'POST',
        headers: headersFor(SECRET, 'gw-x', body, `evt-${n}`),
        body,
      });
      expect(res.status).toBe(200);
    }
    expect(inbox.stats().forgottenIds).toBe(1);
    expect(printed.filter((l) => l.startsWith('FORGOTTEN: the 1 oldest ids'))).toHaveLength(1);
  });
});
