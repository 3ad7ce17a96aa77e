// The OPC UA driver against the project's elevator server over real OPC UA, secured and not.
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { parseSite } from '../../config/load.js';
import { addTrusted, listCertificates } from '../../drivers/opcua/certs.js';
import { browseEndpoint } from '../../drivers/opcua/browse.js';
import { opcuaDriver } from '../../drivers/opcua/index.js';
import type { OpcuaConnection } from '../../drivers/opcua/schema.js';
import { createElevatorServer, type ElevatorServer, type ElevatorServerOptions } from '../../drivers/opcua/simulator.js';
import type { LabResult } from '../../drivers/common/result.js';
import type { Driver, Reading } from '../../drivers/types.js';
import { gatewayAsync } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';

const silent = pino({ level: 'silent' });
const SCENARIO = { normal: 600_000, trapped: 40_000, ucmp: 5000, power_loss: 15_000, repeat: true };
const POINTS = ['Floor', 'Running', 'DoorOpen', 'Load', 'RunCount'];

describe('OPC UA', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });

  const elevator = async (o: Partial<ElevatorServerOptions> = {}): Promise<ElevatorServer & { pkiDir: string; port: number }> => {
    const pkiDir = mkdtempSync(join(tmpdir(), 'gw-ua-server-'));
    const port = o.port ?? (await freePort());
    const server = createElevatorServer({ port, scenario: SCENARIO, pkiDir, ...o });
    await server.start();
    cleanup.push(() => server.stop());
    return Object.assign(server, { pkiDir, port });
  };
  const serverCertificate = (s: { pkiDir: string }) => join(s.pkiDir, 'server', 'own', 'certs', 'certificate.pem');

  const siteYaml = (
    endpoint: string,
    dataDir: string,
    connection: string,
    points = POINTS.map((p) => `{ name: ${p.toLowerCase()}, node: "ns=1;s=Lift3.${p}" }`),
    equipment = '',
  ) => `version: 1
gateway: { id: g, site: s, data_dir: ${dataDir} }
connections:
  - { id: lift, type: opcua, endpoint: "${endpoint}", request_timeout: 3s, reconnect: { initial_delay: 200ms, max_delay: 1s }${connection ? `, ${connection}` : ''} }
equipment:
  - { id: L-3, category: elevator, connection: lift, poll_interval: 200ms${equipment}, points: [${points.join(', ')}] }
`;

  const run = async (yaml: string, dataDir: string) => {
    const cfg = parseSite(yaml, { env: {} });
    const readings: Reading[] = [];
    const driver: Driver = opcuaDriver.create(cfg.connections[0]!, cfg.equipment, {
      log: silent,
      sink: (b) => readings.push(...b),
      dataDir,
    });
    cleanup.push(() => driver.stop());
    await driver.init();
    await driver.start();
    const good = (point: string, since = 0) => readings.filter((r) => r.point === point && r.quality === 'good' && r.ts >= since);
    return { driver, readings, good };
  };

  /** A driver for one lab analyzer on the simulator (security None), collecting the results it hands over. */
  const labDriver = async (server: ElevatorServer, equipment: string) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-ua-lab-'));
    const yaml = `version: 1
gateway: { id: g, site: s, data_dir: ${dataDir} }
connections:
  - { id: lab, type: opcua, endpoint: "${server.endpoint()}", security_mode: None, request_timeout: 3s, reconnect: { initial_delay: 200ms, max_delay: 1s } }
equipment:
${equipment}`;
    const cfg = parseSite(yaml, { env: {} });
    const results: LabResult[] = [];
    const counters = new Map<string, unknown>();
    const driver: Driver = opcuaDriver.create(cfg.connections[0]!, cfg.equipment, {
      log: silent,
      sink: () => {},
      results: (r) => void results.push(...r),
      counters: { get: (k) => counters.get(k), save: (k, v) => void counters.set(k, v) },
      dataDir,
    });
    cleanup.push(() => driver.stop());
    await driver.init();
    await driver.start();
    return { driver, results };
  };

  it.each([
    ['None', 'None'],
    ['SignAndEncrypt', 'Basic256Sha256'],
    ['Sign', 'Aes128_Sha256_RsaOaep'],
    ['SignAndEncrypt', 'Aes256_Sha256_RsaPss'],
  ])('subscribes with security %s / %s and reads what the elevator reports', async (mode, policy) => {
    const server = await elevator();
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-ua-'));
    addTrusted(join(dataDir, 'pki'), serverCertificate(server));
    const { good, driver } = await run(siteYaml(server.endpoint(), dataDir, `security_mode: ${mode}, security_policy: ${policy}`), dataDir);
    await expect.poll(() => POINTS.every((p) => good(p.toLowerCase()).length > 0), { timeout: 10_000 }).toBe(true);
    const floor = good('floor').at(-1)!;
    expect(floor.value).toBe(server.stateAt(floor.sourceTs ?? floor.ts).floor);
    expect(typeof floor.sourceTs).toBe('number');
    expect(typeof good('running').at(-1)!.value).toBe('boolean');
    // The first values come from a Read; the subscription follows.
    await expect.poll(() => driver.stats!().monitoredItems, { timeout: 10_000 }).toBe(POINTS.length);
    expect(server.monitoredItemCount()).toBe(POINTS.length);
  });

  it('refuses an unknown server certificate, files it under rejected/, and connects once it is trusted', async () => {
    const server = await elevator({ security: 'secure' });
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-ua-'));
    const yaml = siteYaml(server.endpoint(), dataDir, 'security_mode: SignAndEncrypt');
    const siteFile = join(dataDir, 'site.yaml');
    writeFileSync(siteFile, yaml);
    const { readings, good } = await run(yaml, dataDir);
    await expect
      .poll(() => readings.some((r) => r.quality === 'bad' && /BadCertificateUntrusted/.test(r.reason ?? '')), { timeout: 10_000 })
      .toBe(true);
    expect(good('floor')).toHaveLength(0);
    const rejected = listCertificates(join(dataDir, 'pki')).filter((c) => c.status === 'rejected');
    expect(rejected).toHaveLength(1);

    const list = await gatewayAsync(['certs', 'list', '-c', siteFile]);
    expect(list.stdout).toContain(`rejected ${rejected[0]!.thumbprint}`);
    const trust = await gatewayAsync(['certs', 'trust', rejected[0]!.thumbprint.slice(0, 12), '-c', siteFile]);
    expect(trust.code).toBe(0);
    expect(trust.stdout).toContain(`Trusted ${rejected[0]!.thumbprint}`);
    // The decision is in the audit journal, with who made it.
    const journal = readFileSync(join(dataDir, 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; target: string; who: string; outcome: string });
    expect(journal).toMatchObject([
      { action: 'certificate trust', target: rejected[0]!.thumbprint, who: expect.stringMatching(/^os:/), outcome: 'done' },
    ]);
    const since = Date.now();
    await expect.poll(() => good('floor', since).length, { timeout: 15_000 }).toBeGreaterThan(0);
  });

  it('comes back after a server restart within 10 s, without duplicate monitored items', async () => {
    const server = await elevator();
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-ua-'));
    addTrusted(join(dataDir, 'pki'), serverCertificate(server));
    const { readings, good, driver } = await run(siteYaml(server.endpoint(), dataDir, 'security_mode: SignAndEncrypt'), dataDir);
    await expect.poll(() => server.monitoredItemCount(), { timeout: 10_000 }).toBe(POINTS.length);

    await server.stop();
    await expect
      .poll(() => readings.some((r) => r.point === 'floor' && r.quality === 'bad' && r.reason === 'connection lost'), { timeout: 10_000 })
      .toBe(true);
    const restarted = createElevatorServer({ port: server.port, scenario: SCENARIO, pkiDir: server.pkiDir });
    await restarted.start();
    cleanup.push(() => restarted.stop());
    const back = Date.now();
    await expect.poll(() => good('floor', back).length, { timeout: 10_000 }).toBeGreaterThan(0);
    // Values keep changing through the subscription, not only the read after reconnection.
    await expect.poll(() => restarted.monitoredItemCount(), { timeout: 10_000 }).toBe(POINTS.length);
    await new Promise((r) => setTimeout(r, 1500));
    expect(restarted.monitoredItemCount()).toBe(POINTS.length);
    expect(driver.stats!().reconnections).toBeGreaterThanOrEqual(1);
  });

  it('marks a NodeId or browse path that does not exist bad, and keeps the other points', async () => {
    const server = await elevator();
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-ua-'));
    const points = [
      '{ name: floor, node: "ns=1;s=Lift3.Floor" }',
      '{ name: ghost, node: "ns=1;s=Lift3.Ghost" }',
      '{ name: by_path, node: "/1:Lift3/1:Load" }',
      '{ name: lost_path, node: "/1:Lift3/1:Nowhere" }',
      '{ name: load, node: "ns=1;s=Lift3.Load" }',
    ];
    const { readings, good } = await run(siteYaml(server.endpoint(), dataDir, 'security_mode: None', points), dataDir);
    await expect.poll(() => good('floor').length > 0 && good('by_path').length > 0, { timeout: 10_000 }).toBe(true);
    const last = (p: string) => readings.filter((r) => r.point === p).at(-1)!;
    expect([last('ghost').quality, last('ghost').reason, last('ghost').value]).toEqual(['bad', 'BadNodeIdUnknown', null]);
    expect([last('lost_path').quality, last('lost_path').reason]).toEqual(['bad', 'BadNoMatch']);
    expect(last('by_path').value).toBe(last('load').value);

    // A sensor that breaks: bad with the server's status, never a number.
    server.breakVariable('load', true);
    await expect.poll(() => last('load').reason, { timeout: 5000 }).toBe('BadSensorFailure');
    expect(last('load').value).toBeNull();
  });

  it("reads a lab analyzer's result nodes when its counter changes (subscription): each result once, with its sample id", async () => {
    const server = await elevator({ labAnalyzer: 'LA1' });
    const { driver, results } = await labDriver(
      server,
      `  - id: LA-1
    category: lab_analyzer
    connection: lab
    poll_interval: 100ms
    points: [{ name: result_counter, node: "ns=1;s=LA1.ResultCounter" }]
    results:
      trigger: result_counter
      sample_id: { node: "ns=1;s=LA1.SampleId" }
      analytes:
        - { name: GLU, node: "ns=1;s=LA1.GLU", unit: mmol/L, reference: { lo: 3.9, hi: 6.1 } }
        - { name: CHOL, node: "ns=1;s=LA1.CHOL", unit: mmol/L }
`,
    );
    await expect.poll(() => driver.stats!().monitoredItems, { timeout: 10_000 }).toBe(1);
    const produced = [];
    for (let k = 0; k < 3; k++) {
      produced.push(server.produceResult());
      await expect.poll(() => results.length, { timeout: 5000 }).toBe(2 * (k + 1));
    }
    expect(results.map((r) => [r.resultId, r.sampleId, r.analyte, r.value])).toEqual(
      produced.flatMap((p) => [
        [`LA-1:0.${p.counter}:GLU`, p.sampleId, 'GLU', p.values.GLU],
        [`LA-1:0.${p.counter}:CHOL`, p.sampleId, 'CHOL', p.values.CHOL],
      ]),
    );
    expect(results.filter((r) => r.analyte === 'GLU').every((r) => r.flags.length === 1)).toBe(true);
  });

  it('takes the results of a LADS device when a Result object appears in its ResultSet: each once, with sample id, unit, operator and time', async () => {
    const server = await elevator({ lads: 'Analyzer' });
    const { driver, results } = await labDriver(
      server,
      `  - id: LA-5
    category: lab_analyzer
    connection: lab
    mode: poll
    poll_interval: 200ms
    points: [{ name: floor, node: "ns=1;s=Lift3.Floor" }]
    lads: { result_set: "ns=1;s=Analyzer.FU1.ProgramManager.ResultSet" }
`,
    );
    const first = server.completeRun('S-7001', { GLU: 5.4, CHOL: 4.1 });
    await expect.poll(() => results.length, { timeout: 10_000 }).toBe(2);
    // A run still going (not stopped) is left until it stops; the next finished run is taken.
    server.completeRun('S-7002', { GLU: 7.9 }, { stopped: false });
    const third = server.completeRun('S-7003', { GLU: 6.0 });
    await expect.poll(() => results.length, { timeout: 10_000 }).toBe(3);
    await new Promise((r) => setTimeout(r, 600));
    expect(results).toHaveLength(3);
    expect(results.map((r) => [r.resultId, r.sampleId, r.analyte, r.value, r.unit, r.operator, r.method])).toEqual([
      [`LA-5:${first.run}:S-7001/GLU`, 'S-7001', 'GLU', 5.4, 'mmol/L', 'lab-op', first.run],
      [`LA-5:${first.run}:S-7001/CHOL`, 'S-7001', 'CHOL', 4.1, 'mmol/L', 'lab-op', first.run],
      [`LA-5:${third.run}:S-7003/GLU`, 'S-7003', 'GLU', 6.0, 'mmol/L', 'lab-op', third.run],
    ]);
    expect(Date.parse(results[0]!.resultAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(driver.stats!().ladsResults).toBe(3);
  });

  it('refuses a LADS result with a value over max_value_size once, and takes the next', async () => {
    const server = await elevator({ lads: 'Analyzer' });
    const { driver, results } = await labDriver(
      server,
      `  - id: LA-6
    category: lab_analyzer
    connection: lab
    mode: poll
    poll_interval: 200ms
    points: [{ name: floor, node: "ns=1;s=Lift3.Floor" }]
    lads: { result_set: "ns=1;s=Analyzer.FU1.ProgramManager.ResultSet" }
`,
    );
    server.completeRun('S'.repeat(100_000), { GLU: 5.4 });
    await expect.poll(() => driver.stats!().ladsErrors, { timeout: 10_000 }).toBe(1);
    const good = server.completeRun('S-7101', { GLU: 6.1 });
    await expect.poll(() => results.length, { timeout: 10_000 }).toBe(1);
    await new Promise((r) => setTimeout(r, 600));
    expect(results.map((r) => [r.resultId, r.value])).toEqual([[`LA-6:${good.run}:S-7101/GLU`, 6.1]]);
    // Refused for good: not read again at every poll.
    expect(driver.stats!().ladsErrors).toBe(1);
  });

  it.each(['subscription', 'poll'])(
    'makes a value over max_value_size a bad reading with its size, never a value, and keeps the other points (%s)',
    async (mode) => {
      // Huge: 8 MiB, over this client's max_message_size (4 MiB) and under the server's own limit (16 MiB).
      const server = await elevator({ oversized: { bytes: 1024 * 1024, hugeBytes: 8 * 1024 * 1024 } });
      const dataDir = mkdtempSync(join(tmpdir(), 'gw-ua-'));
      const kinds = ['String', 'ByteString', 'DoubleArray', 'Xml', 'LocalizedText', 'Struct', 'Huge'];
      const points = [
        '{ name: floor, node: "ns=1;s=Lift3.Floor" }',
        '{ name: load, node: "ns=1;s=Lift3.Load" }',
        ...kinds.map((k) => `{ name: big_${k.toLowerCase()}, node: "ns=1;s=Lift3.Oversized.${k}" }`),
      ];
      const rss = process.memoryUsage().rss;
      const { readings, good, driver } = await run(
        siteYaml(server.endpoint(), dataDir, 'security_mode: None, max_message_size: 4MiB', points, `, mode: ${mode}`),
        dataDir,
      );
      const last = (p: string) => readings.filter((r) => r.point === p).at(-1);
      await expect.poll(() => kinds.every((k) => last(`big_${k.toLowerCase()}`)), { timeout: 15_000 }).toBe(true);
      expect(last('big_string')).toMatchObject({ quality: 'bad', value: null, reason: 'value of 1048576 bytes, at most 65536' });
      expect(last('big_bytestring')).toMatchObject({ quality: 'bad', value: null, reason: 'value of 1048576 bytes, at most 65536' });
      expect(last('big_doublearray')).toMatchObject({ quality: 'bad', value: null, reason: 'value of 1048576 bytes, at most 65536' });
      for (const k of ['Xml', 'LocalizedText', 'Struct'])
        expect(last(`big_${k.toLowerCase()}`)).toMatchObject({
          quality: 'bad',
          value: null,
          reason: expect.stringMatching(/^value of \d{7} bytes, at most 65536$/),
        });
      // Over max_message_size: the server may not send it at all (it honours the client's Hello).
      expect(last('big_huge')).toMatchObject({
        quality: 'bad',
        value: null,
        reason: expect.stringMatching(
          /^(BadTcpMessageTooLarge: the value is over max_message_size \(4194304 bytes\)|BadResponseTooLarge)$/,
        ),
      });
      expect(readings.filter((r) => r.point.startsWith('big_')).every((r) => r.value === null && r.quality === 'bad')).toBe(true);
      // The same equipment's other points are good, and keep coming.
      const since = Date.now();
      await expect
        .poll(() => good('floor', since).length > 0 || (mode === 'subscription' && good('floor').length > 0), { timeout: 5000 })
        .toBe(true);
      await expect.poll(() => good('load', since).length, { timeout: 5000 }).toBeGreaterThan(0);
      expect(driver.stats!().oversizedValues).toBeGreaterThanOrEqual(6);
      expect(driver.stats!().connected).toBe(1);
      // The client never held the 8 MiB value (the server and this test share the process).
      expect(process.memoryUsage().rss - rss).toBeLessThan(200 * 1024 * 1024);
    },
  );

  it('browses a server with oversized values: their size is shown, not the value', async () => {
    const server = await elevator({ oversized: { bytes: 1024 * 1024 } });
    const conn = parseSite(siteYaml(server.endpoint(), mkdtempSync(join(tmpdir(), 'gw-ua-')), 'security_mode: None'), { env: {} })
      .connections[0] as unknown as OpcuaConnection;
    const lines = await browseEndpoint(conn, mkdtempSync(join(tmpdir(), 'gw-ua-pki-')), {
      node: 'ns=1;s=Lift3',
      depth: 1,
      asPoints: false,
      log: silent,
    });
    expect(lines.find((l) => l.startsWith('ns=1;s=Lift3.Oversized.String '))).toMatch(/"\(value of 1048576 bytes, at most 65536\)"/);
    expect(lines.find((l) => l.startsWith('ns=1;s=Lift3.Floor '))).toMatch(/Int16\s+\d+/);
    expect(lines.join('\n').length).toBeLessThan(100_000);
  });

  it('reads with one Read request per poll in poll mode', async () => {
    const server = await elevator();
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-ua-'));
    const { good, driver } = await run(siteYaml(server.endpoint(), dataDir, 'security_mode: None', undefined, ', mode: poll'), dataDir);
    await expect.poll(() => driver.stats!().connected, { timeout: 10_000 }).toBe(1);
    const since = Date.now();
    await new Promise((r) => setTimeout(r, 2000));
    expect(good('runcount', since).length).toBeGreaterThanOrEqual(8); // a value every 200 ms, changed or not
    expect(driver.stats!().monitoredItems).toBe(0);
    expect(server.monitoredItemCount()).toBe(0);
  });

  it('says clearly when the password is wrong or the endpoint is not OPC UA, and keeps running', async () => {
    const server = await elevator({ users: { gateway: 's3cret' }, allowAnonymous: false });
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-ua-'));
    const wrong = await run(
      siteYaml(server.endpoint(), dataDir, 'security_mode: None, user: { type: username, username: gateway, password: nope }'),
      dataDir,
    );
    await expect
      .poll(() => wrong.readings.some((r) => /^session refused: .*BadUserAccessDenied/.test(r.reason ?? '')), { timeout: 10_000 })
      .toBe(true);
    const right = await run(
      siteYaml(server.endpoint(), dataDir, 'security_mode: None, user: { type: username, username: gateway, password: s3cret }'),
      dataDir,
    );
    await expect.poll(() => right.good('floor').length, { timeout: 10_000 }).toBeGreaterThan(0);

    // Mosquitto's port: something answers, but not OPC UA.
    const mosquitto = inject('mosquitto');
    const notUa = await run(siteYaml(`opc.tcp://127.0.0.1:${mosquitto.port}`, dataDir, 'security_mode: None'), dataDir);
    await expect.poll(() => notUa.readings.some((r) => /^not connected: /.test(r.reason ?? '')), { timeout: 15_000 }).toBe(true);
    expect(notUa.good('floor')).toHaveLength(0);
  });
});
