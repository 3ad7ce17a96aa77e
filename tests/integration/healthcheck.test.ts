// The Dockerfile's HEALTHCHECK command, run as the engine runs it (its compiled file mapped to the
// source), against a real gateway: healthy while /ready answers 200, unhealthy with the reason while a
// part is not ready (its MQTT broker away) and while nothing answers.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { ROOT } from '../helpers/cli.js';
import { parseDockerfile } from '../helpers/dockerfile.js';
import { freePort, startMosquitto } from '../helpers/processes.js';
import { testSite } from '../helpers/site.js';

/** The HEALTHCHECK's command of the image, with dist/... run from the TypeScript source. */
function healthCommand(): string[] {
  const runtime = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).at(-1)!;
  const hc = runtime.instructions.find((i) => i.op === 'HEALTHCHECK')!;
  const cmd = JSON.parse(/\bCMD\s+(.*)$/.exec(hc.args)![1]!) as string[];
  expect(cmd[0]).toBe('node');
  return [process.execPath, '--import', 'tsx', ...cmd.slice(1).map((a) => a.replace(/^dist\/(.*)\.js$/, '$1.ts'))];
}

function check(env: Record<string, string>): Promise<{ code: number | null; out: string; ms: number }> {
  const [cmd, ...args] = healthCommand();
  const t0 = Date.now();
  return new Promise((resolve) => {
    const env2 = { ...process.env, ...env };
    if (!env.GATEWAY_HEALTH_URL) delete env2.GATEWAY_HEALTH_URL;
    const child = spawn(cmd!, args, { cwd: ROOT, env: env2 });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => resolve({ code, out: out.trim(), ms: Date.now() - t0 }));
  });
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('container health check', () => {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    while (cleanup.length) await Promise.resolve(cleanup.pop()!()).catch(() => undefined);
  });

  it('is healthy on /ready, unhealthy with the reason while a part is not ready, and while nothing answers', async () => {
    const broker = await startMosquitto();
    cleanup.push(() => broker.stop());
    const port = await freePort();
    const gw: Gateway = createGateway(
      testSite({ broker: broker.url, extra: ['http:', `  port: ${port}`, '  tokens: []'] }),
      (await import('pino')).pino({ level: 'silent' }),
    );
    cleanup.push(() => gw.stop());
    await gw.start();

    // The default address takes HTTP_PORT, as the demo's site file does.
    await until('ready', async () => (await fetch(`http://127.0.0.1:${port}/ready`)).status === 200);
    const healthy = await check({ HTTP_PORT: String(port) });
    expect(healthy).toEqual({ code: 0, out: `ready: http://127.0.0.1:${port}/ready`, ms: expect.any(Number) });

    await broker.halt!();
    await until('not ready', async () => (await fetch(`http://127.0.0.1:${port}/ready`)).status === 503);
    const degraded = await check({ GATEWAY_HEALTH_URL: `http://127.0.0.1:${port}/ready` });
    expect(degraded.code).toBe(1);
    expect(degraded.out).toBe(`503: http://127.0.0.1:${port}/ready: not ready: mqtt (GW_HTTP_NOT_READY)`);

    await gw.stop();
    const gone = await check({ HTTP_PORT: String(port) });
    expect(gone.code).toBe(1);
    expect(gone.out).toBe(`unreachable: http://127.0.0.1:${port}/ready: ECONNREFUSED`);
    // Well within the HEALTHCHECK's --timeout of 5 s, tsx's start included.
    expect(Math.max(healthy.ms, degraded.ms, gone.ms)).toBeLessThan(5000);
  });
});
