// Lab instruments that speak ASTM E1381/E1394 over TCP: results arrive as messages; each message is
// stored (the result sink) before its last frame is acknowledged, so the analyzer never believes a
// result delivered that the gateway has not kept.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { SerialPort } from 'serialport';
import { backoffDelay } from '../common/backoff.js';
import type { ConnectionConfig, Driver, DriverContext, DriverDefinition, EquipmentBase, EquipmentConfig } from '../types.js';
import { AstmReceiver, type ReceiverEvent } from './astm-link.js';
import { AstmRecordError, resultsOf } from './astm-records.js';
import { astmConnectionSchema, astmEquipmentSchema, astmPointSchema, astmSerialConnectionSchema, type AstmConnection } from './schema.js';

const TICK_MS = 1000;

class AstmDriver implements Driver {
  private server: net.Server | undefined;
  private socket: net.Socket | undefined;
  private readonly sockets = new Set<Duplex>();
  private timer: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private attempt = 0;
  private stopped = false;
  private readonly receivers = new Set<AstmReceiver>();
  private readonly counters = { connections: 0, messages: 0, results: 0, naks: 0, aborted: 0, refused: 0 };

  constructor(
    private readonly connection: AstmConnection,
    private readonly instrument: EquipmentBase,
    private readonly ctx: DriverContext,
  ) {}

  async init(): Promise<void> {
    if (!this.ctx.results) throw new Error('The ASTM driver needs a result sink');
  }

  async start(): Promise<void> {
    this.timer = setInterval(() => {
      for (const r of this.receivers) r.tick(Date.now());
    }, TICK_MS);
    const c = this.connection;
    if (c.type === 'astm-serial') return this.openSerial(c);
    const { host, port } = c;
    if (c.mode === 'listen') {
      const server = net.createServer((socket) => this.serve(socket));
      this.server = server;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.ctx.log.info({ host, port, instrument: this.instrument.id }, 'Listening for ASTM analyzer');
    } else {
      this.dial();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.retry);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  stats(): Record<string, number> {
    return { ...this.counters };
  }

  /** A serial line: opened, and opened again with backoff when it fails or goes away. */
  private openSerial(c: Extract<AstmConnection, { type: 'astm-serial' }>): void {
    if (this.stopped) return;
    const port = new SerialPort({ path: c.path, baudRate: c.baud_rate, dataBits: c.data_bits, parity: c.parity, stopBits: c.stop_bits, autoOpen: false });
    port.open((err) => {
      if (err) {
        if (this.attempt === 0) this.ctx.log.warn({ path: c.path, err: err.message }, 'Cannot open the ASTM serial port; retrying with backoff');
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

  private serve(socket: Duplex, peer = socket instanceof net.Socket ? `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}` : 'serial'): void {
    const listening = this.connection.type === 'astm-tcp' && this.connection.mode === 'listen';
    const log = this.ctx.log.child({ instrument: this.instrument.id, peer });
    this.counters.connections++;
    this.sockets.add(socket);
    const receiver = new AstmReceiver(
      (records) => this.store(records, log),
      (e: ReceiverEvent) => {
        if (e.kind === 'nak') {
          this.counters.naks++;
          log.warn({ reason: e.reason }, 'ASTM frame refused (NAK); the analyzer sends it again');
        } else if (e.kind === 'aborted') {
          this.counters.aborted++;
          log.warn({ reason: e.reason }, 'ASTM message dropped whole: it did not end');
        }
      },
    );
    this.receivers.add(receiver);
    socket.on('connect', () => log.info('ASTM analyzer connected'));
    if (listening) log.info('ASTM analyzer connected');
    socket.on('data', (data: Buffer) => {
      const answer = receiver.receive(data, Date.now());
      if (answer.length > 0 && !socket.destroyed) socket.write(Buffer.from(answer));
    });
    socket.on('error', (err) => log.debug({ err: err.message }, 'ASTM connection error'));
    socket.on('close', () => {
      receiver.close();
      this.receivers.delete(receiver);
      this.sockets.delete(socket);
      if (!this.stopped) log.info('ASTM analyzer disconnected');
    });
  }

  /** A complete message: its results are stored before the analyzer gets the last ACK. */
  private store(records: string[], log: DriverContext['log']): boolean {
    let results;
    try {
      results = resultsOf(records, this.instrument.id);
    } catch (err) {
      if (!(err instanceof AstmRecordError)) throw err;
      this.counters.refused++;
      log.error({ reason: err.message }, 'ASTM message refused: its records do not make a result');
      return false;
    }
    this.ctx.results!(results);
    this.counters.messages++;
    this.counters.results += results.length;
    return true;
  }
}

const create = (connection: ConnectionConfig, equipment: EquipmentConfig[], ctx: DriverContext): Driver => {
  if (equipment.length > 1) ctx.log.warn({ equipment: equipment.map((e) => e.id) }, 'An ASTM connection serves one analyzer: its results go to the first equipment entry');
  return new AstmDriver(connection as unknown as AstmConnection, equipment[0] as EquipmentBase, ctx);
};

export const astmSerialDriver: DriverDefinition = {
  type: 'astm-serial',
  summary: 'Laboratory analyzers speaking ASTM E1381/E1394 on a serial line (RS-232), as many still do; the same protocol handling as astm-tcp.',
  connectionSchema: astmSerialConnectionSchema,
  equipmentSchema: astmEquipmentSchema,
  pointSchema: astmPointSchema,
  create,
};

export const astmDriver: DriverDefinition = {
  type: 'astm-tcp',
  summary: 'Laboratory analyzers speaking ASTM E1381 (low level: ENQ/ACK/NAK/EOT, numbered and checksummed frames) and E1394 (H/P/O/R/L records) over TCP. Each result is captured once, by a stable id, and stored before the analyzer gets its acknowledgement.',
  connectionSchema: astmConnectionSchema,
  equipmentSchema: astmEquipmentSchema,
  pointSchema: astmPointSchema,
  create,
};
