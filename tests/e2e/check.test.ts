// `gateway check FILE`: exit 0 for a valid file, 2 with one `path: message` line per problem.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gatewaySync, ROOT } from '../helpers/cli.js';

describe('gateway check', () => {
  it('accepts the demo and every example site file', () => {
    const files = ['config/demo.yaml', ...readdirSync(join(ROOT, 'config', 'examples')).filter((f) => f.endsWith('.yaml')).map((f) => `config/examples/${f}`)];
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

  it('refuses to run an invalid file, with the same report', () => {
    const r = gatewaySync(['run', '-c', 'tests/unit/config/cases/three-mistakes/site.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(3);
  });
});
