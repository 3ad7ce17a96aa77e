// Tells systemd how a `gateway run` under a unit with Type=notify is doing (the sd_notify protocol):
// READY=1 once every part has started, WATCHDOG=1 while it is alive and well, STOPPING=1 when it
// begins to stop, and a STATUS= line for `systemctl status`. Nothing happens without NOTIFY_SOCKET.
//
// Node cannot send a unix datagram, so one small helper process does it: Perl (perl-base is
// Essential on Debian and Ubuntu, so it is on every box that runs systemd there) reads lines from
// its stdin and sends each as one datagram to NOTIFY_SOCKET. It stays alive as long as the gateway,
// which matters on systemd 252 (Debian 12): systemd finds the unit of a message by the sender's
// process, and a `systemd-notify` spawned per message has often exited by then, so the message is
// dropped ("Cannot find unit for notify message"). The helper is not the main process, hence
// NotifyAccess=all in the unit. The npm package sd-notify would do it in-process at the price of a
// native build against libsystemd's headers on every box.
//
// The watchdog pings come from the gateway's event loop (a timer), never from the helper: a blocked
// loop sends none, and systemd restarts the gateway after WatchdogSec.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from './log.js';
import type { Service } from './services/service.js';

/** Reads lines, sends each as one datagram to $NOTIFY_SOCKET ('@' at its start: the abstract namespace). */
const HELPER = [
  'use strict; use Socket;',
  // `systemctl stop` signals every process of the unit at once, a Ctrl-C the whole process group: the
  // helper stays to send STOPPING=1 and ends with the gateway (its stdin closes), not before it.
  "$SIG{TERM} = $SIG{INT} = $SIG{HUP} = 'IGNORE';",
  'my $path = $ENV{NOTIFY_SOCKET}; $path =~ s/^@/\\0/;',
  'socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die "socket: $!\\n";',
  'my $to = pack_sockaddr_un($path);',
  'while (my $line = <STDIN>) { chomp $line; send($s, $line, 0, $to) or print STDERR "send to $ENV{NOTIFY_SOCKET}: $!\\n"; }',
].join('\n');

/** A message to systemd is one line here; STATUS= texts are cut to this many characters. */
const MAX_STATUS_CHARS = 200;

export interface WatchdogVerdict {
  ok: boolean;
  /** Why not, for the log and STATUS=. */
  reason?: string;
}

export interface SystemdNotifier {
  /** READY=1, with a status line. */
  ready(status: string): void;
  /** STOPPING=1; the watchdog stops. */
  stopping(): void;
  /** Ends the helper (after what was written has been sent). */
  close(): void;
}

export interface NotifierOptions {
  /** Sends one message (`READY=1`, `WATCHDOG=1`...). */
  send: (message: string) => void;
  /** The watchdog's period (half of WATCHDOG_USEC), or undefined without a watchdog. */
  pingEveryMs: number | undefined;
  /** Whether the gateway deserves a ping now. */
  verdict: () => WatchdogVerdict;
  log: Logger;
  close?: () => void;
}

/**
 * The protocol, without the transport: tests give `send`. WATCHDOG=1 goes out every `pingEveryMs`
 * from READY on, while `verdict()` is ok; a verdict that turns bad is logged once (and in STATUS=),
 * and so is its recovery.
 */
export function createNotifier(o: NotifierOptions): SystemdNotifier {
  let timer: NodeJS.Timeout | undefined;
  let withheld: string | undefined;
  const status = (text: string) => o.send(`STATUS=${text.replace(/[\r\n]+/g, ' ').slice(0, MAX_STATUS_CHARS)}`);
  let running = '';
  const ping = () => {
    let v: WatchdogVerdict;
    try {
      v = o.verdict();
    } catch (err) {
      v = { ok: false, reason: `health check failed: ${(err as Error).message}` };
    }
    if (v.ok) {
      o.send('WATCHDOG=1');
      if (withheld !== undefined) {
        o.log.info({ was: withheld }, 'Watchdog: healthy again; pinging systemd again');
        status(running);
        withheld = undefined;
      }
      return;
    }
    const reason = v.reason ?? 'unhealthy';
    if (withheld !== reason) {
      o.log.error({ reason }, `Watchdog: not pinging systemd while ${reason}; systemd restarts the gateway when this lasts WatchdogSec`);
      status(`Unhealthy: ${reason}`);
      withheld = reason;
    }
  };
  return {
    ready(text) {
      running = text;
      o.send('READY=1');
      status(text);
      if (o.pingEveryMs !== undefined && !timer) {
        ping();
        timer = setInterval(ping, o.pingEveryMs);
        // The gateway's own work keeps the process alive, not this timer.
        timer.unref();
      }
    },
    stopping() {
      clearInterval(timer);
      timer = undefined;
      o.send('STOPPING=1');
      status('Stopping');
    },
    close() {
      clearInterval(timer);
      timer = undefined;
      o.close?.();
    },
  };
}

/**
 * The watchdog's verdict from the gateway's parts. Only what a restart can mend withholds the ping:
 * the gateway's own link to its embedded broker over loopback (both in this process, nothing of the
 * network between them; `ownLink` false otherwise: see ownLinkOverLoopback). A peer that is away (an
 * external broker, InfluxDB, the platform) and a store that cannot write (a full disk) are not:
 * the gateway keeps running degraded by design (queues, spools, alarms held in memory and still
 * published), says so on /ready, and a restart would mend none of them; restarting in a loop until
 * systemd's start limit gives up would leave the equipment unwatched.
 */
export function watchdogVerdict(services: readonly Service[], ownLink: boolean): WatchdogVerdict {
  const link = ownLink ? services.find((s) => s.id === 'mqtt') : undefined;
  return link?.health && !link.health().ok ? { ok: false, reason: `${link.name} (${link.id}) is down` } : { ok: true };
}

/**
 * Whether the link to the embedded broker (its URL) stays inside the box. An embedded broker bound to
 * a LAN address (mqtt.host: 10.20.0.5) is reached at that address: when it goes away (a cable pulled,
 * a DHCP lease lost) the link is down, and a restart cannot mend that; it cannot even bind the broker
 * again, and after the start limit the gateway would stay down when the network came back. That
 * link is a peer's, like an external broker's.
 */
export function ownLinkOverLoopback(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return false;
  }
  return /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1' || host === 'localhost';
}

/**
 * The watchdog's ping period from systemd's environment: half of WATCHDOG_USEC, when it is set for
 * this process (WATCHDOG_PID, when set, names it). Undefined without a watchdog.
 */
export function pingPeriodMs(env: NodeJS.ProcessEnv, pid = process.pid): number | undefined {
  const usec = env.WATCHDOG_USEC;
  if (!usec || !/^\d{1,15}$/.test(usec) || Number(usec) === 0) return undefined;
  if (env.WATCHDOG_PID && env.WATCHDOG_PID !== String(pid)) return undefined;
  return Math.max(1, Math.floor(Number(usec) / 2000));
}

/**
 * The notifier for this process when systemd started it with NOTIFY_SOCKET, else undefined. The
 * helper is started here; a helper that cannot start (no perl) is one error line, and the gateway
 * runs on (systemd then ends it at TimeoutStartSec: the log says why).
 */
export function systemdNotifier(
  env: NodeJS.ProcessEnv,
  log: Logger,
  verdict: () => WatchdogVerdict,
  spawnHelper: () => ChildProcess = () => defaultHelper(env.NOTIFY_SOCKET!),
): SystemdNotifier | undefined {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return undefined;
  const pingEveryMs = pingPeriodMs(env);
  const helper = spawnHelper();
  let failed = false;
  const fail = (why: string) => {
    if (failed) return;
    failed = true;
    log.error({ notifySocket: socket }, `Cannot tell systemd how the gateway is (sd_notify): ${why}`);
  };
  helper.on('error', (err) => fail(`${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'perl not found' : err.message}`));
  // What the helper says (a send that failed: the socket is not there) is logged when it says it, each
  // line once: a READY=1 that did not arrive is known then, not only once the gateway stops.
  const said = new Set<string>();
  let partial = '';
  let last = '';
  helper.stderr?.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!.slice(-500);
    for (const raw of lines) {
      const line = raw.trim().slice(0, 300);
      if (!line) continue;
      last = line;
      if (said.has(line) || said.size >= 10) continue;
      said.add(line);
      log.warn({ notifySocket: socket }, `sd_notify helper: ${line}`);
    }
  });
  let closing = false;
  helper.on('exit', (code, signal) => {
    if (closing && code === 0) return;
    // Killed (the OOM killer, a kill -9) or failed: systemd hears nothing more, and its watchdog, when
    // set, restarts the gateway; the log says why.
    fail(`its helper (perl) ended (${signal ? `signal ${signal}` : `exit code ${code}`})${last ? `: ${last}` : ''}`);
  });
  // A helper gone before the gateway must not take it along (EPIPE on write).
  helper.stdin?.on('error', () => undefined);
  // The helper never keeps the gateway alive, and ends when its stdin closes (the gateway gone).
  helper.unref();
  for (const s of [helper.stdin, helper.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
  return createNotifier({
    send: (message) => {
      if (!failed && helper.stdin?.writable) helper.stdin.write(`${message}\n`);
    },
    pingEveryMs,
    verdict,
    log,
    close: () => {
      closing = true;
      helper.stdin?.end();
    },
  });
}

/** The helper process for NOTIFY_SOCKET `socket` (exported for its tests). */
export function defaultHelper(socket: string): ChildProcess {
  // Only what it needs in its environment: the gateway's secrets stay in the gateway.
  return spawn('perl', ['-e', HELPER], { stdio: ['pipe', 'ignore', 'pipe'], env: { NOTIFY_SOCKET: socket, PATH: process.env.PATH ?? '' } });
}
