import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Test certificates made by openssl in `dir`: `<name>.key` (PKCS#8, unencrypted) and `<name>.crt` (PEM). */
function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A self-signed CA, valid two days. */
export function makeCa(dir: string, name: string): void {
  openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=sluice test ${name}`);
}

/** A certificate signed by CA `ca`, for `subjectAltName` (e.g. IP:127.0.0.1,DNS:localhost) when given. */
export function signCertificate(dir: string, name: string, ca: string, subjectAltName?: string): void {
  openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  const ext = subjectAltName ? ['-extfile', `${name}.ext`] : [];
  if (subjectAltName) writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${subjectAltName}\n`);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', ...ext);
}
