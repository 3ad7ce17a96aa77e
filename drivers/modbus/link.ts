// One Modbus connection (TCP socket, serial port, or serial device server): opens it, reopens it
// with backoff when it is lost, and runs reads through it at most max_in_flight at a time. Every
// answer is checked against its request (protocol.ts) before a value leaves here; a connection whose
// byte stream can no longer be trusted is closed and opened again, without the device's help.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { SerialPort } from 'serialport';
import { backoffDelay } from '../common/backoff.js';
import type { Area } from './address.js';
import {
  checkReadAnswer,
  FramingError,
  MAX_RTU_FRAME,
  readPdu,
  type ReadRequest,
  rtuAnswerIn,
  rtuAnswerOf,
  rtuFrame,
  tcpFrame,
  TcpDeframer,
} from './protocol.js';
import type { ModbusConnection } from './schema.js';

/**
 * timeout: no answer; exception: the device refused; protocol: an answer that does not fit its
 * request; framing: a byte stream that is not Modbus (the connection is reset); connection: no link.
 */
export type FailureKind = 'timeout' | 'exception' | 'protocol' | 'framing' | 'connection';

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
  const e = err as { code?: string; message?: string };
  if (e.code === 'ECONNREFUSED') return new ModbusFailure('connection', 'connection refused');
  return new ModbusFailure('connection', e.code ?? e.message ?? String(err));
}

export type ModbusLinkStats = {
  /** Answers refused: wrong byte count, function code, unit id, CRC, transaction id, shape. */
  badAnswers: number;
  /** Byte streams that could not be split into frames (the connection was reset). */
  framingErrors: number;
  /** Answers that came after their request had timed out, or twice. */
  lateAnswers: number;
  /** Bytes that arrived with no request waiting for them (RTU), dropped. */
  strayBytes: number;
  timeouts: number;
  /** Connections closed by the gateway itself to recover (framing error, timeouts in a row). */
  resets: number;
};

export interface ModbusLink {
  /** Resolves once the first attempt to open has succeeded or failed; retries go on by themselves. */
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly connected: boolean;
  /** Why the link is down, while it is. */
  readonly downReason: string;
  /** How many times the connection has been opened. */
  readonly connects: number;
  readonly stats: Readonly<ModbusLinkStats>;
  /** Registers (0-65535) or bits (0/1), exactly `count` of them, or a ModbusFailure. */
  read(unit: number, area: Area, start: number, count: number): Promise<number[]>;
}

interface Pending {
  req: ReadRequest;
  tid: number;
  timer: NodeJS.Timeout;
  resolve(values: number[]): void;
  reject(f: ModbusFailure): void;
}

/** Transaction ids of finished requests, remembered so a late or repeated answer is recognised. */
const RECENT_IDS = 64;

/** Time the line must be quiet before an RTU request goes out (at least 3.5 characters). */
export function interFrameSilence(conn: ModbusConnection): number {
  if (conn.type === 'modbus-rtu-over-tcp') return 20; // a device server's own buffering and the network's jitter
  if (conn.type !== 'modbus-rtu') return 0;
  const bitsPerChar = 1 + conn.data_bits + (conn.parity === 'none' ? 0 : 1) + conn.stop_bits;
  // The spec fixes 1.75 ms above 19200 baud; timers here are not finer than a millisecond or two.
  return Math.max(2, Math.ceil((3.5 * bitsPerChar * 1000) / conn.baud_rate));
}

export function createModbusLink(conn: ModbusConnection, log: Logger): ModbusLink {
  const tcp = conn.type === 'modbus-tcp';
  const maxInFlight = tcp ? conn.max_in_flight : 1;
  const silence = interFrameSilence(conn);
  const where = conn.type === 'modbus-rtu' ? conn.path : `${conn.host}:${conn.port}`;
  const stats: ModbusLinkStats = { badAnswers: 0, framingErrors: 0, lateAnswers: 0, strayBytes: 0, timeouts: 0, resets: 0 };

  let port: Duplex | undefined;
  let connected = false;
  let stopped = false;
  let downReason = 'not connected yet';
  let attempt = 0;
  let reopenTimer: NodeJS.Timeout | undefined;
  let connects = 0;
  let inFlight = 0;
  const waiting: Array<() => void> = [];
  /** Requests in a row that got no answer of theirs (timeouts, another request's transaction id). */
  let failuresInRow = 0;
  let lastRefusal = '';

  // Modbus TCP: answers matched to requests by transaction id.
  const deframer = new TcpDeframer();
  const pending = new Map<number, Pending>();
  const recentIds: number[] = [];
  let nextTid = 1;
  // RTU: one request at a time, its answer gathered here (never more than one frame's bytes).
  let current: Pending | undefined;
  let rx = Buffer.alloc(0);
  let lastByteAt = 0;
  /** After a bad frame or a timeout, everything until the line has been quiet is dropped. */
  let draining = false;

  const settle = (p: Pending, outcome: number[] | ModbusFailure) => {
    clearTimeout(p.timer);
    if (tcp) {
      pending.delete(p.tid);
      recentIds.push(p.tid);
      if (recentIds.length > RECENT_IDS) recentIds.shift();
    } else if (current === p) current = undefined;
    if (Array.isArray(outcome)) {
      failuresInRow = 0;
      resetsWithoutAnswer = 0;
      lastRefusal = '';
      p.resolve(outcome);
      return;
    }
    if (outcome.kind === 'exception') failuresInRow = 0; // an exception is an answer: the device is there
    if (outcome.kind === 'protocol') {
      stats.badAnswers++;
      if (outcome.reason !== lastRefusal) log.warn({ where, unit: p.req.unit, reason: outcome.reason }, 'Modbus answer refused; its points are bad');
      lastRefusal = outcome.reason;
    }
    p.reject(outcome);
    if (failuresInRow < conn.timeouts_before_reset || !port) return;
    failuresInRow = 0;
    // A serial port cannot be reset by closing it: drop what it holds and start clean.
    if (conn.type === 'modbus-rtu') (port as SerialPort).flush(() => {});
    else reset(`${conn.timeouts_before_reset} requests in a row without their answer`);
  };

  const answer = (p: Pending, unit: number, pdu: Buffer) => {
    const check = checkReadAnswer(p.req, unit, pdu);
    settle(p, check.ok ? check.values : new ModbusFailure(check.kind, check.reason));
  };

  const onTcpData = (data: Buffer) => {
    let frames;
    try {
      frames = deframer.push(data);
    } catch (err) {
      if (!(err instanceof FramingError)) throw err;
      stats.framingErrors++;
      // The stream broke while these requests waited. Their device broke it when it is the only
      // one waiting and no answer is overdue; otherwise late bytes of an answer given up on may
      // have (a device that trickles), and no device is blamed (backed off) for it.
      const reason = `framing error: ${err.reason}`;
      const kind = pending.size === 1 && failuresInRow === 0 ? 'framing' : 'connection';
      for (const p of [...pending.values()]) settle(p, new ModbusFailure(kind, reason));
      reset(reason);
      return;
    }
    for (const f of frames) {
      const p = pending.get(f.tid);
      if (p) {
        answer(p, f.unit, f.pdu);
      } else if (recentIds.includes(f.tid)) {
        stats.lateAnswers++;
      } else if (pending.size === 1) {
        // One request waits and the answer names another: the device mixed its transactions up.
        // Answers shifted by one request are out of step, like a timeout: it counts towards a reset.
        const only = pending.values().next().value!;
        failuresInRow++;
        settle(only, new ModbusFailure('protocol', `transaction id ${f.tid}, expected ${only.tid}`));
      } else {
        stats.lateAnswers++;
      }
    }
  };

  const onRtuData = (data: Buffer) => {
    lastByteAt = Date.now();
    const p = current;
    if (!p || draining) {
      stats.strayBytes += data.length;
      return;
    }
    if (rx.length + data.length > MAX_RTU_FRAME) {
      stats.strayBytes += rx.length + data.length;
      return refuseRtu(p, `answer longer than ${MAX_RTU_FRAME} bytes`);
    }
    rx = rx.length === 0 ? Buffer.from(data) : Buffer.concat([rx, data]);
    const frame = rtuAnswerIn(rx, p.req);
    if (!frame) return;
    if (rx.length > frame.length) {
      // More than one answer's bytes: a duplicate or noise. Dropped, and the line must go quiet.
      stats.strayBytes += rx.length - frame.length;
      draining = true;
    }
    if ('error' in frame) return refuseRtu(p, frame.error);
    rx = Buffer.alloc(0);
    answer(p, frame.unit, frame.pdu);
  };

  /** Why a frame that came whole but late cannot be the answer. */
  const checkOrTimeout = (req: ReadRequest, unit: number, pdu: Buffer) => {
    const check = checkReadAnswer(req, unit, pdu);
    return check.ok ? 'timeout' : check.reason;
  };

  const refuseRtu = (p: Pending, reason: string, kind: FailureKind = 'protocol') => {
    rx = Buffer.alloc(0);
    draining = true;
    settle(p, new ModbusFailure(kind, reason));
  };

  /**
   * Closes the connection on the gateway's own initiative and opens it again: at once the first
   * time, then with growing backoff while no good answer comes between resets (a peer that sends
   * garbage as soon as it is connected must not make a tight reconnect loop).
   */
  const reset = (reason: string) => {
    if (!port) return;
    stats.resets++;
    resetsWithoutAnswer++;
    reopened ??= new Promise((resolve) => (reopenedNow = resolve));
    lost(port, reason, true);
  };
  /** While the gateway reopens a connection it reset itself, requests wait for it (a few ms). */
  let reopened: Promise<void> | undefined;
  let reopenedNow = () => {};
  let resetsWithoutAnswer = 0;

  const failAll = (f: ModbusFailure) => {
    for (const p of [...pending.values()]) settle(p, f);
    if (current) settle(current, f);
  };

  const lost = (p: Duplex, reason: string, byUs = false) => {
    if (port !== p) return; // an old connection's late event
    port = undefined;
    const wasConnected = connected;
    connected = false;
    downReason = reason;
    deframer.reset();
    rx = Buffer.alloc(0);
    failAll(new ModbusFailure('connection', byUs ? `connection reset: ${reason}` : reason));
    if (byUs) log.warn({ where, reason }, 'Modbus connection reset by the gateway; reopening it');
    else if (wasConnected) log.warn({ where, reason }, 'Modbus connection lost; reconnecting with backoff');
    p.removeAllListeners('data');
    p.on('error', () => {}); // errors of a connection being closed
    p.destroy();
    schedule(byUs);
  };

  const schedule = (byUs = false) => {
    if (stopped || reopenTimer) return;
    const delay = !byUs ? backoffDelay(attempt++, conn.reconnect) : resetsWithoutAnswer <= 1 ? 0 : backoffDelay(resetsWithoutAnswer - 2, conn.reconnect);
    reopenTimer = setTimeout(() => {
      reopenTimer = undefined;
      void open();
    }, delay);
  };

  const connectSocket = (host: string, portNumber: number) =>
    new Promise<Duplex>((resolve, reject) => {
      const s = net.connect({ host, port: portNumber });
      s.setNoDelay(true);
      const timer = setTimeout(() => s.destroy(new Error('connect timeout')), Math.max(conn.timeout, 3000));
      s.once('connect', () => {
        clearTimeout(timer);
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });

  const openSerial = (c: Extract<ModbusConnection, { type: 'modbus-rtu' }>) =>
    new Promise<Duplex>((resolve, reject) => {
      const sp = new SerialPort({ path: c.path, baudRate: c.baud_rate, parity: c.parity, dataBits: c.data_bits, stopBits: c.stop_bits, autoOpen: false });
      sp.open((err) => (err ? reject(err) : resolve(sp)));
    });

  const open = async () => {
    try {
      await openOnce();
    } finally {
      reopened = undefined;
      reopenedNow();
    }
  };

  const openOnce = async () => {
    let p: Duplex;
    try {
      p = conn.type === 'modbus-rtu' ? await openSerial(conn) : await connectSocket(conn.host, conn.port);
    } catch (err) {
      const reason = toFailure(err).reason;
      if (attempt === 0 || reason !== downReason) log.warn({ where, reason }, 'Modbus connection failed; retrying with backoff');
      downReason = reason;
      schedule();
      return;
    }
    if (stopped) {
      p.destroy();
      return;
    }
    port = p;
    p.on('data', tcp ? onTcpData : onRtuData);
    p.on('error', (err) => lost(p, toFailure(err).reason));
    p.on('close', () => lost(p, 'connection closed'));
    connected = true;
    connects++;
    attempt = 0;
    failuresInRow = 0;
    draining = false;
    log.info({ where }, 'Modbus connection open');
  };

  /** RTU: wait until nothing has arrived for the inter-frame silence (a late answer, a duplicate). */
  const quiet = async (deadline: number) => {
    for (;;) {
      const wait = lastByteAt + silence - Date.now();
      if (wait <= 0) return true;
      if (Date.now() + wait > deadline) return false;
      await new Promise((r) => setTimeout(r, wait));
    }
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

  const send = (req: ReadRequest) =>
    new Promise<number[]>((resolve, reject) => {
      const p = port;
      if (!p || !connected || stopped) return reject(new ModbusFailure('connection', `not connected: ${downReason}`));
      const tid = tcp ? nextTid : 0;
      if (tcp) nextTid = nextTid === 0xffff ? 1 : nextTid + 1;
      const entry: Pending = {
        req,
        tid,
        resolve,
        reject,
        timer: setTimeout(() => {
          stats.timeouts++;
          failuresInRow++;
          if (!tcp && rx.length > 0) {
            // Part of an answer came: say what was wrong with it. Whatever of it still comes must
            // not be taken for the next answer.
            const partial = rtuAnswerOf(rx);
            // A device that answers too slowly is backed off like one that does not answer at all.
            refuseRtu(entry, 'error' in partial ? `timeout: ${rx.length} bytes of an answer (${partial.error})` : checkOrTimeout(entry.req, partial.unit, partial.pdu), 'timeout');
            return;
          }
          if (!tcp) draining = true;
          settle(entry, new ModbusFailure('timeout', 'timeout'));
        }, conn.timeout),
      };
      const pdu = readPdu(req);
      if (tcp) pending.set(tid, entry);
      else {
        current = entry;
        rx = Buffer.alloc(0);
        draining = false;
      }
      p.write(tcp ? tcpFrame(tid, req.unit, pdu) : rtuFrame(req.unit, pdu));
    });

  return {
    start() {
      return open();
    },
    async stop() {
      stopped = true;
      clearTimeout(reopenTimer);
      const p = port;
      port = undefined;
      connected = false;
      failAll(new ModbusFailure('connection', 'gateway stopping'));
      if (p) {
        p.removeAllListeners('data');
        p.on('error', () => {});
        await new Promise<void>((resolve) => {
          p.once('close', () => resolve());
          p.destroy();
          setTimeout(resolve, 1000).unref();
        });
      }
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
    stats,
    async read(unit, area, start, count) {
      await acquire();
      try {
        if (!connected && reopened) await Promise.race([reopened, new Promise((r) => setTimeout(r, conn.timeout))]);
        if (!tcp && !(await quiet(Date.now() + conn.timeout))) {
          stats.timeouts++;
          throw new ModbusFailure('timeout', 'line never quiet: bytes keep arriving unasked');
        }
        return await send({ unit, area, start, count });
      } finally {
        release();
      }
    },
  };
}
