// `gateway config migrate` as a user runs it: printed by default, in place with --write after a
// backup that is never overwritten, nothing written when the result would not check, a downgrade
// refused with one line.
import { chmodSync, chownSync, existsSync, lstatSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gatewayAsync } from '../helpers/cli.js';

const V1 = [
  '# Bench site.',
  'version: 1',
  'gateway: { id: gw-1, site: plant-1 }',
  'platform:',
  '  url: http://127.0.0.1:8787/incidents',
  '  secret: a-secret-of-some-length',
  '  retry: { initial_delay: 200ms }  # quick',
  'connections: [{ id: sim, type: sim }]',
  'equipment:',
  '  - { id: B-1, category: boiler, connection: sim, model: steam-boiler, points: [{ name: drum_level }] }',
  '',
].join('\n');

function siteFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gw-migrate-')), 'site.yaml');
  writeFileSync(file, text);
  return file;
}

describe('gateway config migrate', () => {
  it('prints the migrated file, then writes it in place keeping FILE.bak-v1, and never overwrites that backup', async () => {
    const file = siteFile(V1);
    const printed = await gatewayAsync(['config', 'migrate', '-c', file]);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toBe(V1.replace('version: 1', 'version: 2').replace('  retry:', '  reconnect:'));
    expect(printed.stderr).toBe(`${file}: site-file version 1 -> 2\n  platform.retry: renamed platform.reconnect\n  version: 1 -> 2\n`);
    expect(readFileSync(file, 'utf8')).toBe(V1);

    const written = await gatewayAsync(['config', 'migrate', file, '--write']);
    expect(written.code, written.stderr).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(printed.stdout);
    expect(readFileSync(`${file}.bak-v1`, 'utf8')).toBe(V1);
    expect(written.stdout).toContain(`The version 1 file is kept as ${file}.bak-v1`);

    // A version 1 file put back over it: the first backup stays, nothing is written.
    writeFileSync(file, V1.replace('# Bench site.', '# Restored.'));
    const again = await gatewayAsync(['config', 'migrate', file, '--write']);
    expect(again).toMatchObject({
      code: 1,
      stderr: `${file}.bak-v1 exists already: move it away, then migrate again (nothing was written)\n`,
    });
    expect(readFileSync(`${file}.bak-v1`, 'utf8')).toBe(V1);
    expect(readFileSync(file, 'utf8')).toContain('# Restored.');
  }, 30_000);

  it('refuses a downgrade, a file that would not check and one over the size limit, writing nothing', async () => {
    const current = siteFile(V1.replace('version: 1', 'version: 2').replace('  retry:', '  reconnect:'));
    const down = await gatewayAsync(['config', 'migrate', current, '--to', '1', '--write']);
    expect(down).toMatchObject({
      code: 2,
      stderr: `${current}: version: the file is at version 2; migrating down to 1 is not possible (a step is never undone) (line 2)\n`,
    });

    const broken = siteFile(V1.replace('site: plant-1', 'site: plant/1'));
    const r = await gatewayAsync(['config', 'migrate', broken, '--write']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(new RegExp(`^${broken.replace(/[.]/g, '\\.')}: gateway\\.site: expected an id`));
    expect(r.stderr).toContain('not migrated');
    expect(readFileSync(broken, 'utf8')).toContain('version: 1');
    expect(existsSync(`${broken}.bak-v1`)).toBe(false);

    // Read up to the site-file limit, never whole.
    expect(await gatewayAsync(['config', 'migrate', '-c', '/dev/zero'])).toMatchObject({
      code: 2,
      stderr: '/dev/zero: (yaml): the file is over 4194304 bytes, the limit\n',
    });
  }, 30_000);

  it('refuses a file that is not UTF-8 text: its bytes would be replaced, in the file and in the backup', async () => {
    // A comment saved as Latin-1 by an old editor: "Kesselhaus Süd".
    const bytes = Buffer.concat([Buffer.from('# Kesselhaus S'), Buffer.from([0xfc]), Buffer.from('d\n'), Buffer.from(V1)]);
    const file = siteFile('');
    writeFileSync(file, bytes);
    const r = await gatewayAsync(['config', 'migrate', file, '--write']);
    expect(r).toMatchObject({
      code: 2,
      stderr: `${file}: (yaml): the file is not UTF-8 text (line 1); save it as UTF-8 and migrate again (nothing was written)\n`,
    });
    expect(readFileSync(file).equals(bytes)).toBe(true);
    expect(existsSync(`${file}.bak-v1`)).toBe(false);
  }, 30_000);

  it('keeps a symbolic link a link and the file its mode (a 0640 file the service reads by group)', async () => {
    const real = siteFile(V1);
    chmodSync(real, 0o640);
    const link = join(dirname(real), 'link.yaml');
    symlinkSync(real, link);
    const r = await gatewayAsync(['config', 'migrate', link, '--write']);
    expect(r.code, r.stderr).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(real, 'utf8')).toContain('version: 2');
    expect(statSync(real).mode & 0o777).toBe(0o640);
  }, 30_000);

  // docs/operations.md installs the site file root:se-gateway 0640 and migrates it as root: a new
  // file of root's group would be unreadable to the service, which then refuses to start (exit 2).
  it.skipIf(process.getuid?.() !== 0)(
    'keeps the file its owner and group when root migrates it',
    async () => {
      const file = siteFile(V1);
      chmodSync(file, 0o640);
      chownSync(file, 4321, 4242);
      const r = await gatewayAsync(['config', 'migrate', file, '--write']);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(file, 'utf8')).toContain('version: 2');
      expect([statSync(file).uid, statSync(file).gid, statSync(file).mode & 0o777]).toEqual([4321, 4242, 0o640]);
      // The backup too: it is the way back, and owner-only (0600) is enough for it.
      expect([statSync(`${file}.bak-v1`).uid, statSync(`${file}.bak-v1`).gid]).toEqual([4321, 4242]);
    },
    30_000,
  );
});
