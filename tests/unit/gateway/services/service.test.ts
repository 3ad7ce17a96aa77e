import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { GatewayError } from '../../../../config/errors.js';
import { ServiceRunner, type Service } from '../../../../gateway/services/service.js';

const log = pino({ level: 'silent' });

/** A service that writes what happens to it into `trace`. */
function traced(id: string, trace: string[], fail?: 'init' | 'start', stop?: () => Promise<void>): Service {
  return {
    id,
    name: `service ${id}`,
    async init() {
      trace.push(`init ${id}`);
      if (fail === 'init') throw new Error(`${id} cannot`);
    },
    async start() {
      trace.push(`start ${id}`);
      if (fail === 'start') throw new Error(`${id} cannot`);
    },
    async stop() {
      trace.push(`stop ${id}`);
      await stop?.();
    },
    health: () => ({ ok: id !== 'b', detail: id }),
  };
}

describe('ServiceRunner', () => {
  it('prepares every service before starting any, starts in order and stops in reverse', async () => {
    const trace: string[] = [];
    const runner = new ServiceRunner([traced('a', trace), traced('b', trace), traced('c', trace)], log);
    await runner.start();
    expect(trace).toEqual(['init a', 'init b', 'init c', 'start a', 'start b', 'start c']);
    expect(runner.health()).toEqual({ a: { ok: true, detail: 'a' }, b: { ok: false, detail: 'b' }, c: { ok: true, detail: 'c' } });
    await runner.stop();
    expect(trace.slice(6)).toEqual(['stop c', 'stop b', 'stop a']);
  });

  it('a service that cannot start stops every service prepared, and names itself in the error', async () => {
    const trace: string[] = [];
    const runner = new ServiceRunner([traced('a', trace), traced('b', trace, 'start'), traced('c', trace)], log);
    const err = await runner.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('GW_ERR_COMPONENT_START');
    expect((err as Error).message).toBe('Cannot start service b: b cannot');
    // c was prepared (init runs for all first), so it is stopped too, although it never started.
    expect(trace).toEqual(['init a', 'init b', 'init c', 'start a', 'start b', 'stop c', 'stop b', 'stop a']);
  });

  it('a service that cannot be prepared stops those prepared before it, itself included', async () => {
    const trace: string[] = [];
    const runner = new ServiceRunner([traced('a', trace), traced('b', trace, 'init'), traced('c', trace)], log);
    await expect(runner.start()).rejects.toThrow('Cannot prepare service b: b cannot');
    expect(trace).toEqual(['init a', 'init b', 'stop b', 'stop a']);
  });

  it('a service that does not stop in time does not keep the others from stopping', async () => {
    vi.useFakeTimers();
    try {
      const trace: string[] = [];
      const runner = new ServiceRunner([traced('a', trace), traced('b', trace, undefined, () => new Promise(() => {}))], log);
      await runner.start();
      let stopped = false;
      void runner.stop().then(() => (stopped = true));
      await vi.advanceTimersByTimeAsync(1499);
      expect(stopped).toBe(false);
      expect(trace.slice(4)).toEqual(['stop b']);
      await vi.advanceTimersByTimeAsync(1);
      expect(stopped).toBe(true);
      expect(trace.slice(4)).toEqual(['stop b', 'stop a']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses a second start instead of starting every service twice', async () => {
    const trace: string[] = [];
    const runner = new ServiceRunner([traced('a', trace)], log);
    await runner.start();
    await expect(runner.start()).rejects.toThrow('The services were started already');
    expect(trace).toEqual(['init a', 'start a']);
    await runner.stop();
  });

  it('a stop asked for while starting lets the current service finish, starts no other and stops what was prepared', async () => {
    const trace: string[] = [];
    let release: () => void = () => {};
    const slow: Service = {
      ...traced('slow', trace),
      start: () => {
        trace.push('start slow');
        return new Promise<void>((resolve) => (release = resolve));
      },
    };
    const runner = new ServiceRunner([traced('a', trace), slow, traced('c', trace)], log);
    const started = runner.start();
    await new Promise((r) => setTimeout(r, 20));
    const stopped = runner.stop();
    release();
    await started;
    await stopped;
    expect(runner.stopped).toBe(true);
    expect(trace).toEqual(['init a', 'init slow', 'init c', 'start a', 'start slow', 'stop c', 'stop slow', 'stop a']);
  });
});
