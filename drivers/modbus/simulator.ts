// Modbus servers for the demo and the tests: a steam boiler over TCP or RTU (serial), and plain
// register banks. Each unit id is its own device and can be paused (stops answering), made to
// answer with an exception, or have its connections dropped.
import * as modbus from 'modbus-serial';
import type { AddressInfo, Socket } from 'node:net';
import type { Area } from './address.js';
import { encode } from './codec.js';
import { steamBoilerAt, type Scenario } from '../sim/steam-boiler.js';
import { freePort } from '../common/free-port.js';

export interface SimDevice {
  /** Registers (or 0/1 for coils and discrete inputs) from start on. */
  read(area: Area, start: number, count: number): number[];
  write?(area: Area, start: number, values: number[]): void;
}

export interface UnitControl {
  /** A paused unit does not answer at all (the client times out). */
  paused: boolean;
  /** Answer every read with this Modbus exception code. */
  exception: number | undefined;
  /** Answer this many ms late (a slow device or a busy serial gateway). */
  delayMs: number;
}

/** A sparse memory of the four areas; what was never written reads 0. */
export class RegisterBank implements SimDevice {
  private readonly areas: Record<Area, Map<number, number>> = { hr: new Map(), ir: new Map(), co: new Map(), di: new Map() };
  /** Reading beyond this many registers answers exception 2, as real devices do. */
  constructor(private readonly size = 65536) {}
  set(area: Area, start: number, values: number[]): void {
    values.forEach((v, i) => this.areas[area].set(start + i, v & 0xffff));
  }
  read(area: Area, start: number, count: number): number[] {
    if (start + count > this.size) throw Object.assign(new Error('Illegal data address'), { modbusErrorCode: 2 });
    const m = this.areas[area];
    return Array.from({ length: count }, (_, i) => m.get(start + i) ?? 0);
  }
  write(area: Area, start: number, values: number[]): void {
    this.set(area, start, values);
  }
}

/**
 * The boiler's register map, as its README documents it. Several types and byte orders on purpose.
 */
export const BOILER_REGISTER_MAP = [
  { name: 'steam_pressure', address: 'hr:100', type: 'float32', byte_order: 'ABCD', unit: 'MPa' },
  { name: 'steam_temperature', address: 'hr:102', type: 'float32', byte_order: 'CDAB', unit: '°C' },
  { name: 'drum_level', address: 'hr:110', type: 'int16', unit: 'mm' },
  { name: 'feedwater_flow', address: 'hr:111', type: 'uint16', scale: 0.01, unit: 't/h' },
  { name: 'flue_o2', address: 'hr:112', type: 'int16', scale: 0.01, unit: '%' },
  { name: 'run_seconds', address: 'hr:114', type: 'uint32', byte_order: 'BADC', unit: 's' },
  { name: 'steam_total', address: 'hr:120', type: 'float64', byte_order: 'DCBA', unit: 't' },
  { name: 'burner_on', address: 'hr:130.0', type: 'bool' },
  { name: 'interlock_tripped', address: 'hr:130.2', type: 'bool' },
  { name: 'flame', address: 'di:0', type: 'bool' },
  { name: 'serial_number', address: 'ir:10', type: 'string', length: 8 },
] as const;

export class BoilerDevice implements SimDevice {
  private readonly bank = new RegisterBank();
  private refreshedAt = -1;
  constructor(
    private readonly scenario: Scenario,
    private readonly seed: number,
    private readonly origin = Date.now(),
    private readonly serial = 'B07-2019-000117',
  ) {
    this.bank.set('ir', 10, encode(this.serial, 'string', 'ABCD', 8));
  }
  /** The boiler's state as the registers held it at the last read. */
  stateAt(now: number) {
    return steamBoilerAt(now - this.origin, this.scenario, this.seed);
  }
  read(area: Area, start: number, count: number): number[] {
    const now = Date.now();
    if (now !== this.refreshedAt) this.refresh(now);
    return this.bank.read(area, start, count);
  }
  private refresh(now: number): void {
    this.refreshedAt = now;
    const s = this.stateAt(now);
    const elapsed = (now - this.origin) / 1000;
    const b = this.bank;
    b.set('hr', 100, encode(s.steam_pressure, 'float32', 'ABCD'));
    b.set('hr', 102, encode(s.steam_temperature, 'float32', 'CDAB'));
    b.set('hr', 110, encode(s.drum_level, 'int16', 'ABCD'));
    b.set('hr', 111, encode(Math.round(s.feedwater_flow * 100), 'uint16', 'ABCD'));
    b.set('hr', 112, encode(Math.round(s.flue_o2 * 100), 'int16', 'ABCD'));
    b.set('hr', 114, encode(Math.floor(elapsed), 'uint32', 'BADC'));
    b.set('hr', 120, encode((elapsed / 3600) * 10, 'float64', 'DCBA'));
    b.set('hr', 130, [(s.burner_on ? 1 : 0) | (s.flame ? 2 : 0) | (s.interlock_tripped ? 4 : 0)]);
    b.set('di', 0, [s.flame ? 1 : 0]);
    b.set('co', 0, [s.burner_on ? 1 : 0]);
  }
}

/**
 * A lab analyzer's result block (the register map its README documents): hr:0 result counter
 * (uint16), hr:10-19 sample id (20 characters), hr:30 GLU, hr:32 CHOL, hr:34 TG (float32, mmol/L).
 * Each produce() is a new result; tests also skip results, reset the counter and garble the sample id.
 */
export class LabAnalyzerDevice implements SimDevice {
  private readonly bank = new RegisterBank();
  private counter = 0;
  private n = 0;
  /** The results it produced: sample id and values. */
  readonly produced: Array<{ counter: number; sampleId: string; values: Record<string, number> }> = [];
  constructor(private readonly seed = 1) {}
  read(area: Area, start: number, count: number): number[] {
    return this.bank.read(area, start, count);
  }
  produce(): { sampleId: string; values: Record<string, number> } {
    this.counter = (this.counter + 1) & 0xffff;
    this.n++;
    const sampleId = `L-${String(this.n).padStart(5, '0')}`;
    const values = { GLU: this.value(5.2, 2, 1), CHOL: this.value(4.8, 1.5, 2), TG: this.value(1.4, 0.8, 3) };
    // The block first, then the counter: a reader that sees the new counter finds the new block.
    this.bank.set('hr', 10, encode(sampleId, 'string', 'ABCD', 10));
    this.bank.set('hr', 30, [...encode(values.GLU, 'float32', 'ABCD'), ...encode(values.CHOL, 'float32', 'ABCD'), ...encode(values.TG, 'float32', 'ABCD')]);
    this.bank.set('hr', 0, [this.counter]);
    this.produced.push({ counter: this.counter, sampleId, values });
    return { sampleId, values };
  }
  /** Results made while nobody read them: the counter moves on by n. */
  skip(n: number): void {
    for (let i = 0; i < n; i++) this.produce();
    this.produced.splice(this.produced.length - n, n - 1);
  }
  /** A power cycle: the counter starts again from 0. */
  reset(): void {
    this.counter = 0;
    this.bank.set('hr', 0, [0]);
  }
  /** Bytes that are not text where the sample id should be. */
  garbleSampleId(): void {
    this.bank.set('hr', 10, [0x01ff, 0xfe02, 0, 0, 0, 0, 0, 0, 0, 0]);
  }
  /** Writes the last sample id again. */
  repairSampleId(): void {
    this.bank.set('hr', 10, encode(this.produced.at(-1)!.sampleId, 'string', 'ABCD', 10));
  }
  private value(mean: number, spread: number, k: number): number {
    const x = Math.sin((this.seed * 1000 + this.n * 7 + k) * 12.9898) * 43758.5453;
    return Math.round((mean + (x - Math.floor(x) - 0.5) * 2 * spread) * 100) / 100;
  }
}

type Callback<T> = (err: Error | null, value: T) => void;

/** The service vector modbus-serial's servers call, over a set of devices by unit id. */
function vectorFor(devices: Map<number, SimDevice>, controls: Map<number, UnitControl>) {
  const answer = <T>(unit: number, cb: Callback<T>, produce: (d: SimDevice) => T) => {
    const device = devices.get(unit);
    const control = controls.get(unit);
    if (!device) return; // no such device on the bus: silence, as on a real bus
    if (control?.paused) return;
    if (control?.exception !== undefined) return cb(Object.assign(new Error('exception'), { modbusErrorCode: control.exception }), undefined as T);
    const reply = () => {
      try {
        cb(null, produce(device));
      } catch (err) {
        cb(err as Error, undefined as T);
      }
    };
    if (control?.delayMs) setTimeout(reply, control.delayMs);
    else reply();
  };
  return {
    getMultipleHoldingRegisters: (addr: number, length: number, unit: number, cb: Callback<number[]>) => answer(unit, cb, (d) => d.read('hr', addr, length)),
    getMultipleInputRegisters: (addr: number, length: number, unit: number, cb: Callback<number[]>) => answer(unit, cb, (d) => d.read('ir', addr, length)),
    // modbus-serial asks for a single register through these.
    getHoldingRegister: (addr: number, unit: number, cb: Callback<number>) => answer(unit, cb, (d) => d.read('hr', addr, 1)[0]!),
    getInputRegister: (addr: number, unit: number, cb: Callback<number>) => answer(unit, cb, (d) => d.read('ir', addr, 1)[0]!),
    getCoil: (addr: number, unit: number, cb: Callback<boolean>) => answer(unit, cb, (d) => d.read('co', addr, 1)[0] === 1),
    getDiscreteInput: (addr: number, unit: number, cb: Callback<boolean>) => answer(unit, cb, (d) => d.read('di', addr, 1)[0] === 1),
    setRegister: (addr: number, value: number, unit: number, cb: (err: Error | null) => void) => answer(unit, (e) => cb(e), (d) => d.write?.('hr', addr, [value])),
    setCoil: (addr: number, value: boolean, unit: number, cb: (err: Error | null) => void) => answer(unit, (e) => cb(e), (d) => d.write?.('co', addr, [value ? 1 : 0])),
  };
}

export interface ModbusSimulator {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The TCP port once started (TCP only). */
  port(): number;
  control(unit: number): UnitControl;
  /** Closes every client connection (TCP only), as a device that resets would. */
  dropConnections(): void;
  /** The devices by unit id; tests swap one to change how it behaves. */
  readonly devicesForTest: Map<number, SimDevice>;
}

function controlsFor(devices: Map<number, SimDevice>): Map<number, UnitControl> {
  return new Map([...devices.keys()].map((u) => [u, { paused: false, exception: undefined, delayMs: 0 }]));
}

interface ServerLike {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  close(cb: (err: Error | null) => void): void;
  socks?: Map<Socket, unknown>;
  _server?: { address(): AddressInfo | string | null };
}

export function createModbusTcpSimulator(opts: { host?: string; port?: number; devices: Map<number, SimDevice> }): ModbusSimulator {
  const controls = controlsFor(opts.devices);
  let server: ServerLike | undefined;
  return {
    async start() {
      const ServerTCP = (modbus as unknown as { ServerTCP: new (v: unknown, o: unknown) => ServerLike }).ServerTCP;
      const host = opts.host ?? '127.0.0.1';
      // modbus-serial reads port 0 as its default 502: pick a free one ourselves.
      const s = new ServerTCP(vectorFor(opts.devices, controls), { host, port: opts.port || (await freePort(host)), unitID: 255 });
      server = s;
      await new Promise<void>((resolve, reject) => {
        s.on('initialized', () => resolve());
        s.on('serverError', (err) => reject(err as Error));
      });
      s.on('socketError', () => {});
    },
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      for (const sock of s.socks?.keys() ?? []) sock.destroy();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    port() {
      const a = server?._server?.address();
      return typeof a === 'object' && a ? a.port : (opts.port ?? 0);
    },
    control(unit) {
      const c = controls.get(unit);
      if (!c) throw new Error(`No simulated unit ${unit}`);
      return c;
    },
    dropConnections() {
      for (const sock of server?.socks?.keys() ?? []) sock.destroy();
    },
    devicesForTest: opts.devices,
  };
}

export function createModbusRtuSimulator(opts: { path: string; baudRate?: number; parity?: 'none' | 'even' | 'odd'; devices: Map<number, SimDevice> }): ModbusSimulator {
  const controls = controlsFor(opts.devices);
  let server: ServerLike | undefined;
  return {
    async start() {
      const ServerSerial = (modbus as unknown as { ServerSerial?: new (v: unknown, o: unknown) => ServerLike }).ServerSerial;
      if (!ServerSerial) throw new Error('Modbus RTU simulator needs the serialport package');
      await new Promise<void>((resolve, reject) => {
        const s = new ServerSerial(vectorFor(opts.devices, controls), {
          path: opts.path,
          baudRate: opts.baudRate ?? 9600,
          parity: opts.parity ?? 'none',
          unitID: 255,
          openCallback: (err: Error | null) => (err ? reject(err) : resolve()),
        });
        server = s;
        s.on('error', () => {});
      });
    },
    async stop() {
      const s = server;
      server = undefined;
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    port: () => 0,
    control(unit) {
      const c = controls.get(unit);
      if (!c) throw new Error(`No simulated unit ${unit}`);
      return c;
    },
    dropConnections() {},
    devicesForTest: opts.devices,
  };
}
