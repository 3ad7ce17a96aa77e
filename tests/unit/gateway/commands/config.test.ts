// `gateway config migrate --write` on a power cut: the backup is on disk (its data and its name)
// before the site file is replaced, so that the way back is never an empty FILE.bak-v1 beside a
// migrated file; and the replacement itself is on disk once the command says it is done.
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

const calls: string[] = [];
/** Run when the new file is written: another editor saving the site file meanwhile. */
const meanwhile: { edit?: () => void } = {};
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof fs>();
  const paths = new Map<number, string>();
  const name = (p: unknown) => String(p).replace(/.*\//, '');
  return {
    ...real,
    openSync: (path: fs.PathLike, flags: fs.OpenMode = 'r', mode?: fs.Mode) => {
      const fd = real.openSync(path, flags, mode);
      paths.set(fd, name(path));
      return fd;
    },
    writeSync: (fd: number, ...rest: unknown[]) => {
      calls.push(`write ${paths.get(fd)}`);
      return (real.writeSync as (...a: unknown[]) => number)(fd, ...rest);
    },
    fsyncSync: (fd: number) => {
      calls.push(`fsync ${paths.get(fd)}`);
      real.fsyncSync(fd);
    },
    writeFileSync: (path: fs.PathOrFileDescriptor, data: string, o?: fs.WriteFileOptions) => {
      calls.push(`writeFile ${name(path)}${typeof o === 'object' && o?.flush ? ' flushed' : ''}`);
      real.writeFileSync(path, data, o);
      meanwhile.edit?.();
    },
    renameSync: (from: fs.PathLike, to: fs.PathLike) => {
      calls.push(`rename ${name(from)} ${name(to)}`);
      real.renameSync(from, to);
    },
  };
});

afterEach(() => {
  calls.length = 0;
  meanwhile.edit = undefined;
  vi.restoreAllMocks();
});

const V1 = `version: 1
gateway: { id: gw-1, site: plant-1 }
platform:
  url: http://127.0.0.1:8787/incidents
  secret: a-secret-of-some-length
  retry: { initial_delay: 200ms }
connections: [{ id: sim, type: sim }]
equipment:
  - { id: B-1, category: boiler, connection: sim, model: steam-boiler, points: [{ name: drum_level }] }
`;

describe('gateway config migrate --write', () => {
  it('puts the backup on disk, then the new file, then the rename', async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'gw-migrate-'));
    const file = join(dir, 'site.yaml');
    fs.writeFileSync(file, V1);
    calls.length = 0;
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const { configMigrateCommand } = await import('../../../../gateway/commands/config.js');
    expect(await configMigrateCommand(file, { write: true })).toBe(0);
    const temporary = `site.yaml.migrating-${process.pid}`;
    const dirName = dir.replace(/.*\//, '');
    expect(calls).toEqual([
      'write site.yaml.bak-v1',
      'fsync site.yaml.bak-v1',
      // The backup's name in its folder.
      `fsync ${dirName}`,
      `writeFile ${temporary} flushed`,
      `rename ${temporary} site.yaml`,
      // The new file's name in its folder.
      `fsync ${dirName}`,
    ]);
    expect(fs.readFileSync(`${file}.bak-v1`, 'utf8')).toBe(V1);
    expect(fs.readFileSync(file, 'utf8')).toContain('version: 2');
  });

  it('does not replace a file someone saved while it was migrated: their change is kept, nothing is written', async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'gw-migrate-'));
    const file = join(dir, 'site.yaml');
    fs.writeFileSync(file, V1);
    const edited = V1.replace('drum_level }]', 'drum_level }, { name: flame }]');
    meanwhile.edit = () => {
      if (fs.readFileSync(file, 'utf8') === V1) fs.writeFileSync(file, edited);
    };
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const { configMigrateCommand } = await import('../../../../gateway/commands/config.js');
    expect(await configMigrateCommand(file, { write: true })).toBe(1);
    expect(stderr.mock.calls.map((c) => String(c[0]))).toEqual([
      `${file} changed while it was being migrated (saved by someone else?): nothing was written; migrate again\n`,
    ]);
    expect(fs.readFileSync(file, 'utf8')).toBe(edited);
    expect(fs.readdirSync(dir)).toEqual(['site.yaml']);
  });
});
