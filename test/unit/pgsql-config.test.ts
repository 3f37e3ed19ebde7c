/**
 * pgsql tables: the pieces that need no database - every pgsql_table(5)
 * field as each Postfix generation reads it (pgsql/config.ts: 3.7, 3.8's
 * encoding, 3.9's intervals, 3.10's URIs and optional dbname), `hosts`
 * entries and libpq's defaults (pgsql/hosts.ts), connection strings
 * (pgsql/conninfo.ts), the client encoding edge (pgsql/encoding.ts:
 * results, conversion failures, invalid UTF-8 queries), libpq's cursor
 * display (pgsql/messages.ts), the open flags and the main.cf form, the
 * write service, and pool sharing. libpq itself is the oracle for quoting
 * and messages in pgsql-libpq.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DictFlag } from "../../src/protocol/constants";
import { CfgParser } from "../../src/tables/dbCommon/cfgParser";
import { setTableMainConfig, installedGeneration } from "../../src/tables/dbCommon/mainConfig";
import type { Generation } from "../../src/config/declared";
import { pgsql } from "../../src/tables/pgsql";
import { parsePgsqlConfig, PGSQL_DEFAULTS } from "../../src/tables/pgsql/config";
import { parseConninfo } from "../../src/tables/pgsql/conninfo";
import { clientEncodingOf, ConversionError, invalidUtf8Report, queryText, resultBytes } from "../../src/tables/pgsql/encoding";
import { DEFAULT_SOCKET_DIR, parseHost, splitHosts, validUriScheme } from "../../src/tables/pgsql/hosts";
import { errorPosition, serverErrorText } from "../../src/tables/pgsql/messages";
import { pgPoolCount } from "../../src/tables/pgsql/pool";
import { TableError, type OpenContext } from "../../src/tables/table";
import { writeCoolFile } from "../helpers/files";

const G37: Generation = [3, 7, 0];
const G38: Generation = [3, 8, 0];
const G39: Generation = [3, 9, 0];
const G310: Generation = [3, 10, 0];
const NO_CTX: OpenContext = { openTable: () => Promise.reject(new Error("no tables here")) };
const u8 = (s: string) => Buffer.from(s, "utf8").toString("latin1");

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "pm-pgsql-config-"));
});
afterAll(() => {
  setTableMainConfig(undefined);
  rmSync(dir, { recursive: true, force: true });
});

function parser(values: Record<string, string>, name = "/etc/postfix/t.cf"): CfgParser {
  return CfgParser.fromValues(name, new Map(Object.entries(values)));
}

const BASE = { dbname: "db", query: "SELECT v FROM t WHERE k='%s'" };

function configError(values: Record<string, string>, gen = G37): string {
  try {
    parsePgsqlConfig(parser(values), gen, NO_CTX);
  } catch (e) {
    expect(e).toBeInstanceOf(TableError);
    expect((e as TableError).kind).toBe("config");
    return (e as TableError).message;
  }
  throw new Error("no error");
}

describe("fields by generation", () => {
  test("3.7 defaults: LATIN1, localhost over TCP, 60 s intervals, ours", () => {
    const c = parsePgsqlConfig(parser(BASE), G37, NO_CTX);
    expect(c.encoding).toBe("LATIN1");
    expect(c.resultFormat).toBe("%s");
    expect(c.expansionLimit).toBe(0);
    expect(c.domain).toBeUndefined();
    expect(c.hosts.map((h) => [h.label, h.rank])).toEqual([["localhost", 1]]);
    expect(c.hosts[0].targets[0]).toMatchObject({ socket: undefined, host: "localhost", port: 5432, dbname: "db", sslmode: process.env.PGSSLMODE ?? "prefer" });
    expect(c.limit).toBe(PGSQL_DEFAULTS.connectionLimit);
    expect(c.queryTimeoutMs).toBe(30_000);
    expect(c.connectTimeout).toBe(10);
    expect(c.retryMs).toBe(60_000);
    expect(c.idleMs).toBe(60_000);
    expect(c.surrogate).toBeUndefined();
  });

  test("3.7 ignores encoding, and retry/idle intervals it cannot read", () => {
    const c = parsePgsqlConfig(parser({ ...BASE, encoding: "UTF8", retry_interval: "x", idle_interval: "5" }), G37, NO_CTX);
    expect(c.encoding).toBe("LATIN1");
    expect(c.retryMs).toBe(60_000);
    expect(c.idleMs).toBe(5_000);
  });

  test("3.8: encoding, default UTF8; a name PostgreSQL knows but we cannot emulate is CONFIG; an unknown one fails like the reference", () => {
    expect(parsePgsqlConfig(parser(BASE), G38, NO_CTX).encoding).toBe("UTF8");
    expect(parsePgsqlConfig(parser({ ...BASE, encoding: "latin1" }), G38, NO_CTX).encoding).toBe("LATIN1");
    expect(parsePgsqlConfig(parser({ ...BASE, encoding: "ISO_8859_1" }), G38, NO_CTX).encoding).toBe("LATIN1");
    expect(configError({ ...BASE, encoding: "WIN1252" }, G38)).toBe("pgsql:/etc/postfix/t.cf: client encoding WIN1252 is not supported by this proxymap (only UTF8 and LATIN1)");
    expect(parsePgsqlConfig(parser({ ...BASE, encoding: "bogus" }), G38, NO_CTX).badEncoding).toBe("bogus");
    expect(configError({ ...BASE, encoding: "" }, G38)).toBe("/etc/postfix/t.cf: bad string length 0 < 1: encoding = ");
  });

  test("3.9: retry_interval and idle_interval are checked", () => {
    const c = parsePgsqlConfig(parser({ ...BASE, retry_interval: "7", idle_interval: "3" }), G39, NO_CTX);
    expect([c.retryMs, c.idleMs]).toEqual([7000, 3000]);
    expect(configError({ ...BASE, retry_interval: "x" }, G39)).toBe("/etc/postfix/t.cf: bad numerical configuration: retry_interval = x");
    expect(configError({ ...BASE, idle_interval: "0" }, G39)).toBe("/etc/postfix/t.cf: invalid idle_interval parameter value 0 < 1");
  });

  test("dbname: required up to 3.9; from 3.10 only for hosts that are not URIs (else the surrogate)", () => {
    expect(configError({ query: "SELECT 1" }, G37)).toBe("/etc/postfix/t.cf: bad string length 0 < 1: dbname = ");
    expect(configError({ query: "SELECT 1" }, G39)).toBe("/etc/postfix/t.cf: bad string length 0 < 1: dbname = ");
    expect(parsePgsqlConfig(parser({ query: "SELECT 1" }), G310, NO_CTX).surrogate).toBe("pgsql:/etc/postfix/t.cf host target 'localhost' requires dbname setting");
    expect(parsePgsqlConfig(parser({ query: "SELECT 1", hosts: "postgresql://h/db unix:/run/pg inet:db1:5433" }), G310, NO_CTX).surrogate).toBe("pgsql:/etc/postfix/t.cf host target 'db1' requires dbname setting");
    expect(parsePgsqlConfig(parser({ query: "SELECT 1", hosts: "postgresql://h/db postgres://h2/db" }), G310, NO_CTX).surrogate).toBeUndefined();
  });

  test("URI hosts: 'postgresql:' up to 3.9, any scheme from 3.10", () => {
    const h37 = parsePgsqlConfig(parser({ ...BASE, hosts: "postgresql://h1/d1 postgres://h2/d2" }), G37, NO_CTX).hosts;
    expect(h37.map((h) => [h.rank, h.error])).toEqual([[2, undefined], [1, "invalid integer value \"//h2/d2\" for connection option \"port\"\n"]]);
    const h310 = parsePgsqlConfig(parser({ ...BASE, hosts: "postgresql://h1/d1 postgres://h2/d2 foo://x" }), G310, NO_CTX).hosts;
    expect(h310.map((h) => [h.rank, h.error])).toEqual([[2, undefined], [2, undefined], [2, 'missing "=" after "foo://x" in connection info string\n']]);
    expect(h310[1].targets[0]).toMatchObject({ host: "h2", dbname: "d2" });
    expect(validUriScheme("a+b-c://x")).toBe(true);
    expect(validUriScheme("1ab://x")).toBe(false);
    expect(validUriScheme("ab:/x")).toBe(false);
  });

  test("query: given, or select_function, or the legacy fields (the reference's words when one is missing)", () => {
    expect(parsePgsqlConfig(parser({ dbname: "d", select_function: "fn" }), G37, NO_CTX).query).toBe("SELECT fn('%s')");
    expect(parsePgsqlConfig(parser({ dbname: "d", table: "t", select_field: "a", where_field: "b", additional_conditions: "AND c" }), G37, NO_CTX).query).toBe("SELECT a FROM t WHERE b='%s' AND c");
    expect(configError({ dbname: "d", select_field: "a", where_field: "b" })).toBe("/etc/postfix/t.cf: bad string length 0 < 1: table = ");
    expect(configError({ ...BASE, query: "SELECT '%z'" })).toBe("db_common_parse: /etc/postfix/t.cf: Invalid query template: SELECT '%z'");
    expect(configError({ ...BASE, result_format: "%x" })).toBe("db_common_parse: /etc/postfix/t.cf: Invalid result template: %x");
    expect(configError({ ...BASE, expansion_limit: "1x" })).toBe("/etc/postfix/t.cf: bad numerical configuration: expansion_limit = 1x");
    expect(configError({ ...BASE, connection_limit: "0" })).toBe("/etc/postfix/t.cf: invalid connection_limit parameter value 0 < 1");
  });

  test("domain list and our own settings", () => {
    const c = parsePgsqlConfig(parser({ ...BASE, domain: "example.com, !bad.example.com", connection_limit: "4", query_timeout: "2", connect_timeout: "3" }), G37, NO_CTX);
    expect(c.domain).toBeDefined();
    expect([c.limit, c.queryTimeoutMs, c.connectTimeout]).toEqual([4, 2000, 3]);
  });

  test("installedGeneration() follows the installed version the configuration reports", () => {
    setTableMainConfig({ raw: () => undefined, get: () => "", installedVersion: "3.10.2" });
    expect(installedGeneration()).toEqual([3, 10, 2]);
    setTableMainConfig({ raw: () => undefined, get: () => "" });
    expect(installedGeneration()).toEqual([3, 7, 11]);
    setTableMainConfig(undefined);
  });
});

describe("hosts", () => {
  const creds = { user: "u", password: "p", dbname: "d" };
  test("entries as host_init() reads them, libpq's defaults filled in", () => {
    expect(splitHosts("")).toEqual(["localhost"]);
    expect(splitHosts(" a, b\tc ")).toEqual(["a", "b", "c"]);
    const t = (e: string) => parseHost(e, creds, false);
    expect(t("unix:/run/pg").targets[0]).toMatchObject({ socket: "/run/pg/.s.PGSQL.5432", sslmode: "disable", user: "u", password: "p", dbname: "d" });
    expect(t("/run/pg").rank).toBe(0);
    expect(t("unix:").targets[0].socket).toBe(`${process.env.PGHOST ?? DEFAULT_SOCKET_DIR}/.s.PGSQL.5432`);
    expect(t("inet:db1:5433").targets[0]).toMatchObject({ socket: undefined, host: "db1", port: 5433 });
    expect(t("db1").targets[0]).toMatchObject({ host: "db1", port: 5432 });
    expect(t("inet:[::1]:5433").targets[0]).toMatchObject({ host: "[::1]", port: 5433 });
    expect(t("unix:relative").rank).toBe(1);
    expect(t("db1:x").error).toBe('invalid integer value "x" for connection option "port"\n');
    expect(parseHost("db1", { user: "", password: "", dbname: "" }, false).targets[0].dbname).toBe(parseHost("db1", { user: "", password: "", dbname: "" }, false).targets[0].user);
  });

  test("URIs: user, password, database from the URI, several hosts, parameters", () => {
    const h = parseHost("postgresql://us%40r:p%3Aw@h1:5433,[::1]:5434/db%2F1?sslmode=require&connect_timeout=1&application_name=pm&options=-c%20x%3D1", creds, false);
    expect(h.error).toBeUndefined();
    expect(h.targets.map((t) => [t.host, t.port])).toEqual([["h1", 5433], ["::1", 5434]]);
    expect(h.targets[0]).toMatchObject({ user: "us@r", password: "p:w", dbname: "db/1", sslmode: "require", connectTimeout: 2, applicationName: "pm", options: "-c x=1" });
    const sock = parseHost("postgresql://%2Frun%2Fpg/db", creds, false);
    expect(sock.targets[0].socket).toBe("/run/pg/.s.PGSQL.5432");
    expect(parseHost("postgresql://h?ssl=true", creds, false).targets[0].sslmode).toBe("require");
  });

  test("connection strings: libpq's errors", () => {
    expect(parseConninfo("host=/x dbname='a b' user=\\'q")).toEqual({ values: new Map([["host", "/x"], ["dbname", "a b"], ["user", "'q"]]) });
    expect(parseConninfo("host")).toEqual({ error: 'missing "=" after "host" in connection info string\n' });
    expect(parseConninfo("nosuch=1")).toEqual({ error: 'invalid connection option "nosuch"\n' });
    expect(parseConninfo("host='x")).toEqual({ error: "unterminated quoted string in connection info string\n" });
    expect(parseConninfo("postgresql://h/d?x=1")).toEqual({ error: 'invalid URI query parameter: "x"\n' });
    expect(parseConninfo("postgresql://h/d%00")).toEqual({ error: 'forbidden value %00 in percent-encoded value: "d%00"\n' });
  });
});

describe("the client encoding at the edge", () => {
  test("names", () => {
    expect(clientEncodingOf("utf-8")).toBe("UTF8");
    expect(clientEncodingOf("Unicode")).toBe("UTF8");
    expect(clientEncodingOf("iso-8859-1")).toBe("LATIN1");
    expect(clientEncodingOf("LATIN9")).toBeUndefined();
  });

  test("results: LATIN1 takes code points up to 255 as bytes; a higher one fails as the server's conversion", () => {
    expect(resultBytes(Buffer.from("café", "utf8"), "LATIN1", false)).toBe("caf\xe9");
    expect(resultBytes(Buffer.from("café", "utf8"), "UTF8", false)).toBe(u8("café"));
    expect(resultBytes(Buffer.from([0xe9]), "LATIN1", true)).toBe("\xe9");
    expect(() => resultBytes(Buffer.from("a€", "utf8"), "LATIN1", false)).toThrow(ConversionError);
    try {
      resultBytes(Buffer.from("😀", "utf8"), "LATIN1", false);
    } catch (e) {
      expect((e as Error).message).toBe('character with byte sequence 0xf0 0x9f 0x98 0x80 in encoding "UTF8" has no equivalent in encoding "LATIN1"');
    }
  });

  test("queries: LATIN1 bytes go as their code points; UTF8 bytes must be UTF-8 (the server's words otherwise)", () => {
    expect(queryText("caf\xe9", "LATIN1")).toBe("caf\xe9");
    expect(queryText(u8("café"), "UTF8")).toBe("café");
    expect(queryText("caf\xe9'", "UTF8")).toBeUndefined();
    expect(invalidUtf8Report("caf\xe9'x")).toBe('invalid byte sequence for encoding "UTF8": 0xe9 0x27 0x78');
    expect(invalidUtf8Report("ab\xf0\x9f")).toBe('invalid byte sequence for encoding "UTF8": 0xf0 0x9f');
  });
});

describe("libpq's messages", () => {
  test("cursor line: tabs, long lines cut with '...', later lines", () => {
    expect(errorPosition("SELECT x", 8, "LATIN1")).toBe("LINE 1: SELECT x\n               ^\n");
    expect(errorPosition("a\tb", 3, "LATIN1")).toBe("LINE 1: a b\n          ^\n");
    expect(errorPosition("one\ntwo\r\nthree", 11, "LATIN1")).toBe("LINE 3: three\n         ^\n");
    const long = `${"a".repeat(100)}X${"b".repeat(100)}`;
    expect(errorPosition(long, 101, "LATIN1")).toBe(`LINE 1: ...${"a".repeat(50)}X${"b".repeat(9)}...\n${" ".repeat(61)}^\n`);
    expect(errorPosition("short", 9, "LATIN1")).toBe("");
  });

  test("server errors: severity, message, DETAIL, HINT, QUERY, CONTEXT; position without a query", () => {
    expect(serverErrorText({ severity: "ERROR", message: "m", detail: "d", hint: "h", where: "w" }, undefined, "LATIN1")).toBe("ERROR:  m\nDETAIL:  d\nHINT:  h\nCONTEXT:  w\n");
    expect(serverErrorText({ severity: "ERROR", message: "m", position: "3" }, undefined, "LATIN1")).toBe("ERROR:  m at character 3\n");
    expect(serverErrorText({ severity: "ERROR", message: "m", internalPosition: "2", internalQuery: "ab c" }, undefined, "LATIN1")).toBe("ERROR:  m\nLINE 1: ab c\n         ^\nQUERY:  ab c\n");
  });
});

describe("table", () => {
  test("open: FIXED added to the request flags; main.cf form; the write service refused; shared pools", async () => {
    const path = writeCoolFile(join(dir, "a.cf"), "hosts = unix:/nonexistent\ndbname = d\nquery = SELECT 1 WHERE '%s' <> ''\n");
    const before = pgPoolCount();
    const a = await pgsql.open({ type: "pgsql", name: path, write: false, flags: DictFlag.LOCK }, NO_CTX);
    const b = await pgsql.open({ type: "pgsql", name: path, write: false, flags: 0 }, NO_CTX);
    expect(a.flags).toBe(DictFlag.LOCK | DictFlag.FIXED);
    expect(pgPoolCount()).toBe(before + 1);
    await a.close?.();
    expect(pgPoolCount()).toBe(before + 1);
    await b.close?.();
    expect(pgPoolCount()).toBe(before);

    const main = new Map([["pg_dbname", "maindb"], ["pg_hosts", "unix:/x"], ["pg_query", "SELECT 1"]]);
    setTableMainConfig({ raw: (n) => main.get(n), get: (n) => main.get(n) ?? "" });
    const m = await pgsql.open({ type: "pgsql", name: "pg", write: false, flags: 0 }, NO_CTX);
    await m.close?.();
    setTableMainConfig(undefined);

    // The write service's refusal is declared on the type; the dict layer makes it.
    expect(pgsql.refuses).toEqual(["write"]);
    await expect(Promise.resolve(pgsql.open({ type: "pgsql", name: join(dir, "none.cf"), write: false, flags: 0 }, NO_CTX))).rejects.toThrow(`open ${join(dir, "none.cf")}: No such file or directory`);
  });
});
