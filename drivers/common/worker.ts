// A worker thread running a module that sits beside its caller, from the source tree and from dist/
// alike: the site-file check (config/check.ts) and the daily report (gateway/report/job.ts) run
// their work there, with a capped heap and none of the gateway's environment.
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Starts `<name>.js` (or `<name>.ts`) of the caller's folder in a worker thread. From dist/ the worker
 * is compiled JavaScript beside the caller; from the source tree it is TypeScript, loaded through tsx
 * registered in the worker itself (a worker does not inherit the parent's module hooks on Node 20,
 * and a test runner's process has none).
 */
export function startSiblingWorker(callerUrl: string, name: string, maxMemoryMb: number): Worker {
  const fromSource = callerUrl.endsWith('.ts');
  const resourceLimits = { maxOldGenerationSizeMb: maxMemoryMb, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 };
  // env: {} gives the worker an empty process.env of its own; the gateway's (its secrets) is never shared with it.
  const common = { env: {}, resourceLimits, stdout: true, stderr: true } as const;
  if (!fromSource) return new Worker(new URL(`./${name}.js`, callerUrl), common);
  // tsx's ESM entry (its CommonJS one registers hooks by a path that only works from CommonJS).
  const tsx =
    typeof import.meta.resolve === 'function'
      ? import.meta.resolve('tsx/esm/api')
      : pathToFileURL(
          createRequire(import.meta.url)
            .resolve('tsx/esm/api')
            .replace(/\.cjs$/, '.mjs'),
        ).href;
  const file = pathToFileURL(fileURLToPath(new URL(`./${name}.ts`, callerUrl))).href;
  const boot = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(file)}); })`;
  return new Worker(boot, { ...common, eval: true });
}
