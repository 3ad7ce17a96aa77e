// The Dockerfile, read as a container engine reads it (no engine runs here): its stages, its user,
// its ports against the site file's defaults, its health check, that every file it copies exists
// and that every folder the gateway reads at run time is in the image, and that the image opens no
// broker or API beyond the container's loopback by itself. The health check itself runs against a
// real gateway in tests/integration/healthcheck.test.ts.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSiteFile, parseSite } from '../../../config/load.js';
import { ROOT } from '../../helpers/cli.js';
import { parseDockerfile, type Instruction } from '../../helpers/dockerfile.js';

/** An exec-form (JSON array) or shell-form argument as a list of words. */
function words(args: string): string[] {
  return args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
}

/** COPY's sources and destination, and its --from stage. */
function copyOf(args: string): { from?: string; sources: string[]; dest: string } {
  const parts = words(args);
  const flags = parts.filter((p) => p.startsWith('--'));
  const rest = parts.filter((p) => !p.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return { ...(from ? { from } : {}), sources: rest.slice(0, -1), dest: rest.at(-1)! };
}

/** ENV KEY=value pairs (the KEY value form too). */
function envOf(instructions: Instruction[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of instructions.filter((x) => x.op === 'ENV')) {
    const pairs = [...i.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)];
    if (pairs.length === 0) {
      const [k, ...v] = i.args.split(/\s+/);
      env[k!] = v.join(' ');
    }
    for (const [, k, v] of pairs) env[k!] = v!.replace(/^"|"$/g, '');
  }
  return env;
}

const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(text);
const build = stages.find((s) => s.name === 'build')!;
const runtime = stages.at(-1)!;
const ops = (s: { instructions: Instruction[] }, op: string) => s.instructions.filter((i) => i.op === op);
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** The folders and files the gateway reads from its package root at run time, found in the sources. */
function runtimeReads(): string[] {
  const found = new Set<string>(['package.json']);
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const p = join(dir, name);
      return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
    });
  const sites: string[] = [];
  for (const file of ['gateway', 'drivers', 'rules', 'config'].flatMap((d) => walk(join(ROOT, d)))) {
    const src = readFileSync(file, 'utf8');
    // join(packageRoot(), 'a', 'b'): a path under the package root.
    for (const m of src.matchAll(/join\(packageRoot\(\),\s*((?:'[^']+'\s*,?\s*)+)\)/g)) {
      found.add([...m[1]!.matchAll(/'([^']+)'/g)].map((x) => x[1]).join('/'));
    }
    // A folder found by walking up to package.json (config/templates.ts).
    for (const m of src.matchAll(/join\(dir,\s*((?:'[^']+'\s*,?\s*)+)\)/g)) {
      if (src.includes("existsSync(join(dir, 'package.json'))")) found.add([...m[1]!.matchAll(/'([^']+)'/g)].map((x) => x[1]).join('/'));
    }
    if (/packageRoot\(\)|join\(dir, 'package.json'\)/.test(src)) sites.push(relative(ROOT, file));
  }
  // Every place that reads from the package root is one of these: a new one must be looked at here.
  expect(sites.sort()).toEqual(
    [
      'config/profiles.ts',
      'config/templates.ts',
      'gateway/commands/common.ts',
      'gateway/commands/program.ts',
      'gateway/http/plugins/dashboard.ts',
      'gateway/package-root.ts',
    ].sort(),
  );
  return [...found];
}

describe('Dockerfile', () => {
  it('builds in a stage with the toolchain and runs in a second one without it', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', undefined]);
    expect(build.from).toBe(runtime.from);
    expect(build.from).toMatch(/^node:20[.-]/);
    expect(
      ops(build, 'RUN')
        .map((r) => r.args)
        .join('\n'),
    ).toMatch(/npm ci/);
    expect(
      ops(runtime, 'RUN')
        .map((r) => r.args)
        .join('\n'),
    ).not.toMatch(/g\+\+|make|npm ci/);
  });

  it('runs as a user that is not root, set before the entrypoint, the health check and the volume is written', () => {
    const users = ops(runtime, 'USER');
    expect(users).toHaveLength(1);
    expect(users[0]!.args).not.toMatch(/^(root|0)(:|$)/);
    const at = (op: string) => runtime.instructions.findIndex((i) => i.op === op);
    expect(at('USER')).toBeLessThan(at('ENTRYPOINT'));
    expect(at('USER')).toBeLessThan(at('HEALTHCHECK'));
    // The data folder belongs to that user.
    expect(ops(runtime, 'RUN').some((r) => r.args.includes(`chown ${users[0]!.args}:${users[0]!.args} /data`))).toBe(true);
    expect(envOf(runtime.instructions).GATEWAY_DATA_DIR).toBe('/data');
    expect(ops(runtime, 'VOLUME')[0]!.args).toBe('["/data"]');
  });

  it("exposes the HTTP API's and the embedded broker's default ports", () => {
    const defaults = parseSite(
      [
        'version: 1',
        'gateway: { id: gw, site: s }',
        'http: { tokens: [] }',
        'connections: [{ id: sim, type: sim }]',
        'equipment: [{ id: B-07, connection: sim, model: steam-boiler, category: boiler, points: [{ name: steam_pressure }] }]',
        '',
      ].join('\n'),
      { env: {} },
    );
    const exposed = ops(runtime, 'EXPOSE').flatMap((e) => e.args.split(/\s+/).map((p) => Number(p.replace(/\/tcp$/, ''))));
    expect(exposed.sort()).toEqual([defaults.mqtt.port, defaults.http!.port].sort());
  });

  it('checks health on /ready with the compiled health check, on the demo port', () => {
    const hc = ops(runtime, 'HEALTHCHECK');
    expect(hc).toHaveLength(1);
    const cmd = /\bCMD\s+(.*)$/.exec(hc[0]!.args)![1]!;
    expect(words(cmd)).toEqual(['node', 'dist/gateway/healthcheck.js']);
    expect(existsSync(join(ROOT, 'gateway', 'healthcheck.ts'))).toBe(true);
    expect(readFileSync(join(ROOT, 'gateway', 'healthcheck.ts'), 'utf8')).toMatch(/127\.0\.0\.1:\$\{port\}\/ready/);
    expect(hc[0]!.args).toMatch(/--start-period=\d+s/);
  });

  it('copies only what exists, and the build stage has every source the runtime takes from it', () => {
    const inBuild = new Set<string>(['dist', 'node_modules']);
    for (const c of ops(build, 'COPY').map((i) => copyOf(i.args))) {
      expect(c.from).toBeUndefined();
      for (const s of c.sources) {
        expect(existsSync(join(ROOT, s)), `COPY ${s}`).toBe(true);
        inBuild.add(s);
      }
    }
    for (const c of ops(runtime, 'COPY').map((i) => copyOf(i.args))) {
      if (c.from === undefined) {
        for (const s of c.sources) expect(existsSync(join(ROOT, s)), `COPY ${s}`).toBe(true);
        continue;
      }
      expect(c.from).toBe('build');
      for (const s of c.sources) {
        const path = s.replace(/^\/app\//, '');
        expect(
          [...inBuild].some((b) => path === b || path.startsWith(`${b}/`)),
          `COPY --from=build ${s}`,
        ).toBe(true);
      }
    }
    // The build compiles what tsconfig.build.json includes: all of it is copied in.
    const tsBuild = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    for (const dir of tsBuild.include) expect(inBuild.has(dir), `${dir} (tsconfig.build.json)`).toBe(true);
  });

  it('puts every folder the gateway reads at run time into the image', () => {
    const copied = ops(runtime, 'COPY').flatMap((i) => {
      const c = copyOf(i.args);
      return c.sources.map((s) => s.replace(/^\/app\//, ''));
    });
    const reads = runtimeReads();
    expect(reads).toEqual(expect.arrayContaining(['config/templates', 'profiles', 'gateway/http/dashboard', 'config/demo.yaml']));
    for (const r of reads)
      expect(
        copied.some((c) => r === c || r.startsWith(`${c}/`)),
        `${r} is read at run time`,
      ).toBe(true);
  });

  it('starts the installed command on the demo, with the V8 flag of the command', () => {
    const entry = words(ops(runtime, 'ENTRYPOINT')[0]!.args);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(entry).toEqual(['node', '--optimize-for-size', pkg.bin.gateway]);
    const cmd = words(ops(runtime, 'CMD')[0]!.args);
    expect(cmd).toEqual(['run', '-c', 'config/demo.yaml']);
    expect(existsSync(join(ROOT, cmd[2]!))).toBe(true);
  });

  it('opens no broker and no API beyond the container by itself: the demo listens on loopback in it', () => {
    const env = envOf(runtime.instructions);
    for (const key of ['MQTT_HOST', 'HTTP_HOST']) expect(env[key], key).toBeUndefined();
    for (const i of runtime.instructions) expect(i.args).not.toMatch(/MQTT_HOST\s*=\s*(0\.0\.0\.0|::)/);
    // The image's default command, with the image's environment, as the loader reads it.
    const demo = loadSiteFile(join(ROOT, 'config', 'demo.yaml'), { ...env, PATH: '/usr/bin' });
    expect(demo.mqtt.host).toMatch(LOOPBACK);
    expect(demo.http!.host).toMatch(LOOPBACK);
  });

  it('sends the engine only what it copies (.dockerignore)', () => {
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(ignore[0]).toBe('*');
    const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1));
    const copiedFromContext = stages.flatMap((s) =>
      ops(s, 'COPY')
        .map((i) => copyOf(i.args))
        .filter((c) => c.from === undefined)
        .flatMap((c) => c.sources),
    );
    expect(allowed.sort()).toEqual([...new Set(copiedFromContext)].sort());
  });
});
