// One Modbus connection (TCP socket, serial port, or serial device server): opens it, reopens it
// with backoff when it is lost, and runs reads through it at most max_in_flight at a time. Every
// answer is checked against its request (protocol.ts) before a value leaves here; a connection whose
// byte stream can no longer be trusted is closed and opened again, without the device's help.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { SerialPort } from 'serialport';
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
  /** The request's bytes as sent (RTU: an echo of them is not the answer). */
  sent: Buffer;
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
  /** A serial line (the serialport package is loaded only for one). */
  const serial = conn.type === 'modbus-rtu';
  const stats: ModbusLinkStats = { badAnswers: 0, framingErrors: 0, lateAnswers: 0, strayBytes: 0, timeouts: 0, resets: 0 };

  let port: Duplex | undefined;
  /** A connection being opened, so stop() can abandon it. */
  let opening: Duplex | undefined;
  let connected = false;
  let stopped = false;
  let downReason = 'not connected yet';
  let connects = 0;
  /** Reopen attempts since the last good answer: the backoff grows until a device really answers. */
  let attempt = 0;
  let reopenTimer: NodeJS.Timeout | undefined;
  /** While the gateway reopens at once a connection it reset itself, requests wait for it. */
  let reopening: { done: Promise<void>; resolve(): void } | undefined;
  let inFlight = 0;
  const waiting: Array<() => void> = [];
  /** Requests in a row that got no answer of theirs (timeouts, answers out of step, a busy line). */
  let failuresInRow = 0;
  let lastRefusal = '';

  // Modbus TCP: answers matched to requests by transaction id.
  const deframer = new TcpDeframer();
  const pending = new Map<number, Pending>();
  const recentIds: number[] = [];
  let nextTid = 1;
  /** Frames since the last request that answered none: a few are late or repeated, a stream of them is an attack. */
  let unmatched = 0;
  // RTU: one request at a time, its answer gathered here (never more than one frame's bytes).
  let current: Pending | undefined;
  let rx = Buffer.alloc(0);
  let lastByteAt = 0;
  /**
   * An RTU answer carries no transaction id: after a timeout, a refused frame or bytes nobody asked
   * for, the next request waits until the line has been quiet for a whole `timeout`, so a late or
   * repeated answer is dropped instead of being taken for the next request's.
   */
  let guard = false;

  const settle = (p: Pending, outcome: number[] | ModbusFailure) => {
    clearTimeout(p.timer);
    if (tcp) {
      pending.delete(p.tid);
      recentIds.push(p.tid);
      if (recentIds.length > RECENT_IDS) recentIds.shift();
    } else if (current === p) current = undefined;
    if (Array.isArray(outcome)) {
      failuresInRow = 0;
      attempt = 0;
      lastRefusal = '';
      p.resolve(outcome);
      return;
    }
    if (outcome.kind === 'exception') failuresInRow = 0; // an exception is an answer: the device is there
    if (outcome.kind === 'protocol') {
      stats.badAnswers++;
      if (outcome.reason !== lastRefusal)
        log.warn({ where, unit: p.req.unit, reason: outcome.reason }, 'Modbus answer refused; its points are bad');
      lastRefusal = outcome.reason;
    }
    p.reject(outcome);
  };

  /** A request without its answer: after timeouts_before_reset in a row the link starts clean. */
  const missed = () => {
    if (++failuresInRow < conn.timeouts_before_reset || !port) return;
    failuresInRow = 0;
    const reason = `${conn.timeouts_before_reset} requests in a row without their answer`;
    // A serial port cannot be reset by closing it: drop what it holds instead.
    if (serial) {
      stats.resets++;
      rx = Buffer.alloc(0);
      (port as SerialPort).flush(() => {});
      log.warn({ where, reason }, 'Modbus serial port flushed');
    } else reset(reason);
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
      // The stream broke while these requests waited. Their device broke it when it is the only
      // one waiting and no answer is overdue; otherwise late bytes of an answer given up on may
      // have (a device that trickles), and no device is blamed (backed off) for it.
      const reason = `framing error: ${err.reason}`;
      const kind = pending.size === 1 && failuresInRow === 0 ? 'framing' : 'connection';
      for (const p of [...pending.values()]) settle(p, new ModbusFailure(kind, reason));
      stats.framingErrors++;
      reset(reason);
      return;
    }
    for (const f of frames) {
      const p = pending.get(f.tid);
      if (p) {
        answer(p, f.unit, f.pdu);
        continue;
      }
      if (++unmatched > 2 * maxInFlight + 8) {
        stats.framingErrors++;
        reset(`framing error: ${unmatched} answers to no request`);
        return;
      }
      if (recentIds.includes(f.tid) || pending.size !== 1) {
        stats.lateAnswers++;
        continue;
      }
      // One request waits and the answer names another: answers out of step with requests, like
      // a timeout (towards a reset), and the device is backed off for it.
      const only = pending.values().next().value!;
      stats.badAnswers++;
      settle(only, new ModbusFailure('framing', `transaction id ${f.tid}, expected ${only.tid}`));
      missed();
    }
  };

  const onRtuData = (data: Buffer) => {
    lastByteAt = Date.now();
    const p = current;
    if (!p) {
      stats.strayBytes += data.length;
      guard = true;
      return;
    }
    if (rx.length + data.length > MAX_RTU_FRAME + p.sent.length) {
      stats.strayBytes += rx.length + data.length;
      return refuseRtu(p, `answer longer than ${MAX_RTU_FRAME} bytes`);
    }
    rx = rx.length === 0 ? Buffer.from(data) : Buffer.concat([rx, data]);
    // An RS-485 adapter with local echo hands the request back first: it is not the answer.
    if (rx.length < p.sent.length && p.sent.subarray(0, rx.length).equals(rx)) return;
    if (rx.subarray(0, p.sent.length).equals(p.sent)) rx = rx.subarray(p.sent.length);
    const frame = rtuAnswerIn(rx, p.req);
    if (!frame) return;
    if ('error' in frame) return refuseRtu(p, frame.error);
    if (rx.length > frame.length) {
      // More bytes than one answer: a repeated answer, a late one, noise. Which is this request's
      // cannot be told, so none is taken.
      stats.strayBytes += rx.length - frame.length;
      guard = true;
      return refuseRtu(p, `${rx.length - frame.length} bytes more than one answer`);
    }
    rx = Buffer.alloc(0);
    answer(p, frame.unit, frame.pdu);
  };

  const refuseRtu = (p: Pending, reason: string, kind: FailureKind = 'protocol') => {
    rx = Buffer.alloc(0);
    settle(p, new ModbusFailure(kind, reason));
  };

  /** Why a frame that came whole but late cannot be the answer. */
  const lateFrameReason = (req: ReadRequest, unit: number, pdu: Buffer) => {
    const check = checkReadAnswer(req, unit, pdu);
    return check.ok ? 'timeout' : check.reason;
  };

  /**
   * Closes the connection on the gateway's own initiative and opens it again: at once the first
   * time, then with growing backoff while no good answer comes (a peer that sends garbage as soon
   * as it is connected must not make a tight reconnect loop).
   */
  const reset = (reason: string) => {
    if (!port) return;
    stats.resets++;
    lost(port, reason, true);
  };

  const failAll = (f: ModbusFailure) => {
    for (const p of [...pending.values()]) settle(p, f);
    if (current) settle(current, f);
  };

  const close = (p: Duplex) =>
    new Promise<void>((resolve) => {
      p.removeAllListeners('data');
      p.on('error', () => {}); // errors of a connection being closed
      // A serial port is released only by close(); destroy() would keep its descriptor and lock.
      if (serial) {
        const sp = p as SerialPort;
        if (sp.isOpen) sp.close(() => resolve());
        else resolve();
        return;
      }
      p.once('close', () => resolve());
      p.destroy();
      setTimeout(resolve, 1000).unref();
    });

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
    void close(p);
    schedule(byUs);
  };

  const schedule = (byUs = false) => {
    if (stopped || reopenTimer) return;
    const now = byUs && attempt === 0;
    const delay = now ? 0 : backoffDelay(attempt, conn.reconnect);
    attempt++;
    if (now && !reopening) {
      let resolve = () => {};
      reopening = { done: new Promise<void>((r) => (resolve = r)), resolve: () => resolve() };
    }
    reopenTimer = setTimeout(() => {
      reopenTimer = undefined;
      void open();
    }, delay);
  };

  const connectSocket = (host: string, portNumber: number) =>
    new Promise<Duplex>((resolve, reject) => {
      const s = net.connect({ host, port: portNumber });
      opening = s;
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
      s.once('close', () => {
        clearTimeout(timer);
        reject(new Error('connection closed'));
      });
    });

  const openSerial = async (c: Extract<ModbusConnection, { type: 'modbus-rtu' }>) => {
    const { SerialPort } = await import('serialport');
    return new Promise<Duplex>((resolve, reject) => {
      const sp = new SerialPort({
        path: c.path,
        baudRate: c.baud_rate,
        parity: c.parity,
        dataBits: c.data_bits,
        stopBits: c.stop_bits,
        autoOpen: false,
      });
      opening = sp;
      sp.open((err) => (err ? reject(err) : resolve(sp)));
    });
  };

  const open = async () => {
    try {
      await openOnce();
    } finally {
      opening = undefined;
      reopening?.resolve();
      reopening = undefined;
    }
  };

  const openOnce = async () => {
    let p: Duplex;
    try {
      p = conn.type === 'modbus-rtu' ? await openSerial(conn) : await connectSocket(conn.host, conn.port);
    } catch (err) {
      const reason = toFailure(err).reason;
      if (stopped) return;
      if (attempt <= 1 || reason !== downReason) log.warn({ where, reason }, 'Modbus connection failed; retrying with backoff');
      downReason = reason;
      schedule();
      return;
    }
    if (stopped) {
      void close(p);
      return;
    }
    port = p;
    p.removeAllListeners('close');
    p.on('data', tcp ? onTcpData : onRtuData);
    p.on('error', (err) => lost(p, toFailure(err).reason));
    p.on('close', () => lost(p, 'connection closed'));
    connected = true;
    connects++;
    failuresInRow = 0;
    guard = false;
    log.info({ where }, 'Modbus connection open');
  };

  /** RTU: wait until nothing has arrived for the inter-frame silence, or after trouble for `timeout`. */
  const quiet = async () => {
    const need = guard ? Math.max(silence, conn.timeout) : silence;
    const deadline = Date.now() + need + conn.timeout;
    for (;;) {
      const wait = lastByteAt + need - Date.now();
      if (wait <= 0) {
        guard = false;
        return true;
      }
      if (Date.now() + wait > deadline) return false;
      await new Promise((r) => setTimeout(r, wait));
      if (stopped || !port) return true; // the request fails as not connected
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
      const pdu = readPdu(req);
      const frame = tcp ? tcpFrame(tid, req.unit, pdu) : rtuFrame(req.unit, pdu);
      const entry: Pending = {
        req,
        tid,
        sent: frame,
        resolve,
        reject,
        timer: setTimeout(() => {
          stats.timeouts++;
          if (!tcp) {
            // The line counts as busy from now: whatever of this answer still comes is dropped.
            lastByteAt = Date.now();
            if (rx.length > 0) {
              // Part of an answer came: say what was wrong with it.
              const partial = rtuAnswerOf(rx);
              refuseRtu(
                entry,
                'error' in partial
                  ? `timeout: ${rx.length} bytes of an answer (${partial.error})`
                  : lateFrameReason(req, partial.unit, partial.pdu),
                'timeout',
              );
              missed();
              return;
            }
            guard = true;
          }
          settle(entry, new ModbusFailure('timeout', 'timeout'));
          missed();
        }, conn.timeout),
      };
      if (tcp) {
        pending.set(tid, entry);
        unmatched = 0;
      } else {
        current = entry;
        rx = Buffer.alloc(0);
      }
      p.write(frame);
    });

  return {
    start() {
      return open();
    },
    async stop() {
      stopped = true;
      clearTimeout(reopenTimer);
      reopening?.resolve();
      reopening = undefined;
      opening?.destroy();
      const p = port;
      port = undefined;
      connected = false;
      failAll(new ModbusFailure('connection', 'gateway stopping'));
      if (p) await close(p);
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
        if (!connected && reopening) await Promise.race([reopening.done, new Promise((r) => setTimeout(r, conn.timeout))]);
        if (!tcp && !(await quiet())) {
          // Not the polled unit's fault: the line is busy with bytes nobody asked for.
          missed();
          throw new ModbusFailure('connection', 'line never quiet: bytes keep arriving unasked');
        }
        return await send({ unit, area, start, count });
      } finally {
        release();
      }
    },
  };
}
