// checkSiteText: what POST /api/config/check runs. A site file sent by anyone is checked in a worker
// with no environment, a heap and a time limit; the event loop that polls equipment keeps running
// while hostile texts are checked, and more than MAX_CHECKS at once are turned away, not queued.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkCounters, checkSiteText, MAX_CHECKS } from '../../../config/check.js';

const SECRET = 'platform-secret-4e8d2b6a91';
const ROOT = join(import.meta.dirname, '..', '..', '..');

/** Valid YAML the parser spends minutes on: every key of a mapping is compared with every other. */
const slow = () => `a: {${Array.from({ length: 100_000 }, (_, i) => `k${i}: ${i}`).join(', ')}}\n`;
/** 3 MB of small mappings: far more heap as parsed nodes than a 32 MB cap. */
const large = () => `x:\n${Array.from({ length: 120_000 }, (_, i) => `  - {a: ${i}, b: [1, 2]}`).join('\n')}\n`;

describe('checkSiteText', () => {
  beforeEach(() => {
    process.env.PLATFORM_SECRET = SECRET;
  });
  afterEach(() => {
    delete process.env.PLATFORM_SECRET;
  });

  it("checks the demo in a worker without this process's environment, and says so of each placeholder", async () => {
    const demo = await checkSiteText(readFileSync(join(ROOT, 'config', 'demo.yaml'), 'utf8'), { timeoutMs: 20_000 });
    expect(demo).toMatchObject({ ok: true });
    const r = await checkSiteText(
      'version: 2\ngateway:\n  id: gw-1\n  site: plant-1\n  log_level: "${PLATFORM_SECRET}"\nmqtt: { port: "not a port" }\n',
      { timeoutMs: 20_000 },
    );
    expect(r).toEqual({
      ok: false,
      problems: [
        { path: 'connections', message: 'required', line: 1 },
        { path: 'equipment', message: 'required', line: 1 },
        { path: 'mqtt.port', message: expect.not.stringContaining('not a port') as unknown, line: 6 },
      ],
      notes: [
        {
          path: 'gateway.log_level',
          message: 'takes its value from ${PLATFORM_SECRET} when the gateway starts; not checked here',
          line: 5,
        },
      ],
    });
    expect(JSON.stringify(r)).not.toContain(SECRET);
  }, 60_000);

  it('answers hostile texts with a (yaml) problem, never a stack', async () => {
    const cases = [
      `a: ${'['.repeat(1_000_000)}`,
      `rules:\n  - { id: r, equipment: x, level: red, when: "${'('.repeat(5000)}" }\n`,
      `a: &a [1]\nb: [${Array<string>(500).fill('*a').join(',')}]`,
    ];
    for (const text of cases) {
      const r = await checkSiteText(text, { timeoutMs: 20_000 });
      expect(r).toMatchObject({ ok: false });
      if (!('problems' in r)) throw new Error('expected problems');
      for (const p of r.problems) expect(`${p.path}: ${p.message}`).toMatch(/^[^\n]+: [^\n]+$/);
      expect(JSON.stringify(r)).not.toMatch(/RangeError|at .*:\d+:\d+/);
    }
  }, 60_000);

  it('ends a check over its time limit or its heap with a problem', async () => {
    const before = { ...checkCounters };
    expect(await checkSiteText(slow(), { timeoutMs: 1500 })).toEqual({
      ok: false,
      problems: [{ path: '(yaml)', message: 'took longer than 1.5 s to check' }],
      notes: [],
    });
    expect(await checkSiteText(large(), { timeoutMs: 60_000, maxMemoryMb: 32 })).toEqual({
      ok: false,
      problems: [{ path: '(yaml)', message: 'needs more than 32 MB to check' }],
      notes: [],
    });
    expect(checkCounters.timedOut).toBe(before.timedOut + 1);
    expect(checkCounters.outOfMemory).toBe(before.outOfMemory + 1);
  }, 120_000);

  it('keeps the event loop free while six hostile checks arrive at once; those beyond the limit are busy', async () => {
    const text = slow();
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    // A timer that should fire every 50 ms, as a poll would.
    let ticks = 0;
    const poll = setInterval(() => ticks++, 50);
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: 6 }, () => checkSiteText(text, { timeoutMs: 3000 })));
    const elapsed = performance.now() - t0;
    clearInterval(poll);
    delay.disable();
    const busy = results.filter((r) => 'busy' in r);
    expect(busy).toHaveLength(6 - MAX_CHECKS);
    expect(busy[0]).toEqual({ busy: true, retryAfterS: 3 });
    for (const r of results.filter((r) => !('busy' in r)))
      expect(r).toEqual({ ok: false, problems: [{ path: '(yaml)', message: 'took longer than 3 s to check' }], notes: [] });
    const maxDelayMs = delay.max / 1e6;
    // Measured on 2 cores: about 150 ms at worst, while workers start. In the event loop the same
    // six texts took minutes. The bound is generous for a slow CI machine.
    process.stdout.write(
      `checkSiteText x6: max event-loop delay ${maxDelayMs.toFixed(0)} ms over ${elapsed.toFixed(0)} ms, ${ticks} ticks of 50 ms\n`,
    );
    expect(maxDelayMs).toBeLessThan(1500);
    expect(ticks).toBeGreaterThan(elapsed / 50 / 4);
    // The slots are free again afterwards.
    expect(await checkSiteText('version: 1\n', { timeoutMs: 20_000 })).toMatchObject({ ok: false });
  }, 120_000);
});
