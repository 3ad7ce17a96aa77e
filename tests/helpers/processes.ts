// Starts the real servers the integration tests talk to: each on a free loopback port, with a
// temporary data folder, tied to this process so it stops by itself if the test run dies.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { freePort } from '../../drivers/common/free-port.js';

export { freePort };
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunningServer {
  name: string;
  host: string;
  port: number;
  url: string;
  stop(): Promise<void>;
  /** Stops the process and keeps its data (an outage); restart() brings it back on the same port. */
  halt?(): Promise<void>;
  restart?(): Promise<void>;
}

/** Debian packages the tests need, by the binary each provides. */
export const PACKAGES = {
  '/usr/sbin/mosquitto': 'mosquitto',
  // The command-line clients an outside user reaches the broker with (tests/integration/mqtt-security.test.ts).
  '/usr/bin/mosquitto_sub': 'mosquitto-clients',
  '/usr/bin/influxd': 'influxdb',
  '/usr/bin/victoria-metrics': 'victoria-metrics',
  '/usr/bin/socat': 'socat',
  // A Modbus server that is not ours, for the interoperability test.
  '/usr/lib/python3/dist-packages/pymodbus/__init__.py': 'python3-pymodbus',
  // pymodbus's server imports serial_asyncio (and pyserial), which Debian lists only as recommendations.
  '/usr/lib/python3/dist-packages/serial_asyncio/__init__.py': 'python3-serial-asyncio',
  // The dashboard's browser test drives Debian's Chromium through playwright-core.
  '/usr/bin/chromium': 'chromium',
  // The systemd unit's check (tests/unit/deploy/systemd-unit.test.ts).
  '/usr/bin/systemd-analyze': 'systemd',
  // The online backup of the store that docs/operations.md gives (tests/integration/backup.test.ts).
  '/usr/bin/sqlite3': 'sqlite3',
} as const;

/** Installs what is missing with apt-get (the machines run as root and reach Debian's packages). */
export function ensurePackages(
  binaries: ReadonlyArray<keyof typeof PACKAGES> = Object.keys(PACKAGES) as Array<keyof typeof PACKAGES>,
): void {
  const missing = binaries.filter((b) => !existsSync(b)).map((b) => PACKAGES[b]);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `Tests need the Debian packages ${missing.join(', ')}; install them with: sudo apt-get install -y ${missing.join(' ')}`,
    );
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

/**
 * Runs a server under a small shell guard that kills it when this process goes away, so no server
 * outlives a test run that was killed.
 */
function spawnTied(command: string, args: string[], opts: { cwd?: string } = {}): ChildProcess {
  const guard =
    'parent=$1; shift; "$@" & child=$!; trap \'kill $child 2>/dev/null; wait $child; exit 0\' TERM INT; while kill -0 "$parent" 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done; kill $child 2>/dev/null; wait $child';
  return spawn('sh', ['-c', guard, 'guard', String(process.pid), command, ...args], { stdio: ['ignore', 'ignore', 'pipe'], cwd: opts.cwd });
}

async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  child: ChildProcess,
  stderr: () => string,
  timeoutMs = 30_000,
): Promise<void> {
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

async function startTied(
  name: string,
  command: string,
  args: string[],
  dir: string,
  port: number,
  url: string,
  ready: () => Promise<boolean>,
): Promise<RunningServer> {
  let err = '';
  const launch = async () => {
    const child = spawnTied(command, args, { cwd: dir });
    child.stderr?.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    await waitUntil(name, ready, child, () => err);
    return child;
  };
  let child: ChildProcess;
  try {
    child = await launch();
  } catch (e) {
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    throw e;
  }
  const halt = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  };
  return {
    name,
    host: '127.0.0.1',
    port,
    url,
    halt,
    async restart() {
      await halt();
      child = await launch();
    },
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    },
  };
}

export interface MosquittoOptions {
  port?: number;
  /** Sessions and queued messages are saved here and survive a restart on the same port (the caller removes it). */
  persistDir?: string;
  /** TLS with a certificate for 127.0.0.1 signed by a CA made for this broker (`caFile`). */
  tls?: boolean;
  /** Users and passwords; anonymous clients are refused when set. */
  users?: Record<string, string>;
}

export interface RunningMosquitto extends RunningServer {
  /** PEM of the CA that signed the broker's certificate, with `tls`. */
  caFile?: string;
}

/** A Mosquitto of its own, for tests that stop, restart or secure it. */
export async function startMosquitto(opts: MosquittoOptions = {}): Promise<RunningMosquitto> {
  const p = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'gw-mosquitto-'));
  // Mosquitto drops root for its own user, which must read what is in here.
  chmodSync(dir, 0o755);
  const lines = [`listener ${p} 127.0.0.1`, 'log_dest stderr', 'log_type error'];
  lines.push(
    ...(opts.persistDir ? ['persistence true', `persistence_location ${opts.persistDir}/`, 'autosave_interval 0'] : ['persistence false']),
  );
  let caFile: string | undefined;
  if (opts.tls) {
    caFile = makeCertificates(dir);
    lines.push(`cafile ${caFile}`, `certfile ${dir}/server.pem`, `keyfile ${dir}/server.key`);
  }
  if (opts.users) {
    const file = join(dir, 'passwd');
    for (const [user, password] of Object.entries(opts.users)) {
      const r = spawnSync('mosquitto_passwd', ['-b', ...(existsSync(file) ? [] : ['-c']), file, user, password], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`mosquitto_passwd failed: ${r.stderr}`);
    }
    chmodSync(file, 0o644);
    lines.push('allow_anonymous false', `password_file ${file}`);
  } else {
    lines.push('allow_anonymous true');
  }
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `${lines.join('\n')}\n`);
  const scheme = opts.tls ? 'mqtts' : 'mqtt';
  const server = await startTied('mosquitto', '/usr/sbin/mosquitto', ['-c', conf], dir, p, `${scheme}://127.0.0.1:${p}`, () => tcpOpen(p));
  return { ...server, ...(caFile ? { caFile } : {}) };
}

/** A CA and a server certificate for 127.0.0.1 signed by it, made with openssl; returns the CA file. */
function makeCertificates(dir: string): string {
  return makeTestPki(dir).ca;
}

/**
 * A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by that CA, made with
 * openssl in `dir` (files readable by servers that drop root).
 */
export function makeTestPki(dir: string): { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string } {
  const openssl = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  };
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=gateway-test-ca',
  ]);
  // A key and a certificate for `name`, signed by the CA.
  const issue = (name: string, subject: string, extra: string[] = []) => {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
    openssl([
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      ...extra,
    ]);
  };
  issue('server', '/CN=127.0.0.1', ['-extfile', 'san.ext']);
  issue('client', '/CN=gateway-test-client');
  for (const f of ['ca.pem', 'server.pem', 'server.key', 'client.pem', 'client.key']) chmodSync(join(dir, f), 0o644);
  return {
    ca: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client.key'),
  };
}

export async function startInfluxDb(opts: { auth?: boolean } = {}): Promise<Required<RunningServer>> {
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
      `  auth-enabled = ${opts.auth ? 'true' : 'false'}`,
      '[monitor]',
      '  store-enabled = false',
      '',
    ].join('\n'),
  );
  const url = `http://127.0.0.1:${http}`;
  return startTied(
    'influxdb',
    '/usr/bin/influxd',
    ['-config', conf],
    dir,
    http,
    url,
    async () => (await fetch(`${url}/ping`)).status === 204,
  ) as Promise<Required<RunningServer>>;
}

export async function startVictoriaMetrics(opts: { username?: string; password?: string } = {}): Promise<Required<RunningServer>> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'gw-victoria-'));
  const url = `http://127.0.0.1:${port}`;
  return startTied(
    'victoria-metrics',
    '/usr/bin/victoria-metrics',
    [
      `-httpListenAddr=127.0.0.1:${port}`,
      `-storageDataPath=${dir}/data`,
      '-retentionPeriod=100y',
      '-loggerLevel=ERROR',
      ...(opts.username ? [`-httpAuth.username=${opts.username}`, `-httpAuth.password=${opts.password ?? ''}`] : []),
    ],
    dir,
    port,
    url,
    async () => (await fetch(`${url}/health`)).status < 500,
  ) as Promise<Required<RunningServer>>;
}
