/**
 * mysql tables: reading the configuration - the .cf file and main.cf form
 * (cfgParser.ts), every mysql_table(5) field with its default and the
 * reference's error texts (mysql/driver.ts parseMysqlConfig), option files
 * (optionFile.ts), `hosts` entries (hosts.ts), TLS settings, and the
 * sharing of one pool by tables with the same connection settings.
 * No database needed.
 */
import { TEST_CTX } from "../helpers/driver-caller";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DictFlag } from "../../src/protocol/constants";
import { mysqlTable } from "../../src/tables/mysql";
import { MYSQL_DEFAULTS, parseMysqlConfig, setMysqlMainConfig } from "../../src/tables/mysql/driver";
import { CfgParser, parseCInt } from "../../src/tables/dbCommon/cfgParser";
import { DEFAULT_SOCKET, parseHost, parseHosts, resolveTarget } from "../../src/tables/mysql/hosts";
import { readClientOptions } from "../../src/tables/mysql/optionFile";
import { poolCount } from "../../src/tables/mysql/pool";
import { TableError } from "../../src/tables/table";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "pm-mysql-config-"));
});
afterAll(() => {
  setMysqlMainConfig(undefined);
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string, ageSec = 60): string {
  const p = join(dir, name);
  writeFileSync(p, Buffer.from(text, "latin1"));
  const t = Date.now() / 1000 - ageSec;
  utimesSync(p, t, t);
  return p;
}

function parser(values: Record<string, string>, name = "/etc/postfix/t.cf"): CfgParser {
  return CfgParser.fromValues(name, new Map(Object.entries(values)));
}

const BASE = { dbname: "db", query: "SELECT v FROM t WHERE k='%s'" };

function configError(values: Record<string, string>): string {
  try {
    parseMysqlConfig(parser(values), TEST_CTX);
  } catch (e) {
    expect(e).toBeInstanceOf(TableError);
    expect((e as TableError).kind).toBe("config");
    return (e as TableError).message;
  }
  throw new Error("no error");
}

describe("fields and defaults", () => {
  test("defaults as in Postfix 3.7 (and ours)", () => {
    const c = parseMysqlConfig(parser(BASE), TEST_CTX);
    expect(c.resultFormat).toBe("%s");
    expect(c.expansionLimit).toBe(0);
    expect(c.requireResultSet).toBe(true);
    expect(c.domain).toBeUndefined();
    expect(c.pool.hosts.map((h) => h.label)).toEqual(["localhost"]);
    expect(c.pool.targets).toEqual([{ socketPath: process.env.MYSQL_UNIX_PORT ?? DEFAULT_SOCKET }]);
    expect(c.pool.password).toBe("");
    expect(c.pool.charset).toBe("utf8mb4");
    expect(c.pool.limit).toBe(MYSQL_DEFAULTS.connectionLimit);
    expect(c.pool.queryTimeoutMs).toBe(30_000);
    expect(c.pool.connectTimeoutMs).toBe(10_000);
    expect(c.pool.idleMs).toBe(60_000);
    expect(c.pool.retryMs).toBe(60_000);
    expect(c.pool.ssl).toBeUndefined();
  });

  test("every field read", () => {
    const c = parseMysqlConfig(
      parser({
        ...BASE,
        hosts: "unix:/s1, inet:db1:3307 db2 127.0.0.1:mysql",
        user: "u",
        password: "p w",
        result_format: "smtp:[%s]",
        expansion_limit: "2",
        require_result_set: "No",
        domain: "example.com",
        charset: "latin1",
        retry_interval: "5",
        idle_interval: "7",
        connection_limit: "3",
        query_timeout: "4",
        connect_timeout: "2",
        option_group: "",
      }),
      TEST_CTX,
    );
    expect(c.pool.hosts.map((h) => [h.kind, h.name, h.port])).toEqual([
      ["unix", "/s1", 0],
      ["inet", "db1", 3307],
      ["inet", "db2", 0],
      ["inet", "127.0.0.1", 3306],
    ]);
    expect(c.pool.targets).toEqual([{ socketPath: "/s1" }, { host: "db1", port: 3307 }, { host: "db2", port: 3306 }, { host: "127.0.0.1", port: 3306 }]);
    expect([c.pool.user, c.pool.password, c.pool.charset]).toEqual(["u", "p w", "latin1"]);
    expect([c.resultFormat, c.expansionLimit, c.requireResultSet]).toEqual(["smtp:[%s]", 2, false]);
    expect([c.pool.retryMs, c.pool.idleMs, c.pool.limit, c.pool.queryTimeoutMs, c.pool.connectTimeoutMs]).toEqual([5000, 7000, 3, 4000, 2000]);
    expect(c.domain).toBeDefined();
  });

  test("legacy fields build the query", () => {
    const c = parseMysqlConfig(parser({ dbname: "db", table: "aliases", select_field: "forw", where_field: "alias", additional_conditions: "AND ok = 1" }), TEST_CTX);
    expect(c.query).toBe("SELECT forw FROM aliases WHERE alias='%s' AND ok = 1");
    // An empty query means "not set".
    expect(parseMysqlConfig(parser({ dbname: "db", query: "", table: "t", select_field: "v", where_field: "k" }), TEST_CTX).query).toBe("SELECT v FROM t WHERE k='%s' ");
  });

  test("the reference's fatal errors become CONFIG with its words", () => {
    expect(configError({ query: "x" })).toBe("/etc/postfix/t.cf: bad string length 0 < 1: dbname = ");
    expect(configError({ ...BASE, result_format: "" })).toBe("/etc/postfix/t.cf: bad string length 0 < 1: result_format = ");
    expect(configError({ dbname: "db", select_field: "v", where_field: "k" })).toBe("/etc/postfix/t.cf: bad string length 0 < 1: table = ");
    expect(configError({ ...BASE, require_result_set: "maybe" })).toBe("/etc/postfix/t.cf: bad boolean configuration: require_result_set = maybe");
    expect(configError({ ...BASE, tls_verify_cert: "1" })).toBe("/etc/postfix/t.cf: bad boolean configuration: tls_verify_cert = 1");
    expect(configError({ ...BASE, expansion_limit: "1x" })).toBe("/etc/postfix/t.cf: bad numerical configuration: expansion_limit = 1x");
    expect(configError({ ...BASE, expansion_limit: "99999999999" })).toBe("/etc/postfix/t.cf: bad numerical configuration: expansion_limit = 99999999999");
    expect(configError({ ...BASE, retry_interval: "0" })).toBe("/etc/postfix/t.cf: invalid retry_interval parameter value 0 < 1");
    expect(configError({ ...BASE, connection_limit: "0" })).toBe("/etc/postfix/t.cf: invalid connection_limit parameter value 0 < 1");
    expect(configError({ ...BASE, charset: "" })).toBe("/etc/postfix/t.cf: bad string length 0 < 1: charset = ");
    expect(configError({ ...BASE, query: "SELECT %x" })).toBe("db_common_parse: /etc/postfix/t.cf: Invalid query template: SELECT %x");
    expect(configError({ ...BASE, hosts: "db:0" })).toBe("unknown service: 0/tcp");
    expect(configError({ ...BASE, hosts: "db:70000" })).toBe("bad port number: 70000");
    expect(configError({ ...BASE, domain: "a, !" })).toBe("/etc/postfix/t.cf: no pattern after '!'");
    expect(configError({ ...BASE, charset: "eucjpms" })).toContain("client character set eucjpms is not supported");
  });

  test("strtol-style integers", () => {
    expect(parseCInt(" 12")).toBe(12);
    expect(parseCInt("+3")).toBe(3);
    expect(parseCInt("-3")).toBe(-3);
    expect(parseCInt("3 ")).toBeUndefined();
    expect(parseCInt("")).toBeUndefined();
    expect(parseCInt("0x10")).toBeUndefined();
  });
});

describe("configuration file and main.cf form", () => {
  test("file: logical lines, later entries win with the reference's warning", async () => {
    const p = file("a.cf", "# comment\ndbname = db\nquery = SELECT v\n  FROM t WHERE k='%s'\nuser = a\nuser = b\n");
    const cp = await CfgParser.open(p);
    expect(cp.str("query", null)).toBe("SELECT v  FROM t WHERE k='%s'");
    expect(cp.str("user", "")).toBe("b");
    expect(cp.str("password", "")).toBe("");
    expect(cp.str("option_file", null)).toBeNull();
  });

  test("a file modified just now is read again once it holds still", async () => {
    const p = file("hot.cf", "dbname = db\n", 0);
    const t0 = Date.now();
    const cp = await CfgParser.open(p);
    expect(cp.str("dbname", "")).toBe("db");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
  });

  test("missing file: the reference's surrogate (RETRY); write service refused", async () => {
    const missing = join(dir, "nope.cf");
    await expect(Promise.resolve().then(() => mysqlTable.open({ type: "mysql", name: missing, write: false, flags: 0 }, TEST_CTX))).rejects.toEqual(
      new TableError("retry", `open ${missing}: No such file or directory`),
    );
    // The write service's refusal is declared on the type; the dict layer makes it.
    expect(mysqlTable.refuses).toEqual(["write"]);
  });

  test("main.cf form: NAME_field parameters, expanded values", async () => {
    const main = new Map([
      ["src_dbname", "db"],
      ["src_query", "SELECT v FROM t WHERE k='%s'"],
      ["src_user", "u"],
      ["src_expansion_limit", "x"],
    ]);
    setMysqlMainConfig({ raw: (n) => main.get(n), get: (n) => main.get(n) ?? "" });
    const cp = await CfgParser.open("src");
    expect(cp.str("user", "")).toBe("u");
    expect(cp.str("hosts", "")).toBe("");
    expect(() => cp.int("expansion_limit", 0)).toThrow(new TableError("config", "bad numerical configuration: src_expansion_limit = x"));
  });

  test("the table's flags: FIXED added to the open flags", async () => {
    const p = file("flags.cf", `dbname = db\nhosts = unix:${join(dir, "nosock")}\nquery = SELECT 1\n`);
    const t = await mysqlTable.open({ type: "mysql", name: p, write: false, flags: DictFlag.FOLD_FIX | DictFlag.LOCK }, TEST_CTX);
    expect(t.flags).toBe(DictFlag.FOLD_FIX | DictFlag.LOCK | DictFlag.FIXED);
    await t.close?.();
  });
});

describe("option files (Connector/C rules)", () => {
  test("groups, quotes, escapes, includes, '_' as '-'", () => {
    const inc = file("inc.cnf", "[client]\nport = 3999\n");
    file("my.cnf", "[client]\nsocket = /from/incdir\n");
    const p = file(
      "opt.cnf",
      [
        "[mysqld]",
        "user = server-only",
        "[client]",
        "user = 'quoted user'",
        "password=\"p\\tw\\sx\"",
        "default_character_set = latin1",
        "connect-timeout = 7 seconds",
        "init-command = SET @a=1",
        "compress",
        "; comment",
        `!include ${inc}`,
        "[postfix]",
        "host = db.example",
        "ssl-ca = /ca.pem",
        "ssl-verify-server-cert = 1",
        "[other]",
        "host = not-this",
        `!includedir ${dir}`,
      ].join("\n"),
    );
    const o = readClientOptions(p, "postfix");
    expect(o.user).toBe("quoted user");
    expect(o.password).toBe("p\tw x");
    expect(o.charset).toBe("latin1");
    expect(o.connectTimeout).toBe(7);
    expect(o.initCommands).toEqual(["SET @a=1"]);
    expect(o.port).toBe(3999);
    expect(o.host).toBe("db.example");
    expect(o.sslCa).toBe("/ca.pem");
    expect(o.sslVerifyServerCert).toBe(true);
    // "!includedir DIR" reads DIR/my.cnf only; that file's own [client] counts.
    expect(o.socket).toBe("/from/incdir");
    // Without option_group only the client groups count.
    expect(readClientOptions(p, "").host).toBeUndefined();
  });

  test("a line before any group stops reading that file", () => {
    const p = file("nogroup.cnf", "user = x\n[client]\nuser = y\n");
    expect(readClientOptions(p, "client").user).toBeUndefined();
  });

  test("no option_file and an empty option_group: nothing is read", () => {
    expect(readClientOptions(null, "")).toEqual({ initCommands: [] });
  });

  test("option file values feed the connection; Postfix's password wins (even empty)", () => {
    const p = file("conn.cnf", "[client]\nuser = fromfile\npassword = secret\nsocket = /opt/sock\nport = 3310\n[client-mariadb]\ndefault-character-set = gbk\n");
    const c = parseMysqlConfig(parser({ ...BASE, option_file: p, hosts: "localhost 10.0.0.1 unix:/explicit" }), TEST_CTX);
    expect(c.pool.user).toBe("fromfile");
    expect(c.pool.password).toBe("");
    expect(c.pool.charset).toBe("gbk");
    expect(c.pool.targets).toEqual([{ socketPath: "/opt/sock" }, { host: "10.0.0.1", port: 3310 }, { socketPath: "/explicit" }]);
    // A `charset` setting (Postfix 3.9) wins over the option file.
    expect(parseMysqlConfig(parser({ ...BASE, option_file: p, charset: "latin1" }), TEST_CTX).pool.charset).toBe("latin1");
  });

  test("protocol=1 forces TCP for localhost", () => {
    expect(resolveTarget(parseHost("localhost"), { initCommands: [], protocol: 1 })).toEqual({ host: "localhost", port: 3306 });
    expect(resolveTarget(parseHost("inet:LocalHost:3307"), { initCommands: [] })).toEqual({ socketPath: process.env.MYSQL_UNIX_PORT ?? DEFAULT_SOCKET });
  });
});

describe("hosts", () => {
  test("entries as host_init() reads them", () => {
    expect(parseHost("unix:/var/run/mysqld/mysqld.sock")).toEqual({ label: "unix:/var/run/mysqld/mysqld.sock", kind: "unix", name: "/var/run/mysqld/mysqld.sock", port: 0 });
    expect(parseHost("inet:db:3307")).toEqual({ label: "inet:db:3307", kind: "inet", name: "db", port: 3307 });
    expect(parseHost("db")).toEqual({ label: "db", kind: "inet", name: "db", port: 0 });
    expect(parseHost("localhost:3307")).toEqual({ label: "localhost:3307", kind: "unix", name: undefined, port: 3307 });
    expect(parseHosts("  ,, ")).toHaveLength(1);
    expect(parseHosts("a,b c\td").map((h) => h.name)).toEqual(["a", "b", "c", "d"]);
  });
});

describe("TLS settings", () => {
  test("mapped to mysql2 ssl options; option files override", () => {
    const ca = file("ca.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    const cadir = mkdtempSync(join(dir, "cadir-"));
    writeFileSync(join(cadir, "x.0"), "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n");
    writeFileSync(join(cadir, "notes.txt"), "not a certificate");
    const key = file("key.pem", "KEY");
    const cert = file("cert.pem", "CERT");
    const c = parseMysqlConfig(parser({ ...BASE, tls_CAfile: ca, tls_CApath: cadir, tls_key_file: key, tls_cert_file: cert, tls_ciphers: "HIGH", tls_verify_cert: "yes" }), TEST_CTX);
    expect(c.pool.ssl).toMatchObject({ key: "KEY", cert: "CERT", ciphers: "HIGH", rejectUnauthorized: true, verifyIdentity: true });
    expect(c.pool.ssl!.ca).toHaveLength(2);
    // Ciphers alone: TLS without verification.
    expect(parseMysqlConfig(parser({ ...BASE, tls_ciphers: "HIGH" }), TEST_CTX).pool.ssl).toEqual({ ciphers: "HIGH", rejectUnauthorized: false, verifyIdentity: false });
    // A CA verifies the chain, not the name, unless tls_verify_cert = yes.
    expect(parseMysqlConfig(parser({ ...BASE, tls_CAfile: ca }), TEST_CTX).pool.ssl).toMatchObject({ rejectUnauthorized: true, verifyIdentity: false });
    const opt = file("tls.cnf", "[client]\nssl-cipher = LOW\nssl-verify-server-cert = 0\n");
    expect(parseMysqlConfig(parser({ ...BASE, tls_ciphers: "HIGH", tls_verify_cert: "yes", option_file: opt }), TEST_CTX).pool.ssl).toEqual({ ciphers: "LOW", rejectUnauthorized: false, verifyIdentity: false });
    expect(() => parseMysqlConfig(parser({ ...BASE, tls_CAfile: join(dir, "missing.pem") }), TEST_CTX)).toThrow(TableError);
  });
});

describe("pool sharing", () => {
  test("tables with the same connection settings share one pool", async () => {
    const conn = `dbname = db\nhosts = unix:${join(dir, "nosock")}\n`;
    const a = file("share-a.cf", `${conn}query = SELECT 1 FROM a WHERE k='%s'\n`);
    const b = file("share-b.cf", `${conn}query = SELECT 2 FROM b WHERE k='%s'\nresult_format = <%s>\n`);
    const c = file("share-c.cf", `${conn}query = SELECT 1\nconnection_limit = 2\n`);
    const before = poolCount();
    const ta = await mysqlTable.open({ type: "mysql", name: a, write: false, flags: 0 }, TEST_CTX);
    const tb = await mysqlTable.open({ type: "mysql", name: b, write: false, flags: DictFlag.FOLD_FIX }, TEST_CTX);
    expect(poolCount()).toBe(before + 1);
    const tc = await mysqlTable.open({ type: "mysql", name: c, write: false, flags: 0 }, TEST_CTX);
    expect(poolCount()).toBe(before + 2);
    await ta.close?.();
    expect(poolCount()).toBe(before + 2);
    await tb.close?.();
    await tc.close?.();
    expect(poolCount()).toBe(before);
  });
});
