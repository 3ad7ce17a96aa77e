// `gateway run` under systemd's notify protocol, with a real unix datagram socket standing in for
// systemd's (made by Python: Node cannot). The receiver records, as systemd does, the sender's pid
// from the socket's credentials and whether that process was still alive when the message was read:
// systemd 252 drops a message whose sender has already exited.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, ROOT } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';
import { writeTestSite } from '../helpers/site.js';

const RECEIVER = `
import json, os, socket, struct, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
print(json.dumps({"listening": True}), flush=True)
while True:
    data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", payload[:12])[0]
    alive = pid is not None and os.path.exists("/proc/%d" % pid)
    print(json.dumps({"msg": data.decode("utf-8", "replace"), "pid": pid, "alive": alive, "t": time.monotonic() * 1000}), flush=True)
`;

interface Received {
  msg: string;
  pid: number | null;
  alive: boolean;
  /** When the receiver read it: CLOCK_MONOTONIC in ms, the clock of hrtime() below, so a busy test process does not blur it. */
  t: number;
}

const hrtime = () => Number(process.hrtime.bigint()) / 1e6;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('systemd notify (Type=notify, WatchdogSec)', () => {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    while (cleanup.length) await Promise.resolve(cleanup.pop()!()).catch(() => undefined);
  });

  it('sends READY=1 after start, WATCHDOG=1 at half of WATCHDOG_USEC only while its event loop runs, and STOPPING=1, from one living helper', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-notify-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const socketPath = join(dir, 'notify');
    const received: Received[] = [];
    const receiver = spawn('python3', ['-c', RECEIVER, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.push(() => receiver.kill('SIGKILL'));
    let buffered = '';
    let listening = false;
    receiver.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffered.slice(0, nl)) as { listening?: boolean } & Received;
        buffered = buffered.slice(nl + 1);
        if (line.listening) listening = true;
        else received.push(line);
      }
    });
    await until('the receiver', () => listening, 10_000);

    const site = writeTestSite({ port: await freePort() });
    cleanup.push(() => rmSync(join(site, '..'), { recursive: true, force: true }));
    const gateway: ChildProcess = spawn(process.execPath, ['--import', 'tsx', CLI, 'run', '-c', site], {
      cwd: ROOT,
      // 400 ms: a ping every 200 ms.
      env: { ...process.env, NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '400000', WATCHDOG_PID: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    gateway.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    gateway.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => gateway.once('exit', (code) => r(code)));
    cleanup.push(() => gateway.kill('SIGKILL'));

    const messages = () => received.map((r) => r.msg);
    await until('READY=1', () => messages().includes('READY=1')).catch((e: Error) => {
      throw new Error(`${e.message}; gateway output: ${output.slice(-2000)}`);
    });
    expect(output).toContain('Gateway started');
    // READY=1 comes after every part has started, and before it no ping.
    expect(messages()[0]).toBe('READY=1');
    expect(messages()).toContain('STATUS=Running site test-site (1 equipment)');
    await until('four pings', () => messages().filter((m) => m === 'WATCHDOG=1').length >= 4, 5000);

    // A stopped event loop sends nothing (the helper is alive but has no timer of its own).
    const stoppedAt = hrtime();
    process.kill(gateway.pid!, 'SIGSTOP');
    await sleep(1200);
    const continuedAt = hrtime();
    process.kill(gateway.pid!, 'SIGCONT');
    expect(received.filter((r) => r.t > stoppedAt + 100 && r.t < continuedAt && r.msg === 'WATCHDOG=1')).toEqual([]);
    await until('pings again', () => received.some((r) => r.t > continuedAt && r.msg === 'WATCHDOG=1'), 5000);

    // Pings come about every 200 ms (half of WATCHDOG_USEC), not a burst and not a trickle.
    const pings = () => received.filter((r) => r.msg === 'WATCHDOG=1' && r.t > continuedAt).map((r) => r.t);
    await until('more pings', () => pings().length >= 6, 5000);
    const later = pings();
    const span = later.at(-1)! - later[0]!;
    expect(span / (later.length - 1)).toBeGreaterThan(120);
    expect(span / (later.length - 1)).toBeLessThan(400);

    gateway.kill('SIGTERM');
    expect(await exited).toBe(0);
    await until('STOPPING=1', () => messages().includes('STOPPING=1'), 5000);
    const stopping = messages().indexOf('STOPPING=1');
    expect(messages().slice(stopping + 1)).not.toContain('WATCHDOG=1');

    // Every message from one process, not the gateway's own (the helper, hence NotifyAccess=all), alive when read.
    const pids = new Set(received.map((r) => r.pid));
    expect(pids.size).toBe(1);
    expect([...pids][0]).not.toBe(gateway.pid);
    expect(received.every((r) => r.alive)).toBe(true);
  });

  it('runs without a helper when NOTIFY_SOCKET is not set', async () => {
    const site = writeTestSite({ port: await freePort() });
    cleanup.push(() => rmSync(join(site, '..'), { recursive: true, force: true }));
    const env = { ...process.env };
    delete env.NOTIFY_SOCKET;
    const gateway = spawn(process.execPath, ['--import', 'tsx', CLI, 'run', '-c', site], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanup.push(() => gateway.kill('SIGKILL'));
    let output = '';
    gateway.stdout.on('data', (d: Buffer) => (output += d.toString()));
    await until('start', () => output.includes('Gateway started'));
    // No perl child: the gateway's children are tsx's esbuild at most (ps exits 1 when there are none).
    const ps = spawnSync('ps', ['-o', 'comm=', '--ppid', String(gateway.pid)], { encoding: 'utf8' });
    const children = ps.stdout.split('\n').filter(Boolean);
    expect(children).not.toContain('perl');
    gateway.kill('SIGTERM');
  });
});
