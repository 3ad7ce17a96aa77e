// docs/errors.md lists exactly the error codes that exist.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ERROR_CODES } from '../../config/errors.js';

it('docs/errors.md documents exactly the error codes in config/errors.ts', () => {
  const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'errors.md'), 'utf8');
  const documented = [...doc.matchAll(/^## (GW_ERR_[A-Z_]+)$/gm)].map((m) => m[1]).sort();
  expect(documented).toEqual(Object.keys(ERROR_CODES).sort());
});
