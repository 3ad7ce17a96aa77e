// A chemistry analyzer that sends its results over ASTM E1381/E1394 to the gateway, as real ones do:
// sessions of several samples, a long comment that spans frames, and in the first session one frame
// corrupted on the line, which the gateway must NAK and the analyzer send again.
import net from 'node:net';
import { AstmSender } from './astm-sender.js';
import type { AstmSimulatorConfig } from './schema.js';

const ANALYTES = [
  { code: 'GLU', unit: 'mmol/L', lo: 3.9, hi: 6.1, mean: 5.2, spread: 2.5 },
  { code: 'CHOL', unit: 'mmol/L', lo: 0, hi: 5.2, mean: 4.8, spread: 1.5 },
  { code: 'TG', unit: 'mmol/L', lo: 0, hi: 1.7, mean: 1.4, spread: 0.8 },
];

export interface AstmAnalyzer {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Results the gateway acknowledged (sample, analyte, value). */
  readonly sent: Array<{ sampleId: string; analyte: string; value: number }>;
  sessions(): number;
}

/** The records of one session: H, then per sample P, O and one R per analyte, a long C, then L. */
export function sessionRecords(name: string, firstSample: number, samples: number, seed: number, at: Date): { records: string[]; results: Array<{ sampleId: string; analyte: string; value: number }> } {
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
  records.push(`C|1|I|Session of ${samples} samples; reagent lot 24-118, calibration 2026-11-20, QC passed on levels 1 and 2; ${'maintenance: probe wash done, cuvettes replaced. '.repeat(4)}|G`);
  records.push('L|1|N');
  return { records, results };
}

export function createAstmAnalyzer(cfg: AstmSimulatorConfig): AstmAnalyzer {
  let socket: net.Socket | undefined;
  let sender: AstmSender | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let next = 1;
  let count = 0;
  const sent: AstmAnalyzer['sent'] = [];

  const connect = () => {
    if (stopped) return;
    const s = net.connect(cfg.port, cfg.host);
    s.on('error', () => {});
    s.on('close', () => {
      if (socket === s) socket = undefined;
      clearTimeout(timer);
      if (!stopped) timer = setTimeout(connect, 1000);
    });
    s.on('connect', () => {
      socket = s;
      let corrupted = count > 0;
      sender = new AstmSender({
        write: (b) => void (s.destroyed ? undefined : s.write(b)),
        // The first session's third frame goes out once with a wrong checksum.
        corrupt: (frame, index) => {
          if (corrupted || index !== 2) return undefined;
          corrupted = true;
          const bad = Buffer.from(frame);
          bad[bad.length - 3] = bad[bad.length - 3] === 0x30 ? 0x31 : 0x30;
          return bad;
        },
      });
      s.on('data', (d: Buffer) => sender?.receive(d));
      void session();
    });
  };

  const session = async () => {
    if (stopped || !socket || !sender) return;
    const { records, results } = sessionRecords(cfg.name, next, cfg.samples, cfg.seed, new Date());
    const r = await sender.send(records);
    if (r.ok) {
      next += cfg.samples;
      count++;
      sent.push(...results);
    }
    if (!stopped && socket) timer = setTimeout(() => void session(), cfg.interval);
  };

  return {
    sent,
    sessions: () => count,
    async start() {
      connect();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      socket?.destroy();
    },
  };
}

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

function hash(seed: number, n: number): number {
  let x = (seed * 374761393 + n * 668265263) | 0;
  x = Math.imul(x ^ (x >>> 13), 1274126177);
  return ((x ^ (x >>> 16)) >>> 0) / 4294967296;
}
