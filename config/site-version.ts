// Site-file versions. A change that would make an existing site file mean something else, or stop
// loading, gets a new version and a step here that rewrites a file of the version before. The loader
// reads an older file through the steps, in memory, and says so in one note; `gateway config
// migrate` makes the same edits in the file itself. Each edit replaces the few characters of one
// key or value in the text: comments, quoting, flow mappings and blank lines stay as written.
// A file of a newer version is refused whole: its keys may mean what this gateway does not know.
import { isAlias, isMap, isScalar, type Document, type LineCounter, type Node } from 'yaml';
import { ConfigError, type ConfigProblem } from './errors.js';

/** The version this gateway writes and reads as it is. */
export const SITE_FILE_VERSION = 2;
/** The oldest version this gateway reads (through the steps). */
const OLDEST_SITE_FILE_VERSION = 1;

/** One change of the text: characters [start, end) become `text`. */
export interface TextEdit {
  start: number;
  end: number;
  text: string;
}

/** What one step did to a file: its edits, and a line per change for the user. */
interface StepResult {
  edits: TextEdit[];
  changes: string[];
}

interface SiteStep {
  /** The version the step writes. */
  to: number;
  /** What changed in the format, for notes, --help and docs/upgrades.md. */
  summary: string;
  run(doc: Document): StepResult;
}

/** Append only: a released step never changes. */
const SITE_STEPS: readonly SiteStep[] = [
  {
    to: 2,
    summary: 'platform.retry is named platform.reconnect, like the same backoff setting of mqtt, influx and every connection',
    run: (doc) => renameKey(doc, ['platform'], 'retry', 'reconnect'),
  },
];

export interface Migration {
  from: number;
  to: number;
  /** One line per change made, `path: what happened`. */
  changes: string[];
  edits: TextEdit[];
}

/** The version the document says it is; undefined when it has none or it is not a whole number. */
function writtenVersion(doc: Document): number | undefined {
  const node = doc.get('version', true);
  const value = isScalar(node) ? node.value : undefined;
  return typeof value === 'number' && Number.isSafeInteger(value) ? value : undefined;
}

/**
 * Takes the document to version `to` (the current one by default), editing it in place, and returns
 * the text edits that make the same change to its file. A document without a readable version, or
 * with one older than any there was, is left alone (the schema names the mistake). Refused, as a ConfigError at `version`: a document newer
 * than this gateway reads, one older than the oldest it reads, and a `to` below the document's.
 */
export function migrateSiteDocument(doc: Document, file: string, to = SITE_FILE_VERSION, lineOf?: (offset: number) => number): Migration {
  const from = writtenVersion(doc);
  if (from === undefined) return { from: to, to, changes: [], edits: [] };
  const node = doc.get('version', true) as Node;
  const refuse = (message: string): never => {
    const offset = node.range?.[0];
    throw new ConfigError(file, [{ path: 'version', message, line: offset === undefined ? undefined : lineOf?.(offset) }]);
  };
  if (from > SITE_FILE_VERSION)
    refuse(
      `site-file version ${from} was written for a newer gateway (this one reads versions ${OLDEST_SITE_FILE_VERSION} to ${SITE_FILE_VERSION}): run that gateway, or write the file for this one`,
    );
  // Older than any version there was: the schema says what is expected, with the file's other mistakes.
  if (from < OLDEST_SITE_FILE_VERSION) return { from, to: from, changes: [], edits: [] };
  if (to < from) refuse(`the file is at version ${from}; migrating down to ${to} is not possible (a step is never undone)`);
  if (to > SITE_FILE_VERSION) refuse(`this gateway knows site-file versions up to ${SITE_FILE_VERSION}, not ${to}`);
  const edits: TextEdit[] = [];
  const changes: string[] = [];
  for (const step of SITE_STEPS) {
    if (step.to <= from || step.to > to) continue;
    const result = step.run(doc);
    edits.push(...result.edits);
    changes.push(...result.changes);
  }
  if (to !== from) {
    edits.push(setScalar(node, to));
    changes.push(`version: ${from} -> ${to}`);
  }
  return { from, to, changes, edits };
}

/** The text with the edits made (they never overlap: each is one key or one value). */
export function applyEdits(text: string, edits: readonly TextEdit[]): string {
  let out = text;
  for (const e of [...edits].sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return out;
}

/**
 * What the loader does first: a document of an older version is taken to the current one, in
 * memory, with one note; one of a newer version is refused.
 */
export function readAsCurrent(doc: Document, file: string, lines: LineCounter, onNote?: (note: ConfigProblem) => void): void {
  const m = migrateSiteDocument(doc, file, SITE_FILE_VERSION, (offset) => lines.linePos(offset).line);
  if (m.from === m.to) return;
  const offset = (doc.get('version', true) as Node).range?.[0];
  onNote?.({ path: 'version', message: migrationNote(m), line: offset === undefined ? undefined : lines.linePos(offset).line });
}

/** The note the loader gives for a file it read through the steps. */
function migrationNote(m: Migration): string {
  const what = SITE_STEPS.filter((s) => s.to > m.from && s.to <= m.to)
    .map((s) => s.summary)
    .join('; ');
  return `site-file version ${m.from}, read as version ${m.to} (${what}); \`gateway config migrate -c FILE --write\` rewrites the file`;
}

/** Renames `from` to `to` in the mapping at `path`, when it has `from` and not `to` already. */
function renameKey(doc: Document, path: readonly string[], from: string, to: string): StepResult {
  const map = resolved(doc, doc.getIn(path, true));
  if (!isMap(map)) return { edits: [], changes: [] };
  const pair = map.items.find((p) => isScalar(p.key) && p.key.value === from);
  const taken = map.items.some((p) => isScalar(p.key) && p.key.value === to);
  if (!pair || taken || !isScalar(pair.key)) return { edits: [], changes: [] };
  const edit = setScalar(pair.key, to);
  return { edits: [edit], changes: [`${[...path, from].join('.')}: renamed ${[...path, to].join('.')}`] };
}

/** Sets a scalar's value; the edit writes it plain over the scalar as written (quotes and all). */
function setScalar(node: Node, value: string | number): TextEdit {
  if (!isScalar(node) || !node.range) throw new Error('only a scalar read from the text is edited');
  node.value = value;
  return { start: node.range[0], end: node.range[1], text: String(value) };
}

/** An alias stands for its anchored node: that is the one edited. */
function resolved(doc: Document, node: unknown): unknown {
  return isAlias(node) ? node.resolve(doc) : node;
}
