// The small path syntaxes of XML and JSON mappings, shared by the schema (a mistake is reported by
// `gateway check` with its place) and the parsers. A module without dependencies: the registry
// loads it with the schema, and a site without file-drop connections loads nothing more.

/** One step of an XML path: an element (local name, or `*`), the parent, or an attribute (last only). */
export type XmlStep = { kind: 'element'; name: string } | { kind: 'parent' } | { kind: 'attribute'; name: string };

const XML_NAME = /^[A-Za-z_\u00C0-\uFFEF][\w.\-\u00B7\u00C0-\uFFEF]*$/;

/**
 * `Results/Sample/Analyte`, `Value/@unit`, `../@id`, `.` (the element's own text). Names are local
 * names: a namespace prefix in the file (`lab:Sample`) is ignored, so one mapping reads files with
 * and without it. Throws with the reason for a path that is not one.
 */
export function parseXmlPath(path: string, { absolute = false }: { absolute?: boolean } = {}): XmlStep[] {
  const text = path.trim();
  if (text === '') throw new Error('expected a path such as Results/Sample/Analyte');
  if (text === '.' && !absolute) return [];
  const parts = text.replace(/^\/+/, '').split('/');
  return parts.map((p, i): XmlStep => {
    if (p === '..') {
      if (absolute) throw new Error('the record path starts at the root element: ".." has no meaning there');
      return { kind: 'parent' };
    }
    if (p.startsWith('@')) {
      if (absolute) throw new Error('the record path names elements, not attributes');
      if (i !== parts.length - 1) throw new Error(`"${p}": an attribute ends a path`);
      const name = p.slice(1).replace(/^[^:]*:/, '');
      if (!XML_NAME.test(name)) throw new Error(`"${p}" is not an attribute name`);
      return { kind: 'attribute', name };
    }
    if (p === '*') return { kind: 'element', name: '*' };
    const name = p.replace(/^[^:]*:/, '');
    if (!XML_NAME.test(name)) throw new Error(`"${p}" is not an element name (paths are names separated by /, "..", "@attribute")`);
    return { kind: 'element', name };
  });
}

/** One step of a JSON path: a key, an array index, or the object holding the array the record is in. */
export type JsonStep = { kind: 'key'; key: string } | { kind: 'parent' };

/**
 * A field path relative to a record: `sample.id`, `results.0.value`, `../id` (a key of the object
 * whose array holds the record). Throws with the reason for a path that is not one.
 */
export function parseJsonPath(path: string): JsonStep[] {
  const text = path.trim();
  if (text === '') throw new Error('expected a path such as sample.id');
  if (text === '.') return [];
  const steps: JsonStep[] = [];
  let rest = text;
  while (rest.startsWith('../')) {
    steps.push({ kind: 'parent' });
    rest = rest.slice(3);
  }
  if (rest === '..') return [...steps, { kind: 'parent' }];
  for (const k of rest.split('.')) {
    if (k === '') throw new Error(`"${path}": an empty key (two dots, or a dot at an end)`);
    steps.push({ kind: 'key', key: k });
  }
  return steps;
}

/**
 * Where the records are in a JSON file: `''` or `.` (the file is an array of records), `data.results`
 * (an array at that path), `samples[].results` (each sample's results: records in nested arrays).
 * Returns the arrays' key paths, outermost first.
 */
export function parseJsonRecordsPath(path: string): string[][] {
  // `samples[]` is `samples`: the records are its items.
  const text = path.trim().replace(/\[\]$/, '');
  if (text === '' || text === '.') return [[]];
  return text.split('[]').map((level, i) => {
    const l = level.replace(/^\./, '');
    if (l === '') {
      if (i === 0) return [];
      throw new Error(`"${path}": "[]" must be followed by a key ("samples[].results")`);
    }
    const keys = l.split('.');
    if (keys.some((k) => k === '')) throw new Error(`"${path}": an empty key (two dots, or a dot at an end)`);
    return keys;
  });
}
