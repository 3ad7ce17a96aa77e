// `gateway lab daily` as a user runs it, against a store a gateway holds open: one summary per lab
// instrument, as lines or as the JSON bodies the platform receives; the store is read, never changed;
// a store of an earlier gateway (no journal, no held results) is summarised without being migrated;
// a wrong date or a missing store is one line, never a stack.
import Database from 'better-sqlite3';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../gateway/commands/program.js';
import { resultBodyOf } from '../../gateway/platform/contract.js';
import { Outbox } from '../../gateway/platform/outbox.js';
import { GatewayStore, SCHEMA_VERSION, STORE_FILE } from '../../gateway/store.js';
import { gatewayAsync } from '../helpers/cli.js';

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { out: (t) => (stdout += t), err: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

/** Local time in Shanghai on 2026-12-02. */
const sh = (hhmm: string) => Date.parse(`2026-12-02T${hhmm}:00+08:00`);

function siteFile(dataDir: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gw-lab-daily-site-')), 'site.yaml');
  writeFileSync(
    file,
    [
      'version: 2',
      `gateway: { id: gw-test, site: test-site, data_dir: ${dataDir}, timezone: Asia/Shanghai }`,
      'platform: { url: "http://127.0.0.1:9/", secret: a-secret-of-at-least-16-chars }',
      'connections: [{ id: astm-1, type: astm-tcp, port: 5002 }]',
      'equipment: [{ id: LA-2, name: Chemistry analyzer, category: lab_analyzer, connection: astm-1 }]',
      '',
    ].join('\n'),
  );
  return file;
}

/** Three results (08:00, 08:00, 12:00; the platform took the first), a file rejected, a QC run rejected. */
function fill(store: GatewayStore): void {
  const outbox = new Outbox(store);
  const result = (n: number, sampleId: string) => ({
    resultId: `LA-2:${n}`,
    instrument: 'LA-2',
    sampleId,
    analyte: 'GLU',
    value: 5.1,
    flags: [],
    status: 'final',
    resultAt: '2026-12-02T00:00:00Z',
  });
  const bodyOf = (r: ReturnType<typeof result>) => resultBodyOf(r, undefined, 'gw-test', 'test-site');
  outbox.addResults([result(1, 'S1'), result(2, 'S2')], bodyOf, sh('08:00'));
  outbox.addResults([result(3, 'QC2-001')], bodyOf, sh('12:00'));
  outbox.delivered(outbox.pending(10).find((r) => r.eventId === 'LA-2:1')!.seq);
  store.appendJournal([
    {
      ts: sh('09:00'),
      kind: 'lab',
      body: { kind: 'file-rejected', instrument: 'LA-2', file: 'run-3.csv', reason: 'line 3: no value', ts: 0 },
    },
    {
      ts: sh('12:00'),
      kind: 'qc',
      body: {
        instrument: 'LA-2',
        analyte: 'GLU',
        level: '2',
        value: 7.9,
        z: 3.2,
        status: 'rejected',
        rules: ['1-3s'],
        sampleId: 'QC2-001',
      },
    },
  ]);
  outbox.close();
}

describe('gateway lab daily', () => {
  let store: GatewayStore;
  let dataDir: string;
  let site: string;

  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'gw-lab-daily-e2e-'));
    site = siteFile(dataDir);
    // Held open for the whole test, as a running gateway holds it.
    store = new GatewayStore(join(dataDir, STORE_FILE));
    fill(store);
  });
  afterAll(() => store?.close());

  it("prints each instrument's summary, or the JSON bodies, reading the store only", async () => {
    const file = join(dataDir, STORE_FILE);
    const before = statSync(file).mtimeMs;
    // As a user runs it, in a process of its own; the JSON in this one.
    const lines = await gatewayAsync(['lab', 'daily', '-c', site, '--date', '2026-12-02']);
    const json = await cli(['lab', 'daily', site, '--date', '2026-12-02', '--json']);
    expect(lines, lines.stderr).toMatchObject({ code: 0, stderr: '' });
    expect(lines.stdout).toBe(
      [
        'test-site/LA-2 2026-12-02: 3 results (1 uploaded, 2 pending), 1 file rejected, QC 1 run / 1 rejection, 1 gap',
        '  results from 08:00:00 to 12:00:00 (Asia/Shanghai), 3 samples',
        '  gap from 08:00:00 to 12:00:00: 240 min without a result',
        '  file "run-3.csv" rejected at 09:00:00: line 3: no value',
        '  QC GLU: 1 run, 0 warnings, 1 rejection',
        '',
      ].join('\n'),
    );
    expect(json, json.stderr).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(json.stdout)).toEqual([
      expect.objectContaining({
        schema: 'gw.lab-daily.v1',
        eventId: 'lab-daily:test-site:LA-2:2026-12-02',
        results: { captured: 3, uploaded: 1, pending: 2, held: 0, refused: 0 },
      }),
    ]);
    // Read, not written.
    expect(statSync(file).mtimeMs).toBe(before);
  }, 60_000);

  it('summarises the store of an earlier gateway without migrating it, and says what it cannot count', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-lab-daily-v1-'));
    const old = new GatewayStore(join(dir, STORE_FILE));
    fill(old);
    old.db.exec(
      'DROP INDEX result_held; DROP INDEX result_instrument_captured; ALTER TABLE result DROP COLUMN held; DROP TABLE journal; DROP TABLE qc; PRAGMA user_version = 1',
    );
    old.close();
    const r = await cli(['lab', 'daily', '-c', siteFile(dir), '--date', '2026-12-02', '--json']);
    expect(r, r.stderr).toMatchObject({ code: 0, stderr: '' });
    const [body] = JSON.parse(r.stdout) as Array<{ results: unknown; notes: string[] }>;
    expect(body!.results).toEqual({ captured: 3, uploaded: 1, pending: 2, held: 0, refused: 0 });
    expect(body!.notes).toEqual([expect.stringMatching(/^The store has no journal/)]);
    const after = new Database(join(dir, STORE_FILE), { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(1);
    after.close();
  });

  it('a wrong date or a missing store is one line and no stack', async () => {
    const badDate = await cli(['lab', 'daily', '-c', site, '--date', '2026-02-30']);
    const future = await cli(['lab', 'daily', '-c', site, '--date', '2999-01-01']);
    const missing = await cli(['lab', 'daily', '-c', siteFile(mkdtempSync(join(tmpdir(), 'gw-lab-daily-empty-')))]);
    expect(badDate.code).toBe(2);
    expect(badDate.stderr).toBe(
      'gateway lab daily: --date takes a calendar date written YYYY-MM-DD, such as 2026-12-02, not "2026-02-30" (GW_ERR_USAGE)\nSee `gateway lab daily --help` for its options and examples.\n',
    );
    expect(future.code).toBe(2);
    expect(future.stderr).toMatch(
      /^gateway lab daily: --date 2999-01-01 is after today .*: a summary covers a day that has begun \(GW_ERR_USAGE\)\n/,
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^.*gateway\.db: there is no store to report from .* \(GW_ERR_STORE\)\n$/);
    for (const r of [badDate, future, missing]) expect(r.stderr).not.toMatch(/^ {4}at /m);
  });

  it("prints a file's name and reason from outside as one line each, in their order: no line break, escape sequence or bidi override gets through", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-lab-daily-hostile-'));
    const hostile = new GatewayStore(join(dir, STORE_FILE));
    hostile.appendJournal([
      {
        ts: sh('09:00'),
        kind: 'lab',
        body: {
          kind: 'file-rejected',
          instrument: 'LA-2',
          file: 'a\n  note: all fine.csv',
          reason: '\u001b[2Jline 1: \u202e1.5 not 5.1',
          ts: 0,
        },
      },
    ]);
    hostile.close();
    const r = await cli(['lab', 'daily', '-c', siteFile(dir), '--date', '2026-12-02']);
    expect(r, r.stderr).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.split('\n').filter((l) => l.includes('rejected at'))).toEqual([
      '  file "a\\u000a  note: all fine.csv" rejected at 09:00:00: \\u001b[2Jline 1: \\u202e1.5 not 5.1',
    ]);
    expect(r.stdout).not.toMatch(/^ {2}note: all fine/m);
  });

  it('a data folder that does not exist, or a store of a newer gateway, is one line that says so', async () => {
    const noFolder = await cli(['lab', 'daily', '-c', siteFile(join(mkdtempSync(join(tmpdir(), 'gw-lab-daily-gone-')), 'not-there'))]);
    expect(noFolder.code).toBe(1);
    expect(noFolder.stderr).toMatch(/^.*gateway\.db: there is no store to report from .* \(GW_ERR_STORE\)\n$/);
    // A newer gateway's store, whose result table has moved on: refused by its version, not read as if it were this one's.
    const dir = mkdtempSync(join(tmpdir(), 'gw-lab-daily-newer-'));
    const newer = new GatewayStore(join(dir, STORE_FILE));
    newer.db.exec(`ALTER TABLE result RENAME COLUMN captured_at TO captured_ms; PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    newer.close();
    const r = await cli(['lab', 'daily', '-c', siteFile(dir)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `${join(dir, STORE_FILE)}: schema version ${SCHEMA_VERSION + 1} was written by a newer gateway (this one reads up to ${SCHEMA_VERSION}); read it with that newer version (GW_ERR_STORE)\n`,
    );
  });
});
