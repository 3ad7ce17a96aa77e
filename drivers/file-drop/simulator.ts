// An instrument whose software exports a result file after each run, as chemistry analyzers and
// their Chinese PC software do: CSV in GBK with Chinese analyte names, decimal commas and a line
// before the header, and XML, in turn. A file is written under a temporary name and renamed into
// place; with a fault it is written slowly under its final name (the gateway must wait until it is
// stable) or cut in the middle of a row (the gateway must reject it). Each file also holds control
// samples of two levels, for quality control: level 2 glucose is off by +2.5 SD in the third and
// fourth files (a Westgard 2-2s rejection), within 1 SD otherwise.
import { mkdir, open, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import iconv from 'iconv-lite';
import type { Logger } from 'pino';
import type { FileFault, FileInstrumentConfig } from './schema.js';

export const ANALYTES = [
  { code: 'GLU', name: '葡萄糖', unit: 'mmol/L', lo: 3.9, hi: 6.1, mean: 5.2, spread: 2.5 },
  { code: 'CHOL', name: '总胆固醇', unit: 'mmol/L', lo: 0, hi: 5.2, mean: 4.8, spread: 1.5 },
  { code: 'TG', name: '甘油三酯', unit: 'mmol/L', lo: 0, hi: 1.7, mean: 1.4, spread: 0.8 },
];

/** Control targets the simulated controls are drawn from (per analyte code and level): what a site's QC settings would say. */
export const CONTROL_TARGETS: Record<string, Record<'1' | '2', { mean: number; sd: number }>> = {
  GLU: { '1': { mean: 5.0, sd: 0.1 }, '2': { mean: 15.0, sd: 0.3 } },
  CHOL: { '1': { mean: 3.0, sd: 0.08 }, '2': { mean: 6.5, sd: 0.15 } },
  TG: { '1': { mean: 1.0, sd: 0.05 }, '2': { mean: 2.5, sd: 0.08 } },
};

export interface SimResult {
  sampleId: string;
  /** The analyte code (GLU); the CSV's 项目 column and the XML's name attribute give the Chinese name. */
  analyte: string;
  value: number;
  control?: '1' | '2';
}

export interface WrittenFile {
  name: string;
  format: 'csv' | 'xml';
  fault: Exclude<FileFault, 'mixed'>;
  /** The results in the file; a truncated file's are not to be taken. */
  results: SimResult[];
}

export interface FileInstrument {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Files written so far, in order (a slow one once it is complete). */
  readonly written: WrittenFile[];
  /** Writes one file now (tests), as the settings say unless told otherwise. */
  writeNext(opts?: { format?: 'csv' | 'xml'; fault?: Exclude<FileFault, 'mixed'> }): Promise<WrittenFile>;
}

/** The results of file number `n` (from 1): patients, then the two control levels. */
export function resultsOf(n: number, samples: number, controls: boolean, seed: number): SimResult[] {
  const out: SimResult[] = [];
  for (let k = 0; k < samples; k++) {
    const sampleId = `S-${String((n - 1) * samples + k + 1).padStart(5, '0')}`;
    ANALYTES.forEach((a, i) => {
      const value = round2(a.mean + (hash(seed, n * 1009 + k * 31 + i) - 0.5) * 2 * a.spread);
      out.push({ sampleId, analyte: a.code, value });
    });
  }
  if (controls)
    for (const level of ['1', '2'] as const) {
      const sampleId = `QC${level}-${String(n).padStart(4, '0')}`;
      for (const [i, a] of ANALYTES.entries()) {
        const t = CONTROL_TARGETS[a.code]![level];
        const shift =
          a.code === 'GLU' && level === '2' && (n === 3 || n === 4) ? 2.5 : (hash(seed, n * 7919 + i * 17 + Number(level)) - 0.5) * 1.8;
        out.push({ sampleId, analyte: a.code, value: round2(t.mean + shift * t.sd), control: level });
      }
    }
  return out;
}

const analyteOf = (code: string) => ANALYTES.find((a) => a.code === code)!;

/** `2026/12/03 10:20:00`, local time, as Chinese instrument software writes it. */
function localStamp(d: Date): string {
  const p = (x: number) => String(x).padStart(2, '0');
  return `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

const comma = (v: number) => `"${String(v).replace('.', ',')}"`;

/** The CSV text of a file (before encoding to GBK): an instrument line, the header, one row per result. */
export function csvText(results: readonly SimResult[], at: Date): string {
  const lines = [
    '仪器: 生化分析仪 ChemFile-240,导出时间: ' + localStamp(at),
    '样本号,代码,项目,结果,单位,参考下限,参考上限,检测时间,质控水平,操作员',
  ];
  for (const r of results) {
    const a = analyteOf(r.analyte);
    const reference = r.control ? ',' : `${comma(a.lo)},${comma(a.hi)}`;
    lines.push([r.sampleId, a.code, a.name, comma(r.value), a.unit, reference, localStamp(at), r.control ?? '', '张三'].join(','));
  }
  return lines.join('\r\n') + '\r\n';
}

/** The XML text of a file: samples with their analytes as child elements. */
export function xmlText(results: readonly SimResult[], at: Date): string {
  const out = ['<?xml version="1.0" encoding="UTF-8"?>', `<Results instrument="ChemFile-240" exported="${at.toISOString()}">`];
  const samples = [...new Set(results.map((r) => r.sampleId))];
  for (const id of samples) {
    const rs = results.filter((r) => r.sampleId === id);
    const control = rs[0]!.control ? ` control="${rs[0]!.control}"` : '';
    out.push(`  <Sample id="${id}" time="${at.toISOString()}"${control}>`);
    for (const r of rs) {
      const a = analyteOf(r.analyte);
      out.push(`    <Analyte code="${a.code}" name="${a.name}" unit="${a.unit}">${r.value}</Analyte>`);
    }
    out.push('  </Sample>');
  }
  out.push('</Results>', '');
  return out.join('\n');
}

/** Cut in the middle of the last result: a CSV row short of its fields, an XML element never closed. */
export function truncate(bytes: Buffer, format: 'csv' | 'xml'): Buffer {
  if (format === 'xml') return bytes.subarray(0, Math.floor(bytes.length * 0.6));
  // The last row's start, then three of its fields: a row that ends before the header's last column.
  const body = bytes.subarray(0, bytes.length - 2);
  const rowStart = body.lastIndexOf(0x0a) + 1;
  let cut = rowStart;
  for (let k = 0; k < 3; k++) cut = body.indexOf(0x2c, cut) + 1;
  return bytes.subarray(0, cut + 2);
}

export function createFileInstrument(cfg: FileInstrumentConfig, log?: Logger): FileInstrument {
  const written: WrittenFile[] = [];
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let n = 0;
  // The run's start time is in the names: a restarted simulator does not overwrite its earlier files.
  const run = Date.now().toString(36);

  const pickFault = (k: number): Exclude<FileFault, 'mixed'> => {
    if (cfg.fault !== 'mixed') return cfg.fault;
    if (k === 1) return 'none';
    const r = hash(cfg.seed, k * 104729);
    return r < 0.7 ? 'none' : r < 0.9 ? 'slow' : 'truncated';
  };

  const writeNext: FileInstrument['writeNext'] = async (opts = {}) => {
    const k = ++n;
    const format = opts.format ?? cfg.formats[(k - 1) % cfg.formats.length]!;
    const fault = opts.fault ?? pickFault(k);
    const at = new Date();
    const results = resultsOf(k, cfg.samples, cfg.controls, cfg.seed);
    const name = `run-${run}-${String(k).padStart(4, '0')}.${format}`;
    let bytes = format === 'csv' ? iconv.encode(csvText(results, at), 'gbk') : Buffer.from(xmlText(results, at), 'utf8');
    if (fault === 'truncated') bytes = truncate(bytes, format);
    await mkdir(cfg.folder, { recursive: true });
    const path = join(cfg.folder, name);
    if (fault === 'slow') {
      // Appended under its final name, a piece at a time: only the stable_for rule keeps it from being taken early.
      const pieces = 6;
      const handle = await open(path, 'w');
      try {
        for (let i = 0; i < pieces && !stopped; i++) {
          await handle.write(bytes.subarray(Math.floor((bytes.length * i) / pieces), Math.floor((bytes.length * (i + 1)) / pieces)));
          await handle.sync();
          if (i < pieces - 1) await sleep(cfg.fault_duration / (pieces - 1));
        }
      } finally {
        await handle.close();
      }
    } else {
      await writeFile(`${path}.tmp`, bytes);
      await rename(`${path}.tmp`, path);
    }
    const file: WrittenFile = { name, format, fault, results };
    written.push(file);
    return file;
  };

  const loop = async () => {
    if (stopped) return;
    try {
      await writeNext();
    } catch (err) {
      // A folder that cannot be written (full disk, removed share): the next interval tries again.
      log?.warn({ folder: cfg.folder, err: (err as Error).message }, 'File instrument simulator could not write its file');
    }
    if (!stopped) timer = setTimeout(() => void loop(), cfg.interval);
  };

  return {
    written,
    writeNext,
    async start() {
      timer = setTimeout(() => void loop(), 0);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round2 = (v: number) => Math.round(v * 100) / 100;

function hash(seed: number, n: number): number {
  let x = (seed * 374761393 + n * 668265263) | 0;
  x = Math.imul(x ^ (x >>> 13), 1274126177);
  return ((x ^ (x >>> 16)) >>> 0) / 4294967296;
}
