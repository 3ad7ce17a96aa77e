// The JSON Schema and the reference are generated from the schema; stale copies fail here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { allRows, referenceMarkdown, siteJsonSchemaText } from '../../../config/reference.js';

const root = join(import.meta.dirname, '..', '..', '..');
const regenerate = 'run `npm run generate` and commit the result';

describe('generated files', () => {
  it(`config/site.schema.json is up to date (${regenerate})`, () => {
    expect(readFileSync(join(root, 'config', 'site.schema.json'), 'utf8')).toBe(siteJsonSchemaText());
  });

  it(`docs/configuration.md is up to date (${regenerate})`, () => {
    expect(readFileSync(join(root, 'docs', 'configuration.md'), 'utf8')).toBe(referenceMarkdown());
  });

  it('describes every key', () => {
    const rows = allRows();
    expect(rows.length).toBeGreaterThan(30);
    expect(rows.filter((r) => !r.description).map((r) => r.key)).toEqual([]);
  });

  it('gives an example for every key that takes free-form text or numbers', () => {
    const free = allRows().filter((r) => ['string', 'integer', 'number', 'duration'].includes(r.type) && !r.key.endsWith('description'));
    expect(free.filter((r) => !r.examples).map((r) => r.key)).toEqual([]);
  });
});
