// `gateway platform-inbox` and `gateway outbox` as a platform developer and a site engineer use them.
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { headersFor, incidentBody } from '../../gateway/platform/contract.js';
import { Outbox } from '../../gateway/platform/outbox.js';
import { STORE_FILE } from '../../gateway/store.js';
import { CLI, gatewaySync, killGroup, startCommand, type Running } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';
import { writeTestSite } from '../helpers/site.js';

const SECRET = 'cli-secret-0123456789';
const incident = (n: number) => ({
  schema: 'gw.incident.v1' as const,
  eventId: `evt-${n}`,
  incidentId: 'inc-1',
  type: 'raised' as const,
  level: 'red' as const,
  gatewayId: 'gw-cli',
  site: 'plant-9',
  equipment: { id: 'B-07', category: 'boiler' },
  rule: { id: 'drum-level-low-low', message: 'Drum water level extremely low: -212 mm' },
  point: 'drum_level',
  value: -212,
  unit: 'mm',
  occurredAt: '2026-11-22T10:00:00.123Z',
});

describe('platform CLI', () => {
  const running: Running[] = [];
  afterEach(() => {
    for (const r of running.splice(0)) killGroup(r);
  });

  it('platform-inbox verifies, de-duplicates, reports a seq gap, writes JSON lines and sums up on Ctrl-C with the incidents left open', async () => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'gw-inbox-'));
    const out = join(dir, 'incidents.jsonl');
    const state = join(dir, 'inbox.db');
    const r = startCommand(process.execPath, [
      '--import',
      'tsx',
      CLI,
      'platform-inbox',
      '--port',
      String(port),
      '--secret',
      SECRET,
      '--out',
      out,
      '--state',
      state,
    ]);
    running.push(r);
    await expect.poll(() => r.output(), { timeout: 15_000 }).toContain(`Platform inbox listening on http://127.0.0.1:${port}/`);
    const send = async (seq: number, secret = SECRET) => {
      const body = incidentBody(JSON.stringify(incident(seq)), seq);
      const res = await fetch(`http://127.0.0.1:${port}/incidents`, {
        method: 'POST',
        headers: headersFor(secret, 'gw-cli', body, `evt-${seq}`),
        body,
      });
      return { status: res.status, body: await res.text() };
    };
    expect(await send(1)).toEqual({ status: 200, body: '{"status":"accepted"}' });
    expect(await send(1)).toEqual({ status: 200, body: '{"status":"duplicate"}' });
    expect(await send(4)).toEqual({ status: 200, body: '{"status":"accepted"}' });
    expect((await send(5, 'wrong-secret-0123456789')).status).toBe(401);
    const { code } = await r.interrupt('SIGINT');
    expect(code).toBe(0);
    const lines = r.output().trimEnd().split('\n');
    expect(lines).toContain(
      '2026-11-22T10:00:00.123Z RED raised plant-9/B-07 drum-level-low-low: Drum water level extremely low: -212 mm (drum_level = -212 mm) [seq 1, gw-cli]',
    );
    expect(lines).toContain('GAP: seq 2..3 missing from gw-cli');
    expect(lines.some((l) => l.startsWith('REFUSED 401: X-Gateway-Signature does not match'))).toBe(true);
    expect(lines.slice(-4)).toEqual([
      '2 incidents accepted, 1 duplicates, 1 refused, 1 seq gaps',
      '0 incidents ended, 1 left open',
      'Left open, oldest first:',
      '  since 2026-11-22T10:00:00.123Z RED plant-9/B-07 drum-level-low-low incident inc-1, last raised (seq 4, gw-cli)',
    ]);
    expect(
      readFileSync(out, 'utf8')
        .trimEnd()
        .split('\n')
        .map((l) => (JSON.parse(l) as { seq: number }).seq),
    ).toEqual([1, 4]);
    // The ids are private to the user who runs it, like the incidents file.
    expect(statSync(state).mode & 0o077).toBe(0);
    expect(statSync(out).mode & 0o077).toBe(0);

    // Restarted without --out, on another port (fetch would reuse the old connection): what it took before is a duplicate.
    const port2 = await freePort();
    const again = startCommand(process.execPath, [
      '--import',
      'tsx',
      CLI,
      'platform-inbox',
      '--port',
      String(port2),
      '--secret',
      SECRET,
      '--state',
      state,
    ]);
    running.push(again);
    await expect.poll(() => again.output(), { timeout: 15_000 }).toContain(`Platform inbox listening on http://127.0.0.1:${port2}/`);
    const resend = async (seq: number) => {
      const body = incidentBody(JSON.stringify(incident(seq)), seq);
      const res = await fetch(`http://127.0.0.1:${port2}/incidents`, {
        method: 'POST',
        headers: headersFor(SECRET, 'gw-cli', body, `evt-${seq}`),
        body,
      });
      return res.text();
    };
    expect(await resend(4)).toBe('{"status":"duplicate"}');
    expect(await resend(1)).toBe('{"status":"duplicate"}');
    expect(await resend(5)).toBe('{"status":"accepted"}');
    expect((await again.interrupt('SIGINT')).code).toBe(0);
    expect(again.output()).toContain('1 incidents accepted, 2 duplicates, 0 refused');
  });

  it('outbox list shows pending events and dead letters with the answer; outbox retry puts them back', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-outbox-cli-'));
    const file = writeTestSite({ dataDir });
    const outbox = new Outbox(join(dataDir, STORE_FILE));
    outbox.add([incident(1), incident(2)]);
    outbox.dead(1, '400 {"error":"unknown equipment"}');
    outbox.close();
    const list = gatewaySync(['outbox', 'list', '-c', file]);
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n')).toEqual([
      '1 pending, 1 dead letters, last seq 2',
      'pending seq 2 2026-11-22T10:00:00.123Z red raised B-07/drum-level-low-low: Drum water level extremely low: -212 mm',
      'DEAD    seq 1 2026-11-22T10:00:00.123Z red raised B-07/drum-level-low-low: Drum water level extremely low: -212 mm | answer: 400 {"error":"unknown equipment"}',
      '',
    ]);
    const retry = gatewaySync(['outbox', 'retry', '-c', file, '--seq', '1']);
    expect(retry.code).toBe(0);
    expect(retry.stdout).toContain('1 dead letter back in the queue');
    expect(gatewaySync(['outbox', 'list', '-c', file]).stdout.split('\n')[0]).toBe('2 pending, 0 dead letters, last seq 2');
    expect(gatewaySync(['outbox', 'retry', '-c', file, '--seq', '9']).code).toBe(1);
  });
});
