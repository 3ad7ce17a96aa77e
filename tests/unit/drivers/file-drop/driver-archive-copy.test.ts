// Archiving across file systems onto a disk that fills up half-way through the copy: the half copy
// is removed, the file stays where it is (its results are stored) and is not read again.
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import type * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, expect, it, vi } from 'vitest';
import { createFileDropDriver } from '../../../../drivers/file-drop/driver.js';
import { fileDropConnectionSchema } from '../../../../drivers/file-drop/schema.js';
import type { Driver } from '../../../../drivers/types.js';

// Every rename is across file systems, and every copy writes half the file, then finds the disk full.
vi.mock('node:fs/promises', async (original) => {
  const real = await original<typeof fsp>();
  const fail = (code: string) => Object.assign(new Error(`${code}: simulated`), { code });
  return {
    ...real,
    rename: async () => {
      throw fail('EXDEV');
    },
    copyFile: async (from: string, to: string) => {
      const bytes = await real.readFile(from);
      await real.writeFile(to, bytes.subarray(0, bytes.length >> 1), { flag: 'wx' });
      throw fail('ENOSPC');
    },
  };
});

let driver: Driver | undefined;
afterEach(async () => driver?.stop());

it('a copy to a full archive disk leaves no half file in the archive', async () => {
  const folder = mkdtempSync(join(tmpdir(), 'gw-file-drop-full-'));
  const c = fileDropConnectionSchema.parse({
    ...{ id: 'files', type: 'file-drop', folder, pattern: '*.csv', stable_for: '200ms', poll_interval: '100ms', format: 'csv' },
    mapping: { sample_id: 'id', analyte: 'analyte', value: 'value' },
  });
  let stored = 0;
  const counters = new Map<string, unknown>();
  driver = createFileDropDriver(
    c,
    { id: 'LAB-1', category: 'lab_analyzer', connection: 'files', poll_interval: 1000 },
    {
      log: pino({ level: 'silent' }),
      sink: () => {},
      dataDir: folder,
      results: (results, counter) => {
        stored += results.length;
        if (counter) counters.set(counter.key, counter.state);
      },
      counters: { get: (k) => counters.get(k), save: (k, s) => void counters.set(k, s) },
    },
  );
  await driver.init();
  await driver.start();
  writeFileSync(join(folder, 'a.csv'), 'id,analyte,value\nS-1,GLU,5.2\n');
  const stats = () => driver!.stats!() as Record<'filesTaken' | 'scans', number>;
  const end = Date.now() + 10_000;
  while (stats().filesTaken < 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  expect(stats().filesTaken).toBe(1);
  const scans = stats().scans;
  while (stats().scans < scans + 3 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  expect(stored).toBe(1);
  expect(existsSync(join(folder, 'a.csv'))).toBe(true);
  expect(readdirSync(join(folder, 'archive'))).toEqual([]);
});
