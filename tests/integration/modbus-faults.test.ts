// Devices that misbehave the way field devices (and hostile peers) do, over real Modbus TCP and over
// RTU on a socat serial pair: no value is ever derived from a faulty answer, the reason is precise,
// the link heals without the device's help, and the healthy device on the same link keeps its rate.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { SerialPort } from 'serialport';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, type ExpectStatic, it } from 'vitest';
import { parseSite } from '../../config/load.js';
import { encode } from '../../drivers/modbus/codec.js';
import { modbusRtuDriver, modbusTcpDriver } from '../../drivers/modbus/index.js';
import {
  createModbusRtuSimulator,
  createModbusTcpSimulator,
  type Fault,
  type ModbusSimulator,
  RegisterBank,
} from '../../drivers/modbus/simulator.js';
import type { Driver, DriverDefinition, Reading } from '../../drivers/types.js';
import { startPtyPair } from '../helpers/socat.js';

const silent = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Unit 1 misbehaves, unit 2 is healthy; both hold the same registers, bits set so `false` is a lie. */
function bank(): RegisterBank {
  const b = new RegisterBank(200);
  b.set('hr', 0, encode(12.5, 'float32', 'ABCD'));
  b.set('hr', 2, [0b101]); // bits 0 and 2 set
  b.set('co', 0, [1, 1, 0, 1]);
  b.set('di', 0, [1]);
  return b;
}

const POINTS = `[{ name: pressure, address: "hr:0", type: float32 }, { name: burner_on, address: "hr:2.0", type: bool }, { name: interlock_tripped, address: "hr:2.2", type: bool }, { name: valve, address: "co:3" }, { name: flame, address: "di:0" }]`;
const TRUTH = { pressure: 12.5, burner_on: true, interlock_tripped: true, valve: true, flame: true };

interface Rig {
  sim: ModbusSimulator;
  driver: Driver;
  readings: Reading[];
}

/** What a helper needs of its test: its own expect and cleanup (the fault cases run concurrently). */
interface T {
  expect: ExpectStatic;
  onTestFinished(fn: () => unknown): void;
}

describe('Modbus devices that misbehave', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });
  /** The sequential tests' context. */
  const serial: T = { expect, onTestFinished: (fn) => cleanup.push(async () => fn()) };

  /** The driver of one connection `c` (YAML flow map) and its equipment, started, with what it reads. */
  const drive = async (definition: DriverDefinition, connection: string, equipment: string[], t: T = serial) => {
    const cfg = parseSite(
      `version: 1\ngateway: { id: g, site: s }\nconnections: [${connection}]\nequipment:\n${equipment.map((e) => `  - ${e}\n`).join('')}`,
      { env: {} },
    );
    const readings: Reading[] = [];
    const driver = definition.create(cfg.connections[0]!, cfg.equipment, {
      log: silent,
      sink: (b) => readings.push(...b),
      dataDir: '/nonexistent',
    });
    await driver.init();
    await driver.start();
    t.onTestFinished(() => driver.stop());
    return { driver, readings };
  };

  const start = async (t: T, definition: DriverDefinition, connection: string, sim: ModbusSimulator): Promise<Rig> => {
    const { driver, readings } = await drive(
      definition,
      connection,
      [
        `{ id: FAULTY, category: boiler, connection: c, unit_id: 1, poll_interval: 200ms, points: ${POINTS} }`,
        `{ id: HEALTHY, category: boiler, connection: c, unit_id: 2, poll_interval: 200ms, points: ${POINTS} }`,
      ],
      t,
    );
    await t.expect
      .poll(() => ['FAULTY', 'HEALTHY'].every((eq) => readings.some((r) => r.equipment === eq && r.quality === 'good')), { timeout: 5000 })
      .toBe(true);
    return { sim, driver, readings };
  };

  const tcpRig = async (t: T) => {
    const sim = createModbusTcpSimulator({
      devices: new Map([
        [1, bank()],
        [2, bank()],
      ]),
    });
    await sim.start();
    t.onTestFinished(() => sim.stop());
    return start(
      t,
      modbusTcpDriver,
      `{ id: c, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port()}, timeout: 300ms, failures_before_backoff: 2, backoff_poll_interval: 1500ms, reconnect: { initial_delay: 100ms, max_delay: 300ms } }`,
      sim,
    );
  };

  const rtuRig = async (t: T) => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-rtu-faults-'));
    t.onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const pty = await startPtyPair(dir);
    t.onTestFinished(() => pty.stop());
    const sim = createModbusRtuSimulator({
      path: pty.b,
      baudRate: 19200,
      devices: new Map([
        [1, bank()],
        [2, bank()],
      ]),
    });
    await sim.start();
    t.onTestFinished(() => sim.stop());
    return start(
      t,
      modbusRtuDriver,
      `{ id: c, type: modbus-rtu, path: ${pty.a}, baud_rate: 19200, timeout: 300ms, failures_before_backoff: 2, backoff_poll_interval: 1500ms, reconnect: { initial_delay: 100ms, max_delay: 300ms } }`,
      sim,
    );
  };

  /** Switches the fault on, checks what was published while it lasted, switches it off, checks recovery. */
  const exercise = async ({ expect }: T, rig: Rig, fault: Fault, reason: RegExp, rtu = false) => {
    const { sim, readings, driver } = rig;
    sim.control(1).fault = fault;
    const on = Date.now();
    await sleep(3000);
    const during = readings.filter((r) => r.equipment === 'FAULTY' && r.ts > on);
    expect(during.length, 'polls went on').toBeGreaterThan(0);
    for (const r of during) {
      if (fault === 'echo' && rtu) {
        // The request handed back first is skipped: the answer after it is read.
        expect([r.quality, r.value]).toEqual(['good', TRUTH[r.point as keyof typeof TRUTH]]);
      } else if (fault === 'duplicate' && r.quality === 'good') {
        // A repeated answer taken once: the values stay true, the copy is dropped.
        expect(r.value).toBe(TRUTH[r.point as keyof typeof TRUTH]);
      } else if (fault === 'duplicate') {
        // RTU: two answers in the buffer at once cannot be told apart: neither is taken. On a loaded
        // machine the copy can also arrive late, in the window of a later request (to this unit or
        // the other, or to another function of the same unit): refused as what it then looks like, never taken.
        expect(rtu).toBe(true);
        expect([r.value, r.reason]).toEqual([
          null,
          expect.stringMatching(
            /^(\d+ bytes more than one answer|unit id \d+, expected 1|function code \d+, expected \d+|timeout.*|line never quiet: .+|CRC .+|byte count .+|\d+ data bytes, .+|answer .+)$/,
          ),
        ]);
      } else {
        expect({ point: r.point, quality: r.quality, value: r.value }).toEqual({ point: r.point, quality: 'bad', value: null });
        expect(r.reason).toMatch(reason);
      }
    }
    // The faulty unit is backed off by now: the healthy one keeps its rate (about 10 polls in the
    // 2 s; the faulty unit's backoff poll may hold one or two of them up, so at least half). Not on
    // a serial bus whose device sends bytes nobody asked for (trickled, repeated answers): they
    // corrupt the answers on the line while they last, as on a real RS-485 pair, and after them the
    // line must be quiet for a whole timeout before the next request. It never gets a wrong value.
    const from = on + 1000;
    const healthy = readings.filter((r) => r.equipment === 'HEALTHY' && r.point === 'pressure' && r.ts > from);
    // Over TCP, a trickled answer's late bytes break the shared stream for as long as they come
    // (about 1.5 s after each of the faulty unit's polls, here every 1.5 s; every 10 s by default):
    // the link is reset each time and the healthy unit keeps polling, at a lower rate.
    const least = fault === 'trickle' ? 3 : 5;
    if (!(rtu && (fault === 'trickle' || fault === 'duplicate')))
      expect(healthy.filter((r) => r.quality === 'good').length, `healthy unit during ${fault}`).toBeGreaterThanOrEqual(least);
    for (const r of readings.filter((x) => x.equipment === 'HEALTHY' && x.quality === 'good'))
      expect(r.value).toBe(TRUTH[r.point as keyof typeof TRUTH]);

    sim.control(1).fault = undefined;
    const off = Date.now();
    // Recovery within a few poll intervals of the backoff interval, without the device's help.
    await expect
      .poll(() => readings.some((r) => r.equipment === 'FAULTY' && r.ts > off && r.point === 'pressure' && r.quality === 'good'), {
        timeout: 4000,
      })
      .toBe(true);
    const back = readings.filter((r) => r.equipment === 'FAULTY' && r.ts > off && r.quality === 'good');
    for (const r of back) expect(r.value).toBe(TRUTH[r.point as keyof typeof TRUTH]);
    return driver.stats!();
  };

  // Each case has its own simulator and driver: they run side by side to keep the file short.
  describe.concurrent('over Modbus TCP', () => {
    const cases: Array<[Fault, RegExp]> = [
      ['wrong-byte-count', /^byte count 0, expected (1|6)$/],
      ['short-data', /^\d+ data bytes, byte count says \d+$/],
      ['wrong-unit', /^unit id 2, expected 1$/],
      // Three answers in a row that belong to no request: the link is reset as out of step.
      ['wrong-transaction', /^(transaction id \d+, expected \d+|not connected: 3 requests in a row without their answer)$/],
      ['wrong-function', /^function code \d, expected \d$/],
      // The link is dropped at a framing error: a poll while it reconnects reads "not connected: <why>".
      ['garbage', /^(not connected: )?framing error: (protocol id \d+, expected 0|MBAP length \d+, expected 2-254)$/],
      ['huge-length', /^(not connected: )?framing error: MBAP length 65535, expected 2-254$/],
      ['trickle', /^(timeout|framing error: .+|connection reset: .+|not connected: .+)$/],
      ['silence', /^timeout$/],
      ['duplicate', /./],
      // A request sent back: refused (its byte count, or as an echo), and the answer after it is late.
      ['echo', /^(byte count \d+, expected \d+|the request came back as its answer \(an echo\))$/],
    ];
    for (const [fault, reason] of cases) {
      it(fault, async (t) => {
        const rig = await tcpRig(t);
        const stats = await exercise(t, rig, fault, reason);
        const { expect } = t;
        if (fault === 'huge-length' || fault === 'garbage') {
          expect(stats.framingErrors).toBeGreaterThan(0);
          expect(stats.resets).toBeGreaterThan(0);
        }
        if (fault === 'duplicate') expect(stats.lateAnswers).toBeGreaterThan(0);
      });
    }
  });

  it('a TCP link whose only device stops answering is reset after timeouts_before_reset timeouts, and heals', async () => {
    const sim = createModbusTcpSimulator({ devices: new Map([[1, bank()]]) });
    await sim.start();
    cleanup.push(() => sim.stop());
    const { driver, readings } = await drive(
      modbusTcpDriver,
      `{ id: c, type: modbus-tcp, host: 127.0.0.1, port: ${sim.port()}, timeout: 200ms, timeouts_before_reset: 2, failures_before_backoff: 10, reconnect: { initial_delay: 100ms } }`,
      [
        '{ id: ONLY, category: boiler, connection: c, unit_id: 1, poll_interval: 250ms, points: [{ name: pressure, address: "hr:0", type: float32 }] }',
      ],
    );
    await expect.poll(() => readings.some((r) => r.quality === 'good'), { timeout: 3000 }).toBe(true);
    const connects = driver.stats!().connects!;
    sim.control(1).fault = 'silence';
    await expect.poll(() => driver.stats!().resets, { timeout: 3000 }).toBeGreaterThanOrEqual(1);
    expect(driver.stats!().connects).toBeGreaterThan(connects);
    sim.control(1).fault = undefined;
    const back = Date.now();
    await expect.poll(() => readings.some((r) => r.ts > back && r.quality === 'good' && r.value === 12.5), { timeout: 1500 }).toBe(true);
  });

  it.each([
    ['sends garbage as soon as it is connected', (socket: net.Socket) => socket.write(Buffer.alloc(64, 0xee))],
    ['closes every connection it accepts', (socket: net.Socket) => socket.destroy()],
  ])('a peer that %s gets growing backoff, not a reconnect loop', async (_what, misbehave) => {
    let accepted = 0;
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      accepted++;
      sockets.add(socket);
      socket.on('error', () => {});
      misbehave(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    });
    const { readings } = await drive(
      modbusTcpDriver,
      `{ id: c, type: modbus-tcp, host: 127.0.0.1, port: ${(server.address() as net.AddressInfo).port}, timeout: 200ms, reconnect: { initial_delay: 100ms, max_delay: 5s, jitter: 0 } }`,
      [
        '{ id: X, category: boiler, connection: c, unit_id: 1, poll_interval: 100ms, points: [{ name: v, address: "hr:0", type: uint16 }] }',
      ],
    );
    await sleep(3000);
    // 0, 100, 200, 400, 800, 1600 ms between resets: about 6 connections in 3 s, not hundreds.
    expect(accepted).toBeGreaterThanOrEqual(3);
    expect(accepted).toBeLessThanOrEqual(8);
    expect(readings.length).toBeGreaterThan(0);
    expect(readings.every((r) => r.quality === 'bad' && r.value === null)).toBe(true);
  });

  it('RTU: an answer that comes after its timeout is never taken for the next request', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-rtu-late-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const pty = await startPtyPair(dir);
    cleanup.push(() => pty.stop());
    const slow = new RegisterBank(2000);
    slow.set('hr', 0, [111]);
    slow.set('hr', 1000, [222]);
    const sim = createModbusRtuSimulator({ path: pty.b, baudRate: 19200, devices: new Map([[1, slow]]) });
    await sim.start();
    cleanup.push(() => sim.stop());
    // Every answer comes 40-60 ms after the 200 ms timeout; both requests have the same shape.
    sim.control(1).delayMs = 250;
    const { driver, readings } = await drive(
      modbusRtuDriver,
      `{ id: c, type: modbus-rtu, path: ${pty.a}, baud_rate: 19200, timeout: 200ms, failures_before_backoff: 1000 }`,
      [
        '{ id: SLOW, category: boiler, connection: c, unit_id: 1, poll_interval: 100ms, points: [{ name: a, address: "hr:0", type: uint16 }, { name: b, address: "hr:1000", type: uint16 }] }',
      ],
    );
    await sleep(3000);
    expect(readings.length).toBeGreaterThan(4);
    for (const r of readings)
      expect([r.point, r.quality === 'good' ? r.value : r.reason]).toEqual([
        r.point,
        r.quality === 'good' ? { a: 111, b: 222 }[r.point] : 'timeout',
      ]);
    expect(driver.stats!().strayBytes).toBeGreaterThan(0);
    // The device answers in time again: good values, and the right ones.
    sim.control(1).delayMs = 0;
    const back = Date.now();
    await expect
      .poll(() => readings.filter((r) => r.ts > back && r.quality === 'good').length, { timeout: 3000 })
      .toBeGreaterThanOrEqual(2);
    for (const r of readings.filter((x) => x.quality === 'good')) expect(r.value).toBe({ a: 111, b: 222 }[r.point]);

    // stop() releases the serial port: it can be opened again at once.
    await driver.stop();
    const again = new SerialPort({ path: pty.a, baudRate: 19200, autoOpen: false });
    await new Promise<void>((resolve, reject) => again.open((err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve) => again.close(() => resolve()));
  });

  describe.concurrent('over Modbus RTU (socat serial pair)', () => {
    const cases: Array<[Fault, RegExp]> = [
      ['wrong-byte-count', /^byte count 0, expected (1|6)$/],
      ['wrong-unit', /^unit id 2, expected 1$/],
      ['bad-crc', /^CRC 0x[0-9a-f]{4}, expected 0x[0-9a-f]{4}$/],
      [
        'garbage',
        /^(CRC 0x[0-9a-f]{4}, expected 0x[0-9a-f]{4}|answer longer than 256 bytes|answer of \d+ bytes, at most 256|timeout.*|line never quiet: .+)$/,
      ],
      // On a loaded machine the long answer (255 data bytes at 19200 baud) can outlast the request's
      // timeout: then it is refused as that, or as the noise it makes on the line, never taken.
      ['huge-length', /^(byte count 255, expected (1|6)|timeout.*|line never quiet: .+|answer .+|CRC .+)$/],
      // Bytes of an answer given up on come while the next request waits: refused, never taken.
      [
        'trickle',
        /^(timeout.*|line never quiet: .+|frame of \d+ bytes|CRC .+|function code .+|unit id .+|byte count .+|\d+ data bytes, .+|answer .+)$/,
      ],
      ['short-data', /^(timeout: \d+ bytes of an answer .+|\d+ data bytes, byte count says \d+)$/],
      ['duplicate', /./],
      ['echo', /./],
    ];
    for (const [fault, reason] of cases) {
      it(fault, async (t) => {
        const rig = await rtuRig(t);
        const stats = await exercise(t, rig, fault, reason, true);
        const { expect } = t;
        if (fault === 'duplicate') expect(stats.strayBytes).toBeGreaterThan(0);
      });
    }
  });
});
