/**
 * Our main.cf reading and $name expansion against the real Postfix 3.7:
 *
 *  1. `postconf -c DIR -xh NAME` over a corpus of main.cf settings (nested,
 *     conditional, relational, undefined names, continuation lines,
 *     comments, braces, the daemon's own parameters);
 *  2. the real proxymap's own expansion of proxy_read_maps and
 *     proxy_write_maps (its -v -v log), over the same corpus and over the
 *     cases where a daemon and postconf differ: a $name of a parameter the
 *     daemon does not declare is empty there, defaults are expanded in
 *     declaration order, process_name is the daemon's;
 *  3. syntax errors: the same warnings and the same fatal error.
 *
 * Needs Postfix (apt-get install postfix) and root; fails, never skips,
 * without them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DEFAULTS_37 } from "../../src/config/defaults37";
import { loadMainConfig, type MainConfig } from "../../src/config/mainCf";
import { builtinDefaults, loadPostfixDefaults } from "../../src/config/postfixDefaults";
import { capture } from "./fixtures/config/capture";
import {
  configDir,
  postconfExpand,
  printable,
  proxymapExpansions,
  removeConfigDirs,
  requireOracle,
} from "./fixtures/config/oracle";

afterAll(removeConfigDirs);

/** Helper settings every corpus main.cf starts with. */
const HELPERS = [
  "compatibility_level = 3.6",
  "h_a = alpha",
  "h_b = beta",
  "h_empty =",
  "h_chain = <$h_a|$h_b>",
  "h_deep = [$h_chain/${h_a}]",
  "h_num = 10",
  "h_cont = one",
  "   two",
  "\tthree",
  "h_dollar = cost $$5",
  "h_table = hash:/etc/h",
  "h_list = proxy:$h_table, proxy:btree:/x",
  "# a comment between settings: h_a = not this",
  "h_late = $h_defined_below",
  "h_defined_below = below",
].join("\n");

/** [main.cf text after "NAME = ", description]. Lines after the first are continuation text. */
const CORPUS: Array<[string, string]> = [
  ["$h_a", "plain $name"],
  ["${h_a}-$(h_b)", "braces and parentheses"],
  ["$h_chain", "nested reference"],
  ["$h_deep", "two levels of nesting"],
  ["$h_empty.x", "empty value"],
  ["$h_undefined_name!", "undefined name"],
  ["$h_late", "reference to a setting defined further down"],
  ["${h_a?yes}", "?text, defined"],
  ["${h_empty?yes}", "?text, empty"],
  ["${h_undef?yes}", "?text, undefined"],
  ["${h_a:no}", ":text, defined"],
  ["${h_empty:no}", ":text, empty"],
  ["${h_undef:no}", ":text, undefined"],
  ["${h_a?{yes}:{no}}", "?{}:{}, true"],
  ["${h_empty?{yes}:{no}}", "?{}:{}, false"],
  ["${h_a ? {spaced yes} : {spaced no}}", "blanks around the operators"],
  ["${h_a?foo:bar}", "unbraced ?text keeps the colon"],
  ["${h_a?$h_b}", "reference inside ?text"],
  ["${h_a?{{braced}}}", "braces inside {text}"],
  ["${{$h_a} == {alpha} ? {eq} : {ne}}", "== on strings"],
  ["${{$h_num} < {9} ? {lt} : {ge}}", "< on numbers"],
  ["${{$h_num} < {9x} ? {lt} : {ge}}", "< on strings"],
  ["${{$h_a} != {alpha}}", "bare relational, false"],
  ["${{$h_a} == {alpha}}", "bare relational, true"],
  ["${{$h_b} >= {alpha}?{y}:{n}}", ">= on strings"],
  ["${{$compatibility_level} <level {2} ? {legacy} : {modern}}", "<level"],
  ["${{$compatibility_level} >=level {3.6} ? {new} : {old}}", ">=level"],
  ["$h_cont", "continuation lines in a referenced value"],
  ["first\n  second\n# comment inside\n\n  third", "continuation lines, comment and blank line inside"],
  ["$h_dollar", "$$ in a referenced value"],
  ["$$h_a", "$$ escapes"],
  ["a # b", "# after text is text"],
  ["trailing blanks   ", "trailing blanks trimmed"],
  ["crlf value\r", "CR before the newline"],
  ["${ h_a }", "blanks inside ${}"],
  ["$h_a_suffix", "name runs on over _"],
  ["$h_a.suffix", "name stops at ."],
  ["$h_list", "a table list"],
  ["unionmap:{proxy:inline:{k=$h_a}}", "braces in literal text"],
  ["$myhostname", "myhostname (computed default)"],
  ["$mydomain", "mydomain (computed default)"],
  ["$mydestination", "mydestination default"],
  ["$relay_domains", "relay_domains default (compatibility level)"],
  ["$mail_version", "mail_version"],
  ["$data_directory/x", "data_directory"],
  ["$address_verify_map", "address_verify_map default"],
  ["$local_recipient_maps", "local_recipient_maps default"],
  ["$alias_maps", "alias_maps default"],
  ["$smtputf8_enable", "a raw (unexpanded) default"],
  ["$mynetworks_style", "mynetworks_style"],
  ["$syslog_name", "syslog_name"],
  ["$myorigin", "myorigin"],
  ["$virtual_alias_domains", "virtual_alias_domains"],
  ["$max_idle $ipc_timeout $lmdb_map_size", "time and number defaults"],
];

/** The corpus as one main.cf: t01 = ..., plus a line referencing every tNN (postconf then knows them). */
function corpusMainCf(): { text: string; names: string[] } {
  const names = CORPUS.map((_, i) => `t${String(i + 1).padStart(2, "0")}`);
  const lines = CORPUS.map(([value], i) => `${names[i]} = ${value}`);
  return {
    text: `${HELPERS}\n${lines.join("\n")}\nzz_references = ${names.map((n) => `$${n}`).join(" ")}\n`,
    names,
  };
}

/**
 * postconf prints a value with each run of blanks as one space (its output
 * formatting, not the value: the daemon sees the blanks, see below).
 */
function postconfShape(value: string): string {
  return value.replace(/[ \t\r\n]+/g, " ").trim();
}

function ours(dir: string, overrides: Array<[string, string]> = []): MainConfig {
  const c = capture(() => loadMainConfig({ configDir: dir, overrides }));
  if (c.fatal !== undefined) throw new Error(`our loader failed: ${c.fatal}`);
  return c.result!;
}

describe("expansion compared with postconf -x", () => {
  beforeAll(() => requireOracle("postconf"));

  test(`corpus of ${CORPUS.length} settings`, () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(40);
    const { text, names } = corpusMainCf();
    const dir = configDir(text);
    const expected = postconfExpand(dir, names);
    const cfg = ours(dir);
    const mismatches: string[] = [];
    names.forEach((n, i) => {
      const got = postconfShape(cfg.get(n));
      if (got !== expected[i]) mismatches.push(`${n} (${CORPUS[i][1]}): postconf ${JSON.stringify(expected[i])}, ours ${JSON.stringify(got)}`);
    });
    expect(mismatches).toEqual([]);
  });

  test("mynetworks for each mynetworks_style", () => {
    for (const style of ["host", "subnet", "class"]) {
      const dir = configDir(`mynetworks_style = ${style}\n`);
      const [expected] = postconfExpand(dir, ["mynetworks"]);
      expect(postconfShape(ours(dir).get("mynetworks"))).toBe(expected);
    }
  });
});

describe("the built-in defaults (used without postconf)", () => {
  beforeAll(() => requireOracle("postconf"));

  test("match the installed Postfix's postconf -d", () => {
    const installed = loadPostfixDefaults("/etc/postfix");
    expect(installed.source).toBe("postconf");
    const differ = Object.entries(DEFAULTS_37)
      .filter(([name, value]) => installed.values.get(name) !== value)
      .map(([name, value]) => `${name}: built-in ${JSON.stringify(value)}, postconf ${JSON.stringify(installed.values.get(name))}`);
    // Regenerate with: bun test/unit/fixtures/config/gen-defaults37.ts
    expect(differ).toEqual([]);
  });

  test("give the same configuration as postconf's defaults for the corpus", () => {
    const { text, names } = corpusMainCf();
    const dir = configDir(text);
    const withPostconf = ours(dir);
    const withBuiltin = capture(() => loadMainConfig({ configDir: dir, overrides: [], defaults: builtinDefaults() })).result!;
    for (const n of [...names, "proxy_read_maps", "proxy_write_maps"]) expect(withBuiltin.get(n)).toBe(withPostconf.get(n));
  });
});

describe("expansion compared with the real proxymap's own", () => {
  beforeAll(() => requireOracle("proxymap"));

  /** Put two values into proxy_read_maps / proxy_write_maps and compare. */
  async function compareTwo(readValue: string, writeValue: string, extra = "", overrides: Array<[string, string]> = []) {
    const dir = configDir(`${HELPERS}\n${extra}proxy_read_maps = ${readValue}\nproxy_write_maps = ${writeValue}\n`);
    const cfg = ours(dir, overrides);
    const raw = { read: cfg.raw("proxy_read_maps")!, write: cfg.raw("proxy_write_maps")! };
    const real = await proxymapExpansions(dir, raw, overrides);
    if ("fatal" in real) throw new Error(`proxymap failed: ${real.fatal.join("\n")}`);
    return { real, ours: { read: printable(cfg.get("proxy_read_maps")), write: printable(cfg.get("proxy_write_maps")) } };
  }

  test(`the postconf corpus (${CORPUS.length} settings)`, async () => {
    const mismatches: string[] = [];
    for (let i = 0; i < CORPUS.length; i += 2) {
      const a = CORPUS[i];
      const b = CORPUS[i + 1] ?? CORPUS[0];
      const r = await compareTwo(a[0], b[0]);
      if (r.real.read !== r.ours.read) mismatches.push(`${a[1]}: proxymap ${JSON.stringify(r.real.read)}, ours ${JSON.stringify(r.ours.read)}`);
      if (r.real.write !== r.ours.write) mismatches.push(`${b[1]}: proxymap ${JSON.stringify(r.real.write)}, ours ${JSON.stringify(r.ours.write)}`);
    }
    expect(mismatches).toEqual([]);
  });

  test("a parameter the daemon does not declare expands to empty (postconf disagrees)", async () => {
    const r = await compareTwo("[$smtpd_sasl_path] [$smtpd_relay_restrictions]", "$process_name $service_name");
    expect(r.real.read).toBe("[] []");
    expect(r.ours).toEqual(r.real);
    const dir = configDir("x = $smtpd_sasl_path\nzz = $x\n");
    expect(postconfExpand(dir, ["x"])).toEqual(["smtpd"]);
  });

  test("defaults are expanded in declaration order", async () => {
    // local_recipient_maps' default takes main.cf's alias_maps, which names
    // address_verify_map, declared after local_recipient_maps.
    const dir = configDir("compatibility_level = 3.6\nalias_maps = hash:/a $address_verify_map\n");
    const cfg = ours(dir);
    const real = await proxymapExpansions(dir, {}); // both lists at their defaults
    if ("fatal" in real) throw new Error(real.fatal.join("\n"));
    expect(printable(cfg.get("proxy_read_maps"))).toBe(real.read);
    expect(printable(cfg.get("proxy_write_maps"))).toBe(real.write);
    expect(real.read).toStartWith("proxy:unix:passwd.byname hash:/a  ");
  });

  test("a Debian-style main.cf with the default approval lists", async () => {
    const dir = configDir(
      [
        "smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)",
        "biff = no",
        "append_dot_mydomain = no",
        "readme_directory = no",
        "compatibility_level = 3.6",
        "smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination",
        "myhostname = vm",
        "alias_maps = hash:/etc/aliases",
        "alias_database = hash:/etc/aliases",
        "mydestination = $myhostname, vm, localhost.localdomain, , localhost",
        "relayhost =",
        "mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128",
        "mailbox_size_limit = 0",
        "recipient_delimiter = +",
        "inet_interfaces = all",
        "inet_protocols = all",
        "virtual_alias_maps = proxy:hash:/etc/postfix/virtual",
        "",
      ].join("\n"),
    );
    const cfg = ours(dir);
    const real = await proxymapExpansions(dir, {});
    if ("fatal" in real) throw new Error(real.fatal.join("\n"));
    expect({ read: printable(cfg.get("proxy_read_maps")), write: printable(cfg.get("proxy_write_maps")) }).toEqual(real);
  });

  test("-o overrides win over main.cf, the last one over earlier ones", async () => {
    const overrides: Array<[string, string]> = [
      ["proxy_read_maps", "proxy:first:$h_a"],
      ["h_a", "overridden"],
      ["proxy_read_maps", "proxy:second:$h_a ${h_b?{$h_b}}"],
    ];
    const r = await compareTwo("proxy:from:main.cf", "$h_a", "", overrides);
    expect(r.real.read).toBe("proxy:second:overridden beta");
    expect(r.ours).toEqual(r.real);
  });

  const ERRORS: Array<[string, string]> = [
    ["${h_a", "truncated reference"],
    ["x$", "empty name"],
    ["${h_a b}", "bad name"],
    ["${{a} =~ {b}}", "unknown operator"],
    ["${{a} ==foo {b}}", "unknown operator suffix"],
    ["${{a} == b}", "no {} after the operator"],
    ["${h_a?{x}y}", "garbage after ?{}"],
    ["${h_a?{x}:{y}z}", "garbage after :{}"],
    ["${{x} <level {2}}", "bad compatibility level"],
    ["$(h_a", "truncated $("],
    ["$({h_a)", "unbalanced {} in an expression"],
    ["$h_loop", "endless recursion"],
  ];

  test(`syntax errors: same warnings, same fatal error (${ERRORS.length} cases)`, async () => {
    const results = await Promise.all(
      ERRORS.map(async ([value, what]) => {
        const dir = configDir(`${HELPERS}\nh_loop = x$h_loop2\nh_loop2 = $h_loop\nproxy_read_maps = ${value}\n`);
        const c = capture(() => loadMainConfig({ configDir: dir, overrides: [] }));
        const real = await proxymapExpansions(dir, { read: value, write: "" });
        return { what, ours: c.lines, real: "fatal" in real ? real.fatal : ["(no fatal error)"] };
      }),
    );
    for (const r of results) expect({ what: r.what, log: r.ours }).toEqual({ what: r.what, log: r.real });
  });
});
