/**
 * Approve/deny answers compared with the real C proxymap (Postfix 3.7.11)
 * over a corpus of proxy_read_maps / proxy_write_maps settings and
 * candidate tables, including the examples of PROTOCOL.md section 5.
 *
 * For each setting the C proxymap runs in stand-alone mode (see
 * fixtures/config/oracle.ts for what works: root, MAIL_CONFIG=DIR,
 * `proxymap -S -V [-v] [-n proxywrite] [-o name=value]`, one `open` request
 * on stdin per process). We compare:
 *  - the whole approved set (the C daemon logs "allowlisting TYPE:NAME" at -v),
 *  - the status of an `open` for each candidate (0 approved, 3 no ':',
 *    4 denied),
 *  - the warnings (bad list syntax at start-up, the two "unapproved table"
 *    lines on a denial).
 *
 * Needs Postfix (apt-get install postfix) and root; fails, never skips.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadMainConfig } from "../../src/config/mainCf";
import { approvedTableSet, checkTable } from "../../src/service/approval";
import { capture } from "./fixtures/config/capture";
import { configDir, printable, proxymapOpen, removeConfigDirs, requireOracle } from "./fixtures/config/oracle";

beforeAll(() => requireOracle("proxymap"));
afterAll(removeConfigDirs);

interface Case {
  what: string;
  /** main.cf lines (besides compatibility_level). */
  mainCf: string;
  writer?: boolean;
  overrides?: Array<[string, string]>;
  candidates: string[];
  /** Files to create in the config dir first; "@DIR" in mainCf is the dir. */
  files?: Record<string, string>;
}

const U12 = "unionmap:{proxy:inline:{u=1},proxy:inline:{u=2}}";

const CASES: Case[] = [
  // PROTOCOL.md section 5.
  { what: "plain proxy: entry", mainCf: "proxy_read_maps = proxy:inline:{u=1}", candidates: ["inline:{u=1}", "proxy:inline:{u=1}", "inline:{ u=1 }", "inline:{u=2}"] },
  { what: "repeated proxy: prefix", mainCf: "proxy_read_maps = proxy:proxy:inline:{u=1}", candidates: ["inline:{u=1}", "proxy:proxy:inline:{u=1}"] },
  { what: "unionmap without proxy:", mainCf: `proxy_read_maps = ${U12}`, candidates: ["inline:{u=1}", "inline:{u=2}", U12] },
  { what: "pipemap without proxy:", mainCf: "proxy_read_maps = pipemap:{proxy:inline:{u=1},proxy:inline:{u=2}}", candidates: ["inline:{u=1}", "inline:{u=2}"] },
  { what: "proxy:unionmap approves only itself", mainCf: `proxy_read_maps = proxy:${U12}`, candidates: [U12, "inline:{u=1}", "inline:{u=2}"] },
  { what: "words that are not tables", mainCf: "proxy_read_maps = check_client_access x proxy:static:ok", candidates: ["static:ok", "check_client_access", "x", "proxy:x"] },
  {
    what: "a /file/name approves nothing in 3.7",
    mainCf: "proxy_read_maps = proxy:static:a @DIR/list",
    files: { list: "proxy:static:infile\n" },
    candidates: ["static:a", "static:infile"],
  },
  {
    what: "restriction classes approve nothing in 3.7",
    mainCf: "smtpd_restriction_classes = rc1\nrc1 = check_sender_access proxy:hash:/etc/rc1\nproxy_read_maps = proxy:static:a",
    candidates: ["hash:/etc/rc1", "static:a"],
  },
  // Separators.
  { what: "comma, tab and CR separators", mainCf: "proxy_read_maps = proxy:static:a,proxy:static:b\tproxy:static:c\rproxy:static:d", candidates: ["static:a", "static:b", "static:c", "static:d"] },
  { what: "empty list items", mainCf: "proxy_read_maps = , proxy:static:a , ,, proxy:static:b ,", candidates: ["static:a", "static:b"] },
  { what: "continuation lines", mainCf: "proxy_read_maps = proxy:static:a\n  proxy:static:b\n# comment\n\tproxy:static:c", candidates: ["static:a", "static:b", "static:c"] },
  // Braces.
  { what: "a {} group", mainCf: "proxy_read_maps = {proxy:static:x}", candidates: ["static:x", "{proxy:static:x}"] },
  { what: "a {} group with attributes", mainCf: "proxy_read_maps = { proxy:ldap:/etc/x.cf domain=example.com }", candidates: ["ldap:/etc/x.cf", "static:x"] },
  { what: "only the first word of a {} group", mainCf: "proxy_read_maps = {static:x proxy:static:y}", candidates: ["static:x", "static:y"] },
  { what: "text after a {} group", mainCf: "proxy_read_maps = {proxy:static:a}b proxy:static:c", candidates: ["static:a", "static:c"] },
  { what: "an unclosed {", mainCf: "proxy_read_maps = proxy:static:c {proxy:static:a", candidates: ["static:a", "static:c"] },
  { what: "commas and blanks inside braces", mainCf: "proxy_read_maps = proxy:inline:{a=1, b=2} proxy:inline:{ c=3 }", candidates: ["inline:{a=1, b=2}", "inline:{ c=3 }", "inline:{c=3}"] },
  // Nesting.
  { what: "text after a nested {}", mainCf: "proxy_read_maps = unionmap:{proxy:static:a}x proxy:static:b", candidates: ["static:a", "static:b"] },
  { what: "nested type without {}", mainCf: "proxy_read_maps = unionmap:proxy:static:a pipemap:", candidates: ["static:a", "unionmap:proxy:static:a"] },
  { what: "deep nesting", mainCf: "proxy_read_maps = unionmap:{pipemap:{proxy:static:deep, unionmap:{proxy:static:deeper}}}", candidates: ["static:deep", "static:deeper"] },
  { what: "{} around a nested map", mainCf: "proxy_read_maps = {unionmap:{proxy:static:g}} pipemap:{{proxy:static:h}}", candidates: ["static:g", "static:h"] },
  { what: "unclosed nested {", mainCf: "proxy_read_maps = pipemap:{proxy:static:a proxy:static:b", candidates: ["static:a", "static:b"] },
  // Prefixes and names.
  { what: "prefix is case-sensitive", mainCf: "proxy_read_maps = PROXY:static:a Proxy:static:b proxy:static:c", candidates: ["static:a", "static:b", "static:c"] },
  { what: "proxy: without a table", mainCf: "proxy_read_maps = proxy: proxy:nocolon proxy:proxy:", candidates: ["nocolon", "proxy:nocolon", "static:x"] },
  { what: "duplicates", mainCf: "proxy_read_maps = proxy:static:a proxy:static:a proxy:proxy:static:a", candidates: ["static:a"] },
  { what: "8-bit bytes in a name", mainCf: "proxy_read_maps = proxy:static:caf\xe9", candidates: ["static:caf\xe9", "static:cafe"] },
  { what: "empty list", mainCf: "proxy_read_maps =", candidates: ["static:a", "unix:passwd.byname"] },
  // Expansion.
  {
    what: "expanded references and conditionals",
    mainCf: "h_table = hash:/etc/h\nh_list = proxy:$h_table, proxy:btree:/x\nproxy_read_maps = $h_list ${h_table?{proxy:static:yes}:{proxy:static:no}} proxy:static:$mydomain",
    candidates: ["hash:/etc/h", "btree:/x", "static:yes", "static:no", "static:localdomain"],
  },
  { what: "an undeclared parameter expands to nothing", mainCf: "proxy_read_maps = proxy:hash:/etc/$smtpd_sasl_path", candidates: ["hash:/etc/", "hash:/etc/smtpd"] },
  {
    what: "the default proxy_read_maps",
    mainCf: "virtual_alias_maps = proxy:hash:/etc/postfix/virtual\ntransport_maps = hash:/etc/postfix/transport\nsmtpd_client_restrictions = check_client_access proxy:cidr:/etc/postfix/clients",
    candidates: ["unix:passwd.byname", "hash:/etc/postfix/virtual", "hash:/etc/postfix/transport", "cidr:/etc/postfix/clients", "hash:/etc/aliases"],
  },
  {
    what: "defaults expanded in declaration order",
    mainCf: "alias_maps = proxy:hash:/a $address_verify_map\nlocal_recipient_maps = $alias_maps",
    candidates: ["hash:/a", "btree:/var/lib/postfix/verify_cache"],
  },
  // -o overrides.
  {
    what: "-o replaces main.cf, the last -o wins",
    mainCf: "proxy_read_maps = proxy:static:main",
    overrides: [
      ["proxy_read_maps", "proxy:static:first"],
      ["proxy_read_maps", "proxy:static:second $h"],
      ["h", "proxy:static:h"],
    ],
    candidates: ["static:main", "static:first", "static:second", "static:h"],
  },
  // The write service.
  { what: "proxywrite: the default proxy_write_maps", mainCf: "", writer: true, candidates: ["btree:/var/lib/postfix/verify_cache", "btree:/var/lib/postfix/postscreen_cache", "unix:passwd.byname"] },
  {
    what: "proxywrite: explicit list, read list ignored",
    mainCf: "proxy_read_maps = proxy:btree:/r\nproxy_write_maps = proxy:btree:/w unionmap:{proxy:lmdb:/u}",
    writer: true,
    candidates: ["btree:/w", "lmdb:/u", "btree:/r"],
  },
  { what: "proxywrite: syntax warning names proxy_write_maps", mainCf: "proxy_write_maps = {proxy:btree:/w}x proxy:btree:/v", writer: true, candidates: ["btree:/w", "btree:/v"] },
  { what: "proxywrite: -o", mainCf: "", writer: true, overrides: [["proxy_write_maps", "proxy:lmdb:/o"]], candidates: ["lmdb:/o", "btree:/var/lib/postfix/verify_cache"] },
];

test(`approval compared with the C proxymap: ${CASES.length} settings`, async () => {
  expect(CASES.length).toBeGreaterThanOrEqual(30);
  const mismatches: string[] = [];
  let requests = 0;
  for (const c of CASES) {
    const dir = configDir("");
    for (const [name, text] of Object.entries(c.files ?? {})) writeFileSync(join(dir, name), text);
    const mainCfText = `compatibility_level = 3.6\n${c.mainCf.replaceAll("@DIR", dir)}\n`;
    writeFileSync(join(dir, "main.cf"), Buffer.from(mainCfText, "latin1"));
    const past = new Date(Date.now() - 60_000);
    const { utimesSync } = await import("node:fs");
    utimesSync(join(dir, "main.cf"), past, past);

    const writer = c.writer ?? false;
    const overrides = c.overrides ?? [];
    // Ours: load, approve, then check each candidate; collect the warnings.
    const built = capture(() => {
      const cfg = loadMainConfig({ configDir: dir, overrides, serviceName: writer ? "proxywrite" : "proxymap" });
      return approvedTableSet(cfg, writer);
    });
    if (built.fatal) throw new Error(`${c.what}: our loader failed: ${built.fatal}`);
    const approved = built.result!;
    const startWarnings = built.lines;

    // The C daemon: one process per candidate, the first one with -v for its allow-list.
    const real = await Promise.all(
      c.candidates.map((t, i) => proxymapOpen(dir, t, { writer, overrides, allowlist: i === 0 })),
    );
    requests += real.length;
    const ourList = [...approved].map(printable).sort();
    const realList = [...real[0].allowlist].sort();
    if (JSON.stringify(ourList) !== JSON.stringify(realList))
      mismatches.push(`${c.what}: approved sets differ: C ${JSON.stringify(realList)}, ours ${JSON.stringify(ourList)}`);

    c.candidates.forEach((t, i) => {
      const check = capture(() => checkTable(approved, t, writer));
      const ours = { status: check.result!.status, warnings: [...startWarnings, ...check.lines].map(printable) };
      const theirs = { status: real[i].status, warnings: real[i].warnings.filter((w) => !w.startsWith("error: ")) };
      if (JSON.stringify(ours) !== JSON.stringify(theirs))
        mismatches.push(`${c.what}: open ${JSON.stringify(t)}: C ${JSON.stringify(theirs)}, ours ${JSON.stringify(ours)}`);
    });
  }
  expect(mismatches).toEqual([]);
  expect(requests).toBeGreaterThanOrEqual(90);
});
