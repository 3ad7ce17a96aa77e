// The report job in its worker thread, where it fails: each failure rejects with one message that
// says what went wrong, with the code the worker's error had; the gateway's process is not touched.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runReportJobInWorker } from '../../../../gateway/report/job.js';
import { newStore, sh, site } from './fixture.js';

describe('runReportJobInWorker', () => {
  it("rejects with the worker's error and its code: a store file that is not there", async () => {
    const { store, dataDir } = newStore();
    store.close();
    const job = {
      storeFile: join(dataDir, 'elsewhere.db'),
      dataDir,
      config: site(),
      date: '2026-03-08',
      now: sh('06:00:00', '2026-03-09'),
    };
    const err = (await runReportJobInWorker(job).catch((e: unknown) => e)) as Error & { code?: string };
    expect(err.message).toMatch(/elsewhere\.db: there is no store to report from/);
    expect(err.code).toBe('GW_ERR_STORE');
  }, 60_000);

  it('rejects, without throwing from an event handler, a job that cannot be handed to the worker', async () => {
    const { store, dataDir } = newStore();
    const config = { ...site(), notData: () => 1 } as unknown as ReturnType<typeof site>;
    const job = { storeFile: store.file, dataDir, config, date: '2026-03-08', now: sh('06:00:00', '2026-03-09') };
    await expect(runReportJobInWorker(job)).rejects.toThrow(/^the report job cannot be handed to its worker \(.*could not be cloned/);
    store.close();
  }, 60_000);
});
