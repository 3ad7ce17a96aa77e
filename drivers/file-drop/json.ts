// JSON result files: read whole (they are bounded by max_file_size, at most 64 MiB), then the
// records found at their path, arrays inside arrays included (`samples[].results`).
import { FileProblem } from './decode.js';
import { parseJsonPath, parseJsonRecordsPath, type JsonStep } from './paths.js';

export interface JsonRecord {
  /** The record's number in the file, from 1. */
  index: number;
  values: unknown[];
  raw: string | undefined;
}

/** The records of a parsed JSON document, their fields at the paths given. */
export function jsonRecords(text: string, recordsPath: string, fieldPaths: readonly string[]): JsonRecord[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    // V8 names a position (a character index) or quotes the text around the fault: the reason gives
    // the line, on one line of its own.
    const message = (err as Error).message;
    const at = / in JSON at position (\d+)/.exec(message);
    const lineAt = (i: number) => (text.slice(0, i).match(/\r\n?|\n/g) ?? []).length + 1;
    const line = at
      ? `line ${lineAt(Number(at[1]))}`
      : message.startsWith('Unexpected end of JSON input')
        ? `line ${lineAt(text.length)}, end of file`
        : '';
    const what = message.replace(/ in JSON at position \d+/, '').replace(/[\r\n]/g, (c) => (c === '\n' ? '\\n' : '\\r'));
    throw new FileProblem(line, `not JSON (${what}; the file may be truncated)`);
  }
  const levels = parseJsonRecordsPath(recordsPath);
  const fields = fieldPaths.map(parseJsonPath);
  const out: JsonRecord[] = [];
  // Each record with the objects around it, innermost first, for `../` paths.
  const walk = (value: unknown, level: number, around: unknown[], where: string) => {
    const keys = levels[level]!;
    let at = value;
    for (const k of keys) at = isObject(at) ? at[k] : undefined;
    const path = [where, ...keys].filter(Boolean).join('.');
    if (!Array.isArray(at))
      throw new FileProblem('', `no array of records at ${path === '' ? 'the top level' : `"${path}"`} (found ${describe(at)})`);
    at.forEach((item, i) => {
      if (level < levels.length - 1) walk(item, level + 1, [item, ...around], `${path}[${i}]`);
      else {
        const raw = shortJson(item);
        out.push({ index: out.length + 1, values: fields.map((f) => valueAt(item, around, f)), raw });
      }
    });
  };
  walk(doc, 0, [], '');
  return out;
}

/** A record written back for audit when short; JSON.parse takes nesting that JSON.stringify's recursion does not. */
function shortJson(item: unknown): string | undefined {
  let raw: string;
  try {
    raw = JSON.stringify(item);
  } catch {
    return undefined;
  }
  return raw.length <= 4096 ? raw : undefined;
}

function valueAt(record: unknown, around: readonly unknown[], steps: readonly JsonStep[]): unknown {
  let at = record;
  let up = 0;
  for (const s of steps) {
    if (s.kind === 'parent') {
      at = around[up++];
      if (at === undefined) return undefined;
    } else {
      at = isObject(at) ? at[s.key] : undefined;
    }
  }
  return at;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function describe(v: unknown): string {
  return v === undefined ? 'nothing' : Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v === 'object' ? 'an object' : typeof v;
}
