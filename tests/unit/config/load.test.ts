import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../config/errors.js';
import { formatPath, parseSite } from '../../../config/load.js';

// mqtt is written in block style: in a flow mapping `{ port: ${P} }` YAML reads `{` as a new mapping.
const site = (mqtt: string, extra = '') => `
version: 1
gateway: { id: gw-1, site: plant-1 }
mqtt:
  ${
    mqtt
      .replace(/^\{ ?| ?\}$/g, '')
      .split(', ')
      .join('\n  ') || 'topic_prefix: gw'
  }
connections: [{ id: sim, type: sim }]
equipment:
  - { id: B-1, code: "10003101012019000117", connection: sim, model: steam-boiler, points: [{ name: drum_level }] }
${extra}`;

const problems = (text: string, env: Record<string, string> = {}) => {
  try {
    parseSite(text, { env });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
};

describe('environment interpolation', () => {
  it('uses the variable, else the default; an unquoted number stays a number', () => {
    expect(parseSite(site('{ port: ${P:-1883} }'), { env: {} }).mqtt.port).toBe(1883);
    expect(parseSite(site('{ port: ${P:-1883} }'), { env: { P: '2883' } }).mqtt.port).toBe(2883);
  });

  it(':- takes the default for an empty variable, - only for an unset one', () => {
    expect(parseSite(site('{ username: "${U:-anon}" }'), { env: { U: '' } }).mqtt.username).toBe('anon');
    expect(parseSite(site('{ username: "x${U-anon}" }'), { env: { U: '' } }).mqtt.username).toBe('x');
    expect(parseSite(site('{ username: "${U-anon}" }'), { env: {} }).mqtt.username).toBe('anon');
  });

  it('keeps quoted values as text and replaces inside longer strings', () => {
    const cfg = parseSite(site('{ username: "${U}", password: "p-${P}-$$1" }'), { env: { U: '1234', P: 'secret' } });
    expect(cfg.mqtt.username).toBe('1234');
    expect(cfg.mqtt.password).toBe('p-secret-$1');
  });

  it('reports an unset variable without default at its path, once', () => {
    expect(problems(site('{ port: ${NOPE} }'))).toEqual([
      'mqtt.port: environment variable NOPE is not set and has no default (write ${NOPE:-default})',
    ]);
  });

  it('explains that an unquoted number is not text', () => {
    expect(problems(site('{ username: ${U} }'), { U: '42' })).toEqual([
      'mqtt.username: expected string, got a number (quote the value to keep it text)',
    ]);
  });
});

describe('parsed config', () => {
  it('applies defaults and derives the category from the code', () => {
    const cfg = parseSite(site('{}'), { env: {} });
    expect(cfg.mqtt).toMatchObject({
      broker: 'embedded',
      host: '127.0.0.1',
      port: 1883,
      topic_prefix: 'gw',
      keepalive: 30_000,
      reconnect: { initial_delay: 1000, max_delay: 30_000, jitter: 0.2 },
    });
    expect(cfg.gateway.data_dir).toBe('./.data');
    expect(cfg.equipment[0]).toMatchObject({
      id: 'B-1',
      category: 'boiler',
      poll_interval: 1000,
      scenario: { normal: 60_000, hazard: 30_000, recovery: 30_000, repeat: true },
    });
  });

  it('reads a 20-digit registration code and an 18-character equipment code', () => {
    const eq = (code: string) => parseSite(site('{}').replace('10003101012019000117', code), { env: {} }).equipment[0]!.category;
    expect(eq('31103101012019000117')).toBe('elevator');
    expect(eq('4000000012019000117'.slice(0, 18))).toBe('crane');
  });

  it('requires cert and key together and a username with a password', () => {
    expect(problems(site('{ cert: a.pem, password: x }'))).toEqual([
      'mqtt.cert: cert and key go together',
      'mqtt.username: password needs a username',
    ]);
  });

  it('formats paths the way users read them', () => {
    expect(formatPath(['equipment', 2, 'points', 0, 'type'])).toBe('equipment[2].points[0].type');
    expect(formatPath([])).toBe('(root)');
  });
});
