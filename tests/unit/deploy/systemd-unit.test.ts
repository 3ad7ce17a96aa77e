// The systemd unit in deploy/systemd: systemd's own checker finds nothing in it, and it holds what
// docs/operations.md promises (a user of its own, the data folder as StateDirectory, the sandbox,
// the restart policy, the watchdog, reload by SIGHUP) and nothing that breaks the gateway.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../../gateway/commands/common.js';
import { ROOT } from '../../helpers/cli.js';
import { ensurePackages } from '../../helpers/processes.js';

const UNIT = join(ROOT, 'deploy', 'systemd', 'special-equipment-gateway.service');
const SYSUSERS = join(ROOT, 'deploy', 'systemd', 'special-equipment-gateway.sysusers');

/** Sections of keys, each key with every value it is given (systemd allows repeats). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(\w+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv || !current) throw new Error(`${UNIT}:${n + 1}: not a key=value line in a section: ${line}`);
    current.set(kv[1]!, [...(current.get(kv[1]!) ?? []), kv[2]!]);
  }
  return sections;
}

const unit = parseUnit(readFileSync(UNIT, 'utf8'));
const service = unit.get('Service')!;
const one = (key: string) => {
  const v = service.get(key);
  return v?.at(-1);
};

describe('systemd unit', () => {
  it('passes systemd-analyze verify without a word', () => {
    ensurePackages(['/usr/bin/systemd-analyze']);
    const dir = mkdtempSync(join(tmpdir(), 'gw-unit-'));
    try {
      // verify checks that ExecStart's program exists: this machine's node stands in for /usr/bin/node.
      const text = readFileSync(UNIT, 'utf8').replace('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `);
      const copy = join(dir, 'special-equipment-gateway.service');
      writeFileSync(copy, text);
      const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_LEVEL: 'notice' } });
      // It exits 0 on unknown keys and bad values: what it prints is the verdict.
      expect(`${r.stdout}${r.stderr}`).toBe('');
      expect(r.status).toBe(0);
      // The checker does speak up about a mistake (a test that cannot fail proves nothing).
      writeFileSync(copy, text.replace('ProtectSystem=strict', 'ProtectSystem=strickt'));
      const bad = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
      expect(bad.stderr).toMatch(/protect system value/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs node itself on the installed gateway as the main process, notifying systemd', () => {
    const exec = one('ExecStart')!.split(/\s+/);
    expect(exec[0]).toBe('/usr/bin/node');
    expect(exec).toContain('--optimize-for-size');
    const cli = exec.find((a) => a.endsWith('/dist/gateway/cli.js'))!;
    // The package's command (bin) is that file.
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(cli).toBe(`/opt/special-equipment-gateway/${pkg.bin.gateway}`);
    expect(exec.slice(exec.indexOf(cli) + 1)).toEqual(['run', '-c', '/etc/special-equipment-gateway/site.yaml']);
    expect(one('Type')).toBe('notify');
    // The messages come from the gateway's helper process (gateway/systemd.ts).
    expect(one('NotifyAccess')).toBe('all');
    expect(readFileSync(join(ROOT, 'gateway', 'systemd.ts'), 'utf8')).toMatch(/spawn\('perl'/);
    expect(one('WatchdogSec')).toMatch(/^\d+s$/);
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(service.has('KillMode')).toBe(false);
  });

  it('restarts on failure, within a start limit, but not for an invalid site file', () => {
    expect(one('Restart')).toBe('on-failure');
    expect(one('RestartSec')).toMatch(/^\d+s$/);
    expect(one('RestartPreventExitStatus')).toBe(String(EXIT.invalid));
    const u = unit.get('Unit')!;
    expect(u.get('StartLimitIntervalSec')?.[0]).toBeDefined();
    expect(Number(u.get('StartLimitBurst')?.[0])).toBeGreaterThan(1);
  });

  it('runs as its own user, with its data folder as StateDirectory and nothing else writable', () => {
    expect(one('User')).toBe('se-gateway');
    expect(one('User')).not.toBe('root');
    expect(readFileSync(SYSUSERS, 'utf8')).toMatch(/^u se-gateway - .* \/var\/lib\/special-equipment-gateway -$/m);
    expect(one('SupplementaryGroups')).toBe('dialout');
    const state = one('StateDirectory')!;
    expect(one('StateDirectoryMode')).toBe('0700');
    expect(one('WorkingDirectory')).toBe(`/var/lib/${state}`);
    expect(service.get('Environment')).toContain(`GATEWAY_DATA_DIR=/var/lib/${state}`);
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('ProtectHome')).toBe('yes');
    expect(one('PrivateTmp')).toBe('yes');
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(service.has('ReadWritePaths')).toBe(false);
    expect(one('CapabilityBoundingSet')).toBe('');
    expect(one('UMask')).toBe('0077');
  });

  it('keeps what the gateway needs: JIT memory, serial ports, its network', () => {
    // V8 writes machine code at run time.
    expect(service.has('MemoryDenyWriteExecute')).toBe(false);
    // PrivateDevices hides /dev/ttyUSB0 and the like; the device list allows them.
    expect(service.has('PrivateDevices')).toBe(false);
    expect(service.get('DeviceAllow')).toEqual(expect.arrayContaining(['char-ttyS rw', 'char-ttyUSB rw', 'char-ttyACM rw']));
    expect(service.has('PrivateNetwork')).toBe(false);
    expect(one('RestrictAddressFamilies')!.split(' ')).toEqual(expect.arrayContaining(['AF_UNIX', 'AF_INET', 'AF_INET6']));
    expect(one('SystemCallErrorNumber')).toBe('EPERM');
  });

  it('names files that the install steps in docs/operations.md use', () => {
    const ops = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
    expect(ops).toContain('deploy/systemd/special-equipment-gateway.service');
    expect(ops).toContain('deploy/systemd/special-equipment-gateway.sysusers');
    expect(existsSync(SYSUSERS)).toBe(true);
    // The paths and the user of the install steps are the unit's.
    const exec = one('ExecStart')!.split(/\s+/);
    expect(ops).toContain(exec.at(-1)!);
    expect(ops).toContain(`/opt/special-equipment-gateway`);
    expect(ops).toContain(`-g ${one('User')}`);
    expect(ops).toContain(one('WorkingDirectory')!);
    expect(ops).toContain(`WatchdogSec=${one('WatchdogSec')}`);
  });

  it("runs the gateway's other commands in docs/operations.md as the service runs: its user, folder and environment", () => {
    const ops = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
    // A site file's ${VAR} from gateway.env (root's, 0600) is unset under sudo: the command would refuse the file.
    expect(ops).not.toMatch(/sudo -u se-gateway (node|\/usr\/bin\/node|gateway)\b/);
    const gw = /^gw\(\) \{\n([\s\S]*?)\n\}$/m.exec(ops)?.[1];
    expect(gw, 'the gw function').toBeDefined();
    const props = [...gw!.matchAll(/-p (\w+)=(\S+)/g)].map((m) => `${m[1]}=${m[2]}`);
    const env = [...gw!.matchAll(/-E (\S+)/g)].map((m) => m[1]!);
    for (const key of ['User', 'Group', 'StateDirectory', 'StateDirectoryMode', 'WorkingDirectory', 'EnvironmentFile'])
      expect(props, key).toContain(`${key}=${one(key)}`);
    for (const e of service.get('Environment')!) expect(env).toContain(e);
    expect(gw).toContain(
      one('ExecStart')!
        .split(/\s+/)
        .find((a) => a.endsWith('/cli.js')),
    );
    // Every `gateway check` of the installed site file goes through it.
    expect(ops).not.toMatch(/cli\.js check \/etc\//);
  });
});
