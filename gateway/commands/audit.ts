// `gateway audit verify`: check the audit journal's chain and name the first entry that breaks it.
import { join, resolve } from 'node:path';
import { demoSite, EXIT, loadOrReport } from './common.js';

export async function auditVerifyCommand(o: { config?: string | undefined; file?: string | undefined }): Promise<number> {
  let file = o.file;
  if (!file) {
    const config = await loadOrReport(o.config ?? demoSite());
    if (!config) return EXIT.invalid;
    file = join(resolve(config.gateway.data_dir), 'audit.jsonl');
  }
  const { verifyJournal } = await import('../http/audit.js');
  const r = verifyJournal(file);
  if (r.ok) {
    process.stdout.write(`${file}: ${r.entries} entries, the chain is intact\n`);
    return EXIT.ok;
  }
  process.stderr.write(`${file}: line ${r.line} breaks the chain: ${r.reason} (${r.entries} entries before it are intact) (GW_ERR_AUDIT)\n`);
  return EXIT.failure;
}
