// Site-file versions: the steps edit only the keys they change, in the text and in the document; a
// current file is left as it is; a newer file, an unknown target and a downgrade are refused at version.
import { LineCounter, parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ConfigError, formatProblem } from '../../../config/errors.js';
import { parseSite } from '../../../config/load.js';
import { applyEdits, migrateSiteDocument, SITE_FILE_VERSION } from '../../../config/site-version.js';

const V1 = `# A boiler house.
version: 1   # the format
gateway: { id: gw-1, site: plant-1 }
platform:
  url: http://127.0.0.1:8787/incidents   # the reference inbox
  secret: "a-secret-of-some-length"
  # Back off quickly on a bench.
  'retry': {initial_delay: 200ms,   max_delay: 1s}
connections: [{ id: sim, type: sim }]

equipment:
  - { id: B-1, category: boiler, connection: sim, model: steam-boiler, points: [{ name: drum_level }] }
`;

function migrate(text: string, to?: number) {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const m = migrateSiteDocument(doc, 'site.yaml', to, (o) => lines.linePos(o).line);
  return { ...m, text: applyEdits(text, m.edits), doc };
}

function refusal(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map(formatProblem);
    throw err;
  }
  throw new Error('not refused');
}

describe('site-file migration', () => {
  it('edits only the version and the renamed key: comments, quoting, spacing and blank lines stay', () => {
    const m = migrate(V1);
    expect(m).toMatchObject({ from: 1, to: SITE_FILE_VERSION });
    expect(m.changes).toEqual(['platform.retry: renamed platform.reconnect', 'version: 1 -> 2']);
    const before = V1.split('\n');
    const after = m.text.split('\n');
    expect(after).toHaveLength(before.length);
    const changed = after.map((l, i) => [before[i], l]).filter(([b, a]) => a !== b);
    expect(changed).toEqual([
      ['version: 1   # the format', 'version: 2   # the format'],
      ["  'retry': {initial_delay: 200ms,   max_delay: 1s}", '  reconnect: {initial_delay: 200ms,   max_delay: 1s}'],
    ]);
    // The document says the same as the text.
    expect(m.doc.toJS()).toEqual(parseDocument(m.text).toJS());
    expect(parseSite(m.text, { env: {} }).platform?.reconnect).toEqual({ initial_delay: 200, max_delay: 1000, jitter: 0.2 });
  });

  it('leaves a current file as it is, and reads it the same as the migrated one', () => {
    const once = migrate(V1).text;
    const twice = migrate(once);
    expect(twice).toMatchObject({ from: 2, to: 2, changes: [], edits: [] });
    expect(twice.text).toBe(once);
    expect(parseSite(V1, { env: {} })).toEqual(parseSite(once, { env: {} }));
  });

  it('gives the loader one note for a version 1 file, and none for a current one', () => {
    const notes: string[] = [];
    parseSite(V1, { env: {}, onNote: (n) => notes.push(formatProblem(n)) });
    expect(notes).toEqual([
      'version: site-file version 1, read as version 2 (platform.retry is named platform.reconnect, like the same backoff setting of mqtt, influx and every connection); `gateway config migrate -c FILE --write` rewrites the file (line 2)',
    ]);
    notes.length = 0;
    parseSite(migrate(V1).text, { env: {}, onNote: (n) => notes.push(formatProblem(n)) });
    expect(notes).toEqual([]);
  });

  it('does not rename over a key that is there already: the schema names the leftover', () => {
    const both = V1.replace("  'retry':", '  reconnect: { initial_delay: 1s }\n  retry:');
    expect(migrate(both).changes).toEqual(['version: 1 -> 2']);
    expect(refusal(() => parseSite(both, { env: {} }))).toEqual(['platform.retry: unknown key (line 9)']);
  });

  it('refuses a file for a newer gateway, a downgrade and a version it does not know', () => {
    expect(refusal(() => migrate(V1.replace('version: 1', 'version: 9'))).join('\n')).toMatch(
      /^version: site-file version 9 was written for a newer gateway \(this one reads versions 1 to 2\).* \(line 2\)$/,
    );
    expect(refusal(() => migrate(migrate(V1).text, 1))).toEqual([
      'version: the file is at version 2; migrating down to 1 is not possible (a step is never undone) (line 2)',
    ]);
    expect(refusal(() => migrate(V1, 3))).toEqual(['version: this gateway knows site-file versions up to 2, not 3 (line 2)']);
    // Nothing to read a version from: the schema says what is expected, with the file's other mistakes.
    expect(migrate(V1.replace('version: 1', 'version: one')).edits).toEqual([]);
  });
});
