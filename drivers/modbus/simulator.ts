// Modbus servers for the demo and the tests: a steam boiler over TCP or RTU (serial), and plain
// register banks. Each unit id is its own device and can be paused (stops answering), made to
// answer with an exception, made to misbehave the way field devices do (fault modes, switchable
// while it runs), or have its connections dropped. Frames are built by protocol.ts, byte by byte,
// so a fault is exactly the bytes it names.
import net, { type AddressInfo, type Socket } from 'node:net';
import type { SerialPort } from 'serialport';
import type { Area } from './address.js';
import { encode } from './codec.js';
import {
  AREA_OF_FC,
  exceptionPdu,
  FramingError,
  parseRequestPdu,
  readAnswerPdu,
  rtuAnswerOf,
  rtuFrame,
  tcpFrame,
  TcpDeframer,
} from './protocol.js';
import { steamBoilerAt, type Scenario } from '../sim/steam-boiler.js';

export interface SimDevice {
  /** Registers (or 0/1 for coils and discrete inputs) from start on. */
  read(area: Area, start: number, count: number): number[];
  write?(area: Area, start: number, values: number[]): void;
}

/**
 * How a unit misbehaves, as field devices and hostile peers do:
 * - `wrong-byte-count`: the data is there, the byte count says 0 (the frame length is right);
 * - `short-data`: the byte count is right, half the data is missing (the frame length matches what is sent);
 * - `wrong-unit`: the answer names the next unit id;
 * - `wrong-transaction`: the answer carries the next transaction id (TCP);
 * - `wrong-function`: the answer carries another function code;
 * - `garbage`: 200 random bytes instead of an answer;
 * - `trickle`: the right answer, one byte every `trickleMs`;
 * - `huge-length`: an MBAP header announcing 65535 bytes, then the answer (TCP); a byte count of 255 (RTU);
 * - `duplicate`: the right answer, twice;
 * - `bad-crc`: the right answer with its CRC off by one (RTU);
 * - `echo`: the request sent back before the answer, as an RS-485 adapter with local echo does;
 * - `silence`: no answer at all.
 */
export const FAULTS = [
  'wrong-byte-count',
  'short-data',
  'wrong-unit',
  'wrong-transaction',
  'wrong-function',
  'garbage',
  'trickle',
  'huge-length',
  'duplicate',
  'bad-crc',
  'echo',
  'silence',
] as const;
export type Fault = (typeof FAULTS)[number];

export interface UnitControl {
  /** A paused unit does not answer at all (the client times out). */
  paused: boolean;
  /** Answer every read with this Modbus exception code. */
  exception: number | undefined;
  /** Answer this many ms late (a slow device or a busy serial gateway). */
  delayMs: number;
  /** Misbehave this way on every answer, until set back to undefined. */
  fault: Fault | undefined;
  /** Time between two bytes of a trickled answer. */
  trickleMs: number;
  /** Only answers to reads of this area misbehave (all of them when unset). */
  faultArea: Area | undefined;
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
    this.bank.set('hr', 30, [
      ...encode(values.GLU, 'float32', 'ABCD'),
      ...encode(values.CHOL, 'float32', 'ABCD'),
      ...encode(values.TG, 'float32', 'ABCD'),
    ]);
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

/** The answer a unit gives to a request PDU: the PDU to send, or undefined for none. */
function answerPdu(devices: Map<number, SimDevice>, controls: Map<number, UnitControl>, unit: number, pdu: Uint8Array): Buffer | undefined {
  const device = devices.get(unit);
  const control = controls.get(unit);
  if (!device || !control || control.paused || faultFor(control, pdu) === 'silence') return undefined; // silence, as on a real bus
  const req = parseRequestPdu(pdu);
  if (control.exception !== undefined) return exceptionPdu(req.fc, control.exception);
  if (req.exception !== undefined) return exceptionPdu(req.fc, req.exception);
  try {
    if (req.read) return readAnswerPdu(req.fc, req.read.area, device.read(req.read.area, req.read.start, req.read.count));
    if (req.write && device.write) {
      device.write(req.write.area, req.write.start, req.write.values);
      return Buffer.from(pdu.subarray(0, 5)); // FC 5, 6 and 16 echo address and value or count
    }
    return exceptionPdu(req.fc, 1);
  } catch (err) {
    return exceptionPdu(req.fc, (err as { modbusErrorCode?: number }).modbusErrorCode ?? 4);
  }
}

/** The unit's fault, where it applies to this request. */
const faultFor = (control: UnitControl, pdu: Uint8Array): Fault | undefined =>
  control.faultArea === undefined || AREA_OF_FC[pdu[0]!] === control.faultArea ? control.fault : undefined;

/** A read answer's PDU as the fault makes it (the frame-level faults are applied by the transport). */
function faultyPdu(fault: Fault | undefined, pdu: Buffer): Buffer {
  if (pdu[0]! & 0x80 || pdu[0]! > 4) return pdu;
  switch (fault) {
    case 'wrong-byte-count': {
      const out = Buffer.from(pdu);
      out[1] = 0;
      return out;
    }
    case 'short-data':
      return pdu.subarray(0, 2 + Math.floor((pdu.length - 2) / 2));
    case 'wrong-function': {
      const out = Buffer.from(pdu);
      out[0] = pdu[0] === 3 ? 4 : 3;
      return out;
    }
    default:
      return pdu;
  }
}

let garbageSeed = 1;
function garbage(n = 200): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    garbageSeed = (garbageSeed * 1103515245 + 12345) & 0x7fffffff;
    b[i] = garbageSeed >> 16;
  }
  return b;
}

/** Writes the frame to the line as the unit's fault says: at once, late, trickled, twice. */
function deliver(
  out: { write(b: Buffer): unknown; destroyed?: boolean },
  frame: Buffer,
  fault: Fault | undefined,
  control: UnitControl,
  timers: Set<NodeJS.Timeout>,
): void {
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (!out.destroyed) fn();
    }, ms);
    timers.add(t);
  };
  const send = () => {
    if (fault === 'trickle') {
      for (let i = 0; i < frame.length; i++) later(i * control.trickleMs, () => out.write(frame.subarray(i, i + 1)));
      return;
    }
    out.write(frame);
    if (fault === 'duplicate') out.write(frame);
  };
  if (control.delayMs) later(control.delayMs, send);
  else send();
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
  /** Requests received and frames that could not be read, for tests and the simulate command. */
  readonly counts: { requests: number; badFrames: number };
}

function controlsFor(devices: Map<number, SimDevice>): Map<number, UnitControl> {
  return new Map(
    [...devices.keys()].map((u) => [
      u,
      { paused: false, exception: undefined, delayMs: 0, fault: undefined, trickleMs: 100, faultArea: undefined },
    ]),
  );
}

function controlOf(controls: Map<number, UnitControl>, unit: number): UnitControl {
  const c = controls.get(unit);
  if (!c) throw new Error(`No simulated unit ${unit}`);
  return c;
}

export function createModbusTcpSimulator(opts: { host?: string; port?: number; devices: Map<number, SimDevice> }): ModbusSimulator {
  const controls = controlsFor(opts.devices);
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const counts = { requests: 0, badFrames: 0 };
  let server: net.Server | undefined;

  const serve = (socket: Socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const deframer = new TcpDeframer();
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (data: Buffer) => {
      let frames;
      try {
        frames = deframer.push(data);
      } catch (err) {
        if (!(err instanceof FramingError)) throw err;
        counts.badFrames++;
        socket.destroy(); // a careful server closes a stream it cannot read
        return;
      }
      for (const f of frames) {
        counts.requests++;
        const control = controls.get(f.unit);
        const pdu = answerPdu(opts.devices, controls, f.unit, f.pdu);
        if (!pdu || !control) continue;
        const fault = faultFor(control, f.pdu);
        let frame: Buffer;
        if (fault === 'garbage') frame = garbage();
        else {
          frame = tcpFrame(
            fault === 'wrong-transaction' ? f.tid + 1 : f.tid,
            fault === 'wrong-unit' ? (f.unit + 1) & 0xff : f.unit,
            faultyPdu(fault, pdu),
          );
          if (fault === 'huge-length') frame.writeUInt16BE(0xffff, 4);
          if (fault === 'echo') frame = Buffer.concat([tcpFrame(f.tid, f.unit, f.pdu), frame]);
        }
        deliver(socket, frame, fault, control, timers);
      }
    });
  };

  return {
    async start() {
      const s = net.createServer(serve);
      server = s;
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
          s.off('error', reject);
          resolve();
        });
      });
    },
    async stop() {
      const s = server;
      server = undefined;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      if (!s) return;
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    port() {
      const a = server?.address() as AddressInfo | null | undefined;
      return a ? a.port : (opts.port ?? 0);
    },
    control: (unit) => controlOf(controls, unit),
    dropConnections() {
      for (const sock of sockets) sock.destroy();
    },
    devicesForTest: opts.devices,
    counts,
  };
}

/** Bytes of the RTU request that starts `buf`, once they can be known. */
function rtuRequestLength(buf: Uint8Array): number | undefined {
  if (buf.length < 2) return undefined;
  const fc = buf[1]!;
  if (fc >= 1 && fc <= 6) return 8;
  if (fc === 15 || fc === 16) return buf.length < 7 ? undefined : 9 + buf[6]!;
  return 0; // not a request this server knows: the buffer is dropped
}

export function createModbusRtuSimulator(opts: {
  path: string;
  baudRate?: number;
  parity?: 'none' | 'even' | 'odd';
  devices: Map<number, SimDevice>;
}): ModbusSimulator {
  const controls = controlsFor(opts.devices);
  const timers = new Set<NodeJS.Timeout>();
  const counts = { requests: 0, badFrames: 0 };
  let port: SerialPort | undefined;
  let rx = Buffer.alloc(0);
  let lastByteAt = 0;

  const onData = (data: Buffer) => {
    const now = Date.now();
    // A gap longer than a character time or two ends whatever was half-received (a new frame starts).
    if (now - lastByteAt > 20) rx = Buffer.alloc(0);
    lastByteAt = now;
    rx = Buffer.concat([rx, data]);
    for (;;) {
      const length = rtuRequestLength(rx);
      if (length === undefined) break;
      if (length === 0 || rx.length > 256) {
        counts.badFrames++;
        rx = Buffer.alloc(0);
        break;
      }
      if (rx.length < length) break;
      const frame = rx.subarray(0, length);
      rx = rx.subarray(length);
      const request = rtuAnswerOf(frame); // a request frame has the same CRC rules as an answer
      if ('error' in request) {
        counts.badFrames++;
        rx = Buffer.alloc(0);
        break;
      }
      counts.requests++;
      const { unit } = request;
      const control = controls.get(unit);
      const pdu = answerPdu(opts.devices, controls, unit, request.pdu);
      if (!pdu || !control || !port) continue;
      const fault = faultFor(control, request.pdu);
      let out: Buffer;
      if (fault === 'garbage') out = garbage();
      else {
        const faulty = faultyPdu(fault, pdu);
        if (fault === 'huge-length' && !(faulty[0]! & 0x80)) faulty[1] = 255;
        out = rtuFrame(fault === 'wrong-unit' ? (unit + 1) & 0xff : unit, faulty);
        if (fault === 'bad-crc') out[out.length - 1] = out[out.length - 1]! ^ 1;
        if (fault === 'echo') out = Buffer.concat([Buffer.from(frame), out]);
      }
      deliver(port, out, fault, control, timers);
    }
  };

  return {
    async start() {
      // Loaded here: a TCP simulator (or a site without RTU) does not need the serial port library.
      const { SerialPort } = await import('serialport');
      const p = new SerialPort({ path: opts.path, baudRate: opts.baudRate ?? 9600, parity: opts.parity ?? 'none', autoOpen: false });
      await new Promise<void>((resolve, reject) => p.open((err) => (err ? reject(err) : resolve())));
      p.on('error', () => {});
      p.on('data', onData);
      port = p;
    },
    async stop() {
      const p = port;
      port = undefined;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      if (p?.isOpen) await new Promise<void>((resolve) => p.close(() => resolve()));
    },
    port: () => 0,
    control: (unit) => controlOf(controls, unit),
    dropConnections() {},
    devicesForTest: opts.devices,
    counts,
  };
}
