/**
 * ldap-codec.test.ts - the pieces of the LDAP driver that reproduce the
 * reference's client library, checked against that library itself
 * (Debian's libldap-2.5 through bun:ffi, test/helpers/libldap.ts):
 *
 *  - ldap_err2string() texts for every code the library knows and some it
 *    does not;
 *  - ldap_is_ldap_url() and ldap_url_parse() (with the flags the reference
 *    uses for special values and for server lists) over hand-picked URLs
 *    and a seeded random corpus;
 *  - ldap_pvt_put_filter(): the BER bytes of hand-picked and random filter
 *    strings (or the refusal), byte for byte;
 * and, by hand, the RFC 2253 / RFC 2254 quoting the reference applies to
 * search_base and query_filter, the SearchRequest encoding, and
 * attrdesc_subtype() / url_attrs().
 *
 * Needs libldap-2.5-0 (apt-get install libldap-2.5-0; postfix-ldap depends on it).
 */
import { describe, expect, test } from "bun:test";
import { BerWriter } from "ldapts";
import { ldapErrText } from "../../src/tables/ldap/errors";
import { writeFilter, unescapeFilterValue } from "../../src/tables/ldap/filter";
import { isLdapUrl, parseLdapUrl, UrlFlags, hexUnescape } from "../../src/tables/ldap/url";
import { rfc2253Quote, rfc2254Quote } from "../../src/tables/dbCommon/quote";
import { attrSubtype, urlAttributes } from "../../src/tables/ldap/lookup";
import { libErr2string, libIsLdapUrl, libPutFilter, libUrlParse } from "../helpers/libldap";
import { Pick, rng } from "../diff/corpus";

const SEED = Number(process.env.LDAP_CODEC_SEED ?? 20260501);

function ourFilter(s: string): Buffer | undefined {
  const w = new BerWriter();
  w.startSequence(0x30);
  const ok = writeFilter(w, s);
  if (!ok) return undefined;
  w.endSequence();
  // Strip the wrapper sequence (tag + length) that BerWriter needs to close cleanly.
  const all = w.buffer;
  const lenByte = all[1];
  const head = lenByte < 0x80 ? 2 : 2 + (lenByte & 0x7f);
  return all.subarray(head);
}

const show = (s: string) => JSON.stringify(s).replace(/[\x80-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);

describe("ldap_err2string", () => {
  test("every code from -20 to 130 and the extension ranges has the library's text", () => {
    const codes = [...Array.from({ length: 151 }, (_, i) => i - 20), 0x1000, 0x2000, 0x4000, 0x4100, 0x410e, 0x410f, 0x4120, 0x4121, 0x5000, 0x10000, -300];
    const bad = codes.filter((c) => ldapErrText(c) !== libErr2string(c)).map((c) => `${c}: ours ${ldapErrText(c)} / lib ${libErr2string(c)}`);
    expect(bad).toEqual([]);
  });
});

const URLS = [
  "ldap:///ou=people,dc=example,dc=com??one?(departmentNumber=sales)",
  "ldap://host.example:389/dc=x?mail,cn?sub?(uid=%2A)",
  "ldap://ignored.invalid:999/ou=people,dc=example,dc=com?mail,mailRoutingAddress?sub?(departmentNumber=dev)",
  "LDAP://HOST/DC=X",
  "ldaps://h/",
  "ldapi://%2Fvar%2Frun%2Fslapd%2Fldapi/dc=x",
  "ldapi:///dc=x",
  "ldapi://path??dn",
  "pldap://h:1/x",
  "pldaps://h/x",
  "cldap://h/x",
  "<ldap://h/x>",
  "<ldap://h/x",
  "URL:ldap://h/x",
  "<URL:ldap://h/x>",
  "url:LDAP://h/x",
  "ldap://[::1]:389/x",
  "ldap://[::1]/x",
  "ldap://[::1]x/x",
  "ldap://[::1]x:5/x",
  "ldap://[::1/x",
  "ldap://h:/x",
  "ldap://h:abc/x",
  "ldap://h: 12/x",
  "ldap://h:-5/x",
  "ldap://h:0/x",
  "ldap://h:99999999999/x",
  "ldap://h?x",
  "ldap://h:1?x",
  "ldap://h??x",
  "ldap://h",
  "ldap://",
  "ldap:///",
  "ldap:///?",
  "ldap:///??",
  "ldap:///???",
  "ldap:///????",
  "ldap:///?????",
  "ldap:///??bogus",
  "ldap:///??base",
  "ldap:///??BASE",
  "ldap:///??onelevel",
  "ldap:///??subtree",
  "ldap:///??children",
  "ldap:///??subord",
  "ldap:///??subordinate",
  "ldap:///???(a=b)",
  "ldap:///???%00",
  "ldap:///???%",
  "ldap:///???%zz",
  "ldap:///a%2Cb?c%2Cd",
  "ldap:///dc=x?,,?",
  "ldap:///dc=x?,?base?(x=y)?ext1,!crit",
  "ldap:///dc=x????",
  "ldap:///dc=x????,,",
  "ldap:///dc=x????%41",
  "ldap:///dc=x???(a=b)?e?f",
  "ldap:///%",
  "ldap:///ab%4",
  "ldap:///a%00b",
  "ldap://h%41st/x",
  "ldap://%/x",
  "ldap:///uid=alice,ou=people,dc=example,dc=com",
  "http://h/x",
  "ldap:/x",
  "",
  " ldap://h/x",
  "ldap://h/x y",
  "ldap://h/\xe9\xc3\xa9",
];

function sameUrl(s: string, flags: number): string | undefined {
  const a = libUrlParse(s, flags);
  const b = parseLdapUrl(s, flags);
  const norm = (u: typeof a) => (typeof u === "number" ? u : { ...u, scheme: u.scheme?.toLowerCase() ?? null });
  const x = JSON.stringify(norm(a));
  const y = JSON.stringify(typeof b === "number" ? b : { scheme: b.scheme, host: b.host, port: b.port, dn: b.dn, attrs: b.attrs, scope: b.scope, filter: b.filter, exts: b.exts });
  return x === y ? undefined : `${show(s)} flags ${flags}:\n  lib:  ${x}\n  ours: ${y}`;
}

function randomUrl(pk: Pick): string {
  const prefix = pk.one(["ldap://", "ldaps://", "ldapi://", "LDAP://", "<ldap://", "URL:ldap://", "pldap://", "ldap:/", ""]);
  const alphabet = "abcXYZ019:/?,%<>[]=;()*.-! \t#2F41";
  let rest = "";
  const n = pk.range(0, 30);
  for (let i = 0; i < n; i++) rest += pk.chance(0.05) ? pk.bytes(1, 0x80, 0xff) : alphabet[pk.int(alphabet.length)];
  return prefix + rest + (prefix.startsWith("<") && pk.chance(0.5) ? ">" : "");
}

describe("LDAP URLs as libldap reads them", () => {
  test("ldap_is_ldap_url on the hand-picked list", () => {
    for (const u of URLS) expect({ u, ours: isLdapUrl(u) }).toEqual({ u, ours: libIsLdapUrl(u) });
  });

  test("ldap_url_parse (historic defaults) and the server-list flags on the hand-picked list", () => {
    const bad = URLS.flatMap((u) => [sameUrl(u, UrlFlags.HISTORIC), sameUrl(u, UrlFlags.NOEMPTY_HOST | UrlFlags.DEF_PORT)]).filter((x) => x !== undefined);
    expect(bad).toEqual([]);
  });

  test("a seeded random corpus of 4,000 URLs parses alike", () => {
    const pk = new Pick(rng(SEED));
    const bad: string[] = [];
    for (let i = 0; i < 4000; i++) {
      const u = randomUrl(pk);
      if (isLdapUrl(u) !== libIsLdapUrl(u)) bad.push(`is_ldap_url ${show(u)}`);
      const d = sameUrl(u, UrlFlags.HISTORIC);
      if (d) bad.push(d);
    }
    expect(bad.slice(0, 10)).toEqual([]);
  });

  test("%XX unescaping: a bad escape empties the part, %00 ends it", () => {
    expect(hexUnescape("a%41b")).toBe("aAb");
    expect(hexUnescape("a%4")).toBe("");
    expect(hexUnescape("a%zzb")).toBe("");
    expect(hexUnescape("a%00b")).toBe("a");
  });
});

const FILTERS = [
  "(mailLocalAddress=alice@example.com)",
  "mailLocalAddress=alice@example.com",
  "objectclass=*",
  "(objectclass=*)",
  "(mail=*)",
  "(mail=a*)",
  "(mail=*a)",
  "(mail=a*b*c)",
  "(mail=**)",
  "(mail=a**b)",
  "(mail=*a*)",
  "(mail=a\\2Ab@example.com)",
  "(mail=a\\2ab)",
  "(mail=a\\*b)",
  "(mail=a\\(b\\)c)",
  "(mail=a\\\\b)",
  "(mail=a\\b)",
  "(mail=a\\4)",
  "(mail=a\\)",
  "(mail=a(b)",
  "(mail=a)b)",
  "(&(objectClass=person)(mail=x))",
  "(|(mail=a)(mail=b)(mail=c))",
  "(!(mail=a))",
  "(!(mail=a)(mail=b))",
  "(!)",
  "(&)",
  "(|)",
  "(& (a=b) (c=d) )",
  "( &(a=b))",
  "(\t(a=b))",
  " (a=b)",
  "(a=b) ",
  "(a=b))",
  ")(a=b",
  "((a=b))",
  "(a>=5)",
  "(a<=5)",
  "(a~=x)",
  "(a>=*)",
  "(cn:dn:=x)",
  "(cn:caseExactMatch:=x)",
  "(cn:dn:2.5.13.5:=x)",
  "(:dn:2.5.13.5:=x)",
  "(:2.5.13.5:=x)",
  "(:=x)",
  "(cn:=x)",
  "(cn:foo:bar:=x)",
  "(cn:DN:=x)",
  "(cn;lang-en=x)",
  "(cn;=x)",
  "(2.5.4.3=x)",
  "(2.5.4.=x)",
  "(2..5=x)",
  "(1cn=x)",
  "(-cn=x)",
  "(c_n=x)",
  "(=x)",
  "(cn)",
  "(cn=)",
  "(cn=\xc3\xa9\xe9)",
  "(cn=J\xc3\xb6rg M\xc3\xbcller)",
  "",
  "(",
  ")",
  "(a=b",
  "(&(a=b)",
  "(&(a=b)(c=d)",
  "(&a=b)",
  "(uid=bob",
];

function randomFilter(pk: Pick, depth = 0): string {
  const attr = () => pk.one(["cn", "mail", "2.5.4.3", "cn;lang-en", "a-b", "x", "", "1a", "c:dn", "cn:dn:2.5.13.5", ":caseExactMatch"]);
  const val = () => {
    let v = "";
    const n = pk.range(0, 8);
    for (let i = 0; i < n; i++) v += pk.weighted([[10, () => pk.one(["a", "b", "Z", "0"])], [3, () => "*"], [2, () => pk.one(["\\2A", "\\5c", "\\28", "\\*", "\\(", "\\\\", "\\", "\\G1", "\\4"])], [1, () => pk.one(["(", ")", " ", "="])], [1, () => pk.bytes(1, 0x80, 0xff)]] as const)();
    return v;
  };
  if (depth < 3 && pk.chance(0.3)) {
    const op = pk.one(["&", "|", "!"]);
    const n = op === "!" ? pk.weighted([[8, 1], [1, 0], [1, 2]] as const) : pk.range(0, 3);
    let inner = "";
    for (let i = 0; i < n; i++) inner += (pk.chance(0.1) ? " " : "") + randomFilter(pk, depth + 1);
    return `(${op}${inner})`;
  }
  const s = `${attr()}${pk.one(["=", "=", "=", ">=", "<=", "~=", ":="])}${val()}`;
  return pk.chance(0.9) ? `(${s})` : s;
}

describe("search filters encoded as libldap encodes them", () => {
  test("the hand-picked list: same bytes, or refused by both", () => {
    const bad: string[] = [];
    for (const f of FILTERS) {
      const a = libPutFilter(f);
      const b = ourFilter(f);
      if ((a === undefined) !== (b === undefined) || (a && b && !a.equals(b))) bad.push(`${show(f)}: lib ${a?.toString("hex") ?? "refused"} ours ${b?.toString("hex") ?? "refused"}`);
    }
    expect(bad).toEqual([]);
  });

  test("a seeded random corpus of 5,000 filters: same bytes, or refused by both", () => {
    const pk = new Pick(rng(SEED + 1));
    const bad: string[] = [];
    let refused = 0;
    for (let i = 0; i < 5000; i++) {
      const f = randomFilter(pk);
      const a = libPutFilter(f);
      const b = ourFilter(f);
      if (a === undefined) refused++;
      if ((a === undefined) !== (b === undefined) || (a && b && !a.equals(b))) bad.push(`${show(f)}: lib ${a?.toString("hex") ?? "refused"} ours ${b?.toString("hex") ?? "refused"}`);
    }
    console.log(`filters: 5000 random, ${refused} refused by libldap`);
    expect(refused).toBeGreaterThan(200);
    expect(refused).toBeLessThan(4800);
    expect(bad.slice(0, 10)).toEqual([]);
  });

  test("value unescaping: v3 hex pairs and v2 escapes", () => {
    expect(unescapeFilterValue("a\\2Ab")).toBe("a*b");
    expect(unescapeFilterValue("a\\*b")).toBe("a*b");
    expect(unescapeFilterValue("a\\00b")).toBe("a\0b");
    expect(unescapeFilterValue("a*b")).toBeUndefined();
    expect(unescapeFilterValue("a\\zb")).toBeUndefined();
  });
});

describe("quoting of key pieces (dict_ldap.c rfc2253_quote, rfc2254_quote)", () => {
  test("RFC 2254: * ( ) \\ become \\XX, nothing else changes", () => {
    expect(rfc2254Quote("a*b(c)d\\e")).toBe("a\\2Ab\\28c\\29d\\5Ce");
    expect(rfc2254Quote("x@y.z é\xff,+=")).toBe("x@y.z é\xff,+=");
  });

  test("RFC 2253: blank, tab, \" # + , ; < > \\ become \\XX everywhere", () => {
    expect(rfc2253Quote(' a\tb"c#d+e,f;g<h>i\\j ')).toBe("\\20a\\09b\\22c\\23d\\2Be\\2Cf\\3Bg\\3Ch\\3Ei\\5Cj\\20");
    expect(rfc2253Quote("alice=x*y")).toBe("alice=x*y");
  });
});

describe("attribute descriptions (attrdesc_subtype, url_attrs)", () => {
  test("subtypes by options, any case", () => {
    expect(attrSubtype("mail", "mail")).toBe(1);
    expect(attrSubtype("mail", "MAIL;lang-en")).toBe(1);
    expect(attrSubtype("mail;lang-en", "mail")).toBe(-1);
    expect(attrSubtype("mail", "mailHost")).toBe(0);
    expect(attrSubtype("mailHost", "mail")).toBe(0);
  });

  test("a URL's attributes intersected with the table's; none in common is undefined", () => {
    const table = ["mailRoutingAddress", "mail", "member", "memberURL"];
    const url = (attrs: string[] | null) => ({ scheme: "ldap", host: null, port: 389, dn: "", attrs, scope: 0, filter: null, exts: null });
    expect(urlAttributes(table, url(null))).toBe(table);
    expect(urlAttributes(table, url([]))).toBe(table);
    expect(urlAttributes(table, url(["mail", "cn"]))).toEqual(["mail"]);
    expect(urlAttributes(table, url(["MAIL;x-y"]))).toEqual(["MAIL;x-y"]);
    expect(urlAttributes(table, url(["uid", "cn"]))).toBeUndefined();
  });
});
