// Every driver README's YAML samples pass the real site loader, as Telegraf checks each plugin's
// sample config: a sample a user copies must be one the gateway takes.
//
// Each ```yaml block of drivers/<folder>/README.md is one of:
// - a whole site file (it has `version:` or `gateway:`): loaded as it is;
// - a fragment whose top-level keys are among connections, equipment, simulators and rules: loaded
//   after `version: 1` and a `gateway:` section are put before it (COMPLETION below). A fragment with
//   neither connections nor equipment (a `simulators:` sample) also gets the sim driver's boiler,
//   since a site needs one of each; a fragment with only one of them is reported by the loader, so
//   an equipment sample shows the connection it hangs on;
// - deliberately not a site sample: the line right before its fence is `<!-- sample: not a site file -->`.
// Placeholders (`${OPCUA_PASSWORD}`) are checked as the HTTP API checks someone else's file
// (env: false): by their default, or not at all, never from this process's environment.
// Every README must have at least one sample that is loaded, and a problem is reported with its
// README line.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseSite } from '../../../config/load.js';
import { ConfigError } from '../../../config/errors.js';

const root = join(import.meta.dirname, '..', '..', '..', 'drivers');
// Folders beside the drivers that are not drivers (shared code), as in registry.test.ts.
const NOT_DRIVERS = new Set(['common']);
const folders = readdirSync(root).filter((f) => statSync(join(root, f)).isDirectory() && !NOT_DRIVERS.has(f));

const NOT_A_SITE_FILE = '<!-- sample: not a site file -->';
const FRAGMENT_KEYS = new Set(['connections', 'equipment', 'simulators', 'rules']);
const COMPLETION = ['version: 1', 'gateway: { id: gw-readme, site: readme }'];
const SIM_BOILER = [
  'connections: [{ id: readme-sim, type: sim }]',
  'equipment: [{ id: README-SIM, category: boiler, connection: readme-sim, model: steam-boiler, points: [{ name: drum_level }] }]',
];

interface Sample {
  /** 1-based README line of the sample's first line (the one after the fence). */
  line: number;
  text: string;
  marked: boolean;
}

/** The ```yaml blocks of a Markdown text, with the line each starts at. */
function yamlBlocks(markdown: string): Sample[] {
  const lines = markdown.split('\n');
  const blocks: Sample[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```\s*(\S*)/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && /^\s*```\s*$/.test(l));
    if (end < 0) throw new Error(`line ${i + 1}: a fence that is never closed`);
    if (open[2] === 'yaml' || open[2] === 'yml') {
      const indent = open[1]!.length;
      const before = lines.slice(0, i).findLast((l) => l.trim() !== '');
      blocks.push({
        line: i + 2,
        text: lines
          .slice(i + 1, end)
          .map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)))
          .join('\n'),
        marked: before?.trim() === NOT_A_SITE_FILE,
      });
    }
    i = end;
  }
  return blocks;
}

/** The site text a sample is loaded as, and how many lines were put before the sample's own. */
function asSite(sample: string): { text: string; before: number } | { refused: string } {
  let top: unknown;
  try {
    top = parse(sample);
  } catch {
    // The loader reports the syntax error with its line.
    return { text: sample, before: 0 };
  }
  if (typeof top !== 'object' || top === null || Array.isArray(top))
    return {
      refused: `not a mapping: a site file, or a fragment with ${[...FRAGMENT_KEYS].join('/')} keys (mark other blocks ${NOT_A_SITE_FILE})`,
    };
  const keys = Object.keys(top);
  if (keys.includes('version') || keys.includes('gateway')) return { text: sample, before: 0 };
  const others = keys.filter((k) => !FRAGMENT_KEYS.has(k));
  if (others.length > 0)
    return {
      refused: `keys ${others.join(', ')} make it neither a site file nor a fragment of ${[...FRAGMENT_KEYS].join('/')} (mark other blocks ${NOT_A_SITE_FILE})`,
    };
  const boiler = keys.includes('connections') || keys.includes('equipment') ? [] : SIM_BOILER;
  return { text: [...COMPLETION, sample, ...boiler].join('\n'), before: COMPLETION.length };
}

/** The loader's problems with a sample, as `README.md:LINE: path: message`; none for a good one. */
function problemsOf(readme: string, sample: Sample): string[] {
  const site = asSite(sample.text);
  if ('refused' in site) return [`${readme}:${sample.line}: ${site.refused}`];
  try {
    parseSite(site.text, { file: readme, env: false });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const sampleLines = sample.text.split('\n').length;
    return err.problems.map((p) => {
      const own = p.line !== undefined && p.line > site.before && p.line <= site.before + sampleLines;
      const at = own ? `${sample.line + p.line! - site.before - 1}` : `${sample.line} (completion)`;
      return `${readme}:${at}: ${p.path}: ${p.message}`;
    });
  }
}

describe.each(folders)('drivers/%s/README.md', (folder) => {
  const readme = `drivers/${folder}/README.md`;

  it('exists', () => {
    expect(existsSync(join(root, folder, 'README.md')), `${readme} is missing`).toBe(true);
  });

  it('has YAML samples that the site loader takes', () => {
    const samples = yamlBlocks(readFileSync(join(root, folder, 'README.md'), 'utf8'));
    const loaded = samples.filter((s) => !s.marked);
    expect(loaded.length, `${readme} has no site sample (a \`\`\`yaml block not marked ${NOT_A_SITE_FILE})`).toBeGreaterThan(0);
    expect(loaded.flatMap((s) => problemsOf(readme, s))).toEqual([]);
  });
});

describe('the sample checker', () => {
  it('reports a broken sample with its README line', () => {
    const md = [
      '# x',
      '',
      '```yaml',
      'connections:',
      '  - { id: s, type: sim }',
      'equipment:',
      '  - { id: E-1, connection: s }',
      '```',
    ].join('\n');
    const [sample] = yamlBlocks(md);
    expect(problemsOf('x.md', sample!)).toEqual([
      'x.md:7: equipment[0].category: required when no code or template is given',
      expect.stringMatching(/^x\.md:7: equipment\[0\]\.model: /),
      expect.stringMatching(/^x\.md:7: equipment\[0\]\.points: /),
    ]);
  });

  it('skips only a block marked as not a site file, and refuses other shapes', () => {
    const md = ['```yaml', 'a: 1', '```', '', NOT_A_SITE_FILE, '```yaml', 'b: 2', '```'].join('\n');
    const [plain, marked] = yamlBlocks(md);
    expect(marked!.marked).toBe(true);
    expect(plain!.marked).toBe(false);
    expect(problemsOf('x.md', plain!)).toEqual([expect.stringMatching(/^x\.md:2: keys a make it neither a site file nor a fragment/)]);
  });

  it('completes a simulators-only fragment with the sim boiler', () => {
    const [sample] = yamlBlocks(['```yaml', 'simulators: [{ type: astm-analyzer, port: 5100 }]', '```'].join('\n'));
    expect(problemsOf('x.md', sample!)).toEqual([]);
  });
});
