/**
 * Reading main.cf (logical lines, name = value), -o overrides, the
 * defaults and the daemon's declaration order (src/config/*). These tests
 * use the built-in 3.7 defaults table, so they need no Postfix; the
 * comparisons with the real Postfix are in config-oracle.test.ts.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { logicalLines } from "../../src/config/logicalLines";
import { loadMainConfig, mailVersion, parseMailVersion, parseOverrideOption, type LoadOptions } from "../../src/config/mainCf";
import { splitNameValue } from "../../src/config/nameValue";
import { builtinDefaults, loadPostfixDefaults, parentMaster, parsePostconfOutput, postconfCandidates } from "../../src/config/postfixDefaults";
import { capture } from "./fixtures/config/capture";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dirWith(mainCf: string, opts: { hot?: boolean } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "cfgparse-"));
  dirs.push(dir);
  writeFileSync(join(dir, "main.cf"), Buffer.from(mainCf, "latin1"));
  // Back-date main.cf (a "hot" one only by a second: Postfix then pauses once or twice).
  const past = new Date(Date.now() - (opts.hot ? 1_000 : 60_000));
  utimesSync(join(dir, "main.cf"), past, past);
  return dir;
}

function load(mainCf: string, extra: Partial<LoadOptions> = {}) {
  const configDir = dirWith(mainCf);
  return capture(() =>
    loadMainConfig({ configDir, overrides: [], defaults: builtinDefaults(), ...extra }),
  );
}

describe("logical lines (readllines)", () => {
  const lines = (text: string) => logicalLines(text, "/x/main.cf").map((l) => [l.text, l.lineno]);

  test("continuation lines are joined without the newline, leading blanks kept", () => {
    expect(lines("a = 1\n  2\n\t3\nb = 4\n")).toEqual([
      ["a = 1  2\t3", 1],
      ["b = 4", 4],
    ]);
  });

  test("comments and blank lines are dropped, also inside a continuation", () => {
    expect(lines("# c\n\na = 1\n# inner\n\n   \n  2\n  # indented comment\n  3\n")).toEqual([["a = 1  2  3", 3]]);
  });

  test("'#' after text is not a comment", () => {
    expect(lines("a = 1 # not a comment\n")).toEqual([["a = 1 # not a comment", 1]]);
  });

  test("no newline at the end of the file", () => {
    expect(lines("a = 1\nb = 2")).toEqual([
      ["a = 1", 1],
      ["b = 2", 2],
    ]);
  });

  test("CRLF: \\r stays in the line (trimmed later as whitespace)", () => {
    expect(lines("a = 1\r\n  2\r\n")).toEqual([["a = 1\r  2\r", 1]]);
  });

  test("continuation text with nothing before it is skipped with a warning", () => {
    const c = capture(() => lines("  orphan = 1\nb = 2\n"));
    expect(c.result).toEqual([["b = 2", 2]]);
    expect(c.lines).toEqual(['warning: /x/main.cf: logical line must not start with whitespace: "  orphan = 1"']);
  });

  test("the warning shows at most 30 bytes", () => {
    const c = capture(() => lines(" " + "x".repeat(40) + "\n"));
    expect(c.lines[0]).toBe(`warning: /x/main.cf: logical line must not start with whitespace: " ${"x".repeat(29)}..."`);
  });
});

describe("name = value (split_nameval)", () => {
  test.each([
    ["a = b", { name: "a", value: "b" }],
    ["  a=b  ", { name: "a", value: "b" }],
    ["a =", { name: "a", value: "" }],
    ["a = b = c", { name: "a", value: "b = c" }],
    ["a\t=\tb c\r", { name: "a", value: "b c" }],
    ["a b = c", { error: "missing '=' after attribute name" }],
    ["= b", { error: "missing attribute name" }],
    ["a", { error: "missing '=' after attribute name" }],
  ])("%j", (line, expected) => {
    expect(splitNameValue(line)).toEqual(expected);
  });

  test("-o arguments use the same rules; errors are fatal with Postfix's text", () => {
    expect(parseOverrideOption("proxy_read_maps = proxy:x:y ")).toEqual(["proxy_read_maps", "proxy:x:y"]);
    const c = capture(() => parseOverrideOption("novalue"));
    expect(c.fatal).toBe(`invalid "-o novalue" option value: missing '=' after attribute name`);
  });
});

describe("loading main.cf", () => {
  test("values, continuation, comments", () => {
    const c = load("a = one\n  two # three\n# comment\nb = $a!\n");
    expect(c.result!.get("a")).toBe("one  two # three");
    expect(c.result!.get("b")).toBe("one  two # three!");
    expect(c.lines).toEqual([]);
  });

  test("a repeated entry wins, with Postfix's warning naming the line of the new one", () => {
    const c = load("a = 1\nb = 2\na = 3\na = 3\n");
    expect(c.result!.get("a")).toBe("3");
    const dir = c.result!.configDir;
    expect(c.lines).toEqual([`warning: ${dir}/main.cf, line 3: overriding earlier entry: a=1`]);
  });

  test("main.cf entries override what the daemon entered first (process_name)", () => {
    const c = load("process_name = other\n");
    expect(c.lines[0]).toMatch(/line 1: overriding earlier entry: process_name=proxymap$/);
  });

  test("a line without '=' is fatal", () => {
    const c = load("a = 1\n\nbroken line\n");
    expect(c.fatal).toMatch(/\/main\.cf, line 3: missing '=' after attribute name: "broken line"$/);
  });

  test("a missing main.cf is fatal", () => {
    const c = capture(() =>
      loadMainConfig({ configDir: "/nonexistent/dir", overrides: [], defaults: builtinDefaults() }),
    );
    expect(c.fatal).toBe("open /nonexistent/dir/main.cf: No such file or directory");
  });

  test("-o overrides main.cf; the later -o wins", () => {
    const c = load("a = file\nb = file\n", {
      overrides: [
        ["a", "first"],
        ["a", "second"],
      ],
    });
    expect(c.result!.get("a")).toBe("second");
    expect(c.result!.get("b")).toBe("file");
  });

  test("process, service and directory names", () => {
    const c = load("", { processName: "proxymap", serviceName: "proxywrite" });
    const cfg = c.result!;
    expect(cfg.get("process_name")).toBe("proxymap");
    expect(cfg.get("service_name")).toBe("proxywrite");
    expect(cfg.get("config_directory")).toBe(cfg.configDir);
    expect(cfg.get("process_id")).toBe(String(process.pid));
  });

  test("a macro syntax error in a value the daemon reads is fatal at start-up", () => {
    const c = load("proxy_read_maps = ${oops\n");
    expect(c.lines).toContain('warning: truncated macro reference: "${oops"');
    expect(c.fatal).toBe("dictionary mail_dict: macro processing error");
  });

  test("an error in a value nobody reads is harmless, as in Postfix", () => {
    const c = load("my_private_setting = ${oops\n");
    expect(c.fatal).toBeUndefined();
  });

  test("a bad compatibility_level is fatal", () => {
    const c = load("compatibility_level = 3.x\n");
    expect(c.fatal).toBe('malformed compatibility level syntax: "3.x"');
  });

  test("8-bit bytes pass through unchanged", () => {
    const c = load("a = caf\xe9 \xff\n");
    expect(c.result!.get("a")).toBe("caf\xe9 \xff");
  });

  test("a NUL byte ends the line's text, as in C", () => {
    const c = load("a = 1\x002\nb = 3\n");
    expect(c.result!.get("a")).toBe("1");
    expect(c.result!.get("b")).toBe("3");
  });

  test("a main.cf modified just now is read again after a pause, as Postfix does", () => {
    const configDir = dirWith("a = 1\n", { hot: true });
    const t0 = Date.now();
    const c = capture(() => loadMainConfig({ configDir, overrides: [], defaults: builtinDefaults() }));
    expect(c.result!.get("a")).toBe("1");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
  });
});

describe("defaults and the declaration order", () => {
  test("declared parameters get the installed Postfix's defaults, expanded", () => {
    const cfg = load("compatibility_level = 3.6\n").result!;
    expect(cfg.get("address_verify_map")).toBe("btree:/var/lib/postfix/verify_cache");
    expect(cfg.raw("address_verify_map")).toBe("btree:/var/lib/postfix/verify_cache");
    expect(cfg.get("relay_domains")).toBe(""); // compatibility level >= 2
    expect(cfg.get("smtputf8_enable")).toBe("yes");
    expect(cfg.raw("smtputf8_enable")).toContain("compatibility_level"); // stored unexpanded
  });

  test("compatibility level below 2 keeps the legacy defaults", () => {
    const cfg = load("").result!;
    expect(cfg.get("relay_domains")).toBe(cfg.get("mydestination"));
  });

  test("$name of a parameter the daemon does not declare is empty, get() still knows the default", () => {
    const cfg = load("compatibility_level = 3.6\nx = [$smtpd_relay_restrictions]\n").result!;
    expect(cfg.get("x")).toBe("[]");
    expect(cfg.get("smtpd_relay_restrictions")).toBe("permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination");
    expect(cfg.has("smtpd_relay_restrictions")).toBe(true);
    expect(cfg.has("no_such_parameter")).toBe(false);
    expect(cfg.get("no_such_parameter")).toBe("");
  });

  test("a default is expanded when declared: later declarations are not seen", () => {
    // local_recipient_maps (declared 2nd in proxymap's table) takes $alias_maps
    // from main.cf, which names address_verify_map, declared later.
    const cfg = load("alias_maps = hash:/a $address_verify_map\n").result!;
    expect(cfg.get("local_recipient_maps")).toBe("proxy:unix:passwd.byname hash:/a ");
    expect(cfg.get("alias_maps")).toBe("hash:/a btree:/var/lib/postfix/verify_cache");
  });

  test("myhostname and mydomain are computed", () => {
    const a = load("myhostname = mail.example.org\n").result!;
    expect(a.get("mydomain")).toBe("example.org");
    const b = load("myhostname = solo\n").result!;
    expect(b.get("mydomain")).toBe("localdomain");
    const c = load("mydomain = example.net\n").result!;
    expect(c.get("myhostname")).toMatch(/\./);
  });

  test("mynetworks follows mynetworks_style", () => {
    const cfg = load("mynetworks_style = host\n").result!;
    expect(cfg.get("mynetworks")).toMatch(/^(\S+\/(32|128) )+$/);
  });
});

describe("versions", () => {
  test.each([
    ["3.7.11", [3, 7, 11]],
    ["3.12-20260110", [3, 12, 0]],
    ["3.10.1-RC1", [3, 10, 1]],
    ["", [0, 0, 0]],
  ])("%s", (text, v) => {
    expect(parseMailVersion(text)).toEqual(v as [number, number, number]);
  });

  test("mailVersion() is the installed Postfix's, not main.cf's mail_version", () => {
    const cfg = load("mail_version = 9.9.9\n").result!;
    expect(cfg.get("mail_version")).toBe("9.9.9");
    expect(mailVersion(cfg)).toEqual([3, 7, 11]);
  });

  test("without postconf the built-in 3.7 table is used, with a warning", () => {
    const c = capture(() => loadPostfixDefaults("/etc/postfix", undefined, ["/nonexistent/postconf"]));
    expect(c.result!.source).toBe("builtin");
    expect(c.result!.values.get("mail_version")).toMatch(/^3\.7\./);
    expect(c.lines).toEqual(["warning: cannot read the Postfix defaults (postconf not found); using built-in Postfix 3.7 defaults"]);
  });

  test("postconf is looked for in command_directory, then beside the master that runs us, then /usr/sbin", () => {
    expect(postconfCandidates("/opt/postfix/sbin/")).toEqual(["/opt/postfix/sbin/postconf", "/usr/sbin/postconf"]);
    expect(postconfCandidates(undefined)).toEqual(["/usr/sbin/postconf"]);
    // A build tree (libexec/master, bin/postconf), as ../shared/oracles/build.sh makes one.
    expect(postconfCandidates(undefined, "/var/cache/pf/libexec/master")).toEqual(["/var/cache/pf/bin/postconf", "/var/cache/pf/sbin/postconf", "/usr/sbin/postconf"]);
    expect(postconfCandidates("/opt/pf/sbin", "/opt/pf/libexec/master")[0]).toBe("/opt/pf/sbin/postconf");
    // Debian's master has no postconf beside it: /usr/sbin's is the one, as before.
    const debian = postconfCandidates(undefined, "/usr/lib/postfix/sbin/master");
    expect(debian.filter((p) => existsSync(p))).toEqual(existsSync("/usr/sbin/postconf") ? ["/usr/sbin/postconf"] : []);
  });

  test("parentMaster() names no master when our parent is not one", () => {
    expect(parentMaster()).toBeUndefined();
  });

  test("postconf -d output parsing", () => {
    const m = parsePostconfOutput("a = 1\nb =\nc = x = y\n");
    expect([...m]).toEqual([
      ["a", "1"],
      ["b", ""],
      ["c", "x = y"],
    ]);
  });
});
