// Lab instruments that send HL7 v2 ORU^R01 results over MLLP: each message is parsed, its results
// stored (the result sink) and only then acknowledged AA, so the sender never believes a result
// delivered that the gateway has not kept. A message that cannot be taken is answered AE with the
// reason; one refused for now (a bound, the store failing) AR, and the sender sends it again.
import net from 'node:net';
import { backoffDelay } from '../common/backoff.js';
import { LogBudget } from '../common/log-budget.js';
import type { LabResult } from '../common/result.js';
import type { Driver, DriverContext, EquipmentBase } from '../types.js';
import { buildAck, headerOf, headerOfBytes, type AckCode, type AckHeader } from './ack.js';
import { ERROR_CODES, Hl7Error, parseMessage, type Hl7Message } from './hl7-message.js';
import { frame, MllpReceiver, type MllpEvent } from './mllp.js';
import { resultsOfOru } from './oru.js';
import type { Hl7Connection } from './schema.js';

const TICK_MS = 1000;
/** Warnings (refused messages, dropped frames, line noise) the connections of one driver may log a minute; the rest are counted. */
const WARNINGS_PER_MINUTE = 10;

type Warn = (fields: Record<string, unknown>, msg: string, level?: 'info' | 'warn' | 'error') => void;

interface Peer {
  socket: net.Socket;
  receiver: MllpReceiver;
  /** When the connection opened or last brought a whole message. */
  lastMessage: number;
  /** Line noise already added to the driver's counter. */
  garbageCounted: number;
  /** Reading is paused until the sender reads the ACKs written (one wait, however many frames a packet held). */
  draining: boolean;
  warn: Warn;
  log: DriverContext['log'];
}

class Hl7Driver implements Driver {
  private server: net.Server | undefined;
  private readonly peers = new Set<Peer>();
  private timer: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private attempt = 0;
  /** Connect mode: the peer's being unreachable was logged (once until it is reached again). */
  private unreachableTold = false;
  private stopped = false;
  private readonly refusals = new LogBudget(1);
  private readonly connectionLines = new LogBudget(20);
  /**
   * Warnings of all the connections together: a budget per connection let a sender that connects
   * again for each bad message write a warning for each one.
   */
  private readonly warnings = new LogBudget(WARNINGS_PER_MINUTE);
  private readonly controlFlag;
  private readonly counters = {
    connections: 0,
    /** Messages answered AA, AE, AR. */
    accepted: 0,
    /** Messages answered AA whose every result was captured before: sent again (our ACK was missed). */
    duplicates: 0,
    errors: 0,
    rejected: 0,
    results: 0,
    /** OBX segments of a value type that is no result (an image, a reference pointer). */
    skippedObservations: 0,
    /** ACKs the sender sent us (it is not answered: an ACK is never acknowledged). */
    acksIgnored: 0,
    oversizeMessages: 0,
    /** Frames with nothing in them (some senders keep a connection alive with them): not answered. */
    emptyFrames: 0,
    aborted: 0,
    garbageBytes: 0,
    storeFailures: 0,
    idleClosed: 0,
    rejectedConnections: 0,
  };

  constructor(
    private readonly connection: Hl7Connection,
    private readonly instrument: EquipmentBase,
    private readonly ctx: DriverContext,
  ) {
    this.controlFlag = connection.control_flag;
  }

  async init(): Promise<void> {
    if (!this.ctx.results) throw new Error('The HL7 driver needs a result sink');
  }

  async start(): Promise<void> {
    this.timer = setInterval(() => this.tick(Date.now()), TICK_MS);
    const { host, port, mode } = this.connection;
    if (mode === 'connect') {
      this.dial();
      return;
    }
    const server = net.createServer((socket) => this.serve(socket));
    this.server = server;
    // Node closes a connection over the limit as it arrives, before any of its bytes are read.
    server.maxConnections = this.connection.max_connections;
    server.on('drop', (peer) => this.dropped(peer));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.ctx.log.info(
      { host, port, instrument: this.instrument.id, maxConnections: this.connection.max_connections },
      'Listening for HL7 (MLLP) messages',
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.retry);
    for (const p of this.peers) p.socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  stats(): Record<string, number> {
    for (const p of this.peers) this.countGarbage(p);
    return { ...this.counters, open: this.peers.size };
  }

  private tick(now: number): void {
    const listening = this.connection.mode === 'listen';
    for (const p of this.peers) {
      for (const e of p.receiver.tick(now)) this.onEvent(p, e);
      this.countGarbage(p);
      if (listening && now - p.lastMessage >= this.connection.idle_timeout && !p.socket.destroyed) {
        this.counters.idleClosed++;
        p.log.info({ idleTimeout: this.connection.idle_timeout }, 'HL7 connection closed: no message within idle_timeout');
        p.socket.destroy();
      }
    }
  }

  private dropped(peer: { remoteAddress?: string; remotePort?: number } | undefined): void {
    this.counters.rejectedConnections++;
    const skipped = this.refusals.take(Date.now());
    if (skipped === undefined) return;
    this.ctx.log.warn(
      {
        instrument: this.instrument.id,
        peer: `${peer?.remoteAddress ?? '?'}:${peer?.remotePort ?? '?'}`,
        maxConnections: this.connection.max_connections,
        refusedBefore: skipped,
        refusedInAll: this.counters.rejectedConnections,
      },
      'HL7 connection refused: max_connections are open; further refusals this minute are counted, not logged',
    );
  }

  private dial(): void {
    if (this.stopped) return;
    const { host, port, reconnect } = this.connection;
    const socket = net.connect(port, host);
    let connected = false;
    socket.once('connect', () => {
      connected = true;
      this.attempt = 0;
      this.unreachableTold = false;
    });
    socket.once('close', () => {
      if (this.stopped) return;
      // A peer that closes after each message (some do) is told by the disconnect line; one that
      // cannot be reached, once until it can.
      if (!connected && !this.unreachableTold) {
        this.unreachableTold = true;
        this.ctx.log.warn({ host, port, instrument: this.instrument.id }, 'HL7 peer not reachable; connecting again with backoff');
      }
      this.retry = setTimeout(() => this.dial(), backoffDelay(this.attempt++, reconnect));
    });
    this.serve(socket);
  }

  private serve(socket: net.Socket): void {
    const log = this.ctx.log.child({
      instrument: this.instrument.id,
      peer: `${socket.remoteAddress ?? this.connection.host}:${socket.remotePort ?? this.connection.port}`,
    });
    const warn: Warn = (fields, msg, level = 'warn') => {
      const skipped = this.warnings.take(Date.now());
      if (skipped !== undefined) log[level](skipped > 0 ? { ...fields, skippedWarnings: skipped } : fields, msg);
    };
    const receiver = new MllpReceiver({
      maxMessageSize: this.connection.max_message_size,
      receiveTimeoutMs: this.connection.receive_timeout,
    });
    const peer: Peer = { socket, receiver, lastMessage: Date.now(), garbageCounted: 0, draining: false, warn, log };
    this.peers.add(peer);
    // A connection counts once it is open: in connect mode, a failed attempt is no connection.
    let open = this.connection.mode === 'listen';
    if (open) this.counters.connections++;
    const connectionLine = (msg: string) => {
      const skipped = this.connectionLines.take(Date.now());
      if (skipped !== undefined) log.info(skipped > 0 ? { skippedConnectionLines: skipped } : {}, msg);
    };
    if (this.connection.mode === 'listen') connectionLine('HL7 sender connected');
    else
      socket.once('connect', () => {
        open = true;
        this.counters.connections++;
        connectionLine('HL7 peer connected');
      });
    socket.on('data', (data: Buffer) => {
      try {
        for (const e of receiver.receive(data, Date.now())) this.onEvent(peer, e);
      } catch (err) {
        // A fault of the gateway's own (every refusal of the peer's input is answered above): this
        // connection ends, unanswered, and the sender sends again; the process and the others go on.
        log.error({ err }, 'HL7 connection closed: an error in the gateway while taking a message');
        socket.destroy();
      }
    });
    socket.on('error', (err) => log.debug({ err: err.message }, 'HL7 connection error'));
    socket.on('close', () => {
      this.countGarbage(peer);
      this.peers.delete(peer);
      if (receiver.receiving) this.counters.aborted++;
      if (!this.stopped && open) connectionLine('HL7 sender disconnected');
    });
  }

  private countGarbage(p: Peer): void {
    const fresh = p.receiver.garbage - p.garbageCounted;
    if (fresh === 0) return;
    p.garbageCounted = p.receiver.garbage;
    this.counters.garbageBytes += fresh;
    p.warn({ bytes: fresh }, 'HL7 connection: bytes outside any MLLP frame skipped (line noise, or a sender without MLLP framing)');
  }

  private onEvent(p: Peer, e: MllpEvent): void {
    if (e.kind === 'aborted') {
      this.counters.aborted++;
      p.warn({ reason: e.reason, bytes: e.size }, 'HL7 frame dropped unanswered: it did not end; the sender sends it again');
      return;
    }
    p.lastMessage = Date.now();
    if (e.kind === 'frame' && isBlank(e.bytes)) {
      // A keep-alive, not a message: answering it AE would count a refused message for each one.
      this.counters.emptyFrames++;
      return;
    }
    if (e.kind === 'oversize') this.counters.oversizeMessages++;
    const answer =
      e.kind === 'oversize'
        ? this.refuse(
            p,
            'AR',
            headerOfBytes(e.head),
            new Hl7Error(
              `message of ${e.size} bytes is longer than max_message_size (${this.connection.max_message_size})`,
              ERROR_CODES.applicationError,
            ),
          )
        : this.take(p, e.bytes);
    if (answer === undefined || p.socket.destroyed) return;
    // A sender that does not read our ACKs is not read either: its bytes wait in the kernel. The
    // frames of a packet already read are answered; the wait is registered once, not once per frame.
    if (!p.socket.write(frame(answer)) && !p.draining) {
      p.draining = true;
      p.socket.pause();
      p.socket.once('drain', () => {
        p.draining = false;
        p.socket.resume();
      });
    }
  }

  /** One message: parsed, its results stored, and the ACK to send (none for an ACK we were sent). */
  private take(p: Peer, bytes: Buffer): Buffer | undefined {
    let message: Hl7Message;
    try {
      message = parseMessage(bytes, this.connection.charset);
    } catch (err) {
      return this.refuse(p, 'AE', headerOfBytes(bytes), this.reasonOf(p, err));
    }
    if (message.type === 'ACK') {
      this.counters.acksIgnored++;
      return undefined;
    }
    const header = headerOf(message);
    let taken;
    try {
      taken = resultsOfOru(message, {
        instrument: this.instrument.id,
        sampleIdFrom: this.connection.sample_id,
        timeZone: this.ctx.timeZone,
        controlFlag: this.controlFlag,
      });
    } catch (err) {
      return this.refuse(p, 'AE', header, this.reasonOf(p, err));
    }
    /** The results not captured before, when the sink tells them. */
    let fresh: LabResult[] | undefined;
    try {
      if (taken.results.length > 0) {
        const stored = this.ctx.results!(taken.results);
        if (Array.isArray(stored)) fresh = stored;
      }
    } catch (err) {
      this.counters.storeFailures++;
      // Not the sender's fault and not to be hidden: the error itself, at error level.
      p.warn(
        { err, controlId: message.controlId },
        'HL7 message not stored: the result store failed; answered AR, the sender sends it again',
        'error',
      );
      return this.refuse(
        p,
        'AR',
        header,
        new Hl7Error('the gateway could not store the results; send the message again', ERROR_CODES.applicationError),
        false,
      );
    }
    this.counters.accepted++;
    this.counters.skippedObservations += taken.skipped;
    const captured = fresh ? fresh.length : taken.results.length;
    this.counters.results += captured;
    if (fresh && captured < taken.results.length) {
      const before = taken.results.length - captured;
      if (captured === 0) {
        this.counters.duplicates++;
        p.warn(
          { controlId: message.controlId, results: before },
          'HL7 message sent again: its results were captured before; answered AA',
          'info',
        );
      } else
        p.warn(
          { controlId: message.controlId, captured, capturedBefore: before },
          'HL7 message with a control id used before: its new results are captured, those that were captured before are not taken again',
        );
    }
    return buildAck(header, 'AA');
  }

  /** A parser's reason; anything else is a fault of the gateway's, logged with its error, and the sender is told so. */
  private reasonOf(p: Peer, err: unknown): Hl7Error {
    if (err instanceof Hl7Error) return err;
    p.warn({ err }, 'HL7 message could not be read: an error in the gateway', 'error');
    return new Hl7Error('the gateway could not read the message (an internal error, logged)', ERROR_CODES.applicationError);
  }

  private refuse(p: Peer, code: AckCode, header: AckHeader, error: Hl7Error, log = true): Buffer {
    if (code === 'AE') this.counters.errors++;
    else this.counters.rejected++;
    const controlId = header.controlId || undefined;
    if (log)
      p.warn(
        {
          answer: code,
          reason: error.message,
          ...(controlId ? { controlId } : {}),
          ...(error.location ? { location: error.location } : {}),
        },
        code === 'AE'
          ? 'HL7 message refused (AE): it cannot be taken as it is'
          : 'HL7 message refused for now (AR): the sender sends it again',
      );
    this.ctx.labEvents?.({
      kind: 'message-refused',
      instrument: this.instrument.id,
      reason: `${code}: ${error.message}`,
      ...(controlId ? { controlId } : {}),
      ts: Date.now(),
    });
    return buildAck(header, code, error);
  }
}

/** Nothing but line ends and spaces. */
function isBlank(bytes: Buffer): boolean {
  for (const b of bytes) if (b !== 0x0d && b !== 0x0a && b !== 0x20 && b !== 0x09) return false;
  return true;
}

export function createHl7Driver(connection: Hl7Connection, instrument: EquipmentBase, ctx: DriverContext): Driver {
  return new Hl7Driver(connection, instrument, ctx);
}
