/**
 * net/certDir.ts - the certificates of a CA directory (OpenSSL's hashed
 * links or plain PEM files), for drivers whose TLS settings name a
 * directory (mysql's tls_CApath, ldap's tls_ca_cert_dir): every regular
 * file holding a PEM certificate, in name order. Unreadable entries are
 * skipped, as OpenSSL's directory lookup skips them.
 *
 * Reads the directory; logs nothing. Throws when the directory itself
 * cannot be read (the caller words the message).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";

export function readCertificateDir(dir: string): Buffer[] {
  const out: Buffer[] = [];
  for (const f of readdirSync(dir).sort()) {
    const p = `${dir}/${f}`;
    try {
      if (!statSync(p).isFile()) continue;
      const data = readFileSync(p);
      if (data.includes("-----BEGIN CERTIFICATE-----")) out.push(data);
    } catch {
      // skipped, as OpenSSL's directory lookup skips unreadable entries
    }
  }
  return out;
}
