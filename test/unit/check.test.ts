/**
 * The pieces of `proxymap --check` and the command lines of the
 * administration commands (issue 17): master.cf as master reads it (the
 * command line it gives each proxymap service), the scan for proxy:
 * tables the configuration uses, and --status/--check's options. The
 * checks themselves run end to end (test/e2e/stats.test.ts), because they
 * enter a jail and drop privileges.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseMasterCf, proxymapServices } from "../../src/check/masterCf";
import { usedTables } from "../../src/check/used";
import { loadMainConfig } from "../../src/config/mainCf";
import { builtinDefaults } from "../../src/config/postfixDefaults";
import { parseAdminArgs } from "../../src/server/options";

let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "pm-check-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DEBIAN = `# comment
proxymap   unix  -       -       n       -       -       proxymap
proxywrite unix  -       -       n       -       1       proxymap -n proxywrite
smtp      inet  n       -       y       -       -       smtpd
submission inet n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
  -o { smtpd_recipient_restrictions = permit_sasl_authenticated, check_recipient_access proxy:hash:/etc/postfix/sub, reject }
proxyjail  unix  -       n       y       -       0       proxymap -o proxy_read_maps=proxy:cdb:/x
`;

describe("master.cf", () => {
  test("the command line master gives each service; only proxymap services are ours", () => {
    const entries = parseMasterCf(DEBIAN);
    expect(entries.map((e) => e.service)).toEqual(["proxymap", "proxywrite", "smtp", "submission", "proxyjail"]);
    const sub = entries[3];
    expect(sub.args).toEqual(["-o", "syslog_name=postfix/submission", "-o", "smtpd_recipient_restrictions = permit_sasl_authenticated, check_recipient_access proxy:hash:/etc/postfix/sub, reject"]);
    expect(entries[1].argv).toEqual(["-l", "-n", "proxywrite", "-t", "unix", "-u", "-n", "proxywrite"]);
    const svcs = proxymapServices(entries, "/etc/postfix");
    expect(svcs.map((s) => ("options" in s ? [s.options.serviceName, s.options.chroot, s.options.dropPrivileges] : s.error))).toEqual([
      ["proxymap", false, true],
      ["proxywrite", false, true],
      ["proxyjail", true, false],
    ]);
    const jail = svcs[2];
    expect("options" in jail && jail.options.overrides).toEqual([["proxy_read_maps", "proxy:cdb:/x"]]);
  });
});

describe("tables the configuration uses", () => {
  test("main.cf parameters (set or default) and master.cf -o values; the write parameters need proxywrite", () => {
    const cdir = join(dir, "etc");
    mkdirSync(cdir);
    writeFileSync(
      join(cdir, "main.cf"),
      [
        "proxy_read_maps = proxy:hash:/etc/postfix/virtual",
        "virtual_alias_maps = proxy:hash:/etc/postfix/virtual, unionmap:{proxy:cdb:/etc/a, texthash:/etc/b}",
        "relocated_maps = $my_maps",
        "my_maps = proxy:lmdb:/etc/relocated",
        "address_verify_map = proxy:btree:$data_directory/verify",
        "smtpd_expansion_filter = \\t\\40!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\\\]^_`abcdefghijklmnopqrstuvwxyz{|}~",
        "",
      ].join("\n"),
    );
    const config = loadMainConfig({ configDir: cdir, overrides: [], defaults: builtinDefaults(), settleWait: false });
    const uses = usedTables(config, parseMasterCf(DEBIAN));
    const got = uses.map((u) => `${u.writer ? "w" : "r"} ${u.table} @ ${u.where}`).sort();
    expect(got).toContain("r hash:/etc/postfix/virtual @ virtual_alias_maps");
    expect(got).toContain("r cdb:/etc/a @ virtual_alias_maps");
    expect(got).toContain("r lmdb:/etc/relocated @ relocated_maps");
    expect(got).toContain("r unix:passwd.byname @ local_recipient_maps"); // Postfix's default
    expect(got).toContain("w btree:/var/lib/postfix/verify @ address_verify_map");
    expect(got).toContain("r hash:/etc/postfix/sub @ master.cf submission: smtpd_recipient_restrictions");
    expect(got.some((g) => g.includes("texthash:/etc/b"))).toBe(false); // no proxy: prefix: not a proxymap table
    expect(got.some((g) => g.includes("proxy_read_maps"))).toBe(false);
  });
});

describe("options of --status and --check", () => {
  test("-c takes the configuration directory; MAIL_CONFIG otherwise; errors name the option", () => {
    expect(parseAdminArgs(["-n", "proxymap", "-t", "unix"], {})).toBeUndefined();
    expect(parseAdminArgs(["--status"], { MAIL_CONFIG: "/etc/postfix-out" })).toEqual({ ok: true, options: { mode: "status", configDir: "/etc/postfix-out", json: false } });
    expect(parseAdminArgs(["--status", "--json", "-c", "/etc/pf2"], {})).toEqual({ ok: true, options: { mode: "status", configDir: "/etc/pf2", json: true } });
    expect(parseAdminArgs(["--check", "-c/etc/pf3", "--key", "x@y"], {})).toEqual({ ok: true, options: { mode: "check", configDir: "/etc/pf3", json: false, key: "x@y" } });
    expect(parseAdminArgs(["--check", "--json"], {})).toEqual({ ok: false, error: "invalid option for --check: --json" });
    expect(parseAdminArgs(["--check", "--status"], {})).toEqual({ ok: false, error: "use one of --status and --check" });
    expect(parseAdminArgs(["--status", "-c"], {})).toEqual({ ok: false, error: "option -c needs a configuration directory" });
  });
});
