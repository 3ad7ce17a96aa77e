// One Modbus connection (TCP socket, serial port, or serial device server): opens it, reopens it
// with backoff when it is lost, and runs requests through it at most max_in_flight at a time.
import * as modbus from 'modbus-serial';
import type { ModbusRTU as ModbusClient } from 'modbus-serial/ModbusRTU.js';
import type { Logger } from 'pino';
import { backoffDelay } from '../common/backoff.js';
import type { Area } from './address.js';
import type { ModbusConnection } from './schema.js';

const EXCEPTIONS: Record<number, string> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  8: 'memory parity error',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};

export type FailureKind = 'timeout' | 'exception' | 'connection';

/** A failed request, with the reason users see as the quality reason. */
export class ModbusFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    readonly reason: string,
  ) {
    super(reason);
  }
}

export function toFailure(err: unknown): ModbusFailure {
  if (err instanceof ModbusFailure) return err;
  const e = err as { modbusCode?: number; errno?: string; code?: string; message?: string };
  if (typeof e.modbusCode === 'number') return new ModbusFailure('exception', `exception ${e.modbusCode}: ${EXCEPTIONS[e.modbusCode] ?? 'unknown'}`);
  if (e.errno === 'ETIMEDOUT' || e.message === 'Timed out') return new ModbusFailure('timeout', 'timeout');
  if (e.code === 'ECONNREFUSED') return new ModbusFailure('connection', 'connection refused');
  if (e.message === 'Port Not Open') return new ModbusFailure('connection', 'not connected');
  return new ModbusFailure('connection', e.code ?? e.message ?? String(err));
}

export interface ModbusLink {
  /** Resolves once the first attempt to open has succeeded or failed; retries go on by themselves. */
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly connected: boolean;
  /** Why the link is down, while it is. */
  readonly downReason: string;
  /** How many times the connection has been opened. */
  readonly connects: number;
  read(unit: number, area: Area, start: number, count: number): Promise<number[]>;
}

// modbus-serial is CommonJS: its class is the namespace's default export.
const ModbusRTU = modbus.default as unknown as typeof ModbusClient;
type Client = ModbusClient;

export function createModbusLink(conn: ModbusConnection, log: Logger): ModbusLink {
  const maxInFlight = conn.type === 'modbus-tcp' ? conn.max_in_flight : 1;
  let client: Client | undefined;
  let connected = false;
  let stopped = false;
  let downReason = 'not connected yet';
  let attempt = 0;
  let timer: NodeJS.Timeout | undefined;
  let inFlight = 0;
  let connects = 0;
  const waiting: Array<() => void> = [];
  const where = conn.type === 'modbus-rtu' ? conn.path : `${conn.host}:${conn.port}`;

  const lost = (c: Client, reason: string) => {
    if (client !== c) return; // an old client's late event
    client = undefined;
    const wasConnected = connected;
    connected = false;
    downReason = reason;
    if (wasConnected) log.warn({ where, reason }, 'Modbus connection lost; reconnecting with backoff');
    try {
      c.close(() => {});
    } catch {
      // closing a port that never opened
    }
    schedule();
  };

  const schedule = () => {
    if (stopped || timer) return;
    const delay = backoffDelay(attempt++, conn.reconnect);
    timer = setTimeout(() => {
      timer = undefined;
      void open();
    }, delay);
  };

  const open = async () => {
    const c = new ModbusRTU();
    client = c;
    c.on('close', () => lost(c, 'connection closed'));
    c.on('error', (err: unknown) => lost(c, toFailure(err).reason));
    try {
      if (conn.type === 'modbus-tcp') await c.connectTCP(conn.host, { port: conn.port });
      // Raw RTU frames over the socket (modbus-serial's "telnet" port); its TcpRTUBuffered port speaks Modbus TCP instead.
      else if (conn.type === 'modbus-rtu-over-tcp') await c.connectTelnet(conn.host, { port: conn.port });
      else await c.connectRTUBuffered(conn.path, { baudRate: conn.baud_rate, parity: conn.parity, dataBits: conn.data_bits, stopBits: conn.stop_bits });
    } catch (err) {
      const reason = toFailure(err).reason;
      if (attempt === 0 || reason !== downReason) log.warn({ where, reason }, 'Modbus connection failed; retrying with backoff');
      if (client === c) {
        client = undefined;
        downReason = reason;
        schedule();
      }
      return;
    }
    if (stopped || client !== c) {
      c.close(() => {});
      return;
    }
    c.setTimeout(conn.timeout);
    connected = true;
    connects++;
    attempt = 0;
    log.info({ where }, 'Modbus connection open');
  };

  const acquire = () =>
    new Promise<void>((resolve) => {
      if (inFlight < maxInFlight) {
        inFlight++;
        resolve();
      } else {
        waiting.push(() => {
          inFlight++;
          resolve();
        });
      }
    });
  const release = () => {
    inFlight--;
    waiting.shift()?.();
  };

  return {
    start() {
      return open();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      const c = client;
      client = undefined;
      connected = false;
      if (c?.isOpen) await new Promise<void>((resolve) => c.close(() => resolve()));
      for (const w of waiting.splice(0)) w();
    },
    get connected() {
      return connected;
    },
    get downReason() {
      return downReason;
    },
    get connects() {
      return connects;
    },
    async read(unit, area, start, count) {
      await acquire();
      try {
        const c = client;
        if (!c || !connected || stopped) throw new ModbusFailure('connection', `not connected: ${downReason}`);
        c.setID(unit); // read synchronously below, so concurrent requests keep their own unit id
        const answer =
          area === 'hr' ? c.readHoldingRegisters(start, count) : area === 'ir' ? c.readInputRegisters(start, count) : area === 'co' ? c.readCoils(start, count) : c.readDiscreteInputs(start, count);
        const res = await answer;
        return area === 'co' || area === 'di' ? (res.data as boolean[]).slice(0, count).map((b) => (b ? 1 : 0)) : (res.data as number[]);
      } catch (err) {
        throw toFailure(err);
      } finally {
        release();
      }
    },
  };
}
