// Site files for tests: the real loader reads them, like a user's file.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSite } from '../../config/load.js';
import type { SiteConfig } from '../../config/schema.js';
import { hashToken } from '../../gateway/http/tokens.js';

export const BOILER_POINTS = [
  'steam_pressure',
  'steam_temperature',
  'drum_level',
  'feedwater_flow',
  'flue_o2',
  'flame',
  'burner_on',
  'interlock_tripped',
] as const;

export interface TestSiteOptions {
  broker?: string;
  port?: number;
  site?: string;
  gatewayId?: string;
  pollInterval?: string;
  /** The mqtt reconnect backoff, a YAML flow mapping. */
  reconnect?: string;
  mqttExtra?: string[];
  /** Top-level YAML lines, such as an influx: section. */
  extra?: string[];
  /** Reuse a data folder (a restart); a new temporary one otherwise. */
  dataDir?: string;
}

export function testSiteYaml(o: TestSiteOptions = {}): string {
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'gw-data-'));
  return [
    'version: 2',
    `gateway: { id: ${o.gatewayId ?? 'gw-test'}, site: ${o.site ?? 'test-site'}, data_dir: ${dataDir} }`,
    'mqtt:',
    `  broker: ${o.broker ?? 'embedded'}`,
    `  port: ${o.port ?? 1883}`,
    `  reconnect: ${o.reconnect ?? '{ initial_delay: 200ms, max_delay: 1s }'}`,
    ...(o.mqttExtra ?? []).map((l) => `  ${l}`),
    ...(o.extra ?? []),
    'connections: [{ id: sim, type: sim, seed: 11 }]',
    'equipment:',
    '  - id: B-07',
    '    code: "10003101012019000117"',
    '    connection: sim',
    '    model: steam-boiler',
    `    poll_interval: ${o.pollInterval ?? '200ms'}`,
    `    points: [${BOILER_POINTS.map((p) => `{ name: ${p} }`).join(', ')}]`,
    '',
  ].join('\n');
}

export function testSite(o: TestSiteOptions = {}): SiteConfig {
  return parseSite(testSiteYaml(o), { env: {} });
}

export function writeTestSite(o: TestSiteOptions = {}): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gw-site-')), 'site.yaml');
  writeFileSync(file, testSiteYaml(o));
  return file;
}

/**
 * Top-level lines of a site with the HTTP API on `port` (with `httpExtra` lines in its section), one
 * token per role given (named `<role>-user`), and a rule that is active while the boiler is under
 * pressure (an alarm to list, acknowledge and shelve).
 */
export function httpSiteLines(
  port: number,
  tokens: Partial<Record<'viewer' | 'operator' | 'admin', string>>,
  httpExtra: string[] = [],
): string[] {
  return [
    'rules:',
    '  - { id: pressure-present, equipment: B-07, when: steam_pressure > 0.5, level: orange, message: "Boiler under pressure" }',
    ...httpLines(port, tokens, httpExtra),
  ];
}

/** The http section alone: the API on `port` (with `httpExtra` lines in it) and one token per role given (named `<role>-user`). */
export function httpLines(
  port: number,
  tokens: Partial<Record<'viewer' | 'operator' | 'admin', string>>,
  httpExtra: string[] = [],
): string[] {
  return [
    'http:',
    `  port: ${port}`,
    ...httpExtra.map((l) => `  ${l}`),
    '  tokens:',
    ...Object.entries(tokens).map(([role, token]) => `    - { name: ${role}-user, role: ${role}, hash: "${hashToken(token)}" }`),
  ];
}
