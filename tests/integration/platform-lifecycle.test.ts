// Every incident ends at the platform: a real gateway reads a Modbus device the test drives, forwards
// to the reference inbox over HTTP, and is handled through its HTTP API and the `gateway alarms`
// command. For each path (acknowledged then cleared, cleared then acknowledged, latched reset,
// suppressed, out of service, shelved past expiry, rule removed from the site file) the inbox sees
// the incident's events end with one `closed`; the one incident nobody handles is reported left open.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSite } from '../../config/load.js';
import { createModbusTcpSimulator, RegisterBank, type ModbusSimulator } from '../../drivers/modbus/simulator.js';
import { verifyJournal } from '../../gateway/http/audit.js';
import { createPlatformInbox, summaryOf, type PlatformInbox } from '../../gateway/platform/inbox.js';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { gatewayAsync, ROOT } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';
import { httpLines } from '../helpers/site.js';
import { sleep, until } from '../helpers/wait.js';

const silent = pino({ level: 'silent' });
const SECRET = 'lifecycle-secret-0123456789';
const TOKENS = {
  viewer: 'viewer-token-0123456789abcdef',
  operator: 'operator-token-0123456789abcdef',
  admin: 'admin-token-0123456789abcdef',
};
/** One register per path, so each alarm is driven on its own. */
const REGISTERS = { a: 0, b: 1, c: 2, d: 3, idle: 4, e: 5, f: 6, g: 7, h: 8 } as const;
const RULES = [
  '  - { id: ack-then-clear, equipment: B-07, when: a > 0, level: red, message: "a is up" }',
  '  - { id: clear-then-ack, equipment: B-07, when: b > 0, level: red, message: "b is up" }',
  '  - { id: latched, equipment: B-07, when: c > 0, level: red, latch: true, message: "c is up" }',
  '  - { id: suppressed, equipment: B-07, when: d > 0, level: orange, suppress_when: "idle > 0", message: "d is up" }',
  '  - { id: out-of-service, equipment: B-07, when: e > 0, level: red, message: "e is up" }',
  '  - { id: shelved, equipment: B-07, when: f > 0, level: yellow, max_shelve: 2s, message: "f is up" }',
  '  - { id: removed, equipment: B-07, when: g > 0, level: red, message: "g is up" }',
  '  - { id: left-open, equipment: B-07, when: h > 0, level: red, message: "h is up" }',
];

describe('the incident lifecycle at the platform', () => {
  const bank = new RegisterBank(100);
  let sim: ModbusSimulator;
  let inbox: PlatformInbox;
  let gw: Gateway;
  let dataDir: string;
  let httpPort: number;
  let siteYaml: (rules: string[]) => string;

  const set = (point: keyof typeof REGISTERS, value: number) => bank.set('hr', REGISTERS[point], [value]);
  /** The types the inbox accepted for a rule's incidents, in seq order (each incident by its id). */
  const seen = (rule: string) => {
    const byIncident = new Map<string, string[]>();
    for (const i of [...inbox.incidents].sort((x, y) => x.seq - y.seq).filter((x) => x.rule.id === rule))
      byIncident.set(i.incidentId, [...(byIncident.get(i.incidentId) ?? []), i.type]);
    return [...byIncident.values()];
  };
  const last = (rule: string) => seen(rule).at(-1)?.at(-1);
  const api = async (role: keyof typeof TOKENS, path: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${httpPort}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { Authorization: `Bearer ${TOKENS[role]}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return {
      status: res.status,
      json: (await res.json()) as { error?: string; events?: Array<{ type: string; state: string; by?: string; comment?: string }> },
    };
  };
  const alarmsCli = (role: keyof typeof TOKENS, args: string[]) =>
    gatewayAsync(['alarms', ...args, '--url', `http://127.0.0.1:${httpPort}`], { GATEWAY_TOKEN: TOKENS[role] });
  /** The rules see every reading before the API shows it: once the API shows the value, the engine has evaluated it. */
  const engineHasSeen = (point: keyof typeof REGISTERS, value: number) =>
    expect
      .poll(
        async () =>
          ((await api('viewer', '/api/equipment/B-07')).json as unknown as { points: Array<{ name: string; value: unknown }> }).points.find(
            (p) => p.name === point,
          )?.value,
        { timeout: 5000 },
      )
      .toBe(value);
  const start = async (rules: string[]) => {
    gw = createGateway(parseSite(siteYaml(rules), { env: {} }), silent);
    await gw.start();
  };

  beforeAll(async () => {
    sim = createModbusTcpSimulator({ port: await freePort(), devices: new Map([[1, bank]]) });
    await sim.start();
    const inboxPort = await freePort();
    inbox = createPlatformInbox({ port: inboxPort, secret: SECRET, print: () => {} });
    await inbox.start();
    dataDir = mkdtempSync(join(tmpdir(), 'gw-lifecycle-'));
    httpPort = await freePort();
    const mqttPort = await freePort();
    siteYaml = (rules) =>
      [
        'version: 2',
        `gateway: { id: gw-life, site: life-site, data_dir: ${dataDir} }`,
        `mqtt: { port: ${mqttPort} }`,
        `connections: [{ id: plc, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port()}, timeout: 1s }]`,
        'equipment:',
        '  - { id: B-07, category: boiler, connection: plc, unit_id: 1, poll_interval: 100ms, points: [' +
          Object.entries(REGISTERS)
            .map(([name, k]) => `{ name: ${name}, address: "hr:${k}", type: int16 }`)
            .join(', ') +
          '] }',
        'rules:',
        ...rules,
        'platform:',
        `  url: http://127.0.0.1:${inboxPort}/incidents`,
        `  secret: ${SECRET}`,
        '  reconnect: { initial_delay: 200ms, max_delay: 1s }',
        ...httpLines(httpPort, TOKENS),
        '',
      ].join('\n');
    await start(RULES);
  });
  afterAll(async () => {
    await gw?.stop();
    await inbox?.stop();
    await sim?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('acknowledged, then cleared', async () => {
    set('a', 1);
    await until('raised', () => last('ack-then-clear') === 'raised');
    expect((await api('operator', '/api/alarms/B-07/ack-then-clear/acknowledge', { comment: 'on my way' })).status).toBe(200);
    await until('acknowledged', () => last('ack-then-clear') === 'acknowledged');
    set('a', 0);
    await until('closed', () => last('ack-then-clear') === 'closed');
    expect(seen('ack-then-clear')).toEqual([['raised', 'acknowledged', 'cleared', 'closed']]);
  });

  it('cleared, then acknowledged', async () => {
    set('b', 1);
    await until('raised', () => last('clear-then-ack') === 'raised');
    set('b', 0);
    await until('cleared', () => last('clear-then-ack') === 'cleared');
    expect((await api('operator', '/api/alarms/B-07/clear-then-ack/acknowledge', { comment: 'checked' })).status).toBe(200);
    await until('closed', () => last('clear-then-ack') === 'closed');
    expect(seen('clear-then-ack')).toEqual([['raised', 'cleared', 'acknowledged', 'closed']]);
  });

  it('latched: the acknowledgement once the condition has gone resets it', async () => {
    set('c', 1);
    await until('raised', () => last('latched') === 'raised');
    set('c', 0);
    await engineHasSeen('c', 0);
    await sleep(300);
    expect(last('latched')).toBe('raised');
    expect((await api('operator', '/api/alarms/B-07/latched/acknowledge', { comment: 'reset after purge' })).status).toBe(200);
    await until('closed', () => last('latched') === 'closed');
    expect(seen('latched')).toEqual([['raised', 'acknowledged', 'closed']]);
  });

  it('suppressed by design while open', async () => {
    set('d', 1);
    await until('raised', () => last('suppressed') === 'raised');
    set('idle', 1);
    await until('closed', () => last('suppressed') === 'closed');
    expect(seen('suppressed')).toEqual([['raised', 'cleared', 'closed']]);
  });

  it('out of service: only an admin, only with a comment, audited; through the API and `gateway alarms`', async () => {
    set('e', 1);
    await until('raised', () => last('out-of-service') === 'raised');
    const path = '/api/alarms/B-07/out-of-service/out-of-service';
    expect((await api('viewer', path, { comment: 'x' })).status).toBe(403);
    expect(await api('operator', path, { comment: 'x' })).toEqual({
      status: 403,
      json: { error: 'operator-user is a operator; this needs admin', code: 'GW_HTTP_FORBIDDEN' },
    });
    expect((await api('admin', path, {})).status).toBe(400);
    expect((await api('admin', path, { comment: '   ' })).status).toBe(400);
    expect(last('out-of-service')).toBe('raised');
    const taken = await api('admin', path, { comment: 'pressure transmitter replaced' });
    expect(taken).toMatchObject({
      status: 200,
      json: {
        events: [
          { type: 'out_of_service', state: 'out_of_service', by: 'admin-user', comment: 'pressure transmitter replaced' },
          { type: 'closed', state: 'out_of_service' },
        ],
      },
    });
    expect(await api('admin', path, { comment: 'again' })).toEqual({
      status: 409,
      json: { error: 'B-07/out-of-service is already out of service', code: 'GW_HTTP_CONFLICT' },
    });
    await until('closed', () => last('out-of-service') === 'closed');
    expect(seen('out-of-service')).toEqual([['raised', 'cleared', 'closed']]);
    expect(inbox.incidents.find((i) => i.rule.id === 'out-of-service' && i.type === 'cleared')).toMatchObject({
      by: 'admin-user',
      comment: 'pressure transmitter replaced',
    });
    // Out of service, the alarm raises nothing though its condition holds.
    await sleep(500);
    expect(seen('out-of-service')).toHaveLength(1);

    // The same through the command line: an operator is refused, an admin returns it to service, and
    // the condition that still holds is a new incident, which goes out of service again.
    const [refused, noComment] = await Promise.all([
      alarmsCli('operator', ['in-service', 'B-07/out-of-service']),
      alarmsCli('admin', ['out-of-service', 'B-07/out-of-service']),
    ]);
    expect(refused).toMatchObject({ code: 1, stderr: '403: operator-user is a operator; this needs admin\n' });
    expect(noComment.code).toBe(2);
    expect(noComment.stderr).toMatch(/^gateway alarms out-of-service needs --comment/);
    const back = await alarmsCli('admin', ['in-service', 'B-07/out-of-service', '--comment', 'transmitter back']);
    expect(back).toMatchObject({ code: 0, stdout: 'B-07/out-of-service in_service, now normal\n' });
    await until('a new incident', () => seen('out-of-service').length === 2);
    const list = await alarmsCli('viewer', ['list']);
    expect(list.stdout).toMatch(/^B-07\/out-of-service RED active_unacknowledged since \S+ incident \S+: e is up$/m);
    const again = await alarmsCli('admin', ['out-of-service', 'B-07/out-of-service', '--comment', 'still wrong, calibrating']);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('B-07/out-of-service out_of_service, now out_of_service\nB-07/out-of-service closed, now out_of_service\n');
    await until('the second closed', () => last('out-of-service') === 'closed');
    expect(seen('out-of-service')).toEqual([
      ['raised', 'cleared', 'closed'],
      ['raised', 'cleared', 'closed'],
    ]);

    const journal = join(dataDir, 'audit.jsonl');
    const entries = readFileSync(journal, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { who: string; action: string; target: string; outcome: string; detail?: string });
    expect(entries.filter((x) => x.action === 'out-of-service' || x.action === 'in-service')).toEqual([
      expect.objectContaining({
        who: 'admin-user',
        action: 'out-of-service',
        target: 'B-07/out-of-service',
        outcome: 'done',
        detail: 'pressure transmitter replaced',
      }),
      expect.objectContaining({
        who: 'admin-user',
        action: 'out-of-service',
        target: 'B-07/out-of-service',
        outcome: 'refused: B-07/out-of-service is already out of service',
      }),
      expect.objectContaining({
        who: 'admin-user',
        action: 'in-service',
        target: 'B-07/out-of-service',
        outcome: 'done',
        detail: 'transmitter back',
      }),
      expect.objectContaining({
        who: 'admin-user',
        action: 'out-of-service',
        target: 'B-07/out-of-service',
        outcome: 'done',
        detail: 'still wrong, calibrating',
      }),
    ]);
    expect(verifyJournal(journal)).toMatchObject({ ok: true });
  }, 60_000);

  it('shelved past expiry: shelving ends nothing; the condition that went meanwhile clears after it, and the acknowledgement closes', async () => {
    set('f', 1);
    await until('raised', () => last('shelved') === 'raised');
    // Asked for a minute; the rule's max_shelve holds it to 2 s.
    expect((await api('operator', '/api/alarms/B-07/shelved/shelve', { comment: 'gauge swap', duration_minutes: 1 })).status).toBe(200);
    await until('shelved', () => last('shelved') === 'shelved');
    set('f', 0);
    await engineHasSeen('f', 0);
    expect(last('shelved')).toBe('shelved');
    await until('cleared after the expiry', () => last('shelved') === 'cleared', 5000);
    expect((await api('operator', '/api/alarms/B-07/shelved/acknowledge', { comment: 'gauge back' })).status).toBe(200);
    await until('closed', () => last('shelved') === 'closed');
    expect(seen('shelved')).toEqual([['raised', 'shelved', 'cleared', 'acknowledged', 'closed']]);
  });

  it('rule removed from the site file: closed when the gateway starts without it; the incident nobody handled is reported left open', async () => {
    set('g', 1);
    set('h', 1);
    await until('raised', () => last('removed') === 'raised' && last('left-open') === 'raised');
    await until('the outbox to drain', () => gw.platform!.outbox()!.stats().pending === 0);
    await gw.stop();
    await start(RULES.filter((r) => !r.includes('id: removed,')));
    await until('closed', () => last('removed') === 'closed');
    expect(seen('removed')).toEqual([['raised', 'closed']]);
    expect(inbox.incidents.find((i) => i.rule.id === 'removed' && i.type === 'closed')).toMatchObject({
      comment: 'rule removed from the site file',
    });
    await until('the outbox to drain', () => gw.platform!.outbox()!.stats().pending === 0);
    // Once: a further start does not close it again (its saved state went with the closed).
    await gw.stop();
    await start(RULES.filter((r) => !r.includes('id: removed,')));
    await sleep(1000);
    await until('the outbox to drain', () => gw.platform!.outbox()!.stats().pending === 0);
    expect(seen('removed')).toEqual([['raised', 'closed']]);

    // Every incident ended with exactly one closed, except the one nobody handled.
    const leftOpen = seen('left-open');
    expect(leftOpen).toEqual([['raised']]);
    const open = inbox.openIncidents();
    expect(open).toMatchObject([
      { gatewayId: 'gw-life', site: 'life-site', equipment: 'B-07', rule: 'left-open', last: 'raised', level: 'red' },
    ]);
    expect(inbox.stats()).toMatchObject({ incidentsOpen: 1, incidentsEnded: 8, notFollowed: 0, afterClosed: 0 });
    const closedPerIncident = new Map<string, number>();
    for (const i of inbox.incidents)
      closedPerIncident.set(i.incidentId, (closedPerIncident.get(i.incidentId) ?? 0) + (i.type === 'closed' ? 1 : 0));
    expect([...closedPerIncident.entries()].filter(([id, n]) => n !== 1 && id !== open[0]!.incidentId)).toEqual([]);
    expect(summaryOf(inbox)).toEqual([
      expect.stringMatching(/ incidents accepted, 0 duplicates, 0 refused, 0 seq gaps$/),
      '8 incidents ended, 1 left open',
      'Left open, oldest first:',
      `  since ${open[0]!.since} RED life-site/B-07 left-open incident ${open[0]!.incidentId}, last raised (seq ${open[0]!.lastSeq}, gw-life)`,
    ]);

    // What the gateway sent, closed included, is what the published schema describes.
    const validate = new Ajv({ allowUnionTypes: true }).compile(
      JSON.parse(readFileSync(join(ROOT, 'docs', 'platform-contract.schema.json'), 'utf8')) as object,
    );
    for (const body of inbox.incidents) expect(validate(body), JSON.stringify(validate.errors)).toBe(true);
  });
});
