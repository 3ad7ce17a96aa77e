// `gateway certs list|trust`: the OPC UA certificates of a site's data folder.
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { dataDirOf, EXIT } from './common.js';

export async function certsCommand(
  action: 'list' | 'trust',
  thumbprint: string | undefined,
  siteFile: string | undefined,
): Promise<number> {
  const dataDir = await dataDirOf(siteFile);
  if (!dataDir) return EXIT.invalid;
  const pki = join(dataDir, 'pki');
  const { listCertificates, trustCertificate } = await import('../../drivers/opcua/certs.js');
  const { AuditJournal } = await import('../http/audit.js');
  if (action === 'list') {
    const list = listCertificates(pki);
    if (list.length === 0) process.stdout.write(`No certificates in ${pki}\n`);
    for (const c of list) process.stdout.write(`${c.status.padEnd(8)} ${c.thumbprint}  ${c.subject}  valid until ${c.notAfter}\n`);
    return EXIT.ok;
  }
  // Trusting a certificate is a security decision: the audit journal records who made it.
  const journal = new AuditJournal(join(dataDir, 'audit.jsonl'));
  const who = `os:${userInfo().username}`;
  try {
    const c = trustCertificate(pki, thumbprint!);
    journal.append({ who, action: 'certificate trust', target: c.thumbprint, outcome: 'done', detail: c.subject });
    process.stdout.write(`Trusted ${c.thumbprint} (${c.subject}); the gateway uses it at its next connection attempt\n`);
    return EXIT.ok;
  } catch (err) {
    journal.append({ who, action: 'certificate trust', target: thumbprint!, outcome: `refused: ${(err as Error).message}` });
    process.stderr.write(`${(err as Error).message}\n`);
    return EXIT.failure;
  }
}
