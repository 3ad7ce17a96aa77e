// The online backup docs/operations.md gives (`sqlite3 gateway.db "VACUUM INTO 'FILE'"`, Debian's
// sqlite3), taken while the gateway commits alarm events and another connection writes often: each copy opens as a store (integrity check and
// schema version), and holds every event the gateway had committed before the backup began.
import { spawn } from 'node:child_process';
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

/** sqlite3 FILE COMMAND, in a child the gateway keeps running beside; slowed so that commits fall within it. */
function sqlite3(file: string, command: string): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    // Half a second before the command: the copy is taken while the gateway goes on (a real store of
    // months takes seconds to copy), and its commits land during it.
    const child = spawn('sh', ['-c', 'sleep 0.5; exec sqlite3 -cmd ".timeout 5000" "$0" "$1"', file, command], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stderr });
    });
  });
}

describe('online backup of the store', () => {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    while (cleanup.length) await Promise.resolve(cleanup.pop()!()).catch(() => undefined);
  });

  it('sqlite3 VACUUM INTO while the store is written gives a store that opens with every event committed before it', async () => {
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
    // A store of some size (50 MiB: months of journal) written often: besides the gateway's own commits,
    // another connection commits every 20 ms. SQLite's .backup starts over whenever another connection
    // writes between its steps, so on a store like this it never ends (measured: not within 40 s for
    // 200 MiB and a commit every 100 ms); VACUUM INTO reads one snapshot and ends.
    const Database = (await import('better-sqlite3')).default;
    const other = new Database(join(dataDir, STORE_FILE));
    cleanup.push(() => other.close());
    other.exec('CREATE TABLE pad (x BLOB)');
    const pad = other.prepare('INSERT INTO pad VALUES (randomblob(?))');
    other.transaction(() => {
      for (let i = 0; i < 800; i++) pad.run(65536);
    })();
    const writer = setInterval(() => pad.run(16), 20);
    cleanup.push(() => clearInterval(writer));

    let concurrent = 0;
    for (let k = 0; k < 3; k++) {
      const before = alarmEntries(gw.store()!);
      const copy = join(out, `gateway-${k}.db`);
      // The command of docs/operations.md, "Backups"; the gateway goes on committing meanwhile.
      // Not spawnSync: that would stop this process, the gateway in it, for the backup's whole length.
      const committedBefore = alarmEntries(gw.store()!);
      const r = await sqlite3(join(dataDir, STORE_FILE), `VACUUM INTO '${copy}'`);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      concurrent += alarmEntries(gw.store()!) - committedBefore;
      const restored = new GatewayStore(copy);
      try {
        expect(restored.db.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(alarmEntries(restored)).toBeGreaterThanOrEqual(before);
      } finally {
        restored.close();
      }
      await until('more events', () => alarmEntries(gw.store()!) > before);
    }
    // The copies were taken while the gateway committed, not while it waited.
    expect(concurrent).toBeGreaterThan(0);
    // The gateway was not disturbed: it still commits.
    expect(gw.alarms.storeStats().writable).toBe(true);
  });
});
