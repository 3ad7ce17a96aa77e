// A pair of connected pseudo-terminals made by socat: a serial line without hardware.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface PtyPair {
  /** The gateway's end. */
  a: string;
  /** The device's end. */
  b: string;
  stop(): Promise<void>;
}

export async function startPtyPair(dir: string): Promise<PtyPair> {
  const a = join(dir, 'gateway-tty');
  const b = join(dir, 'device-tty');
  const child = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: 'ignore' });
  const deadline = Date.now() + 5000;
  while (!(existsSync(a) && existsSync(b))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`socat did not make the pseudo-terminals ${a} and ${b}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    a,
    b,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
