// `gateway audit verify`: check the audit journal's chain and name the first entry that breaks it.
import { dirname, join, resolve } from 'node:path';
import { demoSite, EXIT, loadOrReport } from './common.js';

export async function auditVerifyCommand(o: { config?: string | undefined; file?: string | undefined }): Promise<number> {
  let file = o.file;
  if (!file) {
    const config = await loadOrReport(o.config ?? demoSite());
    if (!config) return EXIT.invalid;
    file = join(resolve(config.gateway.data_dir), 'audit.jsonl');
  }
  const { checkJournal } = await import('../audit.js');
  const r = checkJournal(file);
  // What verify accepted but a reader should know (old unkeyed entries, repairs, files rotated away).
  for (const note of r.notes) process.stdout.write(`note: ${note}\n`);
  if (r.ok) {
    process.stdout.write(`${file}: ${r.entries} entries${r.files.length > 1 ? ` in ${r.files.length} files` : ''}, the chain is intact\n`);
    return EXIT.ok;
  }
  // The break may be in a rolled-over file (audit.<n>.jsonl) beside the one named.
  process.stderr.write(
    `${join(dirname(file), r.file)}: line ${r.line} breaks the chain: ${r.reason} (${r.entries} entries before it are intact) (GW_ERR_AUDIT)\n`,
  );
  return EXIT.failure;
}
