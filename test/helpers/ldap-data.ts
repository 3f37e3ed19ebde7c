/**
 * ldap-data.ts - the directory the LDAP tests look things up in, shaped like
 * a real mail directory (users, aliases, static and dynamic groups), with
 * standard schemas only: inetOrgPerson + inetLocalMailRecipient (misc.schema:
 * mailLocalAddress is the address a recipient answers to, mailRoutingAddress
 * a forwarding address), groupOfNames with DN members, groupOfURLs
 * (dyngroup.schema) with LDAP-URL members, alias entries, a referral.
 *
 * What each part is for:
 *  - people: one-to-many (bob has two mail values), shared aliases
 *    (sales@ is on alice and dave: two entries), a terminal attribute
 *    (carol, opsa forward with mailRoutingAddress), values that need filter
 *    escaping (a*b@, p(x)@, b\s@; axb@ would match a*b@ unescaped),
 *    non-ASCII values (joerg's cn and description), an entry with no mail
 *    (nomail@), values without '@' or with '%'.
 *  - groups: nested (staff -> devs -> bob, carol), a missing member DN
 *    (ghost), a chain three deep (chain@: l1 -> l2 -> l3 -> alice), a loop,
 *    a group with a leaf attribute followed in the same result by a user
 *    (team@: the second entry's leaf value is dropped by the reference).
 *  - URL groups: scope one and sub, attributes intersected with the table's,
 *    none in common (nopert@), a malformed URL (badurl@), a base that does
 *    not exist (nobase@), a host that is ignored, a terminal entry followed
 *    by a non-terminal one in one result (ops@).
 *  - ou=aliases (dereference), ou=hidden (no access: its base is "not
 *    found"), ou=private (only cn=postfix,ou=services may read it), ou=remote
 *    (a referral back to ou=people on the same server).
 *
 * Pure: builds LDIF text.
 */

export const BASE = "dc=example,dc=com";
export const PEOPLE = `ou=people,${BASE}`;
export const GROUPS = `ou=groups,${BASE}`;
export const SERVICE_DN = `cn=postfix,ou=services,${BASE}`;
export const SERVICE_PW = "postfix pw";

/** One LDIF attribute line; base64 when LDIF requires it (non-ASCII, leading space/colon/<). */
function line(name: string, value: string): string {
  const safe = /^[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b\x0c\x0e-\x7f]*$/.test(value) && !value.endsWith(" ");
  return safe ? `${name}: ${value}` : `${name}:: ${Buffer.from(value, "utf8").toString("base64")}`;
}

type Attrs = Array<[string, string | string[]]>;

function entry(dn: string, attrs: Attrs): string {
  const lines = [line("dn", dn)];
  for (const [name, v] of attrs) for (const value of Array.isArray(v) ? v : [v]) lines.push(line(name, value));
  return lines.join("\n") + "\n";
}

function person(uid: string, attrs: Attrs): string {
  return entry(`uid=${uid},${PEOPLE}`, [
    ["objectClass", ["inetOrgPerson", "inetLocalMailRecipient"]],
    ["uid", uid],
    ["cn", uid],
    ["sn", uid],
    ...attrs,
  ]);
}

function group(cn: string, members: string[], attrs: Attrs = []): string {
  return entry(`cn=${cn},${GROUPS}`, [
    ["objectClass", ["groupOfNames", "inetLocalMailRecipient"]],
    ["cn", cn],
    ["member", members],
    ...attrs,
  ]);
}

function urlGroup(cn: string, urls: string[], attrs: Attrs = []): string {
  return entry(`cn=${cn},${GROUPS}`, [
    ["objectClass", ["groupOfURLs", "inetLocalMailRecipient"]],
    ["cn", cn],
    ["memberURL", urls],
    ...attrs,
  ]);
}

const u = (uid: string) => `uid=${uid},${PEOPLE}`;
const g = (cn: string) => `cn=${cn},${GROUPS}`;

/** The mail directory (ports are needed for the referral). */
export function mailDirectoryLdif(s: { port: number }): string {
  const out: string[] = [];
  out.push(entry(BASE, [["objectClass", ["dcObject", "organization"]], ["dc", "example"], ["o", "Example"]]));
  for (const ou of ["people", "groups", "services", "aliases", "hidden", "private"]) {
    out.push(entry(`ou=${ou},${BASE}`, [["objectClass", "organizationalUnit"], ["ou", ou]]));
  }
  out.push(
    entry(SERVICE_DN, [["objectClass", ["applicationProcess", "simpleSecurityObject"]], ["cn", "postfix"], ["userPassword", SERVICE_PW]]),
    person("alice", [["mail", "alice@example.com"], ["mailLocalAddress", ["alice@example.com", "alice.smith@example.com", "postmaster@example.com", "sales@example.com"]], ["departmentNumber", "sales"], ["description", "Alice Smith"]]),
    person("bob", [["mail", ["bob@example.com", "bob@mail.example.com"]], ["mailLocalAddress", ["bob@example.com", "Bob.Builder@Example.COM"]], ["departmentNumber", "dev"]]),
    person("carol", [["mail", "carol@example.com"], ["mailLocalAddress", "carol@example.com"], ["mailRoutingAddress", "carol@elsewhere.org"], ["departmentNumber", "dev"]]),
    person("dave", [["mail", "dave@example.com"], ["mailLocalAddress", ["dave@example.com", "sales@example.com"]], ["departmentNumber", "sales"], ["mailHost", "mx.example.com"]]),
    person("opsa", [["mail", "opsa@example.com"], ["mailLocalAddress", "opsa@example.com"], ["mailRoutingAddress", "opsa@forward.example.net"], ["departmentNumber", "ops"]]),
    person("opsb", [["mail", "opsb@example.com"], ["mailLocalAddress", "opsb@example.com"], ["departmentNumber", "ops"]]),
    person("star", [["mail", "star@example.com"], ["mailLocalAddress", "a*b@example.com"]]),
    person("axb", [["mail", "axb@example.com"], ["mailLocalAddress", "axb@example.com"]]),
    person("paren", [["mail", "paren@example.com"], ["mailLocalAddress", "p(x)@example.com"]]),
    person("bslash", [["mail", "bslash@example.com"], ["mailLocalAddress", "b\\s@example.com"]]),
    person("joerg", [["cn", "Jörg Müller"], ["mail", "joerg@example.com"], ["mailLocalAddress", "joerg@example.com"], ["description", "Grüße aus Köln"], ["departmentNumber", "intl"]]),
    person("multi", [["mail", ["m1@example.com", "m2@example.com", "m3@example.com", "m4@example.com"]], ["mailLocalAddress", "multi@example.com"]]),
    person("eve", [["mail", "eve@example.org"], ["mailLocalAddress", "eve@example.org"]]),
    person("nomail", [["mailLocalAddress", "nomail@example.com"]]),
    person("pct", [["mail", "50%off@example.com"], ["mailLocalAddress", "pct@example.com"]]),
    person("atless", [["mail", "postmaster"], ["mailLocalAddress", "atless@example.com"]]),
    person("sub", [["mail", "sub@mail.example.com"], ["mailLocalAddress", "user@mail.example.com"]]),
  );
  out.push(
    group("staff", [u("alice"), u("bob"), g("devs"), u("ghost")], [["mailLocalAddress", "staff@example.com"]]),
    group("devs", [u("bob"), u("carol")], [["mailLocalAddress", "devs@example.com"]]),
    group("all", [g("staff"), g("sales")], [["mailLocalAddress", "all@example.com"]]),
    group("l1", [g("l2")], [["mailLocalAddress", "chain@example.com"]]),
    group("l2", [g("l3")]),
    group("l3", [u("alice")]),
    group("loop", [g("loop"), u("dave")], [["mailLocalAddress", "loop@example.com"]]),
    group("ghosts", [u("ghost2")], [["mailLocalAddress", "ghosts@example.com"]]),
    group("team", [u("dave")], [["mailLocalAddress", "team@example.com"], ["mailRoutingAddress", "team-owner@example.com"]]),
    urlGroup("sales", [`ldap:///${PEOPLE}??one?(departmentNumber=sales)`], [["mailLocalAddress", "sales-list@example.com"]]),
    urlGroup("devurl", [`ldap://ignored.invalid:999/${PEOPLE}?mail,mailRoutingAddress?sub?(departmentNumber=dev)`], [["mailLocalAddress", "dev-list@example.com"]]),
    urlGroup("nopert", [`ldap:///${PEOPLE}?uid,cn?sub?(departmentNumber=dev)`], [["mailLocalAddress", "nopert@example.com"]]),
    urlGroup("badurl", [`ldap:///${PEOPLE}??bogus?(uid=x)`], [["mailLocalAddress", "badurl@example.com"]]),
    urlGroup("nobase", [`ldap:///ou=nowhere,${BASE}??sub?(uid=*)`], [["mailLocalAddress", "nobase@example.com"]]),
    urlGroup("ops", [`ldap:///${PEOPLE}??one?(departmentNumber=ops)`], [["mailLocalAddress", "ops@example.com"]]),
    urlGroup("everyone", [`ldap:///${PEOPLE}??sub?(objectClass=inetOrgPerson)`], [["mailLocalAddress", "everyone@example.com"]]),
    urlGroup("urlbase", [`ldap:///${u("alice")}`, `ldap:///${u("eve")}??base`], [["mailLocalAddress", "urlbase@example.com"]]),
    urlGroup("urlgroups", [`ldap:///${GROUPS}??one?(cn=devs)`], [["mailLocalAddress", "urlgroups@example.com"]]),
    urlGroup("badfilter", [`ldap:///${PEOPLE}??sub?(uid=bob`], [["mailLocalAddress", "badfilter@example.com"]]),
  );
  // After the groups, so that a subtree search returns the group first.
  out.push(person("teamlead", [["mail", "teamlead@example.com"], ["mailLocalAddress", "team@example.com"], ["mailRoutingAddress", "teamlead@forward.example.net"]]));
  out.push(
    entry(`uid=al,ou=aliases,${BASE}`, [["objectClass", ["alias", "extensibleObject"]], ["uid", "al"], ["aliasedObjectName", u("alice")]]),
    entry(`uid=secret,ou=hidden,${BASE}`, [["objectClass", ["account", "inetLocalMailRecipient"]], ["uid", "secret"], ["mailLocalAddress", "secret@example.com"]]),
    person("priv", [["mail", "priv@example.com"], ["mailLocalAddress", "priv@example.com"]]).replace(`,${PEOPLE}`, `,ou=private,${BASE}`),
    entry(`ou=remote,${BASE}`, [["objectClass", ["referral", "extensibleObject"]], ["ou", "remote"], ["ref", `ldap://127.0.0.1:${s.port}/${PEOPLE}`]]),
  );
  return out.join("\n");
}

/** Keys worth looking up in the mail directory (found, not found, and every special case). */
export const MAIL_KEYS: readonly string[] = [
  "alice@example.com",
  "ALICE@Example.COM",
  "alice.smith@example.com",
  "postmaster@example.com",
  "sales@example.com",
  "bob@example.com",
  "bob.builder@example.com",
  "carol@example.com",
  "dave@example.com",
  "opsa@example.com",
  "opsb@example.com",
  "a*b@example.com",
  "a*@example.com",
  "*",
  "*@example.com",
  "axb@example.com",
  "p(x)@example.com",
  "b\\s@example.com",
  "joerg@example.com",
  "Jörg Müller",
  "multi@example.com",
  "eve@example.org",
  "nomail@example.com",
  "pct@example.com",
  "atless@example.com",
  "user@mail.example.com",
  "staff@example.com",
  "devs@example.com",
  "all@example.com",
  "chain@example.com",
  "loop@example.com",
  "ghosts@example.com",
  "team@example.com",
  "sales-list@example.com",
  "dev-list@example.com",
  "nopert@example.com",
  "badurl@example.com",
  "nobase@example.com",
  "ops@example.com",
  "everyone@example.com",
  "urlbase@example.com",
  "urlgroups@example.com",
  "badfilter@example.com",
  "secret@example.com",
  "priv@example.com",
  "nosuch@example.com",
  "alice",
  "bob",
  "@example.com",
  "alice@",
  "",
  "a\\2Ab@example.com",
  ")(uid=*",
  "x@y@example.com",
];

/**
 * A bulk subtree for load and slow searches: ou=bulk with `n` people
 * (uid=uN, mailLocalAddress uN@bulk.example.com, a description to scan
 * for). A substring filter on description has no index: slapd reads every
 * entry, so such a search is slow while equality searches stay fast.
 */
export function bulkLdif(n: number): string {
  const out = [entry(`ou=bulk,${BASE}`, [["objectClass", "organizationalUnit"], ["ou", "bulk"]])];
  for (let i = 0; i < n; i++) {
    out.push(
      entry(`uid=u${i},ou=bulk,${BASE}`, [
        ["objectClass", ["inetOrgPerson", "inetLocalMailRecipient"]],
        ["uid", `u${i}`],
        ["cn", `User ${i}`],
        ["sn", `${i}`],
        ["mail", `u${i}@bulk.example.com`],
        ["mailLocalAddress", `u${i}@bulk.example.com`],
        ["description", `bulk user number ${i} of ${n}, ${i % 7 === 0 ? "seventh" : "plain"} entry with some text to scan`],
      ]),
    );
  }
  return out.join("\n");
}

/**
 * The conformance suite's two entries (alpha = "1", beta = "two words"),
 * keyed by labeledURI (case-exact matching, so only FOLD_FIX finds them
 * under upper-case keys) with the value in description.
 */
export function conformanceLdif(): string {
  const out = [entry(`ou=conformance,${BASE}`, [["objectClass", "organizationalUnit"], ["ou", "conformance"]])];
  for (const [k, v] of [["alpha", "1"], ["beta", "two words"]]) {
    out.push(entry(`cn=${k},ou=conformance,${BASE}`, [["objectClass", ["applicationProcess", "labeledURIObject"]], ["cn", k], ["labeledURI", k], ["description", v]]));
  }
  return out.join("\n");
}
