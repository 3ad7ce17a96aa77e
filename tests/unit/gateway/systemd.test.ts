// The sd_notify protocol of gateway/systemd.ts without its transport: what is sent when, the
// watchdog's period from systemd's environment, and which parts' health withholds the ping.
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Service } from '../../../gateway/services/service.js';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  createNotifier,
  defaultHelper,
  ownLinkOverLoopback,
  pingPeriodMs,
  systemdNotifier,
  watchdogVerdict,
  type WatchdogVerdict,
} from '../../../gateway/systemd.js';

function capture() {
  const lines: Array<{ msg: string; level: number }> = [];
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as { msg: string; level: number });
        done();
      },
    }),
  );
  return { log, lines };
}

const part = (id: string, ok: boolean): Service => ({
  id,
  name: `part ${id}`,
  start: async () => undefined,
  stop: async () => undefined,
  health: () => ({ ok }),
});

describe('sd_notify protocol', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('sends READY=1 and a status at ready, WATCHDOG=1 every period while healthy, none while not, and STOPPING=1', () => {
    const sent: string[] = [];
    let verdict: WatchdogVerdict = { ok: true };
    const { log, lines } = capture();
    const n = createNotifier({ send: (m) => sent.push(m), pingEveryMs: 100, verdict: () => verdict, log });
    expect(sent).toEqual([]);
    n.ready('Running site s (1 equipment)');
    expect(sent.slice(0, 3)).toEqual(['READY=1', 'STATUS=Running site s (1 equipment)', 'WATCHDOG=1']);
    sent.length = 0;
    vi.advanceTimersByTime(350);
    expect(sent).toEqual(['WATCHDOG=1', 'WATCHDOG=1', 'WATCHDOG=1']);

    sent.length = 0;
    verdict = { ok: false, reason: 'MQTT client (mqtt) is down' };
    vi.advanceTimersByTime(500);
    // No ping while unhealthy; the reason once, in the log and the status.
    expect(sent).toEqual(['STATUS=Unhealthy: MQTT client (mqtt) is down']);
    expect(lines.filter((l) => l.msg.startsWith('Watchdog: not pinging'))).toHaveLength(1);

    sent.length = 0;
    verdict = { ok: true };
    vi.advanceTimersByTime(100);
    expect(sent).toEqual(['WATCHDOG=1', 'STATUS=Running site s (1 equipment)']);
    expect(lines.some((l) => l.msg.startsWith('Watchdog: healthy again'))).toBe(true);

    sent.length = 0;
    n.stopping();
    vi.advanceTimersByTime(1000);
    expect(sent).toEqual(['STOPPING=1', 'STATUS=Stopping']);
  });

  it('takes a verdict that throws as unhealthy, and sends no ping without a watchdog', () => {
    const sent: string[] = [];
    const { log } = capture();
    const n = createNotifier({
      send: (m) => sent.push(m),
      pingEveryMs: 100,
      verdict: () => {
        throw new Error('boom');
      },
      log,
    });
    n.ready('up');
    vi.advanceTimersByTime(300);
    expect(sent).not.toContain('WATCHDOG=1');
    expect(sent).toContain('STATUS=Unhealthy: health check failed: boom');

    const quiet: string[] = [];
    createNotifier({ send: (m) => quiet.push(m), pingEveryMs: undefined, verdict: () => ({ ok: true }), log }).ready('up');
    vi.advanceTimersByTime(10_000);
    expect(quiet).toEqual(['READY=1', 'STATUS=up']);
  });

  it('keeps every message on one line and a status short', () => {
    const sent: string[] = [];
    createNotifier({ send: (m) => sent.push(m), pingEveryMs: undefined, verdict: () => ({ ok: true }), log: capture().log }).ready(
      `site\nWATCHDOG=1\r\n${'x'.repeat(500)}`,
    );
    expect(sent).toHaveLength(2);
    expect(sent[1]).not.toMatch(/[\r\n]/);
    expect(sent[1]!.length).toBeLessThanOrEqual('STATUS='.length + 200);
  });
});

describe('watchdog period', () => {
  it('is half of WATCHDOG_USEC, for this process only', () => {
    expect(pingPeriodMs({ WATCHDOG_USEC: '30000000' }, 42)).toBe(15_000);
    expect(pingPeriodMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42)).toBe(15_000);
    expect(pingPeriodMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '43' }, 42)).toBeUndefined();
    expect(pingPeriodMs({}, 42)).toBeUndefined();
    expect(pingPeriodMs({ WATCHDOG_USEC: '0' }, 42)).toBeUndefined();
    expect(pingPeriodMs({ WATCHDOG_USEC: '-5' }, 42)).toBeUndefined();
    expect(pingPeriodMs({ WATCHDOG_USEC: '3e7' }, 42)).toBeUndefined();
    expect(pingPeriodMs({ WATCHDOG_USEC: '1' }, 42)).toBe(1);
  });
});

describe('watchdog verdict', () => {
  it("is withheld only for the link to the gateway's own broker, never for peers or a full disk", () => {
    const peersDown = [part('store', false), part('influx', false), part('platform', false), part('mqtt', true)];
    expect(watchdogVerdict(peersDown, true)).toEqual({ ok: true });
    expect(watchdogVerdict([part('store', true), part('mqtt', false)], true)).toEqual({ ok: false, reason: 'part mqtt (mqtt) is down' });
    // With an external broker the MQTT link is a peer's: the gateway queues and waits.
    expect(watchdogVerdict([part('mqtt', false)], false)).toEqual({ ok: true });
  });

  it('is not withheld for a link to its own broker over a network address, which a restart cannot mend', () => {
    // An embedded broker bound to a LAN address (mqtt.host: 10.20.0.5) that went away with its cable or
    // DHCP lease: the link cannot reach it, a restart cannot even bind it, and the start limit would
    // leave the gateway down for good. Over loopback (0.0.0.0, 127.0.0.1, ::) the link never leaves the box.
    expect(ownLinkOverLoopback('mqtt://127.0.0.1:1883')).toBe(true);
    expect(ownLinkOverLoopback('mqtt://127.0.0.2:1883')).toBe(true);
    expect(ownLinkOverLoopback('mqtts://[::1]:8883')).toBe(true);
    expect(ownLinkOverLoopback('mqtt://localhost:1883')).toBe(true);
    expect(ownLinkOverLoopback('mqtt://10.20.0.5:1883')).toBe(false);
    expect(ownLinkOverLoopback('mqtt://[fd00::5]:1883')).toBe(false);
    expect(ownLinkOverLoopback('not a url')).toBe(false);
    expect(watchdogVerdict([part('mqtt', false)], ownLinkOverLoopback('mqtt://10.20.0.5:1883'))).toEqual({ ok: true });
  });
});

describe('the helper', () => {
  it('is not started without NOTIFY_SOCKET', () => {
    let started = 0;
    const n = systemdNotifier(
      {},
      capture().log,
      () => ({ ok: true }),
      () => {
        started++;
        return spawn('true');
      },
    );
    expect(n).toBeUndefined();
    expect(started).toBe(0);
  });

  it('missing (no perl) is one error line; the gateway goes on and sending is harmless', async () => {
    const { log, lines } = capture();
    const n = systemdNotifier(
      { NOTIFY_SOCKET: '/run/nothing-here' },
      log,
      () => ({ ok: true }),
      () => spawn('/nonexistent/perl', [], { stdio: ['pipe', 'ignore', 'pipe'] }),
    )!;
    await new Promise((r) => setTimeout(r, 200));
    n.ready('up');
    n.stopping();
    n.close();
    const errors = lines.filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toBe('Cannot tell systemd how the gateway is (sd_notify): perl not found');
  });

  it('outlives the stop signal systemd sends the whole unit, and is reported when it is killed', async () => {
    const { log, lines } = capture();
    let helper: ChildProcess | undefined;
    const n = systemdNotifier(
      { NOTIFY_SOCKET: '/nonexistent/notify' },
      log,
      () => ({ ok: true }),
      () => (helper = defaultHelper('/nonexistent/notify')),
    )!;
    const until = async (what: () => boolean) => {
      const deadline = Date.now() + 5000;
      while (!what() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    };
    await until(() => helper!.pid !== undefined);
    await new Promise((r) => setTimeout(r, 300));
    // KillMode=control-group: SIGTERM reaches the helper with the gateway's; it stays to send STOPPING=1.
    helper!.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    expect(helper!.exitCode).toBeNull();
    expect(helper!.signalCode).toBeNull();
    // Its failure to send is logged when it happens, not at its end.
    n.ready('up');
    await until(() => lines.some((l) => l.level === 40));
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([
      'sd_notify helper: send to /nonexistent/notify: No such file or directory',
    ]);
    // Killed (OOM killer, kill -9): one error line, naming the signal.
    helper!.kill('SIGKILL');
    await until(() => lines.some((l) => l.level === 50));
    const errors = lines.filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toMatch(/^Cannot tell systemd how the gateway is \(sd_notify\): its helper \(perl\) ended \(signal SIGKILL\)/);
    n.close();
  });

  it('that fails (an unreachable socket) says why, once', async () => {
    const { log, lines } = capture();
    const n = systemdNotifier({ NOTIFY_SOCKET: '/nonexistent/notify' }, log, () => ({ ok: true }))!;
    n.ready('up');
    n.close();
    const deadline = Date.now() + 5000;
    while (!lines.some((l) => l.level >= 40) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const said = lines.filter((l) => l.level >= 40);
    expect(said).toHaveLength(1);
    expect(said[0]!.msg).toMatch(/^sd_notify helper: send to \/nonexistent\/notify: No such file or directory$/);
  });
});
