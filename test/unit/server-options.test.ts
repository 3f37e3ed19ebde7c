/**
 * server-options.test.ts - the generic daemon options and environment, parsed
 * as Postfix's multi_server parses them (getopt "+cdDi:lm:n:o:s:St:uvVz"),
 * with Postfix's error wording; and the typed parameter reads.
 * Expected texts were checked against /usr/lib/postfix/sbin/proxymap -S -V (3.7.11).
 */
import { describe, expect, test } from "bun:test";
import { parseDaemonArgs, splitNameValue, programName } from "../../src/server/options";
import { getTime, getInt, getBool, readServerParams } from "../../src/server/params";
import { convTime } from "../../src/util/convTime";
import { FatalError, setLogSinks } from "../../src/log/msg";
import type { MainConfig } from "../../src/config/mainCf";

function ok(args: string[], env: Record<string, string> = {}) {
  const r = parseDaemonArgs(args, env);
  if (!r.ok) throw new Error(r.error);
  return r.options;
}
function err(args: string[], env: Record<string, string> = {}) {
  const r = parseDaemonArgs(args, env);
  if (r.ok) throw new Error("expected an error");
  return r.error;
}

describe("daemon options", () => {
  test("master's usual command line", () => {
    const o = ok(["-t", "unix", "-u", "-c", "-n", "proxywrite", "-o", "max_idle=5s", "-v", "-v"]);
    expect(o.transport).toBe("unix");
    expect(o.dropPrivileges).toBe(true);
    expect(o.chroot).toBe(true);
    expect(o.serviceName).toBe("proxywrite");
    expect(o.overrides).toEqual([["max_idle", "5s"]]);
    expect(o.verbose).toBe(2);
    expect(o.args).toEqual([]);
    expect(o.socketCount).toBe(1);
    expect(o.configDir).toBe("/etc/postfix");
  });

  test("every generic flag", () => {
    const o = ok(["-cdDlSuvVz", "-s", "3", "-t", "inet"]);
    expect([o.chroot, !o.daemonMode, o.debug, o.solitary, o.standalone, o.dropPrivileges, o.stderr, o.unlimited]).toEqual(
      Array(8).fill(true),
    );
    expect(o.verbose).toBe(1);
    expect(o.socketCount).toBe(3);
    expect(o.transport).toBe("inet");
  });

  test("attached arguments, clusters ending in an option with an argument", () => {
    const o = ok(["-ofoo=bar", "-vn", "proxywrite", "-i10", "-m", "7"]);
    expect(o.overrides).toEqual([["foo", "bar"], ["max_idle", "10"], ["max_use", "7"]]);
    expect(o.serviceName).toBe("proxywrite");
    expect(o.maxIdleGiven && o.maxUseGiven).toBe(true);
  });

  test("-o, -i and -m keep command-line order (later wins in the config)", () => {
    expect(ok(["-i", "5", "-o", "max_idle=9", "-i", "3"]).overrides).toEqual([
      ["max_idle", "5"],
      ["max_idle", "9"],
      ["max_idle", "3"],
    ]);
  });

  test("-o trims blanks like split_nameval", () => {
    expect(ok(["-o", "  a  =  b c  "]).overrides).toEqual([["a", "b c"]]);
    expect(splitNameValue("a=")).toEqual(["a", ""]);
    expect(splitNameValue("=x")).toBe("missing attribute name");
    expect(splitNameValue("   ")).toBe("missing attribute name");
    expect(splitNameValue("foo")).toBe("missing '=' after attribute name");
    expect(splitNameValue("foo bar=1")).toBe("missing '=' after attribute name");
  });

  test("options end at the first non-option word and at --", () => {
    expect(ok(["-v", "extra", "-c"]).args).toEqual(["extra", "-c"]);
    expect(ok(["--", "-v"]).args).toEqual(["-v"]);
    expect(ok(["-v", "-", "x"]).args).toEqual(["-", "x"]);
  });

  test("Postfix's wording for bad options", () => {
    expect(err(["-q"])).toBe("invalid option: q");
    expect(err(["-t"])).toBe("invalid option: t");
    expect(err(["-vx"])).toBe("invalid option: x");
    expect(err(["-o", "foo"])).toBe(`invalid "-o foo" option value: missing '=' after attribute name`);
    expect(err(["-s", "0"])).toBe("invalid socket_count: 0");
    expect(err(["-s", "x"])).toBe("invalid socket_count: x");
    expect(ok(["-s", " 2x"]).socketCount).toBe(2); // atoi()
  });

  test("our long options", () => {
    expect(ok(["--listen", "/tmp/s", "-n", "proxywrite"]).listenPath).toBe("/tmp/s");
    expect(ok(["--listen=/tmp/t"]).listenPath).toBe("/tmp/t");
    expect(ok(["--demo"]).demo).toBe(true);
    expect(ok(["--self-test"]).selfTest).toBe(true);
    expect(err(["--listen"])).toBe("option --listen needs a socket path");
    expect(ok(["--listen", "/tmp/s", "--user", "nobody"]).user).toBe("nobody");
    expect(err(["--listen", "/tmp/s", "--user"])).toBe("option --user needs a user name");
    expect(err(["--user=nobody"])).toBe("option --user is only for --listen");
    expect(err(["--frob"])).toBe("invalid option: --frob");
  });

  test("environment: MAIL_CONFIG, GENERATION (octal), MAIL_VERBOSE, MAIL_DEBUG", () => {
    const o = ok([], { MAIL_CONFIG: "/x/etc", GENERATION: "17", MAIL_VERBOSE: "1", MAIL_DEBUG: "1" });
    expect(o.configDir).toBe("/x/etc");
    expect(o.generation).toBe(0o17);
    expect(o.verbose).toBe(1);
    expect(o.debug).toBe(true);
    expect(ok([], { GENERATION: "" }).generation).toBe(0);
    expect(ok([], { GENERATION: "8" }).generation).toBe(0); // strtoul base 8 stops at 8
    expect(ok([], { GENERATION: "77777777777" }).generation).toBe(0xffffffff); // wraps to 32 bits
    expect(err([], { GENERATION: "1x" })).toBe("bad generation: 1x");
  });

  test("the default service name is the program's base name", () => {
    expect(parseDaemonArgs([], {}, "proxymap").options.serviceName).toBe("proxymap");
    expect(programName("/usr/lib/postfix/sbin/proxymap")).toBe("proxymap");
    expect(programName("proxymap")).toBe("proxymap");
  });
});

/** A MainConfig over a plain record (the skeleton only calls get()). */
function cfg(values: Record<string, string>): MainConfig {
  return {
    get: (n: string) => values[n] ?? "",
    has: (n: string) => n in values,
    expand: (v: string) => v,
    raw: (n: string) => values[n],
    configDir: "/x",
    installedVersion: "3.7.11",
    defaultsSource: "builtin",
  } as MainConfig;
}

describe("parameters", () => {
  const quiet = () => setLogSinks([]);

  test("conv_time: units, default unit, trailing text", () => {
    expect(convTime("100s", "s")).toBe(100);
    expect(convTime("100", "s")).toBe(100);
    expect(convTime("5m", "s")).toBe(300);
    expect(convTime("2h", "s")).toBe(7200);
    expect(convTime("1d", "s")).toBe(86400);
    expect(convTime("1w", "s")).toBe(604800);
    expect(convTime("3", "m")).toBe(180);
    expect(convTime("10sxyz", "s")).toBe(10);
    expect(convTime("10x", "s")).toBeUndefined();
    expect(convTime("", "s")).toBeUndefined();
    expect(convTime("-1", "s")).toBeUndefined();
  });

  test("defaults when the configuration has none", () => {
    const p = readServerParams(cfg({}));
    expect(p).toEqual({
      maxIdle: 100,
      maxUse: 100,
      ipcTimeout: 3600,
      daemonTimeout: 18000,
      busyLagMs: 50,
      busyCpuPercent: 90,
      busyRequests: 0,
      tableChangeRestart: false,
      clientLimit: 100,
    });
  });

  test("configured values", () => {
    const p = readServerParams(
      cfg({ max_idle: "2m", max_use: "5", ipc_timeout: "1", daemon_timeout: "1h", proxymap_busy_lag: "200ms", proxymap_busy_requests: "64" }),
    );
    expect(p.maxIdle).toBe(120);
    expect(p.maxUse).toBe(5);
    expect(p.ipcTimeout).toBe(1);
    expect(p.daemonTimeout).toBe(3600);
    expect(p.busyLagMs).toBe(200);
    expect(p.busyRequests).toBe(64);
    expect(readServerParams(cfg({ proxymap_busy_lag: "1s" })).busyLagMs).toBe(1000);
  });

  test("Postfix's fatal wording for bad values", () => {
    quiet();
    expect(() => getTime(cfg({ max_idle: "x" }), "max_idle", "100s", 1)).toThrow(
      new FatalError("parameter max_idle: bad time value or unit: x"),
    );
    expect(() => getTime(cfg({ max_idle: "0" }), "max_idle", "100s", 1)).toThrow(new FatalError("invalid max_idle: 0 (min 1)"));
    expect(() => getInt(cfg({ max_use: "1x" }), "max_use", 100, 1)).toThrow(
      new FatalError("bad numerical configuration: max_use = 1x"),
    );
    expect(() => getInt(cfg({ max_use: "0" }), "max_use", 100, 1)).toThrow(
      new FatalError("invalid max_use parameter value 0 < 1"),
    );
    expect(() => getBool(cfg({ b: "maybe" }), "b", true)).toThrow(new FatalError("bad boolean configuration: b = maybe"));
    expect(getBool(cfg({ b: "NO" }), "b", true)).toBe(false);
  });
});
