// Forwarding incidents to the central platform through real HTTP: the reference receiver, and a
// receiver that misbehaves on purpose (errors, Retry-After, slow answers, dropped connections, a
// refusal), a receiver down for 20 s, a wrong secret, and a gateway killed with -9.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { createPlatformInbox, type PlatformInbox } from '../../gateway/platform/inbox.js';
import { Outbox } from '../../gateway/platform/outbox.js';
import { STORE_FILE } from '../../gateway/store.js';
import { CLI, ROOT } from '../helpers/cli.js';
import { freePort, makeTestPki } from '../helpers/processes.js';
import { subscribe } from '../helpers/mqtt.js';
import { testSite, writeTestSite } from '../helpers/site.js';

const silent = pino({ level: 'silent' });
const SECRET = 'test-secret-0123456789';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// The simulated boiler's pressure wanders around 1.25 MPa: this rule raises and clears every few polls.
const RULES = [
  // Incidents alone: risk changes would take seqs too (tests/integration/risk.test.ts and kill-loop.test.ts follow those).
  'risk: { enabled: false }',
  'rules:',
  '  - { id: pressure-wobble, equipment: B-07, when: steam_pressure > 1.25, level: yellow, message: "Pressure {value} {unit}" }',
];
const platform = (port: number, settings: Record<string, string> = {}) => {
  const all = {
    url: `http://127.0.0.1:${port}/incidents`,
    secret: SECRET,
    timeout: '1s',
    reconnect: '{ initial_delay: 200ms, max_delay: 2s }',
    ...settings,
  };
  return ['platform:', ...Object.entries(all).map(([k, v]) => `  ${k}: ${v}`)];
};

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A receiver in front of the reference inbox that answers incidents as `decide` says. */
function misbehaving(
  inboxPort: number,
  decide: (n: number, seq: number) => 'pass' | { status: number; body?: string; headers?: Record<string, string> } | 'slow' | 'drop',
  slowMs = 1500,
) {
  let n = 0;
  const log: Array<{ at: number; seq: number; answer: string }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const parsed = JSON.parse(body.toString()) as { schema: string; seq?: number };
      const seq = parsed.seq ?? 0;
      const pass = () => {
        const fwd = http.request({ host: '127.0.0.1', port: inboxPort, path: req.url, method: 'POST', headers: req.headers }, (r) => {
          res.writeHead(r.statusCode!, r.headers);
          r.pipe(res);
        });
        // The receiver may be gone (stopped at the test's end while a slow answer waited): the gateway sees the connection drop.
        fwd.on('error', () => res.destroy());
        fwd.end(body);
      };
      if (parsed.schema !== 'gw.incident.v1') return pass();
      const what = decide(++n, seq);
      log.push({ at: Date.now(), seq, answer: typeof what === 'string' ? what : String(what.status) });
      if (what === 'pass') return pass();
      if (what === 'slow') return void setTimeout(pass, slowMs);
      if (what === 'drop') return void req.socket.destroy();
      res.writeHead(what.status, { 'Content-Type': 'application/json', ...what.headers }).end(what.body ?? '{}');
    });
  });
  return {
    log,
    start: (port: number) => new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r())),
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('forwarding incidents to the platform', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });
  const inbox = async (port: number, secret = SECRET): Promise<PlatformInbox> => {
    const i = createPlatformInbox({ port, secret, print: () => {} });
    await i.start();
    cleanup.push(() => i.stop());
    return i;
  };
  const gateway = async (platformPort: number, o: { dataDir?: string; settings?: Record<string, string> } = {}): Promise<Gateway> => {
    const gw = createGateway(
      testSite({
        port: await freePort(),
        pollInterval: '100ms',
        dataDir: o.dataDir,
        extra: [...RULES, ...platform(platformPort, o.settings)],
      }),
      silent,
    );
    cleanup.push(() => gw.stop());
    await gw.start();
    return gw;
  };
  const seqsOf = (i: PlatformInbox) => i.incidents.map((x) => x.seq);
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => from + k);
  /** Stops the gateway; every seq it gave must have arrived, except what its outbox still holds. */
  const stopAndExpectAll = async (gw: Gateway, arrived: () => number[]) => {
    await gw.stop();
    const outbox = new Outbox(join(gw.config.gateway.data_dir, STORE_FILE));
    const { lastSeq } = outbox.stats();
    const held = new Set(outbox.list('pending').map((r) => r.seq));
    outbox.close();
    expect(held.size).toBeLessThanOrEqual(2);
    expect([...arrived()].sort((a, b) => a - b)).toEqual(range(1, lastSeq).filter((s) => !held.has(s)));
    return lastSeq;
  };

  it('delivers every event of a 20 s receiver outage once it is back, in seq order, without gaps; what it sends matches the contract schema', async () => {
    const port = await freePort();
    const first = await inbox(port);
    const gw = await gateway(port, { settings: { heartbeat_interval: '1s' } });
    await until('first incidents', () => first.incidents.length >= 2);
    await first.stop();
    const down = Date.now();
    await sleep(20_000);
    expect(gw.platform!.outbox()!.stats().pending).toBeGreaterThan(0);
    const second = await inbox(port);
    await until('the backlog to drain', () => gw.platform!.outbox()!.stats().pending === 0, 30_000);
    // Heartbeats go every second: the backlog can drain before the first reaches the new inbox.
    await until('a heartbeat at the new inbox', () => second.heartbeats.length > 0, 5000);
    await stopAndExpectAll(gw, () => [...seqsOf(first), ...seqsOf(second)]);
    // In seq order: one event in flight at a time.
    const arrived = [...seqsOf(first), ...seqsOf(second)];
    expect(arrived).toEqual([...arrived].sort((a, b) => a - b));
    expect(second.incidents.some((i) => Date.parse(i.occurredAt) > down + 1000 && Date.parse(i.occurredAt) < down + 19_000)).toBe(true);
    expect(second.heartbeats.length).toBeGreaterThan(0);

    const ajv = new Ajv({ allErrors: true });
    const validate = ajv.compile(JSON.parse(readFileSync(join(ROOT, 'docs', 'platform-contract.schema.json'), 'utf8')) as object);
    for (const body of [...first.incidents, ...second.incidents, ...second.heartbeats])
      expect(validate(body), JSON.stringify(validate.errors)).toBe(true);
    expect(first.incidents[0]).toMatchObject({
      schema: 'gw.incident.v1',
      type: 'raised',
      level: 'yellow',
      gatewayId: 'gw-test',
      site: 'test-site',
      equipment: { id: 'B-07', code: '10003101012019000117', category: 'boiler' },
      rule: { id: 'pressure-wobble' },
      point: 'steam_pressure',
    });
  }, 60_000);

  it('rides out 500, 429 with Retry-After, a slow answer and a dropped connection: every event, in order, and no request before Retry-After', async () => {
    const inboxPort = await freePort();
    const target = await inbox(inboxPort);
    const port = await freePort();
    const script = [
      'pass',
      { status: 500, body: '{"error":"db down"}' },
      { status: 429, headers: { 'Retry-After': '2' } },
      'slow',
      'drop',
      { status: 503 },
    ] as const;
    const proxy = misbehaving(inboxPort, (n) => script[n - 1] ?? 'pass');
    await proxy.start(port);
    cleanup.push(() => proxy.stop());
    const gw = await gateway(port);
    await until(
      'the misbehaviour to be over and 8 events delivered',
      () => proxy.log.length > script.length && target.incidents.length >= 8,
      30_000,
    );
    await until('the outbox to drain', () => gw.platform!.outbox()!.stats().pending === 0);
    await stopAndExpectAll(gw, () => seqsOf(target));
    // The slow answer came after the timeout, so that event was sent twice: the receiver kept one.
    expect(seqsOf(target)).toEqual([...seqsOf(target)].sort((a, b) => a - b));
    expect(target.stats().duplicates).toBeLessThanOrEqual(1);
    const after429 = proxy.log[3]!.at - proxy.log[2]!.at;
    expect(after429).toBeGreaterThanOrEqual(1990);
    expect(gw.platform!.forwarder()!.stats().deadLetters).toBe(0);
  }, 60_000);

  it('dead-letters an event the platform refuses with 400, keeps its answer, sends the later ones, and sends it again on retry', async () => {
    const inboxPort = await freePort();
    const target = await inbox(inboxPort);
    const port = await freePort();
    let refused = false;
    const proxy = misbehaving(inboxPort, (_n, seq) => {
      if (seq === 2 && !refused) {
        refused = true;
        return { status: 400, body: '{"error":"unknown equipment B-07"}' };
      }
      return 'pass';
    });
    await proxy.start(port);
    cleanup.push(() => proxy.stop());
    const gw = await gateway(port);
    await until('later events', () => seqsOf(target).some((s) => s >= 4));
    const outbox = gw.platform!.outbox()!;
    const [dead] = outbox.list('dead');
    expect(dead).toMatchObject({ seq: 2, state: 'dead', answer: '400 {"error":"unknown equipment B-07"}' });
    expect(seqsOf(target)).not.toContain(2);
    expect(outbox.retry([2])).toBe(1);
    await until('the retried event', () => seqsOf(target).includes(2), 5000);
    expect(outbox.stats().dead).toBe(0);
  }, 30_000);

  it('a wrong secret on the receiver: 401, a dead letter whose answer names the signature', async () => {
    const port = await freePort();
    const target = await inbox(port, 'another-secret-0123456789');
    const gw = await gateway(port);
    await until('a dead letter', () => (gw.platform!.outbox()?.stats().dead ?? 0) >= 1);
    const [dead] = gw.platform!.outbox()!.list('dead');
    expect(dead!.answer).toMatch(/^401 .*X-Gateway-Signature does not match/);
    expect(target.incidents).toEqual([]);
  });

  it('also publishes every incident to a central MQTT broker with the same body, and keeps each until the broker acknowledged it', async () => {
    const mosquitto = inject('mosquitto');
    const port = await freePort();
    const target = await inbox(port);
    const topic = `incidents/uplink-${Date.now()}`;
    const sub = await subscribe(mosquitto.url, topic);
    cleanup.push(() => sub.close());
    const gw = await gateway(port, { settings: { mqtt_url: mosquitto.url, mqtt_topic: topic } });
    await until('incidents over both ways', () => target.incidents.length >= 5 && sub.messages.length >= 5);
    await until('the outbox to drain both ways', () => {
      const s = gw.platform!.outbox()!.stats();
      return s.pending === 0 && s.uplinkPending === 0;
    });
    await gw.stop();
    const byHttp = new Map(target.incidents.map((i) => [i.seq, JSON.stringify(i)]));
    const byMqtt = new Map(sub.messages.map((m) => [(JSON.parse(m.payload) as { seq: number }).seq, m.payload]));
    for (const [seq, body] of byMqtt) if (byHttp.has(seq)) expect(body).toBe(byHttp.get(seq));
    const both = [...byMqtt.keys()].filter((k) => byHttp.has(k));
    expect(both.length).toBeGreaterThanOrEqual(5);
  });

  it('speaks HTTPS with a custom CA and a client certificate (mutual TLS); without the CA it retries, it never dead-letters', async () => {
    const pkiDir = mkdtempSync(join(tmpdir(), 'gw-platform-pki-'));
    cleanup.push(async () => rmSync(pkiDir, { recursive: true, force: true }));
    const pki = makeTestPki(pkiDir);
    const port = await freePort();
    const target = createPlatformInbox({
      port,
      secret: SECRET,
      print: () => {},
      tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca },
    });
    await target.start();
    cleanup.push(() => target.stop());
    const url = `https://127.0.0.1:${port}/incidents`;
    const good = await gateway(port, { settings: { url, ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } });
    await until('incidents over mutual TLS', () => target.incidents.length >= 3);
    await good.stop();

    // A platform certificate the gateway cannot verify, and no client certificate: nothing gets through, and nothing is dropped.
    const before = target.incidents.length;
    const unverified = await gateway(port, { settings: { url } });
    await until('failed attempts', () => unverified.platform!.forwarder()!.stats().retries >= 2, 10_000);
    expect(unverified.platform!.forwarder()!.stats().deadLetters).toBe(0);
    expect(unverified.platform!.outbox()!.stats().pending).toBeGreaterThan(0);
    expect(target.incidents.length).toBe(before);
  });

  it('killed with -9 while events are in flight: after the restart every event arrived exactly once after de-duplication, and no seq was reused', async () => {
    const inboxPort = await freePort();
    const target = await inbox(inboxPort);
    const port = await freePort();
    // Answers take 300 ms while the first process runs: there is always an event in flight.
    let slow = true;
    const proxy = misbehaving(inboxPort, () => (slow ? 'slow' : 'pass'), 300);
    await proxy.start(port);
    cleanup.push(() => proxy.stop());
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-platform-kill-'));
    cleanup.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const file = writeTestSite({
      port: await freePort(),
      pollInterval: '100ms',
      dataDir,
      extra: [...RULES, ...platform(port, { timeout: '5s' })],
    });
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'run', '-c', file], { cwd: ROOT, stdio: 'ignore' });
    cleanup.push(async () => void child.kill('SIGKILL'));
    await until('events delivered by the first process', () => target.incidents.length >= 2, 30_000);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const before = new Outbox(join(dataDir, STORE_FILE));
    const killedAt = before.stats();
    before.close();
    expect(killedAt.pending).toBeGreaterThan(0);
    slow = false;

    const gw = await gateway(port, { dataDir, settings: { timeout: '5s' } });
    await until('events of the new process', () => target.incidents.some((i) => i.seq > killedAt.lastSeq), 30_000);
    await until('the outbox to drain', () => gw.platform!.outbox()!.stats().pending === 0, 30_000);
    // Each seq once, each with its own event: nothing lost, nothing reused.
    await stopAndExpectAll(gw, () => seqsOf(target));
    expect(new Set(target.incidents.map((i) => i.eventId)).size).toBe(target.incidents.length);
  }, 90_000);
});
