// The soak benchmark (`npm run bench -- soak`; not part of the plain `npm run bench`, nor of CI): a
// compiled gateway (`node dist/gateway/cli.js run`) reading 10,000 points every second for 30
// minutes with its HTTP API on, 5 dashboard clients and one outside MQTT subscriber, its memory
// sampled every 5 s. Writes docs/soak/<variant>.md (a table), .csv (every sample) and .png (RSS and
// heap over time). The goal: under 150 MB resident, steady and at the peak. CI runs a short version
// (tests/integration/soak.test.ts) that checks the heap's slope.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { freePort } from '../drivers/common/free-port.js';
import { hashToken } from '../gateway/http/server.js';
import { cpuSeconds, openLiveStream, residentMemory, type LiveStream } from '../tests/helpers/soak.js';
import { writeSoakReport, type SoakRun } from './soak-report.js';
import { VARIANTS, type SoakSample, type Variant } from './soak-types.js';

export { VARIANTS, type SoakSample, type Variant };

export interface SoakOptions {
  variant: Variant;
  /** Run time from the gateway's start; 30 by default. */
  minutes?: number;
  /** Points in all; 10,000 by default (Modbus in whole devices of 30: 334 devices, 10,020 points). */
  points?: number;
  /** Dashboard clients; 5 by default. */
  dashboards?: number;
  /** The HTTP API on (the default); off: no dashboards, and no heap figures (they come from /metrics). */
  api?: boolean;
  /** Seconds between samples; 5 by default. */
  sampleSeconds?: number;
  /** Where the report goes; docs/soak by default. */
  outDir?: string;
  /** How this run shares the machine, for the report: alone, or beside the other variants. */
  schedule?: string;
}

const ROOT = join(import.meta.dirname, '..');
const TOKEN = 'soak-dashboard-viewer-token-0123456789';
const POINTS_PER_DEVICE = 30;
const POINTS_PER_UA_EQUIPMENT = 100;
/** The dashboard's own periods: one equipment's detail and one point's trend, and the outbox. */
const DETAIL_EVERY_MS = 5000;
const OUTBOX_EVERY_MS = 10_000;

/** Equipment of the site, each with the point whose trend a dashboard asks for. */
interface Plan {
  yaml: string;
  equipment: Array<{ id: string; point: string }>;
  modbusPoints: number;
  uaPoints: number;
  httpPort: number;
  mqttPort: number;
}

async function sitePlan(dataDir: string, modbusPorts: number[], uaPort: number | undefined, uaPoints: number, api: boolean): Promise<Plan> {
  const httpPort = await freePort();
  const mqttPort = await freePort();
  const modbusList = Array.from({ length: POINTS_PER_DEVICE }, (_, i) => `{name: p${i}, address: "hr:${i * 2}", type: float32}`).join(', ');
  const connections = modbusPorts.map((p, i) => `  - { id: c${i}, type: modbus-tcp, host: 127.0.0.1, port: ${p} }`);
  const equipment = modbusPorts.map(
    (_, i) => `  - { id: D-${i}, category: pressure_vessel, connection: c${i}, poll_interval: 1s, points: [${modbusList}] }`,
  );
  const plan: Plan['equipment'] = modbusPorts.map((_, i) => ({ id: `D-${i}`, point: 'p0' }));
  if (uaPort !== undefined) {
    // What 10,000 items on one connection need (as in bench/opcua.ts): no message security (the
    // server has no certificates to trust), and time to create them in groups of 1000.
    connections.push(
      `  - { id: ua, type: opcua, endpoint: "opc.tcp://127.0.0.1:${uaPort}/bench", security_mode: None, request_timeout: 30s }`,
    );
    for (let e = 0; e * POINTS_PER_UA_EQUIPMENT < uaPoints; e++) {
      const count = Math.min(POINTS_PER_UA_EQUIPMENT, uaPoints - e * POINTS_PER_UA_EQUIPMENT);
      const points = Array.from(
        { length: count },
        (_, p) => `{ name: v${p}, node: "ns=1;s=Bench.V${e * POINTS_PER_UA_EQUIPMENT + p}" }`,
      ).join(', ');
      equipment.push(`  - { id: E-${e}, category: other, connection: ua, poll_interval: 1s, points: [${points}] }`);
      plan.push({ id: `E-${e}`, point: 'v0' });
    }
  }
  const yaml = `version: 1
gateway: { id: gw-soak, site: soak, data_dir: ${dataDir} }
mqtt: { port: ${mqttPort} }
${api ? `http: { port: ${httpPort}, tokens: [{ name: soak-dashboard, role: viewer, hash: "${hashToken(TOKEN)}" }] }\n` : ''}connections:
${connections.join('\n')}
equipment:
${equipment.join('\n')}
`;
  return {
    yaml,
    equipment: plan,
    modbusPoints: modbusPorts.length * POINTS_PER_DEVICE,
    uaPoints: uaPort === undefined ? 0 : uaPoints,
    httpPort,
    mqttPort,
  };
}

/** A child process that prints one line when ready (ports), then serves until its stdin ends. */
function startChild(script: string, arg: string): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, script), arg], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve({ child, line: out.split('\n')[0]! });
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
}

async function stopChild(child: ChildProcess, how: 'stdin' | 'SIGTERM', timeoutMs = 15_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  if (how === 'stdin') child.stdin?.end();
  else child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

/** Prometheus text: every series by its full name with labels, and every metric's sum over its series. */
function parseMetrics(text: string): { series: Map<string, number>; sum: (name: string) => number | undefined } {
  const series = new Map<string, number>();
  const sums = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    const key = line.slice(0, space);
    const value = Number(line.slice(space + 1));
    series.set(key, value);
    const name = key.split('{')[0]!;
    sums.set(name, (sums.get(name) ?? 0) + value);
  }
  return { series, sum: (name) => sums.get(name) };
}

/** The first of several names a figure may have (the memory watch's gauges, or prom-client's defaults). */
const first = (m: ReturnType<typeof parseMetrics>, keys: string[]) =>
  keys.map((k) => m.series.get(k)).find((v) => v !== undefined && Number.isFinite(v));

/** A dashboard as gateway/http/dashboard/app.js behaves: the lists at start, one live stream, then detail, trend and outbox now and then. */
interface Dashboard {
  stream: LiveStream;
  latencies: number[];
  failures: number;
  stop(): void;
}

function startDashboard(base: string, equipment: Plan['equipment'], index: number): Dashboard {
  const headers = { authorization: `Bearer ${TOKEN}` };
  const d: Dashboard = { stream: openLiveStream(base, TOKEN), latencies: [], failures: 0, stop: () => {} };
  const get = async (path: string) => {
    const t0 = performance.now();
    try {
      const res = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(30_000) });
      await res.arrayBuffer();
      // The outbox answers 404 on a site without a platform, as the dashboard expects.
      if (!res.ok && !(res.status === 404 && path === '/api/outbox')) d.failures++;
      d.latencies.push(performance.now() - t0);
    } catch {
      d.failures++;
    }
  };
  const timers: NodeJS.Timeout[] = [];
  let stopped = false;
  void (async () => {
    await get('/api/equipment');
    for (const e of equipment) {
      if (stopped) return;
      await get(`/api/equipment/${e.id}`);
    }
    await get('/api/alarms');
  })();
  let k = index;
  // Spread over the period, so the clients do not ask all at once.
  const offset = (index * DETAIL_EVERY_MS) / 5;
  timers.push(
    setTimeout(() => {
      timers.push(
        setInterval(() => {
          const e = equipment[(k += 7) % equipment.length]!;
          void get(`/api/equipment/${e.id}`);
          void get(`/api/equipment/${e.id}/history?point=${e.point}`);
        }, DETAIL_EVERY_MS),
        setInterval(() => void get('/api/outbox'), OUTBOX_EVERY_MS),
      );
    }, offset),
  );
  d.stop = () => {
    stopped = true;
    for (const t of timers) clearInterval(t);
    d.stream.close();
  };
  return d;
}

/** One variant, start to end: devices, gateway, clients, samples, then the report. */
export async function soak(options: SoakOptions): Promise<{ name: string; lines: string[] }> {
  const {
    variant,
    minutes = 30,
    points = 10_000,
    sampleSeconds = 5,
    outDir = join(ROOT, 'docs', 'soak'),
    schedule = 'alone',
    api = true,
  } = options;
  const dashboards = api ? (options.dashboards ?? 5) : 0;
  const modbusDevices =
    variant === 'modbus' ? Math.ceil(points / POINTS_PER_DEVICE) : variant === 'mix' ? Math.ceil(points / 2 / POINTS_PER_DEVICE) : 0;
  const uaPoints = variant === 'opcua' ? points : variant === 'mix' ? Math.floor(points / 2) : 0;
  const dir = mkdtempSync(join(tmpdir(), `gw-soak-${variant}-`));
  const children: ChildProcess[] = [];
  let gateway: ChildProcess | undefined;
  const clients: Dashboard[] = [];
  let subscriber: MqttClient | undefined;
  try {
    let modbusPorts: number[] = [];
    if (modbusDevices > 0) {
      const sims = await startChild('modbus-sim-process.ts', String(modbusDevices));
      children.push(sims.child);
      modbusPorts = JSON.parse(sims.line) as number[];
    }
    let uaPort: number | undefined;
    if (uaPoints > 0) {
      const ua = await startChild('opcua-server-process.ts', String(uaPoints));
      children.push(ua.child);
      uaPort = Number(ua.line);
    }
    const plan = await sitePlan(join(dir, 'data'), modbusPorts, uaPort, uaPoints, api);
    const site = join(dir, 'site.yaml');
    writeFileSync(site, plan.yaml);
    const logFile = join(dir, 'gateway.log');
    const logFd = openSync(logFile, 'w');
    const t0 = performance.now();
    // As the installed `gateway` command runs it: with the node flags of its first line.
    const cli = join(ROOT, 'dist', 'gateway', 'cli.js');
    const flags =
      /^#!\/usr\/bin\/env -S node(.*)$/m.exec(readFileSync(cli, 'utf8').split('\n', 1)[0]!)?.[1]?.trim().split(/\s+/).filter(Boolean) ?? [];
    gateway = spawn(process.execPath, [...flags, cli, 'run', '-c', site], { cwd: ROOT, stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    const pid = gateway.pid!;
    const gatewayExit = new Promise<number | null>((r) => gateway!.once('exit', (code) => r(code)));
    const base = `http://127.0.0.1:${plan.httpPort}`;
    const headers = { authorization: `Bearer ${TOKEN}` };
    const end = t0 + minutes * 60_000;

    const samples: SoakSample[] = [];
    const sample = async (): Promise<SoakSample> => {
      const t = (performance.now() - t0) / 1000;
      const { rss, peak } = residentMemory(pid);
      const s: SoakSample = { t, rss, peak, cpu: cpuSeconds(pid) };
      if (!api) return s;
      try {
        const m = parseMetrics(await (await fetch(`${base}/metrics`, { headers, signal: AbortSignal.timeout(4000) })).text());
        const set = (key: 'heapUsed' | 'heapTotal' | 'external' | 'arrayBuffers', names: string[]) => {
          const v = first(m, names);
          if (v !== undefined) s[key] = v;
        };
        set('heapUsed', ['gateway_memory_heap_bytes{kind="heap_used"}', 'gateway_nodejs_heap_size_used_bytes']);
        set('heapTotal', ['gateway_memory_heap_bytes{kind="heap_total"}', 'gateway_nodejs_heap_size_total_bytes']);
        set('external', ['gateway_memory_heap_bytes{kind="external"}', 'gateway_nodejs_external_memory_bytes']);
        set('arrayBuffers', ['gateway_memory_heap_bytes{kind="array_buffers"}']);
        const readings = m.sum('gateway_readings_total');
        if (readings !== undefined) s.readings = readings;
      } catch {
        // Not up yet, or too slow to answer: this sample has the figures from /proc only.
      }
      return s;
    };
    const sampler = (async () => {
      for (let k = 0; ; k++) {
        const at = t0 + k * sampleSeconds * 1000;
        if (at > end || gateway!.exitCode !== null) return;
        await new Promise((r) => setTimeout(r, Math.max(0, at - performance.now())));
        if (gateway!.exitCode !== null) return;
        try {
          samples.push(await sample());
        } catch {
          return; // the process is gone (/proc has no entry): the report says how it ended
        }
      }
    })();

    // The HTTP API starts last: once it answers, the devices are being read. Without it, the broker answering will do.
    const up = () =>
      api
        ? fetch(`${base}/health`).then(
            (r) => r.ok,
            () => false,
          )
        : mqtt.connectAsync(`mqtt://127.0.0.1:${plan.mqttPort}`, { reconnectPeriod: 0, connectTimeout: 1000 }).then(
            (c) => c.endAsync(true).then(() => true),
            () => false,
          );
    while ((await up()) === false) {
      if (gateway.exitCode !== null)
        throw new Error(`The gateway exited with ${gateway.exitCode}: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
      if (performance.now() - t0 > 180_000) throw new Error('The gateway did not answer /health within 3 minutes');
      await new Promise((r) => setTimeout(r, 250));
    }
    const started = (performance.now() - t0) / 1000;
    subscriber = await mqtt.connectAsync(`mqtt://127.0.0.1:${plan.mqttPort}`, { reconnectPeriod: 1000 });
    const mqttReceived = { messages: 0, bytes: 0 };
    subscriber.on('message', (_topic, payload) => {
      mqttReceived.messages++;
      mqttReceived.bytes += payload.length;
    });
    await subscriber.subscribeAsync('gw/#', { qos: 1 });
    for (let i = 0; i < dashboards; i++) clients.push(startDashboard(base, plan.equipment, i));

    await sampler;
    const exitedEarly = gateway.exitCode !== null || gateway.signalCode !== null;
    const streamed = clients.map((c) => c.stream.counts().readings);
    const reconnects = clients.reduce((n, c) => n + c.stream.reconnects(), 0);
    const latencies = clients.flatMap((c) => c.latencies).sort((a, b) => a - b);
    const failures = clients.reduce((n, c) => n + c.failures, 0);
    for (const c of clients.splice(0)) c.stop();
    await subscriber.endAsync(true);
    subscriber = undefined;
    gateway.kill('SIGTERM');
    const stopTimer = setTimeout(() => gateway!.kill('SIGKILL'), 15_000);
    const exitCode = await gatewayExit;
    clearTimeout(stopTimer);
    const logLines = readFileSync(logFile, 'utf8').split('\n');
    const problems = logLines.filter((l) => /"level":(40|50|60)/.test(l));

    const run: SoakRun = {
      variant,
      minutes,
      sampleSeconds,
      modbusDevices,
      points,
      modbusPoints: plan.modbusPoints,
      uaPoints: plan.uaPoints,
      dashboards,
      api,
      schedule,
      samples,
      started,
      streamed,
      reconnects,
      http: { requests: latencies.length + failures, failures, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) },
      mqtt: mqttReceived,
      exitCode,
      exitedEarly,
      problems: problems.length,
      firstProblems: problems.slice(0, 3).map(describeLogLine),
      machine: `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
      commit: spawnSync('git', ['describe', '--always', '--dirty'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim(),
      date: new Date().toISOString().slice(0, 16).replace('T', ' '),
    };
    return await writeSoakReport(run, outDir);
  } finally {
    for (const c of clients) c.stop();
    await subscriber?.endAsync(true);
    if (gateway) await stopChild(gateway, 'SIGTERM');
    await Promise.all(children.map((c) => stopChild(c, 'stdin')));
    rmSync(dir, { recursive: true, force: true });
  }
}

const percentile = (sorted: number[], q: number) => (sorted.length === 0 ? NaN : sorted[Math.floor(q * (sorted.length - 1))]!);

function describeLogLine(line: string): string {
  try {
    const l = JSON.parse(line) as { msg?: string; err?: { message?: string } | string };
    return `${l.msg ?? ''}${l.err ? `: ${typeof l.err === 'string' ? l.err : (l.err.message ?? '')}` : ''}`.slice(0, 200);
  } catch {
    return line.slice(0, 200);
  }
}

/**
 * `npm run bench -- soak [VARIANT...] [--variant V] [--minutes N] [--points N] [--dashboards N]
 * [--sample S] [--parallel] [--out DIR]`: the three variants one after another by default (each
 * alone on the machine, so its memory and CPU are its own), or side by side with --parallel.
 * Builds dist/ first: the gateway runs compiled, as it is deployed.
 */
export async function soakFromArgs(args: string[]): Promise<Array<{ name: string; lines: string[] }>> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      variant: { type: 'string', multiple: true },
      minutes: { type: 'string' },
      points: { type: 'string' },
      dashboards: { type: 'string' },
      'no-api': { type: 'boolean', default: false },
      sample: { type: 'string' },
      parallel: { type: 'boolean', default: false },
      out: { type: 'string' },
    },
  });
  const picked = [...(values.variant ?? []), ...positionals];
  for (const v of picked)
    if (!(VARIANTS as readonly string[]).includes(v)) throw new Error(`Unknown soak variant "${v}": expected ${VARIANTS.join(', ')}`);
  const variants = picked.length > 0 ? (VARIANTS.filter((v) => picked.includes(v)) as Variant[]) : [...VARIANTS];
  const number = (name: string, text: string | undefined) => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} takes a positive number, not "${text}"`);
    return n;
  };
  const common = {
    minutes: number('minutes', values.minutes),
    points: number('points', values.points),
    dashboards: number('dashboards', values.dashboards),
    sampleSeconds: number('sample', values.sample),
    outDir: values.out,
    api: !values['no-api'],
  };
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error(`npm run build failed (exit ${build.status}): the soak runs the compiled gateway`);
  const parallel = values.parallel && variants.length > 1;
  const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  const opts = (variant: Variant): SoakOptions => ({
    ...defined(common),
    variant,
    schedule: parallel ? `in parallel with ${variants.filter((v) => v !== variant).join(' and ')}` : 'alone (variants one after another)',
  });
  if (parallel) return Promise.all(variants.map((v) => soak(opts(v))));
  const results = [];
  for (const v of variants) results.push(await soak(opts(v)));
  return results;
}
