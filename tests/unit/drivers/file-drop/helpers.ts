// Reading a result file as the driver does (both passes' reader), from a connection written as in a site file.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileDropConnectionSchema, type FileDropConnection } from '../../../../drivers/file-drop/schema.js';
import { fileRecords, type FileDigest } from '../../../../drivers/file-drop/reader.js';
import type { ResultDraft } from '../../../../drivers/file-drop/mapping.js';

export function connection(extra: Record<string, unknown>): FileDropConnection {
  return fileDropConnectionSchema.parse({ id: 'files', type: 'file-drop', folder: '/tmp/none', pattern: '*', ...extra });
}

/** A file with this content in a new temporary folder; its path. */
export function fileWith(name: string, content: string | Buffer): string {
  const path = join(mkdtempSync(join(tmpdir(), 'gw-file-drop-')), name);
  writeFileSync(path, content);
  return path;
}

export const FILE_TIME = Date.parse('2026-12-03T02:00:00Z');

/** Every result of the file, each with its record index; throws what the reader throws. */
export async function read(
  path: string,
  c: FileDropConnection,
): Promise<{ results: Array<ResultDraft & { index: number }>; digest: FileDigest }> {
  const it = fileRecords(path, c, { instrument: 'LAB-1', fileTime: FILE_TIME });
  const results: Array<ResultDraft & { index: number }> = [];
  for (;;) {
    const step = await it.next();
    if (step.done) return { results, digest: step.value };
    for (const r of step.value) for (const d of r.results) results.push({ ...d, index: r.index });
  }
}

/** The reason a file is rejected with (`line 3: ...`); fails when it is not rejected. */
export async function reasonOf(path: string, c: FileDropConnection): Promise<string> {
  try {
    await read(path, c);
  } catch (err) {
    if (err instanceof Error && err.name === 'FileProblem') return (err as Error & { reason: string }).reason;
    throw err;
  }
  throw new Error('the file was not rejected');
}
