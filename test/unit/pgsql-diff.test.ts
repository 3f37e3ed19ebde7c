/**
 * pgsql tables: our answers compared with the installed C proxymap's
 * (Postfix 3.7, Debian's postfix-pgsql), the same table configurations and
 * keys against the same PostgreSQL databases, reply by reply (status and
 * value bytes) and warning by warning (after printable(), as both logs
 * show them: libpq's newlines become '?'; the stand-alone reference does
 * not keep UTF-8 in its log lines, so neither does the comparison).
 *
 * Two databases, UTF8 and LATIN1, hold the same rows where LATIN1 can. The
 * corpus covers hits and misses, quoting-sensitive keys (o'hara, a
 * backslash, x' OR '1'='1), every single byte through an echo query (what
 * the server received), Latin-1 and UTF-8 keys in both databases (3.7's
 * LATIN1 client encoding: a Latin-1 key finds the UTF-8 row, a UTF-8 key
 * does not, a value LATIN1 cannot hold fails the query), %s %u %d %S %U
 * %D %1..%3 and %% with and without '@', result_format, multi-row and
 * multi-column results with NULLs and empty strings, other column types,
 * expansion_limit, several statements in one query, an empty query, the
 * legacy fields and select_function, `domain` (literals, negation, a file,
 * a table, a missing file), failover from a dead socket, a wrong password,
 * SQL errors, the main.cf form, and configurations the reference refuses
 * with a fatal error (no reply from it; CONFIG from us).
 *
 * Needs: PostgreSQL (apt-get install postgresql) and Postfix with
 * PostgreSQL support (apt-get install postfix postfix-pgsql). Runs as root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { printable } from "../../src/log/printable";
import { Status } from "../../src/protocol/constants";
import { setTableMainConfig } from "../../src/tables/dbCommon/mainConfig";
import { closeAllDicts } from "../../src/tables/dict";
import { C_PROXYMAP, closeOurTables, ourLookup, referenceLookup, writeOld, type LookupReply } from "../helpers/sqlLookup";
import { createTestDatabase, requirePostgres, type TestDatabase } from "../helpers/postgres";

const FOLD_FIX = 16384;

let utf8db: TestDatabase;
let latin1db: TestDatabase;
let dir: string;

const u8 = (s: string) => Buffer.from(s, "utf8").toString("latin1");
const hex = (s: string) => Buffer.from(s, "latin1").toString("hex");

function requireReference(): void {
  if (!existsSync(C_PROXYMAP)) throw new Error(`${C_PROXYMAP} is missing: apt-get install postfix`);
  if (!existsSync("/usr/lib/postfix/postfix-pgsql.so")) throw new Error("Postfix PostgreSQL support is missing: apt-get install postfix-pgsql");
}

/** A .cf file for a database: connection lines plus the given body. */
function cf(db: TestDatabase, name: string, body: string, conn = true): string {
  const path = join(dir, `${name}.cf`);
  const head = conn ? `hosts = inet:127.0.0.1:${db.port}\nuser = ${db.user}\npassword = ${db.password}\ndbname = ${db.db}\n` : "";
  writeOld(path, head + body);
  return `pgsql:${path}`;
}

/** Rows (k, v, v2) as Unicode text; those LATIN1 cannot hold are left out of the LATIN1 database. */
const ROWS: Array<[string, string | null, string | null]> = [
  ["plain", "value1", null],
  ["o'hara", "quote", null],
  ["back\\slash", "bs", "bs2"],
  ["x' OR '1'='1", "injected", null],
  ["café", "utf8-e", null],
  ["cafÃ©", "double-encoded", null],
  ["naïve", "naïve value", "Ünïcödé"],
  ["user@example.com", "u1@dest.org", "second"],
  ["multi", "a", null],
  ["multi", "b", "c"],
  ["multi", null, null],
  ["multi", "", "d"],
  ["emptyonly", "", null],
  ["nullonly", null, null],
  ["pct", "100%", null],
  ["user@sub.example.com", "deep", null],
  ["@example.com", "catchall", null],
  ["a\tb", "tab", null],
  ["MixedCase", "Upper", null],
  ["mixedcase", "Lower", null],
  ["😀", "emoji", null],
  ["u-addr", "@nolocal", "ok@dom.org"],
  ["u-addr2", "nodomain@", null],
  ["euro", "€", "x"],
  ["€", "euro key", null],
  ["\\", "onebackslash", null],
  ["'", "onequote", null],
];

function latin1ok(s: string | null): boolean {
  return s === null || [...s].every((c) => c.codePointAt(0)! <= 0xff);
}

function setupData(db: TestDatabase): void {
  const latin1 = db.encoding === "LATIN1";
  const lit = (v: string | null) => (v === null ? "NULL" : `'${v.replaceAll("'", "''")}'`);
  const rows = ROWS.filter((r) => !latin1 || r.every(latin1ok)).map(([k, v, v2]) => `(${lit(k)}, ${lit(v)}, ${lit(v2)})`);
  // The statements travel as UTF-8; the server stores them in the database's encoding.
  db.sql(
    u8(
      "CREATE TABLE t (k text, v text, v2 text);\n" +
        `INSERT INTO t VALUES ${rows.join(",\n")};\n` +
        "CREATE TABLE ud (u text, d text, v text);\n" +
        "INSERT INTO ud VALUES ('user','example.com','ud1'), ('o''x','ex.org','ud2'), ('user','sub.example.com','ud3');\n" +
        "CREATE FUNCTION lookup_fn(key text) RETURNS text LANGUAGE sql AS $$SELECT v FROM t WHERE k = key LIMIT 1$$;\n",
    ),
  );
}

const KEYS: string[] = [
  "plain",
  "Plain",
  "o'hara",
  "back\\slash",
  "x' OR '1'='1",
  "' OR 1=1 -- ",
  "'; DROP TABLE t; --",
  "caf\xe9",
  u8("café"),
  "na\xefve",
  u8("naïve"),
  "user@example.com",
  "USER@Example.COM",
  "multi",
  "emptyonly",
  "nullonly",
  "pct",
  "user@sub.example.com",
  "user@bad.example.com",
  "@example.com",
  "a\tb",
  "MixedCase",
  "mixedcase",
  u8("😀"),
  "u-addr",
  "u-addr2",
  "euro",
  u8("€"),
  "\\",
  "'",
  "\\'",
  "",
  "nosuchkey",
  "x@y@z.org",
  "@atonly",
  "user@",
  "a@b",
  "a@.b..c.",
  "user@mail.example.com",
  "x".repeat(300),
  "\xff\x80\xc3",
  "\"'\\\n\r%",
];

/** The keys for the tables whose point is not the key itself. */
const FEW: string[] = ["plain", "o'hara", "caf\xe9", u8("café"), "user@example.com", "USER@Example.COM", "multi", "emptyonly", "nullonly", "user@sub.example.com", "user@bad.example.com", "@example.com", "u-addr", "euro", "", "nosuchkey", "x@y@z.org", "user@", "a@.b..c."];

/** Every byte but NUL in one key, and in a few pairs: what the server receives. */
const ALL_BYTES = Array.from({ length: 255 }, (_, i) => String.fromCharCode(i + 1)).join("");
const ECHO_KEYS = [ALL_BYTES, ALL_BYTES.slice(127), "'\\''", "\\x", "\\\\", "\\'", "\\047", ...KEYS.filter((k) => k !== "")];

interface Case {
  table: string;
  key: string;
  flags: number;
}

const cases: Case[] = [];
function add(table: string, keys: string[], flagsList = [0]): void {
  for (const flags of flagsList) for (const key of keys) cases.push({ table, key, flags });
}

function show(s: string): string {
  return JSON.stringify(s).replace(/[\x80-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);
}

/** Warning and error lines, in order, as a log shows them (info lines are not compared). */
function problems(log: string[]): string[] {
  return log.filter((l) => l.startsWith("warning: ") || l.startsWith("error: ") || l.startsWith("fatal: ")).map((l) => printable(l, false));
}

function addDatabaseCases(db: TestDatabase, tag: string): void {
  const c = (name: string, body: string) => cf(db, `${tag}-${name}`, body);
  add(c("basic", "query = SELECT v FROM t WHERE k='%s'\n"), KEYS, [0, FOLD_FIX]);
  add(c("multicol", "query = SELECT v, v2 FROM t WHERE k='%s'\n"), KEYS);
  add(c("ud", "query = SELECT v FROM ud WHERE u='%u' AND d='%d'\n"), KEYS, [0, FOLD_FIX]);
  add(c("uonly", "query = SELECT v FROM t WHERE k='%u'\n"), FEW);
  add(c("bigS", "query = SELECT v FROM t WHERE k='%S' OR k='%U'\n"), FEW);
  add(c("smtp", "query = SELECT v FROM t WHERE k='%s'\nresult_format = smtp:[%s]\n"), FEW);
  add(c("resfmt", "query = SELECT v, v2 FROM t WHERE k='%s'\nresult_format = %u=%d|%S|%U|%D|%%\n"), FEW);
  add(c("resparts", "query = SELECT v FROM t WHERE k='%s'\nresult_format = <%1.%2> %s\n"), FEW);
  add(c("parts", "query = SELECT '%1|%2|%3' WHERE '%s' <> ''\n"), FEW);
  add(c("limit1", "query = SELECT v, v2 FROM t WHERE k='%s'\nexpansion_limit = 1\n"), ["plain", "multi", "back\\slash", "nosuchkey", "nullonly"]);
  add(c("limit3", "query = SELECT v, v2 FROM t WHERE k='%s'\nexpansion_limit = 3\n"), ["multi", "back\\slash"]);
  add(c("legacy", "table = t\nselect_field = v\nwhere_field = k\nadditional_conditions = AND v IS NOT NULL\n"), FEW);
  add(c("legacy2", "table = t\nselect_field = v, v2\nwhere_field = k\n"), ["plain", "multi", "o'hara"]);
  add(c("selfn", "select_function = lookup_fn\n"), ["plain", "multi", "nosuchkey", "o'hara", "caf\xe9"]);
  add(c("twostmt", "query = SELECT 'first' WHERE '%s' <> ''; SELECT v FROM t WHERE k='%s'\n"), ["plain", "multi", "nosuchkey"]);
  add(c("types", "query = SELECT 1.50, true, '\\x00ff41'::bytea, NULL::int, ARRAY[1,2], '{\"a\": 1}'::json, ''::text WHERE '%s' <> ''\n"), ["plain"]);
  add(c("pctq", "query = SELECT v FROM t WHERE k = 'pct' AND v LIKE '%%' AND '%s' <> ''\n"), ["plain"]);
  add(c("echo", "query = SELECT encode(convert_to('%s', 'LATIN1'), 'hex')\n"), ECHO_KEYS);
  add(c("sqlerr", "query = SELECT nosuch FROM t WHERE k='%s'\n"), ["plain"]);
  add(c("conv", "query = SELECT v FROM t WHERE k='euro' AND '%s' <> ''\n"), ["plain"]);
  add(c("empty", "query = -- %s\n"), ["plain"]);
  writeOld(join(dir, `${tag}-domains`), "# a comment\nexample.com\n!bad.example.com\nsub.example.com\n");
  add(c("domain", "query = SELECT v FROM t WHERE k='%s'\ndomain = !bad.example.com, Example.COM sub.example.com\n"), FEW, [0, FOLD_FIX]);
  add(c("domainfile", `query = SELECT v FROM t WHERE k='%s'\ndomain = ${join(dir, `${tag}-domains`)}\n`), FEW);
  add(c("domaintable", "query = SELECT v FROM t WHERE k='%s'\ndomain = inline:{example.com=yes, sub.example.com=yes}\n"), ["user@example.com", "user@sub.example.com", "user@bad.example.com", "plain", "@example.com"]);
  add(c("domainnofile", `query = SELECT v FROM t WHERE k='%s'\ndomain = ${join(dir, "nosuchfile")}\n`), ["user@example.com", "plain"]);
}

beforeAll(async () => {
  await requirePostgres();
  requireReference();
  utf8db = createTestDatabase("diffutf8", { encoding: "UTF8" });
  latin1db = createTestDatabase("difflatin1", { encoding: "LATIN1" });
  dir = mkdtempSync(join(tmpdir(), "pm-pgsql-diff-"));
  setupData(utf8db);
  setupData(latin1db);
  addDatabaseCases(utf8db, "u");
  addDatabaseCases(latin1db, "l");

  const conn = (db: TestDatabase, password = db.password) => `user = ${db.user}\npassword = ${password}\ndbname = ${db.db}\nquery = SELECT v FROM t WHERE k='%s'\n`;
  // Failover: a dead socket directory (tried first: UNIX before TCP), then the server.
  add(cf(utf8db, "failover", `hosts = unix:${join(dir, "nosock")} inet:127.0.0.1:${utf8db.port}\n${conn(utf8db)}`, false), ["plain"]);
  add(cf(utf8db, "badpw", `hosts = inet:127.0.0.1:${utf8db.port}\n${conn(utf8db, "wrong")}`, false), ["plain"]);
  add(cf(utf8db, "refused", `hosts = inet:127.0.0.1:1\n${conn(utf8db)}`, false), ["plain"]);
  // The URI form (3.7: the "postgresql:" prefix; user, password and database from the URI).
  const uri = `postgresql://${encodeURIComponent(utf8db.user)}:${encodeURIComponent(utf8db.password)}@127.0.0.1:${utf8db.port}/${utf8db.db}`;
  add(cf(utf8db, "uri", `hosts = ${uri}\ndbname = ignored\nquery = SELECT v FROM t WHERE k='%s'\n`, false), ["plain", "o'hara", "nosuchkey"]);
  add(cf(utf8db, "baduri", `hosts = postgresql://127.0.0.1/x?nosuch=1\ndbname = x\nquery = SELECT v FROM t WHERE k='%s'\n`, false), ["plain"]);

  // Configurations the reference refuses (it exits: no reply).
  add(cf(utf8db, "badtemplate", "query = SELECT v FROM t WHERE k='%z'\n"), ["plain"]);
  add(cf(utf8db, "badresult", "query = SELECT v FROM t WHERE k='%s'\nresult_format = %x\n"), ["plain"]);
  add(cf(utf8db, "trailingpct", "query = SELECT v FROM t WHERE k='%s' %\n"), ["plain"]);
  add(cf(utf8db, "nolegacy", "select_field = v\nwhere_field = k\n"), ["plain"]);
  add(cf(utf8db, "badint", "query = SELECT v FROM t WHERE k='%s'\nexpansion_limit = 1x\n"), ["plain"]);
  add(cf(utf8db, "nodbname", `hosts = inet:127.0.0.1:${utf8db.port}\nuser = ${utf8db.user}\npassword = ${utf8db.password}\nquery = SELECT 1\n`, false), ["plain"]);
  add(cf(utf8db, "badbang", "query = SELECT v FROM t WHERE k='%s'\ndomain = example.com, !\n"), ["plain"]);
  // 3.7 ignores the 3.8/3.9 fields, valid or not.
  add(cf(utf8db, "newfields", "query = SELECT v FROM t WHERE k='%s'\nencoding = UTF8\nretry_interval = x\nidle_interval = 5\n"), ["caf\xe9", u8("café")]);
  add(`pgsql:${join(dir, "does-not-exist.cf")}`, ["plain"]);
});

afterAll(async () => {
  await closeOurTables(true);
  await closeAllDicts();
  setTableMainConfig(undefined);
  utf8db?.drop();
  latin1db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Run the reference on many cases, a few processes at a time. */
async function referenceAll(list: Case[]): Promise<LookupReply[]> {
  const out: LookupReply[] = new Array(list.length);
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const i = next++;
      out[i] = await referenceLookup(list[i].table, list[i].key, list[i].flags);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return out;
}

describe("pgsql differential (C proxymap 3.7 vs ours)", () => {
  test("corpus: replies and warnings", async () => {
    const ref = await referenceAll(cases);
    const mismatches: string[] = [];
    // Open-time errors: each reference process opens the table afresh and
    // logs them every time; our process opens it once and logs them once.
    const openErrors = new Map<string, string[]>();
    for (let i = 0; i < cases.length; i++) {
      const c = cases[i];
      const r = ref[i];
      const o = await ourLookup(c.table, c.key, c.flags);
      const what = `${c.table.replace(dir + "/", "")} key=${show(c.key)} flags=${c.flags}`;
      if (r.status === undefined) {
        // The reference died with a fatal error: we answer CONFIG and log the same text as an error.
        const fatal = problems(r.log).find((l) => l.startsWith("fatal: "));
        const ours = problems(o.log).find((l) => l.startsWith("error: "));
        if (o.status !== Status.CONFIG || !fatal || ours?.slice(7) !== fatal.slice(7)) {
          mismatches.push(`${what}: reference died (${show(fatal ?? r.log.join("|"))}), ours status=${o.status} log=${show(o.log.join("|"))}`);
        }
        continue;
      }
      if (r.status !== o.status || r.value !== o.value) {
        mismatches.push(`${what}: reference ${r.status} ${show(r.value)}, ours ${o.status} ${show(o.value)}\n  reference log ${show(problems(r.log).join(" | "))}\n  ours      log ${show(problems(o.log).join(" | "))}`);
        continue;
      }
      const seen = openErrors.get(c.table);
      if (!seen) openErrors.set(c.table, problems(o.log).filter((l) => l.startsWith("error: ")));
      const rp = problems(r.log).filter((l) => !(seen && l.startsWith("error: ") && seen.includes(l)));
      const op = problems(o.log);
      if (JSON.stringify(rp) !== JSON.stringify(op)) mismatches.push(`${what}: warnings differ:\n  reference ${show(rp.join(" | "))}\n  ours      ${show(op.join(" | "))}`);
    }
    if (mismatches.length) console.log(mismatches.slice(0, 60).join("\n"));
    expect(mismatches).toEqual([]);
    // The corpus does what it is meant to (both answered so): 3.7's LATIN1 client encoding.
    const answer = (table: string, key: string) => {
      const i = cases.findIndex((c) => c.table === `pgsql:${join(dir, table)}` && c.key === key && c.flags === 0);
      return { status: ref[i].status, value: ref[i].value };
    };
    expect(answer("u-basic.cf", "caf\xe9")).toEqual({ status: Status.OK, value: "utf8-e" });
    expect(answer("u-basic.cf", u8("café"))).toEqual({ status: Status.OK, value: "double-encoded" });
    expect(answer("l-basic.cf", "caf\xe9")).toEqual({ status: Status.OK, value: "utf8-e" });
    expect(answer("l-multicol.cf", "na\xefve")).toEqual({ status: Status.OK, value: "na\xefve value,\xdcn\xefc\xf6d\xe9" });
    expect(answer("u-multicol.cf", "na\xefve")).toEqual({ status: Status.OK, value: "na\xefve value,\xdcn\xefc\xf6d\xe9" });
    expect(answer("u-basic.cf", "euro")).toEqual({ status: Status.RETRY, value: "" });
    expect(answer("u-basic.cf", "o'hara")).toEqual({ status: Status.OK, value: "quote" });
    expect(answer("u-basic.cf", "x' OR '1'='1")).toEqual({ status: Status.OK, value: "injected" });
    expect(cases.length).toBeGreaterThan(700);
  }, 240_000);

  test("main.cf form (pgsql:NAME with NAME_field parameters)", async () => {
    const main = new Map<string, string>([
      ["pgdb_hosts", `inet:127.0.0.1:${utf8db.port}`],
      ["pgdb_user", utf8db.user],
      ["pgdb_password", utf8db.password],
      ["pgdb_dbname", utf8db.db],
      ["pgdb_query", "SELECT v FROM t WHERE k='%s'"],
      ["pgdb_result_format", "<%s>"],
    ]);
    setTableMainConfig({ raw: (n) => main.get(n), get: (n) => main.get(n) ?? "" });
    const mainCf = [...main].map(([k, v]) => `${k} = ${v}\n`).join("");
    for (const key of ["plain", "multi", "nosuchkey", "o'hara"]) {
      const r = await referenceLookup("pgsql:pgdb", key, 0, mainCf);
      const o = await ourLookup("pgsql:pgdb", key, 0);
      expect({ key, status: o.status, value: o.value }).toEqual({ key, status: r.status!, value: r.value });
    }
  }, 60_000);
});
