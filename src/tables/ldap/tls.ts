/**
 * ldap/tls.ts - the TLS side of an LDAP table (start_tls, ldaps:// servers):
 * the tls_* settings turned into Node TLS options, failing where the
 * reference's dict_ldap_set_tls_options() fails with Debian's libldap
 * (GnuTLS):
 *
 *  - tls_random_file set: libldap refuses the option on a connection handle;
 *    the reference warns and the lookup is RETRY;
 *  - a CA file, certificate or key that cannot be read or used, or a cipher
 *    setting nobody understands: the new TLS context cannot be made ("Unable
 *    to allocate new TLS context"), RETRY. A CA directory that cannot be
 *    read is ignored, as GnuTLS ignores it;
 *  - tls_require_cert = yes: the chain and the server's name (the URL's
 *    host) are verified; no: nothing is verified.
 *
 * tls_cipher_suite is a GnuTLS priority string for the reference ("NORMAL",
 * "SECURE256:-VERS-TLS1.0"); Node speaks OpenSSL cipher lists. A value
 * Node accepts is used; a GnuTLS priority string is logged once and
 * ignored (Node's defaults apply); anything else fails as above.
 *
 * Reads the certificate files at connect time (each new connection, so
 * renewed files are picked up). Logs the once-per-table cipher notice.
 */
import { readFileSync } from "node:fs";
import { createSecureContext, type ConnectionOptions } from "node:tls";
import { msg } from "../../log/msg";
import { readCertificateDir } from "../net/certDir";
import type { TlsSettings } from "./config";

const SET = "dict_ldap_set_tls_options";
const NEWCTX_FAILED = `${SET}: Unable to allocate new TLS context -1: Can't contact LDAP server`;

/** GnuTLS priority strings: a keyword, then :+/-/! modifiers. */
const GNUTLS_PRIORITY = /^(NORMAL|PFS|SECURE128|SECURE192|SECURE256|SUITEB128|SUITEB192|LEGACY|PERFORMANCE|NONE|SYSTEM|@\S+)([:+!-].*)?$/i;

const noticed = new Set<string>();

/** The TLS options for a connection, or the reference's warning when it would fail. */
export function tlsOptions(name: string, t: TlsSettings): { options: ConnectionOptions } | { warning: string } {
  if (t.randomFile) return { warning: `${SET}: Unable to set tls_random_file to ${t.randomFile}: -1: Can't contact LDAP server` };
  const o: ConnectionOptions = { rejectUnauthorized: t.requireCert };
  try {
    const cas: Buffer[] = [];
    if (t.caCertFile) cas.push(readFileSync(t.caCertFile));
    if (t.caCertDir) {
      try {
        cas.push(...readCertificateDir(t.caCertDir));
      } catch {
        // GnuTLS ignores a CA directory it cannot read
      }
    }
    if (cas.length) o.ca = cas;
    if (t.cert) o.cert = readFileSync(t.cert);
    if (t.key) o.key = readFileSync(t.key);
    if (t.cipherSuite) {
      try {
        createSecureContext({ ciphers: t.cipherSuite });
        o.ciphers = t.cipherSuite;
      } catch {
        if (!GNUTLS_PRIORITY.test(t.cipherSuite)) return { warning: NEWCTX_FAILED };
        if (!noticed.has(name)) {
          noticed.add(name);
          msg.info(`ldap:${name}: tls_cipher_suite ${t.cipherSuite} is a GnuTLS priority string; using the TLS library's default ciphers`);
        }
      }
    }
    createSecureContext(o);
  } catch {
    return { warning: NEWCTX_FAILED };
  }
  if (!t.requireCert) o.checkServerIdentity = () => undefined;
  return { options: o };
}
