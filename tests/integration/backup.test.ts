// The online backup docs/operations.md gives (`sqlite3 gateway.db ".backup FILE"`, Debian's sqlite3),
// taken while the gateway commits alarm events: each copy opens as a store (integrity check and
// schema version), and holds every event the gateway had committed before the backup began.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { GatewayStore, STORE_FILE } from '../../gateway/store.js';
import { ensurePackages, freePort } from '../helpers/processes.js';
import { testSite } from '../helpers/site.js';

// The simulated boiler's pressure wanders around 1.25 MPa: these rules raise and clear every few polls.
const RULES = [
  'rules:',
  ...[1.2, 1.21, 1.22, 1.23, 1.24, 1.25, 1.26, 1.27].map(
    (t, k) => `  - { id: p${k}, equipment: B-07, when: steam_pressure > ${t}, level: yellow, message: "Pressure above ${t}" }`,
  ),
];

const alarmEntries = (store: GatewayStore) =>
  (store.db.prepare("SELECT count(*) AS n FROM journal WHERE kind = 'alarm'").get() as { n: number }).n;

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('online backup of the store', () => {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    while (cleanup.length) await Promise.resolve(cleanup.pop()!()).catch(() => undefined);
  });

  it('sqlite3 .backup while alarm events are committed gives a store that opens with every event committed before it', async () => {
    ensurePackages(['/usr/bin/sqlite3']);
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-backup-'));
    const out = mkdtempSync(join(tmpdir(), 'gw-backup-out-'));
    cleanup.push(
      () => rmSync(dataDir, { recursive: true, force: true }),
      () => rmSync(out, { recursive: true, force: true }),
    );
    const gw: Gateway = createGateway(
      testSite({ port: await freePort(), dataDir, pollInterval: '100ms', extra: RULES }),
      pino({ level: 'silent' }),
    );
    cleanup.push(() => gw.stop());
    await gw.start();
    await until('alarm events committed', () => alarmEntries(gw.store()!) >= 3);

    for (let k = 0; k < 3; k++) {
      const before = alarmEntries(gw.store()!);
      const copy = join(out, `gateway-${k}.db`);
      // The command of docs/operations.md, "Backups"; the gateway goes on committing meanwhile.
      const r = spawnSync('sqlite3', [join(dataDir, STORE_FILE), `.backup '${copy}'`], { encoding: 'utf8', timeout: 20_000 });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const restored = new GatewayStore(copy);
      try {
        expect(restored.db.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(alarmEntries(restored)).toBeGreaterThanOrEqual(before);
      } finally {
        restored.close();
      }
      await until('more events', () => alarmEntries(gw.store()!) > before);
    }
    // The gateway was not disturbed: it still commits.
    expect(gw.alarms.storeStats().writable).toBe(true);
  });
});
