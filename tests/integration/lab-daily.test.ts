// The lab daily summary through a real gateway: a store with results captured yesterday (the gateway
// was running then), a gateway started after lab.daily_summary.at: the missed summary is queued at
// start and reaches the platform inbox over HTTP, signed, once, and passes the receiver's checks; a
// restart does not send it again.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSite } from '../../config/load.js';
import { LAST_SENT_KEY } from '../../gateway/lab/daily.js';
import { createPlatformInbox } from '../../gateway/platform/inbox.js';
import { resultBodyOf } from '../../gateway/platform/contract.js';
import { Outbox } from '../../gateway/platform/outbox.js';
import { WATCHING_SINCE_KEY } from '../../gateway/report/service.js';
import { addDays, localDate } from '../../gateway/report/time.js';
import { createGateway } from '../../gateway/runtime.js';
import { GatewayStore, STORE_FILE } from '../../gateway/store.js';
import { freePort } from '../helpers/processes.js';

const silent = pino({ level: 'silent' });
const SECRET = 'lab-secret-0123456789';
const DAY = 86_400_000;

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the lab daily summary at the platform', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  it('a gateway started after lab.daily_summary.at sends the summary it missed, once, also across a restart', async () => {
    const inboxPort = await freePort();
    const inbox = createPlatformInbox({ port: inboxPort, secret: SECRET, print: () => {} });
    await inbox.start();
    cleanup.push(() => inbox.stop());
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-lab-daily-int-'));
    const yesterday = addDays(localDate(Date.now(), 'UTC'), -1);
    const noon = Date.parse(`${yesterday}T12:00:00Z`);
    // Yesterday, as a gateway that ran then left its store: two results captured (not yet uploaded).
    const before = new GatewayStore(join(dataDir, STORE_FILE));
    const outbox = new Outbox(before);
    const result = (n: number) => ({
      resultId: `LA-2:${n}`,
      instrument: 'LA-2',
      sampleId: `S${n}`,
      analyte: 'GLU',
      value: 5.1,
      flags: [],
      status: 'final',
      resultAt: new Date(noon).toISOString(),
    });
    outbox.addResults([result(1), result(2)], (r) => resultBodyOf(r, undefined, 'gw-test', 'test-site'), noon);
    before.saveCounter(WATCHING_SINCE_KEY, noon - DAY);
    outbox.close();
    before.close();

    const site = parseSite(
      [
        'version: 1',
        `gateway: { id: gw-test, site: test-site, data_dir: ${dataDir}, timezone: UTC }`,
        `mqtt: { port: ${await freePort()} }`,
        'platform:',
        `  url: http://127.0.0.1:${inboxPort}/`,
        `  secret: ${SECRET}`,
        // Due from midnight on: whenever the test runs, yesterday's summary is due at start.
        "lab: { daily_summary: { at: '00:00' } }",
        `connections: [{ id: astm-1, type: astm-tcp, port: ${await freePort()} }]`,
        'equipment: [{ id: LA-2, name: Chemistry analyzer, category: lab_analyzer, connection: astm-1 }]',
        '',
      ].join('\n'),
      { env: {} },
    );
    const gw = createGateway(site, silent);
    cleanup.push(() => gw.stop());
    await gw.start();
    await until('the summary at the platform', () => inbox.labDailies.length > 0);
    await until('the results at the platform', () => inbox.results.length === 2);
    const [body] = inbox.labDailies;
    expect(body).toMatchObject({
      schema: 'gw.lab-daily.v1',
      eventId: `lab-daily:test-site:LA-2:${yesterday}`,
      gatewayId: 'gw-test',
      instrument: { id: 'LA-2', category: 'lab_analyzer', name: 'Chemistry analyzer' },
      date: yesterday,
      results: { captured: 2 },
      samples: 2,
    });
    // Made while the results were on their way: each is uploaded or pending, none lost.
    expect(body!.results.uploaded + body!.results.pending).toBe(2);
    await gw.stop();

    // After a restart: the date is recorded as sent, and nothing else is queued for the platform.
    const again = createGateway(site, silent);
    cleanup.push(() => again.stop());
    await again.start();
    await again.stop();
    const store = new GatewayStore(join(dataDir, STORE_FILE));
    try {
      expect(store.counter(LAST_SENT_KEY)).toBe(yesterday);
      expect(store.db.prepare('SELECT count(*) AS n FROM event').get()).toEqual({ n: 0 });
    } finally {
      store.close();
    }
    expect(inbox.labDailies).toHaveLength(1);
    expect(inbox.stats()).toMatchObject({ duplicates: 0, refused: 0 });
  }, 60_000);
});
