/**
 * ldap-config.test.ts - how an LDAP table's settings are read (ldap/config.ts),
 * compared with the installed C proxymap (Debian's Postfix 3.7.11 with
 * postfix-ldap), configuration by configuration: one lookup through each,
 * answered by the reference (stand-alone, a fresh process: it opens the
 * table and logs what opening logs) and by ours (a fresh open through the
 * dict layer); statuses, values and every warning, error and fatal line
 * must be the same. Where the reference exits (msg_fatal), ours answers
 * CONFIG and logs the same text as an error.
 *
 * Covered: Debian's version default and fallback (3), scope, bind modes and
 * their case, dereference, the ignored cache fields, limits, numbers and
 * booleans that do not parse, templates (fixed, invalid, result_filter as
 * the old name of result_format), server_host entries (host, host:port,
 * URLs, a URL that does not parse, ldaps or StartTLS with version 2),
 * repeated entries, lengths, the domain list, sasl_minssf bounds, and the
 * main.cf form (NAME_field with $name expansion). Plus the parsed results
 * themselves: attribute order, connection sharing keys.
 *
 * Needs slapd and ldap-utils (apt-get install slapd ldap-utils) and Postfix
 * with LDAP support (apt-get install postfix postfix-ldap).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Status } from "../../src/protocol/constants";
import { closeAllDicts, openContext } from "../../src/tables/dict";

const OPEN_CONTEXT = openContext("classic", false);
import { CfgParser } from "../../src/tables/dbCommon/cfgParser";
import { parseLdapConfig } from "../../src/tables/ldap/config";
import { writeCoolFile } from "../helpers/files";
import { BASE } from "../helpers/ldap-data";
import { closeOurTables, ourLookup, referenceLookup, type LookupReply } from "../helpers/mariadb";
import { requireFile } from "../helpers/require";
import { PrivateSlapd } from "../helpers/slapd";

let slapd: PrivateSlapd;
let dir = "";
let n = 0;

function cf(body: string, withServer = true): string {
  const path = join(dir, `c${++n}.cf`);
  const head = withServer ? `server_host = 127.0.0.1:${slapd.port}\nsearch_base = ${BASE}\nquery_filter = (mailLocalAddress=%s)\nresult_attribute = mail\n` : "";
  writeCoolFile(path, head + body);
  return `ldap:${path}`;
}

/** Warning and worse, with the reference's "fatal:" turned into our "error:" (ours keeps serving). */
function problems(r: LookupReply, side: "c" | "ours"): string[] {
  return r.log
    .filter((l) => /^(warning|error|fatal): /.test(l))
    .map((l) => (side === "c" ? l.replace(/^fatal: /, "error: ") : l))
    .filter((l) => side === "c" || !/ is unavailable\. /.test(l))
    .map((l) => l.replaceAll(dir, "DIR").replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:PORT"));
}

async function compare(table: string, key = "alice@example.com", mainCf = ""): Promise<{ c: LookupReply; ours: LookupReply }> {
  await closeAllDicts();
  const c = await referenceLookup(table, key, 0, mainCf);
  const ours = await ourLookup(table, key, 0);
  const want = { status: c.status === undefined ? Status.CONFIG : c.status, value: c.value, log: problems(c, "c") };
  const got = { status: ours.status, value: ours.value, log: problems(ours, "ours") };
  expect({ table: table.replace(dir, "DIR"), ...got }).toEqual({ table: table.replace(dir, "DIR"), ...want });
  return { c, ours };
}

beforeAll(async () => {
  requireFile("/usr/lib/postfix/postfix-ldap.so", "apt-get install postfix-ldap");
  slapd = await PrivateSlapd.start({ label: "config" });
  dir = mkdtempSync(join(tmpdir(), "pm-ldap-config-"));
  chmodSync(dir, 0o755);
}, 60_000);

afterAll(async () => {
  await closeAllDicts();
  await closeOurTables(true);
  await slapd?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("LDAP settings read as the reference reads them", () => {
  const cases: Array<[string, string]> = [
    ["defaults", ""],
    ["version 1 (fatal)", "version = 1\n"],
    ["version 4 (Debian: using 3)", "version = 4\n"],
    ["version 2 (below the referral object)", `version = 2\nsearch_base = ou=people,${BASE}\n`],
    ["version x (not a number)", "version = x\n"],
    ["scope bogus", "scope = bogus\n"],
    ["scope ONE", "scope = ONE\n"],
    ["scope empty (too short)", "scope =\n"],
    ["bind bogus (fatal)", "bind = bogus\n"],
    ["bind NO", "bind = NO\n"],
    ["bind Simple", "bind = Simple\n"],
    ["bind none", "bind = none\n"],
    ["dereference 7", "dereference = 7\n"],
    ["dereference -1", "dereference = -1\n"],
    ["cache fields", "cache = yes\ncache_expiry = 0\ncache_size = 10\n"],
    ["cache no", "cache = no\ncache_expiry = -1\n"],
    ["cache maybe (bad boolean)", "cache = maybe\n"],
    ["recursion_limit 0", "recursion_limit = 0\n"],
    ["timeout abc", "timeout = abc\n"],
    ["fixed query_filter", "query_filter = (mailLocalAddress=alice@example.com)\n"],
    ["invalid query template", "query_filter = (mail=%x)\n"],
    ["invalid result template", "result_format = %z\n"],
    ["invalid search_base template", "search_base = ou=%q\n"],
    ["result_filter (old name)", "result_filter = <%s>\n"],
    ["result_format over result_filter", "result_filter = <%s>\nresult_format = [%s]\n"],
    ["empty result_format (result_filter's default)", "result_format =\n"],
    ["empty result_filter (too short)", "result_filter =\n"],
    ["server_host list with a bad URL", `server_host = ldap://127.0.0.1:abc/ 127.0.0.1:${0}\n`],
    ["ldaps URL with version 2", "version = 2\nserver_host = ldaps://127.0.0.1:1\n"],
    ["start_tls with version 2", "version = 2\nstart_tls = yes\n"],
    ["empty server_host (too short)", "server_host =\n"],
    ["sasl_minssf 5000 (too large)", "bind = sasl\nsasl_minssf = 5000\nsasl_mechs = EXTERNAL\n"],
    ["sasl_minssf without bind = sasl (not read)", "sasl_minssf = 5000\n"],
    ["domain with a lone !", "domain = !\n"],
    ["domain list", "domain = example.com\n"],
    ["size_limit from expansion_limit", "expansion_limit = 1\nspecial_result_attribute = member\n"],
    ["attribute lists with commas and blanks", "result_attribute = mail,, mailRoutingAddress\tcn\nterminal_result_attribute = ,\n"],
  ];
  for (const [label, body] of cases) {
    test(label, async () => {
      // Lines naming the server's port: the bad-URL case puts the real one in the list.
      const text = body.replace("127.0.0.1:0", `127.0.0.1:${slapd.port}`);
      const key = label.startsWith("size_limit") ? "staff@example.com" : "alice@example.com";
      await compare(cf(text), key);
    });
  }

  /**
   * Deliberate difference: ours speaks LDAPv3 whatever `version` says. With
   * version = 2 the reference's search over a subtree that holds a referral
   * object gets v2's "partial results" (RETRY); ours gets the entries (v3
   * continuation references are ignored, as the reference ignores them in v3).
   */
  test("version 2 over a referral object: the reference's v2 partial results (RETRY), ours v3 (the entries)", async () => {
    await closeAllDicts();
    const t = cf("version = 2\n");
    const c = await referenceLookup(t, "alice@example.com");
    const ours = await ourLookup(t, "alice@example.com");
    expect([c.status, problems(c, "c")]).toEqual([Status.RETRY, ["warning: dict_ldap_lookup: Search error 9: Partial results and referral received "]]);
    expect([ours.status, ours.value]).toEqual([Status.OK, "alice@example.com"]);
  });

  test("a domain list with the server down: keys outside it are not found without a connection, keys inside RETRY", async () => {
    const { freePort } = await import("../helpers/slapd");
    const dead = await freePort();
    const t = `ldap:${writeCoolFile(join(dir, `dom-dead-${dead}.cf`), `server_host = 127.0.0.1:${dead}\nsearch_base = ${BASE}\nquery_filter = (mailLocalAddress=%s)\nresult_attribute = mail\ndomain = example.com\n`)}`;
    const outside = await compare(t, "alice@example.org");
    expect([outside.ours.status, problems(outside.ours, "ours")]).toEqual([Status.NOKEY, []]);
    const inside = await compare(t, "alice@example.com");
    expect(inside.ours.status).toBe(Status.RETRY);
  });

  test("repeated entries: the reference's 'overriding earlier entry' warning", async () => {
    await compare(cf("result_attribute = cn\nresult_attribute = mail\nscope = sub\nscope = sub\n"));
  });

  test("main.cf form: NAME_field parameters with $name expansion", async () => {
    const mainCf = [
      `ldapmain_server_host = 127.0.0.1:${slapd.port}`,
      "my_base = dc=example,dc=com",
      "ldapmain_search_base = $my_base",
      "ldapmain_query_filter = (mailLocalAddress=%s)",
      "ldapmain_result_attribute = mail",
      "ldapmain_scope = bogus",
      "",
    ].join("\n");
    const { setTableMainConfig } = await import("../../src/tables/dbCommon/mainConfig");
    const { loadMainConfig } = await import("../../src/config/mainCf");
    const cfgDir = mkdtempSync(join(tmpdir(), "pm-ldap-maincf-"));
    writeCoolFile(join(cfgDir, "main.cf"), mainCf);
    setTableMainConfig(loadMainConfig({ configDir: cfgDir, overrides: [], settleWait: false }));
    try {
      const { c } = await compare("ldap:ldapmain", "alice@example.com", mainCf);
      expect(c.value).toBe("alice@example.com");
    } finally {
      setTableMainConfig(undefined);
      rmSync(cfgDir, { recursive: true, force: true });
    }
  });
});

describe("parsed settings", () => {
  test("attributes in the lookup's order: terminal, leaf, regular, special", () => {
    const p = CfgParser.fromValues("t", new Map([
      ["result_attribute", "mail, mailHost"],
      ["special_result_attribute", "member memberURL"],
      ["leaf_result_attribute", "mailRoutingAddress"],
      ["terminal_result_attribute", "x-terminal"],
    ]));
    const c = parseLdapConfig(p, OPEN_CONTEXT);
    expect(c.attrs).toEqual(["x-terminal", "mailRoutingAddress", "mail", "mailHost", "member", "memberURL"]);
    expect([c.numTerminal, c.numLeaf, c.numAttributes]).toEqual([1, 1, 4]);
    expect(c.version).toBe(3);
    expect(c.serverHost).toBe("ldap://localhost:389");
    expect(c.sizeLimit).toBe(0);
  });

  test("server_host entries become URLs; the port applies to bare hosts only", () => {
    const p = CfgParser.fromValues("t", new Map([["server_host", "a, b:1234 ldaps://c/ ldapi://%2Fx"], ["server_port", "3890"]]));
    const c = parseLdapConfig(p, OPEN_CONTEXT);
    expect(c.urls).toEqual(["ldap://a:3890", "ldap://b:1234", "ldaps://c/", "ldapi://%2Fx"]);
    expect(c.ldapSsl).toBe(true);
  });

  test("connection keys: equal settings share, a different bind or TLS setting does not; search settings do not matter", () => {
    const key = (m: Record<string, string>) => parseLdapConfig(CfgParser.fromValues("t", new Map(Object.entries({ server_host: "h", ...m }))), OPEN_CONTEXT).connKey;
    expect(key({ search_base: "a", timeout: "5", size_limit: "3" })).toBe(key({ search_base: "b", scope: "one" }));
    expect(key({ bind_dn: "cn=x" })).not.toBe(key({ bind_dn: "cn=y" }));
    expect(key({ bind: "no", bind_dn: "cn=x" })).toBe(key({ bind: "no", bind_dn: "cn=y" }));
    expect(key({ start_tls: "yes", tls_ca_cert_file: "/a" })).not.toBe(key({ start_tls: "yes", tls_ca_cert_file: "/b" }));
    expect(key({ tls_ca_cert_file: "/a" })).toBe(key({ tls_ca_cert_file: "/b" }));
  });
});
