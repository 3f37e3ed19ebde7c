/**
 * ldap-tables.ts - the LDAP table configurations the tests look up through
 * (the unit oracle test, the differential test, the end-to-end test), one
 * .cf file each, against a PrivateSlapd loaded with ldap-data.ts:
 *
 *   plain, special (DN and URL members), leaf, terminal, termleaf (both),
 *   urlonly, domain (literal list) and domainfile, one (scope one),
 *   base (key-built base, scope base), hidden (a fixed base nobody may see),
 *   sizelimit, explimit, reclimit, bound (simple bind), anonymous (bind = no),
 *   badpw, format (result_format with %d/%u/%U), parts (%1 %2 in the filter),
 *   nonascii (cn and description), deref0 / deref3 (aliases), referral and
 *   chase (ou=remote), badfilter (a template libldap refuses), multihost (a
 *   dead server first), v2 (version = 2), ldapiext (SASL EXTERNAL over
 *   ldapi), ldapiplain (SASL PLAIN over ldapi), starttls and ldaps (test CA,
 *   tls_require_cert = yes), cache (the ignored cache fields).
 *
 * Pure: returns file texts; the caller writes them (with an old mtime).
 */
import { BASE, PEOPLE, SERVICE_DN, SERVICE_PW } from "./ldap-data";
import type { PrivateSlapd } from "./slapd";

export interface LdapTableSet {
  /** name -> .cf text */
  files: Record<string, string>;
  /** Extra files (the domain list). */
  extra: Record<string, string>;
}

/** The configurations; `dir` is where the files will be (for the domain file's path). */
export function ldapTableFiles(s: PrivateSlapd, dir: string): LdapTableSet {
  const tcp = `server_host = 127.0.0.1:${s.port}`;
  const base = `search_base = ${BASE}`;
  const q = "query_filter = (mailLocalAddress=%s)";
  const special = "special_result_attribute = member, memberURL";
  const t = (...lines: string[]) => lines.join("\n") + "\n";
  const files: Record<string, string> = {
    plain: t(tcp, base, q, "result_attribute = mail"),
    special: t(tcp, base, q, "result_attribute = mail", special),
    leaf: t(tcp, base, q, "result_attribute = mail", "leaf_result_attribute = mailRoutingAddress", special),
    terminal: t(tcp, base, q, "result_attribute = mail", "terminal_result_attribute = mailRoutingAddress", special),
    termleaf: t(tcp, base, q, "result_attribute = mail", "terminal_result_attribute = mailRoutingAddress", "leaf_result_attribute = mailHost", special),
    urlonly: t(tcp, base, q, "result_attribute = mail, mailRoutingAddress", "special_result_attribute = memberURL"),
    domain: t(tcp, base, q, "result_attribute = mail", special, "domain = example.org, !mail.example.com, Example.COM"),
    domainfile: t(tcp, base, q, "result_attribute = mail", `domain = ${dir}/domains`),
    one: t(tcp, `search_base = ${PEOPLE}`, "scope = one", q, "result_attribute = mail"),
    base: t(tcp, `search_base = uid=%u,${PEOPLE}`, "scope = base", "query_filter = (objectClass=*)", "result_attribute = mail, mailLocalAddress"),
    hidden: t(tcp, `search_base = ou=hidden,${BASE}`, q, "result_attribute = mailLocalAddress"),
    sizelimit: t(tcp, base, q, "result_attribute = mail", special, "size_limit = 1"),
    explimit: t(tcp, base, q, "result_attribute = mail", special, "expansion_limit = 3"),
    reclimit: t(tcp, base, q, "result_attribute = mail", special, "recursion_limit = 3"),
    bound: t(tcp, base, q, "result_attribute = mail", `bind_dn = ${SERVICE_DN}`, `bind_pw = ${SERVICE_PW}`),
    anonymous: t(tcp, base, q, "result_attribute = mail", "bind = no"),
    badpw: t(tcp, base, q, "result_attribute = mail", `bind_dn = ${SERVICE_DN}`, "bind_pw = wrong"),
    format: t(tcp, base, q, "result_attribute = mail", special, "result_format = %u+%U@relay.%d"),
    parts: t(tcp, base, "query_filter = (&(mailLocalAddress=%u@%2.%1)(objectClass=*))", "result_attribute = mail", "result_format = smtp:[%s]"),
    nonascii: t(tcp, base, "query_filter = (|(cn=%s)(description=%s))", "result_attribute = description, cn, uid"),
    deref0: t(tcp, `search_base = ou=aliases,${BASE}`, q, "result_attribute = mail", "dereference = 0"),
    deref3: t(tcp, `search_base = ou=aliases,${BASE}`, q, "result_attribute = mail", "dereference = 3"),
    referral: t(tcp, `search_base = ou=remote,${BASE}`, q, "result_attribute = mail"),
    chase: t(tcp, base, q, "result_attribute = mail", "chase_referrals = yes"),
    chasebase: t(tcp, `search_base = ou=remote,${BASE}`, q, "result_attribute = mail", "chase_referrals = yes"),
    badfilter: t(tcp, base, "query_filter = (mail=%s", "result_attribute = mail"),
    multihost: t("server_host = 127.0.0.1:1, ldap://127.0.0.1:" + s.port, base, q, "result_attribute = mail", "timeout = 5"),
    // Under ou=people: a v2 search over the referral object is "partial results" (see the README).
    v2: t(tcp, `search_base = ${PEOPLE}`, q, "result_attribute = mail", "version = 2"),
    ldapiext: t(`server_host = ${s.ldapiUrl}`, base, q, "result_attribute = mail", "bind = sasl", "sasl_mechs = EXTERNAL"),
    ldapiplain: t(`server_host = ${s.ldapiUrl}`, base, q, "result_attribute = mail", "bind = sasl", "sasl_mechs = PLAIN", "bind_dn = postfix", `bind_pw = ${SERVICE_PW}`),
    starttls: t(`server_host = ldap://127.0.0.1:${s.port}`, base, q, "result_attribute = mail", "start_tls = yes", `tls_ca_cert_file = ${s.caFile}`, "tls_require_cert = yes"),
    ldaps: t(`server_host = ldaps://127.0.0.1:${s.sslPort}`, base, q, "result_attribute = mail", `tls_ca_cert_file = ${s.caFile}`, "tls_require_cert = yes"),
    cache: t(tcp, base, q, "result_attribute = mail", "cache = yes", "cache_expiry = 30", "cache_size = 32256"),
  };
  return { files, extra: { domains: "# domains that are looked up\nexample.com\n!mail.example.com\nexample.org\n" } };
}
