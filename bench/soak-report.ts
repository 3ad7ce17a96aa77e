// The soak benchmark's report (bench/soak.ts): a Markdown table, every sample as CSV, and a plot of
// RSS and heap over time drawn as SVG by hand and turned into a PNG by headless Chromium.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ensurePackages } from '../tests/helpers/processes.js';
import type { SoakSample, Variant } from './soak-types.js';

/** 150 MB, the goal for the resident set, steady and at the peak. */
export const GOAL_BYTES = 150e6;

export interface SoakRun {
  variant: Variant;
  minutes: number;
  sampleSeconds: number;
  modbusDevices: number;
  modbusPoints: number;
  uaPoints: number;
  /** Points asked for (--points); Modbus takes whole devices of 30. */
  points: number;
  dashboards: number;
  /** The HTTP API was on (without it there are no dashboards and no heap figures). */
  api: boolean;
  /** Alone, or beside the other variants. */
  schedule: string;
  samples: SoakSample[];
  /** Seconds from the gateway's process start to its API answering. */
  started: number;
  /** Readings each dashboard took from its live stream. */
  streamed: number[];
  reconnects: number;
  http: { requests: number; failures: number; p50: number; p99: number };
  mqtt: { messages: number; bytes: number };
  exitCode: number | null;
  /** The gateway's process ended by itself before the run's end. */
  exitedEarly: boolean;
  /** Warnings and errors in the gateway's log, and the first few. */
  problems: number;
  firstProblems: string[];
  machine: string;
  commit: string;
  date: string;
}

const MIB = 2 ** 20;
const mib = (b: number | undefined) => (b === undefined ? '–' : (b / MIB).toFixed(1));
const en = (n: number) => Math.round(n).toLocaleString('en');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const defined = <T>(xs: Array<T | undefined>) => xs.filter((x): x is T => x !== undefined);
const clock = (t: number) => {
  const s = Math.round(t);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};

/** What the run shows, from its samples. Steady is the median of the last third. */
export function soakFigures(run: SoakRun) {
  const { samples } = run;
  const last = samples.at(-1)!;
  const lastThird = samples.filter((s) => s.t >= (2 * last.t) / 3);
  const up = samples.filter((s) => s.t >= run.started);
  const withReadings = up.filter((s) => s.readings !== undefined);
  const rate = (xs: SoakSample[]) => (xs.length < 2 ? NaN : (xs.at(-1)!.readings! - xs[0]!.readings!) / (xs.at(-1)!.t - xs[0]!.t));
  const cpuFrom = up[0] ?? samples[0]!;
  const serving = Math.max(1, last.t - run.started);
  return {
    rss: { steady: median(lastThird.map((s) => s.rss)), max: Math.max(...samples.map((s) => s.rss)), peak: last.peak },
    heapUsed: { steady: median(defined(lastThird.map((s) => s.heapUsed))), max: Math.max(...defined(samples.map((s) => s.heapUsed))) },
    heapTotal: { steady: median(defined(lastThird.map((s) => s.heapTotal))), max: Math.max(...defined(samples.map((s) => s.heapTotal))) },
    readingsPerSecond: { whole: rate(withReadings), lastThird: rate(withReadings.filter((s) => s.t >= (2 * last.t) / 3)) },
    cpu: ((last.cpu - cpuFrom.cpu) / Math.max(1, last.t - cpuFrom.t)) * 100,
    streamedPerSecond: run.streamed.map((n) => n / serving),
    mqttPerSecond: run.mqtt.messages / serving,
    mqttBytesPerSecond: run.mqtt.bytes / serving,
    duration: last.t,
  };
}

const points = (run: SoakRun) => run.modbusPoints + run.uaPoints;

function workload(run: SoakRun, short = false): string {
  const parts = [];
  if (run.modbusPoints > 0)
    parts.push(
      `Modbus TCP ${en(run.modbusPoints)} points (${run.modbusDevices} devices × 30 float32${short ? '' : ', one connection each'})`,
    );
  if (run.uaPoints > 0)
    parts.push(
      `OPC UA ${en(run.uaPoints)} monitored items (${short ? '' : `one server, ${Math.ceil(run.uaPoints / 100)} equipment × up to 100, `}security None)`,
    );
  return `${parts.join(' + ')}, all at 1 s`;
}

function command(run: SoakRun): string {
  return `npm run bench -- soak --variant ${run.variant} --minutes ${run.minutes}${run.points !== 10_000 ? ` --points ${run.points}` : ''}${run.api && run.dashboards !== 5 ? ` --dashboards ${run.dashboards}` : ''}${run.api ? '' : ' --no-api'}`;
}

export function soakMarkdown(run: SoakRun): string {
  const f = soakFigures(run);
  const met = f.rss.steady < GOAL_BYTES && f.rss.peak < GOAL_BYTES;
  const rowEvery = Math.max(run.sampleSeconds, Math.round(f.duration / 30 / run.sampleSeconds) * run.sampleSeconds);
  // The first sample of each period, and the last (a timer may fire a millisecond early: half a sample's slack).
  const period = (t: number) => Math.floor((t + run.sampleSeconds / 2) / rowEvery);
  const rows = run.samples.filter((s, i, all) => i === 0 || i === all.length - 1 || period(s.t) > period(all[i - 1]!.t));
  const table = rows.map((s, i) => {
    const prev = rows[i - 1];
    const readings =
      prev && prev.readings !== undefined && s.readings !== undefined ? en((s.readings - prev.readings) / (s.t - prev.t)) : '–';
    const cpu = prev ? (((s.cpu - prev.cpu) / (s.t - prev.t)) * 100).toFixed(0) : '–';
    return `| ${clock(s.t)} | ${mib(s.rss)} | ${mib(s.peak)} | ${mib(s.heapUsed)} | ${mib(s.heapTotal)} | ${mib(s.external)} | ${readings} | ${cpu} |`;
  });
  const per = f.streamedPerSecond.map(en).join(', ');
  return `# Soak: ${run.variant}, ${en(points(run))} points, ${run.api ? `${run.dashboards} dashboards` : 'no HTTP API'}, ${(f.duration / 60).toFixed(1)} minutes

Goal: under 150 MB (${(GOAL_BYTES / MIB).toFixed(0)} MiB) resident, steady and at the peak: **${met ? 'met' : 'not met'}**
(steady ${mib(f.rss.steady)} MiB, peak ${mib(f.rss.peak)} MiB).

- Command: \`${command(run)}\`; ${run.date} UTC, commit ${run.commit}; ${run.machine}; this variant ran ${run.schedule}.
- Load: ${workload(run)}.
- The gateway ran compiled, as the installed command runs it (\`node --optimize-for-size dist/gateway/cli.js run -c site.yaml\`:
  the node flags of the command's first line), with the default settings, its data folder in a fresh
  temporary folder, the embedded broker, and ${
    run.api
      ? `the HTTP API with ${run.dashboards} dashboard
  clients that behave like gateway/http/dashboard/app.js: the equipment list, every equipment's detail
  and the active alarms at start, one live stream each, then one equipment's detail and one point's
  trend every 5 s and the outbox every 10 s`
      : 'no HTTP API (so no dashboards, and no heap figures: they come from /metrics)'
  }. One outside MQTT subscriber to \`gw/#\` (QoS 1). The
  devices ran in processes of their own.
- Every ${run.sampleSeconds} s: VmRSS and VmHWM (the peak) from /proc/PID/status; heap from the gateway's /metrics;
  readings from \`gateway_readings_total\`; CPU from /proc/PID/stat. Steady: the median of the last third.

| figure | value |
| --- | --- |
| RSS: steady / highest sample / peak (VmHWM) | ${mib(f.rss.steady)} / ${mib(f.rss.max)} / ${mib(f.rss.peak)} MiB |
| V8 heap used: steady / highest | ${mib(f.heapUsed.steady)} / ${mib(f.heapUsed.max)} MiB |
| V8 heap total: steady / highest | ${mib(f.heapTotal.steady)} / ${mib(f.heapTotal.max)} MiB |
| readings/s: whole run / last third | ${en(f.readingsPerSecond.whole)} / ${en(f.readingsPerSecond.lastThird)} (offered ${en(points(run))}) |
| gateway CPU | ${f.cpu.toFixed(0)} % of one core |
| process start to the API answering | ${run.started.toFixed(1)} s |
| MQTT subscriber | ${en(f.mqttPerSecond)} messages/s, ${en(f.mqttBytesPerSecond / 1000)} kB/s |
| live streams | ${per} readings/s per dashboard; ${run.reconnects} reconnects |
| dashboard requests | ${en(run.http.requests)}, ${run.http.failures} failed; p50 ${run.http.p50.toFixed(1)} ms, p99 ${run.http.p99.toFixed(1)} ms |
| gateway log | ${run.problems} warnings or errors${run.firstProblems.length > 0 ? `; first: ${run.firstProblems.map((p) => `"${p.replace(/\|/g, '\\|')}"`).join('; ')}` : ''} |
| ${run.exitedEarly ? `**the gateway exited by itself after ${clock(f.duration)}**` : 'stop on SIGTERM'} | exit code ${run.exitCode} |

![RSS and heap of the gateway over time](${run.variant}${run.api ? '' : '-no-api'}.png)

## Samples (every ${clock(rowEvery)}; all of them in ${run.variant}${run.api ? '' : '-no-api'}.csv)

| time | RSS MiB | peak RSS MiB | heap used MiB | heap total MiB | external MiB | readings/s | gateway CPU % |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${table.join('\n')}
`;
}

export function soakCsv(run: SoakRun): string {
  const cell = (v: number | undefined) => (v === undefined ? '' : String(Math.round(v * 1000) / 1000));
  return `t_s,rss_bytes,peak_rss_bytes,heap_used_bytes,heap_total_bytes,external_bytes,array_buffers_bytes,readings_total,cpu_s\n${run.samples
    .map((s) => [s.t, s.rss, s.peak, s.heapUsed, s.heapTotal, s.external, s.arrayBuffers, s.readings, s.cpu].map(cell).join(','))
    .join('\n')}\n`;
}

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
/** The smallest of 1, 2, 2.5, 5 × 10^k that cuts `span` into at most `count` steps. */
function niceStep(span: number, count: number): number {
  const raw = span / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw)!;
}

export const PLOT = { width: 1000, height: 560 };

/** RSS, heap total and heap used (MiB) over time (minutes), with the goal as a line. */
export function soakSvg(run: SoakRun): string {
  const { width: W, height: H } = PLOT;
  const m = { left: 70, right: 24, top: 96, bottom: 56 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const f = soakFigures(run);
  const goal = GOAL_BYTES / MIB;
  const series = [
    { name: 'RSS (VmRSS)', color: '#1d4ed8', width: 2.5, values: run.samples.map((s) => [s.t, s.rss] as const) },
    {
      name: 'V8 heap total',
      color: '#d97706',
      width: 2,
      values: run.samples.flatMap((s) => (s.heapTotal === undefined ? [] : [[s.t, s.heapTotal] as const])),
    },
    {
      name: 'V8 heap used',
      color: '#059669',
      width: 2,
      values: run.samples.flatMap((s) => (s.heapUsed === undefined ? [] : [[s.t, s.heapUsed] as const])),
    },
  ];
  const tMax = Math.max(run.minutes, f.duration / 60);
  const highest = Math.max(goal, ...series.flatMap((s) => s.values.map(([, v]) => v / MIB)));
  const yStep = niceStep(highest * 1.08, 8);
  const yMax = Math.ceil((highest * 1.08) / yStep) * yStep;
  const xStep = niceStep(tMax, 10);
  const x = (minutes: number) => m.left + (minutes / tMax) * pw;
  const y = (mebibytes: number) => m.top + ph - (mebibytes / yMax) * ph;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(
    `<text x="${m.left}" y="28" font-size="18" font-weight="bold">${escape(`Soak, ${run.variant}: ${en(points(run))} points at 1 s, ${run.dashboards} dashboards, ${(f.duration / 60).toFixed(1)} min — gateway RSS and V8 heap`)}</text>`,
  );
  const subtitle = [
    `${workload(run, true)}; ${en(f.readingsPerSecond.whole)} readings/s delivered`,
    `RSS steady ${mib(f.rss.steady)} MiB, peak ${mib(f.rss.peak)} MiB; heap used steady ${mib(f.heapUsed.steady)} MiB, heap total steady ${mib(f.heapTotal.steady)} MiB`,
    `${run.date} UTC, ${run.commit}; ${run.machine}; ran ${run.schedule}`,
  ];
  subtitle.forEach((line, i) => out.push(`<text x="${m.left}" y="${48 + i * 15}" font-size="12" fill="#4b5563">${escape(line)}</text>`));
  for (let v = 0; v <= yMax + 1e-9; v += yStep) {
    out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e7eb"/>`);
    out.push(`<text x="${m.left - 8}" y="${y(v) + 4}" font-size="12" text-anchor="end" fill="#374151">${Number(v.toFixed(2))}</text>`);
  }
  for (let t = 0; t <= tMax + 1e-9; t += xStep) {
    out.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${m.top}" y2="${m.top + ph}" stroke="#f3f4f6"/>`);
    out.push(`<text x="${x(t)}" y="${m.top + ph + 18}" font-size="12" text-anchor="middle" fill="#374151">${Number(t.toFixed(2))}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#9ca3af"/>`);
  out.push(
    `<text x="${m.left + pw / 2}" y="${H - 14}" font-size="13" text-anchor="middle">minutes since the gateway's process started</text>`,
  );
  out.push(`<text transform="translate(20 ${m.top + ph / 2}) rotate(-90)" font-size="13" text-anchor="middle">MiB</text>`);
  out.push(
    `<line x1="${m.left}" x2="${m.left + pw}" y1="${y(goal)}" y2="${y(goal)}" stroke="#dc2626" stroke-width="1.5" stroke-dasharray="8 5"/>`,
  );
  out.push(
    `<text x="${m.left + pw - 6}" y="${y(goal) - 6}" font-size="12" text-anchor="end" fill="#dc2626">goal: 150 MB (${goal.toFixed(0)} MiB)</text>`,
  );
  for (const s of series) {
    if (s.values.length === 0) continue;
    const d = s.values.map(([t, v], i) => `${i === 0 ? 'M' : 'L'}${x(t / 60).toFixed(1)},${y(v / MIB).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width}" stroke-linejoin="round"/>`);
  }
  series.forEach((s, i) => {
    const ly = m.top + 16 + i * 18;
    out.push(`<line x1="${m.left + 12}" x2="${m.left + 40}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="${s.width + 0.5}"/>`);
    out.push(`<text x="${m.left + 46}" y="${ly + 4}" font-size="12">${escape(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

/** The SVG as a PNG, rendered by Debian's Chromium through playwright-core. */
export async function svgToPng(svg: string, file: string): Promise<void> {
  ensurePackages(['/usr/bin/chromium']);
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-background-networking'] });
  try {
    const page = await browser.newPage({ viewport: PLOT });
    await page.setContent(`<!doctype html><html><body style="margin:0">${svg}</body></html>`);
    await page.screenshot({ path: file, clip: { x: 0, y: 0, ...PLOT } });
  } finally {
    await browser.close();
  }
}

/** Writes <variant>.md, .csv and .png into `dir`; a PNG that cannot be rendered is left as .svg, said so. */
export async function writeSoakReport(run: SoakRun, dir: string): Promise<{ name: string; lines: string[] }> {
  mkdirSync(dir, { recursive: true });
  const stem = `${run.variant}${run.api ? '' : '-no-api'}`;
  const md = join(dir, `${stem}.md`);
  writeFileSync(md, soakMarkdown(run));
  writeFileSync(join(dir, `${stem}.csv`), soakCsv(run));
  const svg = soakSvg(run);
  let plot = join(dir, `${stem}.png`);
  try {
    await svgToPng(svg, plot);
  } catch (err) {
    plot = join(dir, `${stem}.svg`);
    writeFileSync(plot, svg);
    process.stderr.write(`The plot could not be rendered as PNG (${(err as Error).message}); written as ${plot}\n`);
  }
  const f = soakFigures(run);
  const met = f.rss.steady < GOAL_BYTES && f.rss.peak < GOAL_BYTES;
  const rel = (p: string) => relative(process.cwd(), p);
  return {
    name: `Soak, ${run.variant}: ${workload(run)}; ${run.api ? `${run.dashboards} dashboards` : 'no HTTP API'}, an MQTT subscriber; ${(f.duration / 60).toFixed(1)} min, the compiled gateway ${run.schedule}`,
    lines: [
      `RSS steady ${mib(f.rss.steady)} MiB, highest sample ${mib(f.rss.max)} MiB, peak (VmHWM) ${mib(f.rss.peak)} MiB: goal of 150 MB ${met ? 'met' : 'NOT met'}`,
      `V8 heap used steady ${mib(f.heapUsed.steady)} MiB (highest ${mib(f.heapUsed.max)}), heap total steady ${mib(f.heapTotal.steady)} MiB (highest ${mib(f.heapTotal.max)})`,
      `${en(f.readingsPerSecond.whole)} readings/s over the run, ${en(f.readingsPerSecond.lastThird)} in the last third; gateway CPU ${f.cpu.toFixed(0)} % of one core; API answering after ${run.started.toFixed(1)} s`,
      `live streams ${f.streamedPerSecond.map(en).join(', ')} readings/s, ${run.reconnects} reconnects; ${en(run.http.requests)} dashboard requests, ${run.http.failures} failed, p99 ${run.http.p99.toFixed(1)} ms; MQTT subscriber ${en(f.mqttPerSecond)} messages/s; ${run.problems} warnings or errors logged; ${run.exitedEarly ? 'THE GATEWAY EXITED BY ITSELF, ' : ''}exit code ${run.exitCode}`,
      `report: ${rel(md)}, ${rel(plot)}`,
    ],
  };
}
