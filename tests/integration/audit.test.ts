// The audit journal as a site uses it: the running gateway (HTTP API over a real socket) and
// `gateway certs trust` in other processes append at the same time into one chain that
// `gateway audit verify` accepts; a gateway whose journal ends in a torn line starts and records the repair.
import { X509Certificate } from 'node:crypto';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditJournal, type AuditEntry } from '../../gateway/audit.js';
import { createGateway } from '../../gateway/runtime.js';
import { gatewayAsync } from '../helpers/cli.js';
import { freePort, makeTestPki } from '../helpers/processes.js';
import { httpSiteLines, testSite, writeTestSite, type TestSiteOptions } from '../helpers/site.js';

const silent = pino({ level: 'silent' });
const OPERATOR = 'operator-token-0123456789abcdef';

describe('audit journal of a running gateway', () => {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    while (cleanup.length) await Promise.resolve(cleanup.pop()!()).catch(() => undefined);
  });

  /** The gateway in this process, and the same site file on disk for the CLI. */
  const start = async (dataDir: string) => {
    const port = await freePort();
    const o: TestSiteOptions = {
      port: await freePort(),
      dataDir,
      extra: httpSiteLines(port, { operator: OPERATOR }),
    };
    const siteFile = writeTestSite(o);
    const gw = createGateway(testSite(o), silent);
    cleanup.push(() => gw.stop());
    await gw.start();
    return { gw, siteFile, url: `http://127.0.0.1:${port}` };
  };
  const entriesOf = (dataDir: string) =>
    readFileSync(join(dataDir, 'audit.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditEntry);

  it('takes entries from the gateway and from `gateway certs trust` at once into one chain that verifies', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-audit-int-'));
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
    // A rejected OPC UA server certificate for the operator to trust.
    const pkiDir = mkdtempSync(join(tmpdir(), 'gw-audit-pki-'));
    cleanup.push(() => rmSync(pkiDir, { recursive: true, force: true }));
    const pki = makeTestPki(pkiDir);
    mkdirSync(join(dataDir, 'pki', 'rejected'), { recursive: true });
    copyFileSync(pki.serverCert, join(dataDir, 'pki', 'rejected', 'server.pem'));
    const thumbprint = new X509Certificate(readFileSync(pki.serverCert)).fingerprint.replaceAll(':', '').toLowerCase();

    const { gw, siteFile, url } = await start(dataDir);
    await expect.poll(() => gw.alarms.active().length, { timeout: 10_000 }).toBe(1);

    // Three CLI processes run while the API takes acknowledgements over its socket, until all three
    // have ended (and at least 40), so that their appends fall between the gateway's.
    const cli = [
      gatewayAsync(['certs', 'trust', thumbprint, '-c', siteFile]),
      gatewayAsync(['certs', 'trust', 'ffffff00', '-c', siteFile]),
      gatewayAsync(['certs', 'trust', 'eeeeee00', '-c', siteFile]),
    ];
    let pending = cli.length;
    for (const c of cli) void c.then(() => pending--);
    const statuses: number[] = [];
    for (let k = 0; k < 40 || pending > 0; k++) {
      const r = await fetch(`${url}/api/alarms/B-07/pressure-present/acknowledge`, {
        method: 'POST',
        headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' },
        body: JSON.stringify({ comment: `round ${k}` }),
      });
      statuses.push(r.status);
    }
    const results = await Promise.all(cli);
    expect(results.map((r) => r.code)).toEqual([0, 1, 1]);
    expect(statuses.every((s) => s < 500)).toBe(true);

    const entries = entriesOf(dataDir);
    expect(entries.filter((e) => e.action === 'certificate trust').map((e) => e.outcome.split(':')[0])).toEqual(
      expect.arrayContaining(['done', 'refused', 'refused']),
    );
    expect(entries.filter((e) => e.action === 'acknowledge')).toHaveLength(statuses.length);
    // The CLI's entries sit between the gateway's, not after them all.
    expect(entries.findIndex((e) => e.action === 'certificate trust')).toBeLessThan(entries.length - 3);
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, k) => k + 1));

    const verify = await gatewayAsync(['audit', 'verify', '-c', siteFile]);
    expect(verify.stderr).toBe('');
    expect(verify.stdout).toContain(`${entries.length} entries, the chain is intact`);
    expect(verify.code).toBe(0);
  }, 120_000);

  it('starts on a journal that ends in a torn line, cuts it off and records the repair', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-audit-int-'));
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
    // A journal of an earlier run, whose last write was cut short by a power loss.
    const before = new AuditJournal(join(dataDir, 'audit.jsonl'));
    before.append({ who: 'operator-user', action: 'acknowledge', target: 'B-07/pressure-present', outcome: 'done' });
    appendFileSync(join(dataDir, 'audit.jsonl'), '{"seq":2,"at":"2026-03-01T08:00:00.000Z","who":"oper');

    const { siteFile, url } = await start(dataDir);
    expect((await fetch(`${url}/health`)).status).toBe(200);
    const entries = entriesOf(dataDir);
    expect(entries.map((e) => [e.seq, e.action, e.outcome])).toEqual([
      [1, 'acknowledge', 'done'],
      [2, 'journal repaired', 'journal repaired: 52 bytes of a torn last line removed'],
    ]);
    expect(readFileSync(join(dataDir, 'audit.torn'), 'utf8')).toContain('"who":"oper');

    const verify = await gatewayAsync(['audit', 'verify', '-c', siteFile]);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/note: audit.jsonl line 2: journal repaired: 52 bytes/);
    expect(verify.stdout).toContain('2 entries, the chain is intact');
  }, 60_000);
});
