// Runs the `gateway` command the way a user does, as a separate process.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'gateway', 'cli.ts');

export function gatewaySync(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Like gatewaySync, without blocking the event loop (for tests that also run servers in-process). */
export function gatewayAsync(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface Running {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code and how long the exit took after this call. */
  interrupt(signal?: NodeJS.Signals): Promise<{ code: number | null; ms: number }>;
  exited(): Promise<number | null>;
}

/**
 * Starts a command in its own process group, so an interrupt reaches every process in it, as
 * Ctrl-C in a terminal does (npm, then node).
 */
export function startCommand(command: string, args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exited: () => exit,
    async interrupt(signal = 'SIGINT') {
      const t0 = Date.now();
      process.kill(-child.pid!, signal);
      const code = await exit;
      return { code, ms: Date.now() - t0 };
    },
  };
}

/** Kills what is left of a process group (after a failed test). */
export function killGroup(r: Running): void {
  try {
    process.kill(-r.child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}
