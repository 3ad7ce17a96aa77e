// Records every module a process loads, one URL a line (file: and node:), in the file named by
// TRACE_MODULES_FILE:
//   TRACE_MODULES_FILE=/tmp/m.txt node --import tsx --import ./tests/helpers/trace-modules.mjs gateway/cli.ts --version
// Tests use it to check that a command or a site does not load packages it does not use.
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import process from 'node:process';
import { pathToFileURL } from 'node:url';
import { isMainThread } from 'node:worker_threads';

let out;

/** Runs in the module hooks' thread: import statements and import() calls, ESM or CommonJS targets. */
export function initialize(data) {
  out = data.out;
}

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  appendFileSync(out, `${resolved.url}\n`);
  return resolved;
}

if (isMainThread && process.env.TRACE_MODULES_FILE) {
  const file = process.env.TRACE_MODULES_FILE;
  register(import.meta.url, { data: { out: file } });
  // CommonJS packages load their own dependencies with require(), which the hook above does not see.
  const cache = createRequire(import.meta.url).cache;
  process.on('exit', () =>
    appendFileSync(
      file,
      Object.keys(cache)
        .map((f) => `${pathToFileURL(f).href}\n`)
        .join(''),
    ),
  );
}
