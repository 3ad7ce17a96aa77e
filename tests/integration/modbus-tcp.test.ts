// The Modbus driver against the project's simulator over real Modbus TCP.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSite } from '../../config/load.js';
import { modbusTcpDriver } from '../../drivers/modbus/index.js';
import {
  BoilerDevice,
  BOILER_REGISTER_MAP,
  createModbusTcpSimulator,
  RegisterBank,
  type ModbusSimulator,
} from '../../drivers/modbus/simulator.js';
import type { Driver, Reading } from '../../drivers/types.js';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { subscribe, type Subscriber } from '../helpers/mqtt.js';
import { decodingCases, expectCases } from '../helpers/modbus-cases.js';
import { freePort } from '../helpers/processes.js';

const silent = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Modbus TCP', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });
  const simulator = async (devices: Map<number, RegisterBank | BoilerDevice>): Promise<ModbusSimulator> => {
    const sim = createModbusTcpSimulator({ devices });
    await sim.start();
    cleanup.push(() => sim.stop());
    return sim;
  };
  const driverFor = async (yaml: string, sink: (b: Reading[]) => void): Promise<Driver> => {
    const cfg = parseSite(yaml, { env: {} });
    const d = modbusTcpDriver.create(cfg.connections[0]!, cfg.equipment, { log: silent, sink, dataDir: '/nonexistent' });
    await d.init();
    await d.start();
    cleanup.push(() => d.stop());
    return d;
  };

  it('reads back exactly what the device holds, for every type and byte order', async () => {
    const { writes, points, cases } = decodingCases();
    const bank = new RegisterBank();
    for (const w of writes) bank.set(w.area, w.offset, w.words);
    const sim = await simulator(new Map([[5, bank]]));
    const batches: Reading[][] = [];
    await driverFor(
      `version: 1
gateway: { id: g, site: s }
connections: [{ id: plc, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port()}, timeout: 500ms }]
equipment:
  - { id: dev, category: other, connection: plc, unit_id: 5, poll_interval: 5s, points: [${points.join(', ')}] }
`,
      (b) => batches.push(b),
    );
    await expect.poll(() => batches.length, { timeout: 5000 }).toBeGreaterThan(0);
    expectCases(batches[0]!, cases);
  });

  it('polls a point with its own interval on its own grid', async () => {
    const sim = await simulator(new Map([[1, new RegisterBank(100)]]));
    const readings: Reading[] = [];
    await driverFor(
      `version: 1
gateway: { id: g, site: s }
connections: [{ id: plc, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port()} }]
equipment:
  - { id: D-1, category: other, connection: plc, unit_id: 1, poll_interval: 200ms, points: [{ name: fast, address: "hr:0", type: uint16 }, { name: slow, address: "hr:50", type: uint16, poll_interval: 1s }] }
`,
      (b) => readings.push(...b),
    );
    await sleep(2100);
    const count = (point: string) => readings.filter((r) => r.point === point && r.quality === 'good').length;
    expect(count('fast')).toBeGreaterThanOrEqual(10);
    expect(count('fast')).toBeLessThanOrEqual(12);
    expect(count('slow')).toBeGreaterThanOrEqual(2); // at 0, 1 and (unless late) 2 s
    expect(count('slow')).toBeLessThanOrEqual(3);
  });

  it('carries max_in_flight requests at once on one TCP connection', async () => {
    const sim = await simulator(new Map([1, 2, 3].map((u) => [u, new RegisterBank(100)] as const)));
    for (const u of [1, 2, 3]) sim.control(u).delayMs = 100;
    const site = (maxInFlight: number) => `version: 1
gateway: { id: g, site: s }
connections: [{ id: plc, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port()}, timeout: 1s, max_in_flight: ${maxInFlight} }]
equipment:
${[1, 2, 3].map((u) => `  - { id: D-${u}, category: other, connection: plc, unit_id: ${u}, poll_interval: 200ms, points: [{ name: v, address: "hr:0", type: uint16 }] }`).join('\n')}
`;
    // Three devices that answer in 100 ms, each polled every 200 ms: one at a time they take 300 ms
    // a round and overrun; three at once they keep up.
    for (const [maxInFlight, overruns] of [
      [3, false],
      [1, true],
    ] as const) {
      const readings: Reading[] = [];
      const d = await driverFor(site(maxInFlight), (b) => readings.push(...b));
      await sleep(1500);
      await d.stop();
      expect(d.stats!().overruns! > 0, `max_in_flight ${maxInFlight}`).toBe(overruns);
      if (!overruns) expect(readings.filter((r) => r.equipment === 'D-3' && r.quality === 'good').length).toBeGreaterThanOrEqual(7);
    }
  });

  it('reads the boiler simulator register map into engineering values', async () => {
    const boiler = new BoilerDevice({ normal: 60_000, hazard: 30_000, recovery: 30_000, repeat: true }, 3);
    const sim = await simulator(new Map([[1, boiler]]));
    const batches: Reading[][] = [];
    await driverFor(
      `version: 1
gateway: { id: g, site: s }
connections: [{ id: plc, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port()} }]
equipment:
  - { id: B-07, code: "10003101012019000117", connection: plc, unit_id: 1, poll_interval: 200ms, points: ${JSON.stringify(BOILER_REGISTER_MAP)} }
`,
      (b) => batches.push(b),
    );
    await expect.poll(() => batches.length, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
    const last = batches.at(-1)!;
    const v = Object.fromEntries(last.map((r) => [r.point, r.value]));
    const s = boiler.stateAt(last[0]!.ts);
    expect(last.map((r) => r.point).sort()).toEqual(BOILER_REGISTER_MAP.map((p) => p.name).sort());
    expect(last.filter((r) => r.quality !== 'good')).toEqual([]);
    expect(v.steam_pressure as number).toBeCloseTo(s.steam_pressure, 1);
    expect(v.drum_level as number).toBeGreaterThan(s.drum_level - 15);
    expect(v.drum_level as number).toBeLessThan(s.drum_level + 15);
    expect(v.flame).toBe(s.flame);
    expect(v.serial_number).toBe('B07-2019-000117');
    expect(typeof v.steam_total).toBe('number');
  });

  describe('one connection, three devices: a failing one never stalls the others', () => {
    const SITE = (port: number, mqttPort: number) => `version: 1
gateway: { id: g, site: iso, data_dir: /tmp/gw-iso }
mqtt: { port: ${mqttPort} }
connections:
  - id: plc
    type: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    timeout: 300ms
    failures_before_backoff: 2
    backoff_poll_interval: 2s
    reconnect: { initial_delay: 100ms, max_delay: 400ms }
equipment:
${[1, 2, 3].map((u) => `  - { id: D-${u}, category: pressure_vessel, connection: plc, unit_id: ${u}, poll_interval: 200ms, points: [{ name: pressure, address: "hr:0", type: uint16, scale: 0.01 }, { name: level, address: "hr:10", type: int16 }, { name: valve, address: "co:0" }] }`).join('\n')}
`;

    let gw: Gateway;
    let sim: ModbusSimulator;
    let sub: Subscriber;
    const readings: Reading[] = [];
    const goodCount = (eq: string, since: number) =>
      readings.filter((r) => r.equipment === eq && r.quality === 'good' && r.point === 'pressure' && r.ts >= since).length;
    const lastStatus = (eq: string) => {
      const m = sub.messages.filter((x) => x.topic === `gw/iso/${eq}/status`).at(-1);
      return m && (JSON.parse(m.payload) as { state: string; reason?: string });
    };

    const setup = async () => {
      const banks = new Map([1, 2, 3].map((u) => [u, new RegisterBank(100)] as const));
      for (const [u, b] of banks) b.set('hr', 0, [u * 100]);
      sim = await simulator(banks);
      const mqttPort = await freePort();
      gw = createGateway(parseSite(SITE(sim.port(), mqttPort), { env: {} }), silent);
      gw.pipeline.onBatch((b) => readings.push(...b));
      await gw.start();
      cleanup.push(() => gw.stop());
      sub = await subscribe(`mqtt://127.0.0.1:${mqttPort}`, 'gw/iso/+/status');
      cleanup.push(() => sub.close());
      await expect.poll(() => goodCount('D-3', 0), { timeout: 5000 }).toBeGreaterThan(2);
    };

    it('a device that stops answering', async () => {
      await setup();
      sim.control(2).paused = true;
      const t0 = Date.now();
      await sleep(2000);
      // The others keep their rate: about 10 polls in 2 s at 200 ms (7 on a loaded CI machine; waiting
      // on the dead device's timeouts would leave about half).
      expect(goodCount('D-1', t0)).toBeGreaterThanOrEqual(7);
      expect(goodCount('D-3', t0)).toBeGreaterThanOrEqual(7);
      expect(goodCount('D-2', t0 + 100)).toBe(0);
      // It is still reported at its poll rate, as bad with the reason, not left out.
      const dead = readings.filter((r) => r.equipment === 'D-2' && r.ts > t0 + 500);
      expect(dead.length).toBeGreaterThan(0);
      expect(dead.filter((r) => r.quality !== 'bad' || r.reason !== 'timeout')).toEqual([]);
      await expect.poll(() => lastStatus('D-2')).toEqual({ state: 'offline', reason: 'timeout', ts: expect.any(Number) });
      expect(lastStatus('D-1')?.state).toBe('online');
      // Backed off: after two failures it is tried every 2 s, not every 200 ms.
      expect(gw.driverStats()[0]!.stats.backedOffUnits).toBe(1);
      const failures = gw.driverStats()[0]!.stats.failures!;
      await sleep(1000);
      expect(gw.driverStats()[0]!.stats.failures! - failures).toBeLessThanOrEqual(1);

      sim.control(2).paused = false;
      const back = Date.now();
      await expect.poll(() => goodCount('D-2', back), { timeout: 4000 }).toBeGreaterThan(0);
      await expect.poll(() => lastStatus('D-2')?.state).toBe('online');
    });

    it('a device that answers with exceptions, and a connection that is closed', async () => {
      await setup();
      sim.control(3).exception = 4;
      await expect
        .poll(() => lastStatus('D-3'))
        .toEqual({ state: 'offline', reason: 'exception 4: server device failure', ts: expect.any(Number) });
      const t0 = Date.now();
      await sleep(1000);
      expect(goodCount('D-1', t0)).toBeGreaterThanOrEqual(4);
      sim.control(3).exception = undefined;
      await expect.poll(() => lastStatus('D-3')?.state).toBe('online');

      // The device closes every connection: the driver reconnects at once, between two polls.
      const opens = gw.driverStats()[0]!.stats.connects!;
      sim.dropConnections();
      await expect.poll(() => gw.driverStats()[0]!.stats.connects, { timeout: 3000 }).toBe(opens + 1);
      const again = Date.now();
      await expect.poll(() => goodCount('D-1', again) > 0 && goodCount('D-3', again) > 0, { timeout: 3000 }).toBe(true);

      // The device is gone for a second: every unit reads bad with the reason, then all come back.
      const port = sim.port();
      const devices = sim.devicesForTest;
      await sim.stop();
      const down = Date.now();
      await expect
        .poll(
          () =>
            readings.some((r) => r.equipment === 'D-1' && r.ts > down && r.quality === 'bad' && /^not connected: /.test(r.reason ?? '')),
          { timeout: 3000 },
        )
        .toBe(true);
      await expect.poll(() => lastStatus('D-2')?.state).toBe('offline');
      const restarted = createModbusTcpSimulator({ port, devices });
      await restarted.start();
      cleanup.push(() => restarted.stop());
      const back = Date.now();
      await expect
        .poll(() => goodCount('D-1', back) > 0 && goodCount('D-2', back) > 0 && goodCount('D-3', back) > 0, { timeout: 5000 })
        .toBe(true);
    });

    it('a device that reports an address it does not have affects only that request', async () => {
      await setup();
      // Unit 1 becomes a device with five registers: the hr:0-10 request gets exception 2, the coil read still works.
      const small = new RegisterBank(5);
      sim.devicesForTest.set(1, small);
      const swapped = Date.now();
      await expect.poll(() => lastStatus('D-1')?.state, { timeout: 3000 }).toBe('degraded');
      await sleep(300);
      const recent = readings.filter((r) => r.equipment === 'D-1' && r.ts > swapped).slice(-3);
      expect(Object.fromEntries(recent.map((r) => [r.point, [r.quality, r.reason ?? r.value]]))).toEqual({
        pressure: ['bad', 'exception 2: illegal data address'],
        level: ['bad', 'exception 2: illegal data address'],
        valve: ['good', false],
      });
      // An exception is an answer: the unit is not backed off, and the others are untouched.
      expect(goodCount('D-2', swapped + 250)).toBeGreaterThan(0);
    });
  });
});
