// A small, bounded path into a JSON payload: `temperature`, `sensors[0].value`, `ENERGY.Power`,
// `["battery.level"]`. Parsed once when the site file is loaded; evaluated by walking own
// properties only, so a payload can never reach a prototype, call code or loop.

/** One step of a path: a key of an object or an index of an array. */
export type PathStep = string | number;

/** Characters of a path and steps in it, at most: paths are written by hand, payloads are small. */
export const MAX_PATH_LENGTH = 256;
export const MAX_PATH_STEPS = 32;

/** The steps of `text`, or a message saying why it is not a path. */
export function parsePath(text: string): PathStep[] | string {
  if (text.length === 0) return 'an empty path';
  if (text.length > MAX_PATH_LENGTH) return `a path of at most ${MAX_PATH_LENGTH} characters`;
  const steps: PathStep[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '[') {
      const index = /^\[(\d{1,6})\]/.exec(text.slice(i));
      const quoted = /^\[(?:"([^"\\]*)"|'([^'\\]*)')\]/.exec(text.slice(i));
      if (index) steps.push(Number(index[1]));
      else if (quoted) steps.push(quoted[1] ?? quoted[2]!);
      else return `"[" at character ${i + 1} opens neither an index ([0]) nor a quoted key (["a.b"])`;
      i += (index ?? quoted)![0].length;
    } else {
      // A dot separates steps; the first step has none, and none comes before a bracket.
      if (steps.length > 0) {
        if (c !== '.') return `"${c}" at character ${i + 1} where "." or "[" was expected`;
        i++;
      }
      const key = /^[^.[\]]+/.exec(text.slice(i));
      if (!key) return `a key expected at character ${i + 1}`;
      steps.push(key[0]);
      i += key[0].length;
    }
    if (steps.length > MAX_PATH_STEPS) return `a path of at most ${MAX_PATH_STEPS} steps`;
  }
  return steps;
}

/** What the path reaches in `root`; `found: false` when a step is missing (or walks into a scalar). */
export function evaluatePath(root: unknown, steps: readonly PathStep[]): { found: true; value: unknown } | { found: false } {
  let node = root;
  for (const step of steps) {
    if (typeof step === 'number') {
      if (!Array.isArray(node) || step >= node.length) return { found: false };
      node = node[step];
    } else {
      if (typeof node !== 'object' || node === null || Array.isArray(node) || !Object.hasOwn(node, step)) return { found: false };
      node = (node as Record<string, unknown>)[step];
    }
  }
  return { found: true, value: node };
}
