// Starts the real servers the integration tests talk to: each on a free loopback port, with a
// temporary data folder, tied to this process so it stops by itself if the test run dies.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunningServer {
  name: string;
  host: string;
  port: number;
  url: string;
  stop(): Promise<void>;
}

/** Debian packages the tests need, by the binary each provides. */
export const PACKAGES = {
  '/usr/sbin/mosquitto': 'mosquitto',
  '/usr/bin/influxd': 'influxdb',
  '/usr/bin/victoria-metrics': 'victoria-metrics',
} as const;

/** Installs what is missing with apt-get (the machines run as root and reach Debian's packages). */
export function ensurePackages(binaries: ReadonlyArray<keyof typeof PACKAGES> = Object.keys(PACKAGES) as Array<keyof typeof PACKAGES>): void {
  const missing = binaries.filter((b) => !existsSync(b)).map((b) => PACKAGES[b]);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`Tests need the Debian packages ${missing.join(', ')}; install them with: sudo apt-get install -y ${missing.join(' ')}`);
  }
  process.stderr.write(`Installing ${missing.join(', ')} with apt-get for the integration tests...\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args: string[]) => {
    const r = spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed with exit ${r.status}`);
  };
  run(['update', '-qq']);
  run(['install', '-y', '-qq', '--no-install-recommends', ...missing]);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Runs a server under a small shell guard that kills it when this process goes away, so no server
 * outlives a test run that was killed.
 */
function spawnTied(command: string, args: string[], opts: { cwd?: string } = {}): ChildProcess {
  const guard = 'parent=$1; shift; "$@" & child=$!; trap \'kill $child 2>/dev/null; wait $child; exit 0\' TERM INT; while kill -0 "$parent" 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done; kill $child 2>/dev/null; wait $child';
  return spawn('sh', ['-c', guard, 'guard', String(process.pid), command, ...args], { stdio: ['ignore', 'ignore', 'pipe'], cwd: opts.cwd });
}

async function waitUntil(what: string, probe: () => Promise<boolean>, child: ChildProcess, stderr: () => string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}: ${stderr()}`);
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms: ${stderr()}`);
}

const tcpOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

const httpOk = async (url: string) => (await fetch(url)).ok;

async function startTied(name: string, command: string, args: string[], dir: string, port: number, url: string, ready: () => Promise<boolean>): Promise<RunningServer> {
  const child = spawnTied(command, args, { cwd: dir });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  try {
    await waitUntil(name, ready, child, () => err);
  } catch (e) {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    throw e;
  }
  return {
    name,
    host: '127.0.0.1',
    port,
    url,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      }
      rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    },
  };
}

/**
 * A Mosquitto of its own. With `persistDir`, sessions and queued messages are saved there and survive
 * a restart on the same port (the folder is then the caller's to remove).
 */
export async function startMosquitto(opts: { port?: number; persistDir?: string } = {}): Promise<RunningServer> {
  const p = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'gw-mosquitto-'));
  const conf = join(dir, 'mosquitto.conf');
  const persistence = opts.persistDir ? ['persistence true', `persistence_location ${opts.persistDir}/`, 'autosave_interval 0'] : ['persistence false'];
  writeFileSync(conf, [`listener ${p} 127.0.0.1`, 'allow_anonymous true', ...persistence, 'log_dest stderr', 'log_type error', ''].join('\n'));
  return startTied('mosquitto', '/usr/sbin/mosquitto', ['-c', conf], dir, p, `mqtt://127.0.0.1:${p}`, () => tcpOpen(p));
}

export async function startInfluxDb(): Promise<RunningServer> {
  const [http, rpc] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'gw-influxdb-'));
  const conf = join(dir, 'influxdb.conf');
  writeFileSync(
    conf,
    [
      'reporting-disabled = true',
      `bind-address = "127.0.0.1:${rpc}"`,
      '[meta]',
      `  dir = "${dir}/meta"`,
      '[data]',
      `  dir = "${dir}/data"`,
      `  wal-dir = "${dir}/wal"`,
      '  query-log-enabled = false',
      '[http]',
      `  bind-address = "127.0.0.1:${http}"`,
      '  log-enabled = false',
      '[monitor]',
      '  store-enabled = false',
      '',
    ].join('\n'),
  );
  const url = `http://127.0.0.1:${http}`;
  return startTied('influxdb', '/usr/bin/influxd', ['-config', conf], dir, http, url, async () => (await fetch(`${url}/ping`)).status === 204);
}

export async function startVictoriaMetrics(): Promise<RunningServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'gw-victoria-'));
  const url = `http://127.0.0.1:${port}`;
  return startTied(
    'victoria-metrics',
    '/usr/bin/victoria-metrics',
    [`-httpListenAddr=127.0.0.1:${port}`, `-storageDataPath=${dir}/data`, '-retentionPeriod=100y', '-loggerLevel=ERROR'],
    dir,
    port,
    url,
    () => httpOk(`${url}/health`),
  );
}
