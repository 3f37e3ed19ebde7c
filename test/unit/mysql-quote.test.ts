/**
 * mysql tables: the SQL text of a lookup, byte for byte.
 *
 * 1. Pure checks of quote.ts (mysql_real_escape_string rules) and
 *    template.ts (%-expansion and which keys are queried at all).
 * 2. The statements the C proxymap sends and the ones we send, read back
 *    from a private MariaDB's general query log file (raw bytes): for every
 *    single byte and a corpus of hostile keys with the default character
 *    set (utf8mb4); for every 8-bit byte followed by a quote, a letter and
 *    a backslash with each multi-byte client character set (and latin1)
 *    set in an option file (eucjpms is refused, mysql2 cannot decode it);
 *    and with the server in NO_BACKSLASH_ESCAPES mode.
 * 3. A character set the server does not know (gb18030 on MariaDB 10): SET
 *    NAMES fails, and the reference goes on quoting by gb18030's rules while
 *    the server reads the statement in its own default; a key crafted for
 *    that mismatch ends the quoted string early (shown on the reference's
 *    statement). Ours answers RETRY and sends nothing (deliberate
 *    difference).
 *
 * Needs: MariaDB (apt-get install mariadb-server) and Postfix with MySQL
 * support (apt-get install postfix postfix-mysql). Runs as root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeAllDicts } from "../../src/tables/dict";
import { escapeQuotes, escapeSlashes, makeEscaper } from "../../src/tables/mysql/quote";
import { legacyQuery, TemplateContext } from "../../src/tables/dbCommon/expand";
import { TableError } from "../../src/tables/table";
import { Status } from "../../src/protocol/constants";
import { closeOurTables, createTestDatabase, ourLookup, PrivateMariadb, referenceLookup, requireReference, type TestDatabase, writeOld } from "../helpers/mariadb";

describe("quote.ts", () => {
  test("the seven special bytes, everything else copied", () => {
    expect(escapeSlashes("a'b\"c\\d\ne\rf\x1ag")).toBe("a\\'b\\\"c\\\\d\\ne\\rf\\Zg");
    expect(escapeSlashes("\t\b%_\x7f\x80\xff\xc3\xa9")).toBe("\t\b%_\x7f\x80\xff\xc3\xa9");
    // A C string ends at NUL.
    expect(escapeSlashes("ab\0cd")).toBe("ab");
    expect(escapeQuotes("it's \\ \"x\"")).toBe("it''s \\ \"x\"");
  });

  test("multi-byte client character sets", () => {
    const gbk = makeEscaper({ charset: "GBK", noBackslashEscapes: false });
    // 0x81 0x5C is one character: its 0x5C is not a backslash.
    expect(gbk("\x81\x5c'")).toBe("\x81\x5c\\'");
    // A lead byte that starts no character is escaped itself.
    expect(gbk("\x81'")).toBe("\\\x81\\'");
    const big5 = makeEscaper({ charset: "big5", noBackslashEscapes: false });
    expect(big5("\xa1\x5c")).toBe("\xa1\x5c");
    expect(big5("\xa1'")).toBe("\\\xa1\\'");
    const gb18030 = makeEscaper({ charset: "gb18030", noBackslashEscapes: false });
    expect(gb18030("\x81\x5c\x81'")).toBe("\x81\x5c\x81\\'");
    const utf8 = makeEscaper({ charset: "utf8mb4", noBackslashEscapes: false });
    expect(utf8("\xe9'")).toBe("\xe9\\'");
    const nb = makeEscaper({ charset: "sjis", noBackslashEscapes: true });
    expect(nb("\x81\x5c'\\")).toBe("\x81\x5c''\\");
  });
});

describe("template.ts", () => {
  const q = (s: string) => `[${s}]`;
  function ctx(query: string, result = "%s"): TemplateContext {
    const c = new TemplateContext("mysql", "/t.cf");
    c.parse(query, true);
    c.parse(result, false);
    return c;
  }

  test("query expansions", () => {
    const c = ctx("%s|%u|%d|%S|%U|%D|%1|%2|%%");
    expect(c.expandQuery("%s|%u|%d|%S|%U|%D|%1|%2|%%", "a@b.example.org", q)).toBe("[a@b.example.org]|[a]|[b.example.org]|[a@b.example.org]|[a]|[b.example.org]|[org]|[example]|%");
    // Last '@' splits; empty labels do not count.
    expect(c.expandQuery("%u %d %1 %2", "x@y@z..org.", q)).toBe("[x@y] [z..org.] [org] [z]");
  });

  test("keys lacking what a template needs are not queried", () => {
    expect(ctx("%d").expandQuery("%d", "nodomain")).toBeUndefined();
    expect(ctx("%d").expandQuery("%d", "user@")).toBeUndefined();
    expect(ctx("%u").expandQuery("%u", "@domain")).toBeUndefined();
    expect(ctx("%u").expandQuery("%u", "plain")).toBe("plain");
    expect(ctx("%3").expandQuery("%3", "u@a.b")).toBeUndefined();
    // The result template's needs count too.
    expect(ctx("%s", "%D").expandQuery("%s", "plain")).toBeUndefined();
    expect(ctx("%s").expandQuery("%s", "")).toBeUndefined();
  });

  test("result expansions", () => {
    const c = ctx("%s", "%u/%d/%S/%U/%D");
    expect(c.expandResult("%u/%d/%S/%U/%D", "r@x.org", "k@y.org")).toBe("r/x.org/k@y.org/k/y.org");
    expect(c.expandResult("%u/%d/%S/%U/%D", "nodomain", "k@y.org")).toBeUndefined();
    expect(c.expandResult("%u/%d/%S/%U/%D", null, "k@y.org")).toBeUndefined();
  });

  test("invalid templates are the reference's fatal error", () => {
    const c = new TemplateContext("mysql", "/t.cf");
    expect(() => c.parse("x %z", true)).toThrow(new TableError("config", "db_common_parse: /t.cf: Invalid query template: x %z"));
    expect(() => c.parse("x %", false)).toThrow(new TableError("config", "db_common_parse: /t.cf: Invalid result template: x %"));
    expect(legacyQuery("v", "t", "k", "")).toBe("SELECT v FROM t WHERE k='%s' ");
  });
});

let server: PrivateMariadb;
let tdb: TestDatabase;
let dir: string;

beforeAll(async () => {
  requireReference();
  server = await PrivateMariadb.create({ generalLog: true });
  tdb = createTestDatabase("quote", server.socket, server.port);
  dir = mkdtempSync(join(tmpdir(), "pm-mysql-quote-"));
});

afterAll(async () => {
  await closeOurTables(true);
  tdb?.drop();
  await server?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const HOSTILE = [
  "plain",
  "o'brien",
  "back\\slash",
  'dq"x',
  "\xe9",
  "\xc3\xa9",
  "\xc3'",
  "\x81\x5c'",
  "\x81'",
  "\xa1\x5c\\",
  "\x8e\xa1'\x8f",
  "a\nb\rc\x1ad\te",
  "' OR 1=1 -- ",
  "\\'",
  "'\\",
  "%s%%_",
  "user@Example.COM",
  "@x",
  "x@",
  "\xf0\x9f\x98\x80\\",
  "\xff\xfe'",
];
const ALL_BYTES = Array.from({ length: 255 }, (_, i) => String.fromCharCode(i + 1));

const PLAIN = "SELECT '%s', '%u', '%S', \"%U\" FROM DUAL WHERE 'MARK' <> ''";
const ADDRESS = "SELECT '%u', '%d', '%1', \"%2\", '%D' FROM DUAL WHERE 'MARK' <> ''";
const ADDRESSES = ["u@example.com", "o'b@ex\\am'ple.org", "\xe9@\xc3\xa9.de", "a@b@c.d", "x\n@y\r.z", "\\@'.'"];

/** Run each key through both sides on a table; compare the statements the server logged. */
async function compareStatements(label: string, body: string, keys: string[], template = PLAIN): Promise<number> {
  const conn = `hosts = unix:${server.socket}\nuser = ${tdb.user}\npassword = ${tdb.password}\ndbname = ${tdb.db}\n`;
  const refCf = join(dir, `${label}-ref.cf`);
  const ourCf = join(dir, `${label}-our.cf`);
  writeOld(refCf, `${conn}${body}query = ${template.replace("MARK", `ref-${label}`)}\n`);
  writeOld(ourCf, `${conn}${body}query = ${template.replace("MARK", `our-${label}`)}\n`);
  for (const k of keys) {
    await referenceLookup(`mysql:${refCf}`, k);
    await ourLookup(`mysql:${ourCf}`, k);
  }
  const logged = server.queries();
  const read = (side: string): string[] =>
    logged
      .filter((q) => q.includes(`'${side}-${label}'`))
      .map((q) => q.replace(`'${side}-${label}'`, "'MARK'"))
      .sort();
  const ref = read("ref");
  const ours = read("our");
  expect(ref.length).toBeGreaterThan(0);
  expect(ours).toEqual(ref);
  return ref.length;
}

describe("SQL text: C proxymap vs ours, from the server's general log", () => {
  test("default character set (utf8mb4): every byte and hostile keys", async () => {
    const n = await compareStatements("utf8", "", [...ALL_BYTES, ...HOSTILE]);
    // "@" and "@x" are never queried: %u needs a non-empty local part.
    expect(n).toBe(ALL_BYTES.length + HOSTILE.length - 2);
    // Of the hostile keys only user@Example.COM has a local part and a domain.
    expect(await compareStatements("addr", "", [...HOSTILE, ...ADDRESSES], ADDRESS)).toBe(ADDRESSES.length + 1);
  }, 60_000);

  // Each 8-bit byte followed by a quote, a letter, a backslash: lead bytes,
  // valid pairs and their escaping all show.
  const pairs = ["'", "A", "\\", "\xa1"].map((tail) => ALL_BYTES.slice(127).map((b) => b + tail).join(""));
  for (const cs of ["big5", "gbk", "sjis", "cp932", "euckr", "gb2312", "ujis", "utf8mb3", "latin1"]) {
    test(`client character set ${cs} from an option file`, async () => {
      const opt = join(dir, `${cs}.cnf`);
      writeOld(opt, `[client]\ndefault-character-set = ${cs}\n`);
      await compareStatements(cs, `option_file = ${opt}\n`, [...HOSTILE, ...pairs]);
    }, 60_000);
  }

  test("a character set the server does not know: the reference quotes by it anyway, ours answers RETRY", async () => {
    const opt = join(dir, "gb18030.cnf");
    writeOld(opt, `[client]\ndefault-character-set = gb18030\n`);
    const conn = `hosts = unix:${server.socket}\nuser = ${tdb.user}\npassword = ${tdb.password}\ndbname = ${tdb.db}\noption_file = ${opt}\n`;
    const refCf = join(dir, "unknown-cs-ref.cf");
    const ourCf = join(dir, "unknown-cs-our.cf");
    writeOld(refCf, `${conn}query = SELECT '%s' FROM DUAL WHERE 'ref-unknown-cs' <> ''\n`);
    writeOld(ourCf, `${conn}query = SELECT '%s' FROM DUAL WHERE 'our-unknown-cs' <> ''\n`);
    // 0x81 0x5C is one gb18030 character, so its backslash is not escaped;
    // the server reads the statement in its default character set, where
    // that backslash and the one added before the key's quote make a
    // literal backslash: the quote ends the string, the rest is SQL.
    const key = "\x81\\' OR 1=1 -- ";
    const ref = await referenceLookup(`mysql:${refCf}`, key);
    const ours = await ourLookup(`mysql:${ourCf}`, key);
    const logged = server.queries();
    expect(logged.some((q) => q.includes("ref-unknown-cs") && q.includes("\\\\' OR 1=1 -- ' FROM DUAL"))).toBe(true);
    expect(ref.status).toBe(0); // the reference's statement ran, "OR 1=1" included
    expect(ours.status).toBe(Status.RETRY);
    expect(logged.filter((q) => q.includes("our-unknown-cs"))).toEqual([]);
    expect(ours.log.join("\n")).toContain("SET NAMES 'gb18030': Unknown character set: 'gb18030'; not quoting keys under a character set the server does not use");
  }, 60_000);

  test("server in NO_BACKSLASH_ESCAPES mode", async () => {
    // Fresh connections on our side too: a session keeps the mode it started with.
    await closeOurTables();
    await closeAllDicts();
    server.sql("SET GLOBAL sql_mode = CONCAT(@@GLOBAL.sql_mode, ',NO_BACKSLASH_ESCAPES')");
    try {
      await compareStatements("nobs", "", HOSTILE);
    } finally {
      server.sql("SET GLOBAL sql_mode = REPLACE(@@GLOBAL.sql_mode, 'NO_BACKSLASH_ESCAPES', '')");
    }
  }, 60_000);
});
