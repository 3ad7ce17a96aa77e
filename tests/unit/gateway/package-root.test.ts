// The dashboard, the demo site file and --version are found from the package root.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';
import { packageRoot } from '../../../gateway/package-root.js';

it('is the folder of package.json, with the dashboard and the demo site file below it', () => {
  const root = packageRoot();
  expect(root).toBe(resolve(import.meta.dirname, '..', '..', '..'));
  expect(existsSync(join(root, 'gateway', 'http', 'dashboard'))).toBe(true);
  expect(existsSync(join(root, 'config', 'demo.yaml'))).toBe(true);
});
