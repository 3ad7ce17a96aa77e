// A chemistry analyzer that sends its results over ASTM E1381/E1394 to the gateway, as real ones do:
// sessions of several samples, a long comment that spans frames, and in the first session one frame
// corrupted on the line, which the gateway must NAK and the analyzer send again. Switched to a fault
// mode, it misbehaves as analyzers and stray clients do in the field (huge or endless frames,
// garbage, trickled bytes, floods of connections, silence after ENQ, bad checksums, answers unread).
import net from 'node:net';
import { ACK, checksum, ENQ, EOT, ETX, framesOf, NAK, STX } from './astm-link.js';
import { AstmSender } from './astm-sender.js';
import type { AstmFault, AstmSimulatorConfig } from './schema.js';

const ANALYTES = [
  { code: 'GLU', unit: 'mmol/L', lo: 3.9, hi: 6.1, mean: 5.2, spread: 2.5 },
  { code: 'CHOL', unit: 'mmol/L', lo: 0, hi: 5.2, mean: 4.8, spread: 1.5 },
  { code: 'TG', unit: 'mmol/L', lo: 0, hi: 1.7, mean: 1.4, spread: 0.8 },
];

type FaultKey = 'fault' | 'fault_bytes' | 'fault_interval' | 'fault_connections';
/** The simulator's settings; the fault ones may be left out (no fault). */
export type AstmAnalyzerOptions = Omit<AstmSimulatorConfig, FaultKey> & Partial<Pick<AstmSimulatorConfig, FaultKey>>;
export type AstmFaultOptions = Partial<{ bytes: number; intervalMs: number; connections: number }>;

export interface AstmFaultStats {
  /** Bytes the faults wrote on the analyzer's connection. */
  bytes: number;
  /** Connections a flood opened, and how many of them the gateway closed. */
  floodOpened: number;
  floodClosed: number;
  /** The analyzer's connections the gateway closed (not the simulator). */
  closedByPeer: number;
  /** Answers the gateway sent. */
  acks: number;
  naks: number;
}

export interface AstmAnalyzer {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Results the gateway acknowledged (sample, analyte, value). */
  readonly sent: Array<{ sampleId: string; analyte: string; value: number }>;
  sessions(): number;
  /** Switches the fault mode at run time (`none`: behave); a fault under way stops, the next session starts now. */
  fault(mode: AstmFault, opts?: AstmFaultOptions): void;
  faultStats(): AstmFaultStats;
}

/** The records of one session: H, then per sample P, O and one R per analyte, a long C, then L. */
export function sessionRecords(
  name: string,
  firstSample: number,
  samples: number,
  seed: number,
  at: Date,
): { records: string[]; results: Array<{ sampleId: string; analyte: string; value: number }> } {
  const ts = stamp(at);
  const records = [`H|\\^&|||${name}^2.1|||||||P|1|${ts}`];
  const results: Array<{ sampleId: string; analyte: string; value: number }> = [];
  for (let k = 0; k < samples; k++) {
    const n = firstSample + k;
    const sampleId = `S-${String(n).padStart(5, '0')}`;
    records.push(`P|${k + 1}||PAT-${(n * 7919) % 100000}`, `O|1|${sampleId}||${ANALYTES.map((a) => `^^^${a.code}`).join('\\')}|R||${ts}`);
    ANALYTES.forEach((a, i) => {
      const value = Math.round((a.mean + (hash(seed, n * 31 + i) - 0.5) * 2 * a.spread) * 100) / 100;
      const flag = value > a.hi ? 'H' : value < a.lo ? 'L' : 'N';
      records.push(`R|${i + 1}|^^^${a.code}|${value}|${a.unit}|${a.lo}-${a.hi}|${flag}||F||lab-op||${ts}|${name}`);
      results.push({ sampleId, analyte: a.code, value });
    });
  }
  records.push(
    `C|1|I|Session of ${samples} samples; reagent lot 24-118, calibration 2026-11-20, QC passed on levels 1 and 2; ${'maintenance: probe wash done, cuvettes replaced. '.repeat(4)}|G`,
  );
  records.push('L|1|N');
  return { records, results };
}

export function createAstmAnalyzer(cfg: AstmAnalyzerOptions): AstmAnalyzer {
  let socket: net.Socket | undefined;
  let sender: AstmSender | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let next = 1;
  let count = 0;
  /** When the session being sent was measured: kept until it is acknowledged. */
  let sessionAt: Date | undefined;
  const sent: AstmAnalyzer['sent'] = [];
  let mode: AstmFault = cfg.fault ?? 'none';
  let opts = { bytes: cfg.fault_bytes ?? 1024 * 1024, intervalMs: cfg.fault_interval ?? 1000, connections: cfg.fault_connections ?? 1000 };
  // A fault under way stops when the mode changes: it checks its generation between writes.
  let generation = 0;
  let running = false;
  let sending = false;
  const flood = new Set<net.Socket>();
  // One flood per switch to connection-flood (or per start in that mode), not one per session.
  let flooded = false;
  const stats: AstmFaultStats = { bytes: 0, floodOpened: 0, floodClosed: 0, closedByPeer: 0, acks: 0, naks: 0 };

  const connect = () => {
    if (stopped) return;
    const s = net.connect(cfg.port, cfg.host);
    s.on('error', () => {});
    s.on('close', () => {
      // The simulator closes its connection only when it stops: any other close is the gateway's.
      if (!stopped && socket === s) stats.closedByPeer++;
      if (socket === s) socket = undefined;
      clearTimeout(timer);
      if (!stopped) timer = setTimeout(connect, 1000);
    });
    s.on('connect', () => {
      socket = s;
      let corrupted = count > 0;
      sender = new AstmSender({
        write: (b) => void (s.destroyed ? undefined : s.write(b)),
        corrupt: (frame, index, attempt) => {
          if (mode === 'bad-checksums') return withBadChecksum(frame);
          // The first session's third frame goes out once with a wrong checksum.
          if (corrupted || index !== 2 || attempt > 0) return undefined;
          corrupted = true;
          return withBadChecksum(frame);
        },
      });
      s.on('data', (d: Buffer) => {
        for (const b of d) {
          if (b === ACK) stats.acks++;
          else if (b === NAK) stats.naks++;
        }
        if (sending) sender?.receive(d);
      });
      void session();
    });
  };

  /** One session as the mode says; the next one after the interval. */
  const session = async () => {
    clearTimeout(timer);
    const s = socket;
    if (stopped || !s || !sender || running) return;
    running = true;
    const gen = generation;
    try {
      if (mode === 'none' || mode === 'connection-flood' || mode === 'bad-checksums') {
        if (mode === 'connection-flood') openFlood();
        // A session not acknowledged is sent again as it was, with the results' own completion time,
        // as an analyzer does: a new time would make them new results.
        sessionAt ??= new Date();
        const { records, results } = sessionRecords(cfg.name, next, cfg.samples, cfg.seed, sessionAt);
        sending = true;
        const r = await sender.send(records);
        sending = false;
        if (r.ok) {
          sessionAt = undefined;
          next += cfg.samples;
          count++;
          sent.push(...results);
        }
      } else {
        await misbehave(s, mode, gen);
      }
    } finally {
      running = false;
      sending = false;
    }
    // Switched meanwhile: the new mode starts now.
    if (!stopped && socket) timer = setTimeout(() => void session(), gen === generation ? cfg.interval : 0);
  };

  /** Writes with backpressure; false when the fault should stop (mode changed, connection gone). */
  const write = async (s: net.Socket, bytes: Buffer, gen: number): Promise<boolean> => {
    if (gen !== generation || s.destroyed) return false;
    stats.bytes += bytes.length;
    if (!s.write(bytes)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          s.off('drain', done).off('close', done);
          resolve();
        };
        s.on('drain', done).on('close', done);
      });
    }
    return gen === generation && !s.destroyed;
  };

  const misbehave = async (s: net.Socket, fault: AstmFault, gen: number) => {
    const chunk = 64 * 1024;
    if (fault === 'oversized-frame') {
      // Well formed but for its length: numbered, checksummed, ETX, CR LF; the text is all 'A'.
      if (!(await write(s, Buffer.from([ENQ, STX, 0x31]), gen))) return;
      const text = Buffer.alloc(chunk, 0x41);
      for (let left = opts.bytes; left > 0; left -= chunk) if (!(await write(s, text.subarray(0, Math.min(chunk, left)), gen))) return;
      const sum = checksum(Buffer.from([0x31, (0x41 * opts.bytes) & 0xff, ETX]));
      await write(s, Buffer.from(`${String.fromCharCode(ETX)}${sum}\r\n${String.fromCharCode(EOT)}`, 'latin1'), gen);
    } else if (fault === 'endless-frame') {
      // A frame begun and never ended: then silence, until the gateway gives up on the connection.
      if (!(await write(s, Buffer.from([ENQ, STX, 0x31]), gen))) return;
      const text = Buffer.alloc(chunk, 0x41);
      for (let left = opts.bytes; left > 0; left -= chunk) if (!(await write(s, text.subarray(0, Math.min(chunk, left)), gen))) return;
      await silence(s, gen);
    } else if (fault === 'garbage') {
      const random = xorshift(cfg.seed);
      for (let left = opts.bytes; left > 0; left -= chunk) {
        const bytes = Buffer.alloc(Math.min(chunk, left));
        for (let i = 0; i < bytes.length; i++) bytes[i] = random() & 0xff;
        if (!(await write(s, bytes, gen))) return;
      }
    } else if (fault === 'trickle') {
      // A real session, one byte at a time: ENQ, the frames, EOT.
      const { records } = sessionRecords(cfg.name, next, cfg.samples, cfg.seed, new Date());
      let fn = 1;
      const frames = records.flatMap((r) => {
        const f = framesOf(`${r}\r`, fn);
        fn = (fn + f.length) % 8;
        return f;
      });
      const bytes = Buffer.concat([Buffer.from([ENQ]), ...frames, Buffer.from([EOT])]);
      for (const b of bytes) {
        if (!(await write(s, Buffer.from([b]), gen))) return;
        await sleep(opts.intervalMs);
      }
    } else if (fault === 'unread-answers') {
      // Each ENQ is answered, and the frame after them is taken, so the link looks busy; a peer that
      // never reads the answers must not make the gateway keep them.
      s.pause();
      const frame = framesOf('P|1\r', 1)[0]!;
      const block = Buffer.concat([Buffer.alloc(chunk - frame.length, ENQ), frame]);
      for (let left = opts.bytes; left > 0; left -= chunk) if (!(await write(s, block.subarray(0, Math.min(chunk, left)), gen))) break;
      await silence(s, gen);
      s.resume();
    } else if (fault === 'silence-after-enq') {
      if (await write(s, Buffer.from([ENQ]), gen)) await silence(s, gen);
    }
  };

  /** Until the mode changes or the connection goes. */
  const silence = async (s: net.Socket, gen: number) => {
    while (gen === generation && !s.destroyed && !stopped) await sleep(100);
  };

  const openFlood = () => {
    if (flooded) return;
    flooded = true;
    for (let i = 0; i < opts.connections; i++) {
      const f = net.connect(cfg.port, cfg.host);
      stats.floodOpened++;
      flood.add(f);
      f.on('error', () => {});
      f.on('close', () => {
        // Still in the set: the gateway closed it, not closeFlood().
        if (flood.delete(f)) stats.floodClosed++;
      });
    }
  };

  const closeFlood = () => {
    const all = [...flood];
    flood.clear();
    for (const f of all) f.destroy();
  };

  return {
    sent,
    sessions: () => count,
    async start() {
      connect();
    },
    async stop() {
      stopped = true;
      generation++;
      clearTimeout(timer);
      closeFlood();
      socket?.destroy();
    },
    fault(m, o = {}) {
      mode = m;
      opts = { ...opts, ...o };
      generation++;
      flooded = false;
      if (m !== 'connection-flood') closeFlood();
      // The fault under way returns at its next write; a session in progress is left to finish.
      setImmediate(() => void session());
    },
    faultStats: () => ({ ...stats }),
  };
}

function withBadChecksum(frame: Buffer): Buffer {
  const bad = Buffer.from(frame);
  bad[bad.length - 3] = bad[bad.length - 3] === 0x30 ? 0x31 : 0x30;
  return bad;
}

function xorshift(seed: number): () => number {
  let x = seed * 2654435761 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

function hash(seed: number, n: number): number {
  let x = (seed * 374761393 + n * 668265263) | 0;
  x = Math.imul(x ^ (x >>> 13), 1274126177);
  return ((x ^ (x >>> 16)) >>> 0) / 4294967296;
}
