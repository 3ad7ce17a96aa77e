// A chemistry analyzer that sends its results to the gateway as HL7 v2 ORU^R01 over MLLP, as real
// ones do: each message carries a few patient samples and one run of control samples (QC1-n, QC2-n),
// the analyte names in Chinese, in UTF-8 or GB18030; it waits for each ACK and sends a message again
// (same bytes, same control id) until it is acknowledged AA, or gives it up when answered AE. The
// controls are drawn around their targets and can be shifted (qc_shift) to make QC reject a run.
// Fault modes write frames in pieces, two in one packet, a bad message before each one, or each one twice.
import net from 'node:net';
import { encode, hl7Time, parseMessage, type Charset } from './hl7-message.js';
import { frame, MllpReceiver } from './mllp.js';
import type { Hl7Fault, Hl7SimulatorConfig } from './schema.js';

export const ANALYTES = [
  { code: 'GLU', name: '葡萄糖', unit: 'mmol/L', lo: 3.9, hi: 6.1, mean: 5.2, spread: 2.5 },
  { code: 'CHOL', name: '总胆固醇', unit: 'mmol/L', lo: 0, hi: 5.2, mean: 4.8, spread: 1.5 },
  { code: 'TG', name: '甘油三酯', unit: 'mmol/L', lo: 0, hi: 1.7, mean: 1.4, spread: 0.8 },
];

type FaultKey = 'fault' | 'ack_timeout' | 'controls' | 'version' | 'charset' | 'control_noise';
/** The simulator's settings; those with defaults may be left out. */
export type Hl7AnalyzerOptions = Omit<Hl7SimulatorConfig, FaultKey> & Partial<Pick<Hl7SimulatorConfig, FaultKey>>;

export interface SentResult {
  sampleId: string;
  analyte: string;
  value: number;
  /** The control level, for a control sample. */
  level?: string;
}

export interface Hl7AnalyzerStats {
  /** Messages acknowledged AA (duplicates sent by the `duplicate` fault included). */
  aa: number;
  ae: number;
  ar: number;
  /** Messages sent again: answered AR, or no ACK within ack_timeout. */
  resent: number;
  /** The messages' control ids acknowledged AA, in order. */
  acknowledged: string[];
}

export interface Hl7Analyzer {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Results of the messages acknowledged AA. */
  readonly sent: SentResult[];
  /** Messages acknowledged AA (not counting duplicates and bad ones). */
  messages(): number;
  stats(): Hl7AnalyzerStats;
  /** Switches the fault mode at run time (`none`: behave); it applies from the next message. */
  fault(mode: Hl7Fault): void;
}

export interface OruMessage {
  controlId: string;
  text: string;
  results: SentResult[];
}

interface MessageOptions {
  name: string;
  version: '2.3.1' | '2.5.1';
  charset: 'utf-8' | 'gb18030';
  samples: number;
  seed: number;
  controls: Hl7SimulatorConfig['controls'];
  qcShift?: Hl7SimulatorConfig['qc_shift'];
  /** Spread of the controls that are not shifted, in SD. */
  noise: number;
}

const MSH18 = { 'utf-8': 'UNICODE UTF-8', gb18030: 'GB 18030-2000' } as const;

/**
 * ORU^R01 number `n` (1-based): patient samples S-<k> and control run n (samples QC<level>-<n>),
 * each an OBR group with one OBX per analyte; in 2.5.1 each group also has its SPM, role P or Q.
 */
export function oruMessage(o: MessageOptions, n: number, at: Date): OruMessage {
  const ts = hl7Time(at);
  const controlId = `${o.name.slice(0, 8)}${String(n).padStart(8, '0')}`;
  const v251 = o.version === '2.5.1';
  const segments = [
    `MSH|^~\\&|${o.name}|LAB||GATEWAY|${ts}||${v251 ? 'ORU^R01^ORU_R01' : 'ORU^R01'}|${controlId}|P|${o.version}||||||${MSH18[o.charset]}`,
  ];
  const results: SentResult[] = [];
  let group = 0;
  const order = (
    sampleId: string,
    role: 'P' | 'Q',
    observations: Array<{
      a: (typeof ANALYTES)[number] | { code: string; name: string; unit: string };
      value: number;
      range: string;
      flag: string;
    }>,
  ) => {
    group++;
    segments.push(`OBR|${group}|${sampleId}|${sampleId}|CHEM^生化^L|||${ts}`);
    observations.forEach(({ a, value, range, flag }, k) => {
      segments.push(`OBX|${k + 1}|NM|${a.code}^${a.name}^L||${value}|${a.unit}^${a.unit}^UCUM|${range}|${flag}|||F|||${ts}`);
    });
    if (v251) segments.push(`SPM|1|^${sampleId}||SER^Serum^HL70487|||||||${role}`);
  };
  for (let k = 0; k < o.samples; k++) {
    const sample = (n - 1) * o.samples + k + 1;
    const sampleId = `S-${String(sample).padStart(5, '0')}`;
    segments.push(`PID|1||PAT-${(sample * 7919) % 100000}^^^LAB^MR`);
    order(
      sampleId,
      'P',
      ANALYTES.map((a, i) => {
        const value = Math.round((a.mean + (uniform(o.seed, sample * 31 + i) - 0.5) * 2 * a.spread) * 100) / 100;
        results.push({ sampleId, analyte: a.code, value });
        return { a, value, range: `${a.lo}-${a.hi}`, flag: value > a.hi ? 'H' : value < a.lo ? 'L' : 'N' };
      }),
    );
  }
  // The control run: one sample per level, with every analyte that has a material at that level.
  const shift = o.qcShift && n >= o.qcShift.from && n < o.qcShift.from + o.qcShift.runs ? o.qcShift.sd : undefined;
  for (const level of ['1', '2', '3'] as const) {
    const analytes = Object.entries(o.controls).flatMap(([code, levels]) => (levels[level] ? [{ code, target: levels[level] }] : []));
    if (analytes.length === 0) continue;
    const sampleId = `QC${level}-${n}`;
    order(
      sampleId,
      'Q',
      analytes.map(({ code, target }, i) => {
        const known = ANALYTES.find((a) => a.code === code);
        const g = gaussian(o.seed, n * 1009 + Number(level) * 101 + i);
        // A shifted control sits within 0.4 SD of its shift: +2.5 SD is beyond 2 SD and within 3 SD on
        // every level, a 2-2s rejection and never a 1-3s one, whatever the draw.
        const z = shift === undefined ? g * o.noise : shift + Math.max(-0.4, Math.min(0.4, g * 0.2));
        const value = Math.round((target.mean + z * target.sd) * 1000) / 1000;
        results.push({ sampleId, analyte: code, value, level });
        const lo = Math.round((target.mean - 2 * target.sd) * 1000) / 1000;
        const hi = Math.round((target.mean + 2 * target.sd) * 1000) / 1000;
        return { a: known ?? { code, name: code, unit: '' }, value, range: `${lo}-${hi}`, flag: 'N' };
      }),
    );
  }
  return { controlId, text: `${segments.join('\r')}\r`, results };
}

/** A message the gateway must answer AE: an NM value that is no number. */
export function badMessage(o: Pick<MessageOptions, 'name' | 'version'>, n: number, at: Date): OruMessage {
  const controlId = `${o.name.slice(0, 8)}B${String(n).padStart(7, '0')}`;
  const ts = hl7Time(at);
  const text = [
    `MSH|^~\\&|${o.name}|LAB||GATEWAY|${ts}||ORU^R01|${controlId}|P|${o.version}`,
    `OBR|1|BAD-${n}|BAD-${n}|CHEM|||${ts}`,
    `OBX|1|NM|GLU^Glucose^L||high|mmol/L|3.9-6.1|H|||F|||${ts}`,
    '',
  ].join('\r');
  return { controlId, text, results: [] };
}

export function createHl7Analyzer(cfg: Hl7AnalyzerOptions): Hl7Analyzer {
  const o: MessageOptions = {
    name: cfg.name,
    version: cfg.version ?? '2.5.1',
    charset: cfg.charset ?? 'utf-8',
    samples: cfg.samples,
    seed: cfg.seed,
    controls: cfg.controls ?? { GLU: { '1': { mean: 5.0, sd: 0.1 }, '2': { mean: 15.0, sd: 0.3 } } },
    ...(cfg.qc_shift ? { qcShift: cfg.qc_shift } : {}),
    noise: cfg.control_noise ?? 1,
  };
  const charset: Charset = o.charset;
  const ackTimeout = cfg.ack_timeout ?? 10_000;
  let mode: Hl7Fault = cfg.fault ?? 'none';
  let socket: net.Socket | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let next = 1;
  let bad = 1;
  let count = 0;
  /** When the message being sent was measured: kept until it is acknowledged, so a resend is the same message. */
  let at: Date | undefined;
  const sent: SentResult[] = [];
  const stats: Hl7AnalyzerStats = { aa: 0, ae: 0, ar: 0, resent: 0, acknowledged: [] };
  const waiting = new Map<string, (code: string) => void>();
  const receiver = new MllpReceiver({ maxMessageSize: 1024 * 1024, receiveTimeoutMs: 60_000 });

  const connect = () => {
    if (stopped || socket) return;
    const s = net.connect(cfg.port, cfg.host);
    s.setNoDelay(true);
    s.on('error', () => {});
    s.on('close', () => {
      if (socket === s) socket = undefined;
      for (const [, resolve] of waiting) resolve('closed');
      waiting.clear();
      if (!stopped) {
        clearTimeout(timer);
        timer = setTimeout(connect, 500);
      }
    });
    s.on('connect', () => {
      socket = s;
      void round();
    });
    s.on('data', (d: Buffer) => {
      for (const e of receiver.receive(d, Date.now())) {
        if (e.kind !== 'frame') continue;
        try {
          const msa = parseMessage(e.bytes, 'utf-8').segments.find((x) => x.name === 'MSA');
          const resolve = waiting.get(msa?.get(2) ?? '');
          if (msa && resolve) {
            waiting.delete(msa.get(2));
            resolve(msa.get(1));
          }
        } catch {
          // Not an ACK this simulator can read: the message is sent again after ack_timeout.
        }
      }
    });
  };

  /** Sends messages, in one write or in pieces, and waits for their ACKs: the MSA-1 of each, 'timeout' or 'closed'. */
  const exchange = async (s: net.Socket, messages: OruMessage[], split: boolean): Promise<string[]> => {
    const answers = messages.map(
      (m) =>
        new Promise<string>((resolve) => {
          const t = setTimeout(() => {
            waiting.delete(m.controlId);
            resolve('timeout');
          }, ackTimeout);
          waiting.set(m.controlId, (code) => {
            clearTimeout(t);
            resolve(code);
          });
        }),
    );
    const bytes = Buffer.concat(messages.map((m) => frame(encode(m.text, charset))));
    if (split) {
      // Pieces that cut the start, the middle of a segment (perhaps of a character) and FS from CR apart.
      const cuts = [1, Math.floor(bytes.length / 3), Math.floor((2 * bytes.length) / 3), bytes.length - 1, bytes.length];
      let from = 0;
      for (const cut of cuts) {
        if (s.destroyed) break;
        s.write(bytes.subarray(from, cut));
        from = cut;
        await sleep(20);
      }
    } else {
      s.write(bytes);
    }
    return Promise.all(answers);
  };

  const record = (m: OruMessage, code: string): boolean => {
    if (code === 'AA') {
      stats.aa++;
      stats.acknowledged.push(m.controlId);
      return true;
    }
    if (code === 'AE') stats.ae++;
    else if (code === 'AR') stats.ar++;
    return false;
  };

  /** One round: the next message (or two), as the fault mode says; the next round after the interval. */
  const round = async () => {
    clearTimeout(timer);
    const s = socket;
    if (stopped || !s || running) return;
    running = true;
    let again = false;
    try {
      const fault = mode;
      if (fault === 'bad-message') {
        const b = badMessage(o, bad, new Date());
        const [code] = await exchange(s, [b], false);
        if (code === 'AE' || code === 'AA' || code === 'AR') bad++;
        record(b, code!);
      }
      at ??= new Date();
      const batch = [oruMessage(o, next, at), ...(fault === 'two-in-one' ? [oruMessage(o, next + 1, at)] : [])];
      const codes = await exchange(s, batch, fault === 'split');
      for (const [k, m] of batch.entries()) {
        const code = codes[k]!;
        if (record(m, code)) {
          sent.push(...m.results);
          count++;
          next++;
          if (fault === 'duplicate') record(m, (await exchange(s, [m], false))[0]!);
        } else if (code === 'AE') {
          // It will not be taken as it is: sending it again does not help.
          next++;
        } else {
          stats.resent++;
          again = true;
          // No answer: this connection is in doubt; a new one is opened for the resend.
          if (code === 'timeout') s.destroy();
          break;
        }
      }
      if (!again) at = undefined;
    } finally {
      running = false;
    }
    if (!stopped && socket) timer = setTimeout(() => void round(), again ? 200 : cfg.interval);
  };

  return {
    sent,
    messages: () => count,
    stats: () => ({ ...stats, acknowledged: [...stats.acknowledged] }),
    async start() {
      connect();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      socket?.destroy();
    },
    fault(m) {
      mode = m;
    },
  };
}

/** A uniform number in [0, 1) from a seed and an index: the same message has the same values. */
function uniform(seed: number, n: number): number {
  let x = (seed * 374761393 + n * 668265263) | 0;
  x = Math.imul(x ^ (x >>> 13), 1274126177);
  return ((x ^ (x >>> 16)) >>> 0) / 4294967296;
}

/** A standard normal number (Box-Muller) from a seed and an index. */
function gaussian(seed: number, n: number): number {
  const u = Math.max(uniform(seed, 2 * n), 1e-12);
  const v = uniform(seed, 2 * n + 1);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
