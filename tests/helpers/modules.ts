// Which modules a process loads (through tests/helpers/trace-modules.mjs), for the tests that keep
// commands and sites from loading packages they do not use.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from './cli.js';

const HOOK = join(ROOT, 'tests', 'helpers', 'trace-modules.mjs');

export interface Traced {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Packages by name, from the node_modules folder each loaded file is in. */
  packages: Set<string>;
  /** The project's own files, relative to its root (gateway/cli.ts...). */
  files: Set<string>;
}

/** Runs `node --import tsx` with `args`, recording what it loads. */
export function traceSync(args: string[], opts: { env?: Record<string, string>; timeout?: number } = {}): Traced {
  const dir = mkdtempSync(join(tmpdir(), 'gw-trace-'));
  const out = join(dir, 'modules.txt');
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', HOOK, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env, TRACE_MODULES_FILE: out },
    encoding: 'utf8',
    timeout: opts.timeout ?? 30_000,
  });
  const packages = new Set<string>();
  const files = new Set<string>();
  const urls = existsSync(out) ? readFileSync(out, 'utf8').split('\n') : [];
  rmSync(dir, { recursive: true, force: true });
  for (const url of urls.filter((u) => u.startsWith('file:'))) {
    const path = fileURLToPath(url);
    const at = path.lastIndexOf('/node_modules/');
    if (at >= 0) {
      const [first, second] = path.slice(at + '/node_modules/'.length).split('/');
      packages.add(first!.startsWith('@') ? `${first}/${second}` : first!);
    } else if (path.startsWith(`${ROOT}/`)) {
      files.add(path.slice(ROOT.length + 1));
    }
  }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, packages, files };
}

/** The packages of `traced` that are not in `baseline` (what tsx itself loads, for instance). */
export function packagesBeyond(traced: Traced, baseline: Traced): string[] {
  return [...traced.packages].filter((p) => !baseline.packages.has(p)).sort();
}
