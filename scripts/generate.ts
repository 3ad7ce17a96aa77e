// Writes the files generated from the schema: config/site.schema.json and docs/configuration.md.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { referenceMarkdown, siteJsonSchemaText } from '../config/reference.js';

const root = join(import.meta.dirname, '..');
writeFileSync(join(root, 'config', 'site.schema.json'), siteJsonSchemaText());
writeFileSync(join(root, 'docs', 'configuration.md'), referenceMarkdown());
process.stdout.write('Wrote config/site.schema.json and docs/configuration.md\n');
