// Lab instruments that speak ASTM E1381/E1394 over TCP: results arrive as messages; each message is
// stored (the result sink) before its last frame is acknowledged, so the analyzer never believes a
// result delivered that the gateway has not kept.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { SerialPort } from 'serialport';
import { backoffDelay } from '../common/backoff.js';
import type { Driver, DriverContext, EquipmentBase } from '../types.js';
import { AstmReceiver, type ReceiverEvent } from './astm-link.js';
import { AstmRecordError, resultsOf } from './astm-records.js';
import { LogBudget } from '../common/log-budget.js';
import type { AstmConnection } from './schema.js';

const TICK_MS = 1000;
/** Protocol warnings and refused messages one connection may log a minute; the rest are counted. */
const WARNINGS_PER_MINUTE = 10;

/** One open connection (or serial line) and the receiver that reads it. */
interface Peer {
  socket: Duplex;
  receiver: AstmReceiver;
  connectedAt: number;
  log: DriverContext['log'];
}

class AstmDriver implements Driver {
  private server: net.Server | undefined;
  private readonly peers = new Set<Peer>();
  private timer: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private attempt = 0;
  private stopped = false;
  /** Refused connections are logged at most once a minute, whatever the flood. */
  private readonly refusals = new LogBudget(1);
  private readonly counters = {
    connections: 0,
    messages: 0,
    results: 0,
    naks: 0,
    aborted: 0,
    refused: 0,
    oversizeFrames: 0,
    oversizeMessages: 0,
    overlongSessions: 0,
    idleClosed: 0,
    rejectedConnections: 0,
    storeFailures: 0,
  };
  /** Connect and disconnect lines: a peer reconnecting in a loop must not fill the log. */
  private readonly connectionLines = new LogBudget(20);

  constructor(
    private readonly connection: AstmConnection,
    private readonly instrument: EquipmentBase,
    private readonly ctx: DriverContext,
  ) {}

  async init(): Promise<void> {
    if (!this.ctx.results) throw new Error('The ASTM driver needs a result sink');
  }

  async start(): Promise<void> {
    this.timer = setInterval(() => this.tick(Date.now()), TICK_MS);
    const c = this.connection;
    if (c.type === 'astm-serial') return this.openSerial(c);
    const { host, port } = c;
    if (c.mode === 'listen') {
      const server = net.createServer((socket) => this.serve(socket));
      this.server = server;
      // Node closes a connection over the limit as it arrives, before any of its bytes are read.
      server.maxConnections = c.max_connections;
      server.on('drop', (peer) => this.rejected(peer));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.ctx.log.info({ host, port, instrument: this.instrument.id, maxConnections: c.max_connections }, 'Listening for ASTM analyzer');
    } else {
      this.dial();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.retry);
    for (const p of this.peers) p.socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  stats(): Record<string, number> {
    return { ...this.counters, open: this.peers.size };
  }

  /** Receive timeouts and session limits; in listen mode, connections that bring nothing are closed. */
  private tick(now: number): void {
    const c = this.connection;
    const idleTimeout = c.type === 'astm-tcp' && c.mode === 'listen' ? c.idle_timeout : undefined;
    for (const p of this.peers) {
      p.receiver.tick(now);
      if (idleTimeout !== undefined && now - Math.max(p.connectedAt, p.receiver.lastAccepted) >= idleTimeout && !p.socket.destroyed) {
        this.counters.idleClosed++;
        p.log.info({ idleTimeout }, 'ASTM connection closed: no accepted frame within idle_timeout');
        p.socket.destroy();
      }
    }
  }

  private rejected(peer: { remoteAddress?: string; remotePort?: number } | undefined): void {
    this.counters.rejectedConnections++;
    const skipped = this.refusals.take(Date.now());
    if (skipped === undefined || this.connection.type !== 'astm-tcp') return;
    this.ctx.log.warn(
      {
        instrument: this.instrument.id,
        peer: `${peer?.remoteAddress ?? '?'}:${peer?.remotePort ?? '?'}`,
        maxConnections: this.connection.max_connections,
        refusedBefore: skipped,
        refusedInAll: this.counters.rejectedConnections,
      },
      'ASTM connection refused: max_connections are open; further refusals this minute are counted, not logged',
    );
  }

  /** A serial line: opened, and opened again with backoff when it fails or goes away. */
  private openSerial(c: Extract<AstmConnection, { type: 'astm-serial' }>): void {
    if (this.stopped) return;
    const port = new SerialPort({
      path: c.path,
      baudRate: c.baud_rate,
      dataBits: c.data_bits,
      parity: c.parity,
      stopBits: c.stop_bits,
      autoOpen: false,
    });
    port.open((err) => {
      if (err) {
        if (this.attempt === 0)
          this.ctx.log.warn({ path: c.path, err: err.message }, 'Cannot open the ASTM serial port; retrying with backoff');
        this.retry = setTimeout(() => this.openSerial(c), backoffDelay(this.attempt++, c.reconnect));
        return;
      }
      this.attempt = 0;
      this.ctx.log.info({ path: c.path, baudRate: c.baud_rate, instrument: this.instrument.id }, 'ASTM serial port open');
      port.once('close', () => {
        if (!this.stopped) this.retry = setTimeout(() => this.openSerial(c), backoffDelay(this.attempt++, c.reconnect));
      });
      this.serve(port, c.path);
    });
  }

  private dial(): void {
    if (this.stopped || this.connection.type !== 'astm-tcp') return;
    const { reconnect } = this.connection;
    const socket = net.connect(this.connection.port, this.connection.host);
    socket.once('connect', () => {
      this.attempt = 0;
    });
    socket.once('close', () => {
      if (this.stopped) return;
      this.retry = setTimeout(() => this.dial(), backoffDelay(this.attempt++, reconnect));
    });
    this.serve(socket);
  }

  private serve(
    socket: Duplex,
    peerName = socket instanceof net.Socket ? `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}` : 'serial',
  ): void {
    const c = this.connection;
    const listening = c.type === 'astm-tcp' && c.mode === 'listen';
    const log = this.ctx.log.child({ instrument: this.instrument.id, peer: peerName });
    const warnings = new LogBudget(WARNINGS_PER_MINUTE);
    const warn = (fields: Record<string, unknown>, msg: string, level: 'warn' | 'error' = 'warn') => {
      const skipped = warnings.take(Date.now());
      if (skipped !== undefined) log[level](skipped > 0 ? { ...fields, skippedWarnings: skipped } : fields, msg);
    };
    this.counters.connections++;
    const receiver = new AstmReceiver(
      (records) => this.store(records, warn),
      (e: ReceiverEvent) => {
        if (e.kind === 'nak') {
          this.counters.naks++;
          warn({ reason: e.reason }, 'ASTM frame refused (NAK); the analyzer sends it again');
        } else if (e.kind === 'store-failed') {
          this.counters.storeFailures++;
          // Not the analyzer's fault and not to be hidden: the error itself, at error level.
          warn({ err: e.error }, 'ASTM message not stored: the result store failed; NAKed, the analyzer sends it again', 'error');
        } else if (e.kind === 'aborted') {
          this.counters.aborted++;
          warn({ reason: e.reason }, 'ASTM message dropped whole: it did not end');
        } else if (e.kind === 'refused') {
          if (e.limit === 'frame') this.counters.oversizeFrames++;
          else if (e.limit === 'message') this.counters.oversizeMessages++;
          else this.counters.overlongSessions++;
          warn(
            { reason: e.reason, limit: e.limit },
            e.limit === 'frame'
              ? 'ASTM frame refused (NAK) and skipped: longer than E1381 allows'
              : 'ASTM message refused and dropped whole: over its limit; frames are NAKed until EOT',
          );
        }
      },
      { receiveTimeoutMs: c.receive_timeout, maxMessageSize: c.max_message_size, maxSessionMs: c.max_session },
    );
    const peer: Peer = { socket, receiver, connectedAt: Date.now(), log };
    this.peers.add(peer);
    // Plain connect and disconnect lines are budgeted; one that carries news (warnings left out of
    // the log) is always written.
    const connectionLine = (fields: Record<string, unknown>, msg: string) => {
      const skipped = this.connectionLines.take(Date.now());
      if (skipped !== undefined) log.info(skipped > 0 ? { ...fields, skippedConnectionLines: skipped } : fields, msg);
      else if (Object.keys(fields).length > 0) log.info(fields, msg);
    };
    socket.on('connect', () => {
      peer.connectedAt = Date.now();
      connectionLine({}, 'ASTM analyzer connected');
    });
    if (listening) connectionLine({}, 'ASTM analyzer connected');
    socket.on('data', (data: Buffer) => {
      const answer = receiver.receive(data, Date.now());
      // A peer that does not read our answers is not read either: its bytes wait in the kernel.
      if (answer.length > 0 && !socket.destroyed && !socket.write(Buffer.from(answer))) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    });
    socket.on('error', (err) => log.debug({ err: err.message }, 'ASTM connection error'));
    socket.on('close', () => {
      receiver.close();
      this.peers.delete(peer);
      if (!this.stopped) connectionLine(warnings.skipped > 0 ? { skippedWarnings: warnings.skipped } : {}, 'ASTM analyzer disconnected');
    });
  }

  /** A complete message: its results are stored before the analyzer gets the last ACK. */
  private store(records: string[], warn: (fields: Record<string, unknown>, msg: string, level: 'error') => void): boolean {
    let results;
    try {
      results = resultsOf(records, this.instrument.id);
    } catch (err) {
      if (!(err instanceof AstmRecordError)) throw err;
      this.counters.refused++;
      warn({ reason: err.message }, 'ASTM message refused: its records do not make a result', 'error');
      return false;
    }
    this.ctx.results!(results);
    this.counters.messages++;
    this.counters.results += results.length;
    return true;
  }
}

export function createAstmDriver(connection: AstmConnection, instrument: EquipmentBase, ctx: DriverContext): Driver {
  return new AstmDriver(connection, instrument, ctx);
}
