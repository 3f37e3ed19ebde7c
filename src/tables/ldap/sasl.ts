/**
 * ldap/sasl.ts - SASL binds (bind = sasl) for the mechanisms this proxymap
 * runs itself: EXTERNAL (the identity of an ldapi:// peer or of a TLS client
 * certificate) and PLAIN (authzid NUL bind_dn NUL bind_pw, RFC 4616). The
 * reference hands the bind to Cyrus SASL (ldap_sasl_interactive_bind_s()
 * with bind_dn as the authentication id, bind_pw, sasl_realm and
 * sasl_authz_id); what it does with these two mechanisms, this does:
 *
 *  - the mechanism: the first of EXTERNAL, PLAIN that sasl_mechs names (or,
 *    when it is empty, that the server lists in supportedSASLMechanisms)
 *    and that can be used here. EXTERNAL needs an identity from the
 *    transport; PLAIN needs an encrypted or local transport (libldap's
 *    default security properties refuse plain-text passwords otherwise).
 *    None usable: LDAP_AUTH_UNKNOWN (-6), as the reference reports it.
 *  - sasl_realm means nothing to either mechanism; sasl_minssf is not
 *    enforced by the reference's library for them either.
 *
 * Other mechanisms (DIGEST-MD5, SCRAM-*, GSSAPI, ...) are not implemented:
 * a table that names only those is a configuration error (CONFIG, with a
 * log line saying so), and one that leaves the choice to a server offering
 * none of ours fails the same way at bind time.
 *
 * Logs nothing itself; returns what to log.
 */
import { Ldap } from "./errors";
import { SASL_MECHANISMS, type LdapConfig } from "./config";
import type { LdapConnection } from "./connection";

/** sasl_mechs names no mechanism this proxymap can run: the CONFIG text, else undefined. */
export function unsupportedSasl(cfg: LdapConfig): string | undefined {
  const mechs = cfg.sasl?.mechs ?? [];
  if (mechs.length === 0 || mechs.some((m) => (SASL_MECHANISMS as readonly string[]).includes(m.toUpperCase()))) return undefined;
  return `ldap:${cfg.name}: SASL mechanism ${mechs.join(" ")} is not supported by this proxymap (it does ${SASL_MECHANISMS.join(" and ")})`;
}

/** The server's supportedSASLMechanisms (root DSE), or a result code. */
async function offeredByServer(conn: LdapConnection, timeoutMs: number): Promise<string[] | number> {
  const r = await conn.search({ base: "", scope: 0, deref: 0, sizeLimit: 0, timeLimit: Math.max(1, Math.ceil(timeoutMs / 1000)), filter: "(objectclass=*)", attrs: ["supportedSASLMechanisms"] }, timeoutMs);
  if (r.code !== Ldap.SUCCESS) return r.code;
  return r.entries.flatMap((e) => e.attrs.filter((a) => a.type.toLowerCase() === "supportedsaslmechanisms").flatMap((a) => a.values));
}

/** Bind with SASL; the result code, or the text of a configuration error. */
export async function saslBind(conn: LdapConnection, cfg: LdapConfig, timeoutMs: number): Promise<{ code: number } | { config: string }> {
  const s = cfg.sasl!;
  let offered = s.mechs.map((m) => m.toUpperCase());
  if (offered.length === 0) {
    const got = await offeredByServer(conn, timeoutMs);
    if (typeof got === "number") return { code: got };
    offered = got.map((m) => m.toUpperCase());
    if (!offered.some((m) => (SASL_MECHANISMS as readonly string[]).includes(m))) {
      return { config: `ldap:${cfg.name}: the server offers SASL mechanisms ${offered.join(" ") || "(none)"}; this proxymap does ${SASL_MECHANISMS.join(" and ")}` };
    }
  }
  if (offered.includes("EXTERNAL") && conn.external) {
    const r = await conn.bindSasl("EXTERNAL", Buffer.from(s.authzId, "latin1"), timeoutMs);
    return { code: r.code };
  }
  if (offered.includes("PLAIN") && conn.ssf > 0) {
    const creds = Buffer.from(`${s.authzId}\0${cfg.bindDn}\0${cfg.bindPw}`, "latin1");
    const r = await conn.bindSasl("PLAIN", creds, timeoutMs);
    return { code: r.code };
  }
  // The reference's SASL library would go on with a mechanism of the server's list that it has and
  // we lack (DIGEST-MD5, SCRAM-*): we cannot follow it there.
  const theirs = offered.filter((m) => !["EXTERNAL", "PLAIN", "ANONYMOUS", "LOGIN"].includes(m));
  if (s.mechs.length === 0 && theirs.length > 0) {
    return { config: `ldap:${cfg.name}: no SASL mechanism this proxymap does (${SASL_MECHANISMS.join(" and ")}) can be used on this connection; the server also offers ${theirs.join(" ")}, which this proxymap does not implement` };
  }
  return { code: Ldap.AUTH_UNKNOWN };
}
