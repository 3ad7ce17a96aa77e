// The folder that holds package.json: from the source tree (gateway/...) or from the build (dist/gateway/...),
// the place the dashboard, the demo site file and the package's version are found. Only node's own
// modules are imported: the CLI's --help loads this without the gateway.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root, from the source tree or from dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the gateway sources');
    dir = up;
  }
  return dir;
}
