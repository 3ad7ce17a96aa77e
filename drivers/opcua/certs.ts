// The gateway's OPC UA certificate store (data folder /pki): what is trusted, what was rejected,
// and moving a rejected server certificate to trusted.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { convertPEMtoDER, exploreCertificate, makeSHA1Thumbprint } from 'node-opcua-crypto';

export interface StoredCertificate {
  status: 'trusted' | 'rejected';
  thumbprint: string;
  subject: string;
  notAfter: string;
  file: string;
}

const folders = (pkiDir: string) => ({ trusted: join(pkiDir, 'trusted', 'certs'), rejected: join(pkiDir, 'rejected') });

function describe(file: string, status: StoredCertificate['status']): StoredCertificate {
  const der = convertPEMtoDER(readFileSync(file, 'utf8'));
  const info = exploreCertificate(der);
  return {
    status,
    thumbprint: makeSHA1Thumbprint(der).toString('hex'),
    subject: info.tbsCertificate.subject.commonName ?? '',
    notAfter: info.tbsCertificate.validity.notAfter.toISOString(),
    file,
  };
}

export function listCertificates(pkiDir: string): StoredCertificate[] {
  const out: StoredCertificate[] = [];
  for (const [status, dir] of Object.entries(folders(pkiDir)) as Array<[StoredCertificate['status'], string]>) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).filter((n) => /\.(pem|der)$/.test(n))) out.push(describe(join(dir, f), status));
  }
  return out;
}

/** Moves a rejected certificate (by thumbprint, or a unique prefix of it) to trusted. */
export function trustCertificate(pkiDir: string, thumbprint: string): StoredCertificate {
  const wanted = thumbprint.toLowerCase().replace(/[^0-9a-f]/g, '');
  const matches = listCertificates(pkiDir).filter((c) => wanted.length >= 6 && c.thumbprint.startsWith(wanted));
  const rejected = matches.filter((c) => c.status === 'rejected');
  if (matches.length === 0) throw new Error(`No certificate with thumbprint ${thumbprint} in ${pkiDir}`);
  if (rejected.length === 0) return matches[0]!;
  if (rejected.length > 1) throw new Error(`Thumbprint ${thumbprint} is ambiguous; give more of it`);
  const { trusted } = folders(pkiDir);
  mkdirSync(trusted, { recursive: true });
  const target = join(trusted, rejected[0]!.file.split('/').pop()!);
  renameSync(rejected[0]!.file, target);
  return { ...rejected[0]!, status: 'trusted', file: target };
}

/** Puts a certificate file among the trusted ones (the simulators the gateway starts itself). */
export function addTrusted(pkiDir: string, certificateFile: string): void {
  const { trusted } = folders(pkiDir);
  mkdirSync(trusted, { recursive: true });
  const c = describe(certificateFile, 'trusted');
  copyFileSync(certificateFile, join(trusted, `${c.subject.replace(/[^\w@.-]/g, '_')}[${c.thumbprint}].pem`));
}
