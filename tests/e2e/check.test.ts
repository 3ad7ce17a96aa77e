// `gateway check FILE`: exit 0 for a valid file, 2 with one `path: message` line per problem.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gatewaySync, ROOT } from '../helpers/cli.js';

describe('gateway check', () => {
  it('accepts the demo and every example site file', () => {
    const files = [
      'config/demo.yaml',
      ...readdirSync(join(ROOT, 'config', 'examples'))
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => `config/examples/${f}`),
    ];
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const file of files) {
      const r = gatewaySync(['check', file], { PLATFORM_SECRET: 'a-platform-secret-0123', MQTT_PASSWORD: 'x' });
      expect(r.stderr, file).toBe('');
      expect(r.code, file).toBe(0);
      expect(r.stdout).toMatch(/: valid \(\d+ connections?, \d+ equipment\)/);
    }
  });

  it('prints three path: message lines for a file with three mistakes, and exits 2', () => {
    const r = gatewaySync(['check', 'tests/unit/config/cases/three-mistakes/site.yaml']);
    expect(r.code).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).toMatch(/^[a-z_]+(\[\d+\])?(\.[a-z_]+(\[\d+\])?)*: .+ \(line \d+\)$/);
    expect(lines[0]).toBe('equipment[0].poll_interval: expected a duration such as 500ms, 5s, 2m or 1h (line 11)');
  });

  it('reports a missing file and a missing argument with exit 2', () => {
    const missing = gatewaySync(['check', 'nope.yaml']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/Cannot read site file "nope.yaml": ENOENT.*\(GW_ERR_CONFIG_READ\)/);
    const none = gatewaySync(['check']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('GW_ERR_USAGE');
  });

  it('refuses hostile files with exit 2 and path: message lines, never a stack', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-check-'));
    try {
      // 1 MB of nested brackets: 3.7 s and 570 MB in the parser before; unclosed, it took the process down.
      writeFileSync(join(dir, 'brackets-1mb.yaml'), `version: 1\na: ${'['.repeat(500_000)}${']'.repeat(500_000)}\n`);
      writeFileSync(join(dir, 'unclosed-1mb.yaml'), `version: 1\na: ${'{'.repeat(1_000_000)}\n`);
      const corpus = [
        'alias-bomb-10x10.yaml',
        'alias-flood-500.yaml',
        'deep-flow-sequence-1000.yaml',
        'deep-indentation-200.yaml',
        'rule-parentheses-5000.yaml',
        'rule-mixed-nesting-3000.yaml',
        'unclosed-brackets-100k.yaml',
      ];
      const files = [
        join(dir, 'brackets-1mb.yaml'),
        join(dir, 'unclosed-1mb.yaml'),
        ...corpus.map((f) => `tests/unit/corpus/site-files/${f}`),
      ];
      for (const file of files) {
        const r = gatewaySync(['check', file]);
        expect(r.code, file).toBe(2);
        const lines = r.stderr.trimEnd().split('\n');
        expect(lines.length, file).toBeGreaterThanOrEqual(1);
        for (const line of lines) expect(line, file).toMatch(/^(\(yaml\)|rules\[\d+\]\.when): [^\n]+ \(line \d+\)$|^\(yaml\): [^\n]+$/);
        expect(r.stderr, file).not.toMatch(/RangeError|Maximum call stack|\n\s+at |FATAL/);
      }
      expect(gatewaySync(['check', 'tests/unit/corpus/site-files/rule-parentheses-5000.yaml']).stderr).toBe(
        'rules[0].when: nested too deeply (at most 64 levels) (line 7)\n',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports every mistake of an entry whose connection is unknown, in one pass', () => {
    const r = gatewaySync(['check', 'tests/unit/config/cases/unknown-connection-every-mistake/site.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'equipment[0].connection: no connection "plcc"; connections are plc; checked as a modbus entry, the driver it fits best (line 10)\n',
    );
    expect(r.stderr).toContain('equipment[0].pol_interval: unknown key (line 12)\n');
    expect(r.stderr).toContain(
      'equipment[0].points[0].type: expected one of bool, int16, uint16, int32, uint32, int64, uint64, float32, float64, string, got "float33" (line 14)\n',
    );
  });

  it('never prints a value that came from the environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-check-'));
    try {
      const file = join(dir, 'site.yaml');
      writeFileSync(
        file,
        'version: 1\ngateway: { id: gw-1, site: plant-1, log_level: "${PLATFORM_SECRET}" }\nconnections: [{ id: sim, type: sim }]\nequipment: []\n',
      );
      const r = gatewaySync(['check', file], { PLATFORM_SECRET: 'a-platform-secret-0123' });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^gateway\.log_level: expected one of .*, got a text that is not one of them \(line 2\)$/m);
      expect(r.stdout + r.stderr).not.toContain('a-platform-secret-0123');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to run an invalid file, with the same report', () => {
    const r = gatewaySync(['run', '-c', 'tests/unit/config/cases/three-mistakes/site.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(3);
  });
});
