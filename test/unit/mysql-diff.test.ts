/**
 * mysql tables: our answers compared with the installed C proxymap's
 * (Postfix 3.7), the same table configurations and keys against the same
 * MariaDB database, reply by reply (status and value bytes) and warning by
 * warning.
 *
 * The corpus covers quoting (quotes, backslashes, control characters,
 * 8-bit and UTF-8 bytes, every single byte through HEX('%s')), %s %u %d
 * %S %U %D %1..%3 and %%, `domain` (literals, negation, a file, a table),
 * result_format, multi-row and multi-column results with NULLs and empty
 * strings, NUL bytes in values, expansion_limit, the legacy fields,
 * require_result_set, stored procedures, option files (user and
 * character set), host failover, a wrong password, SQL errors, the main.cf
 * form, and configurations the reference refuses with a fatal error (no
 * reply from it; CONFIG from us).
 *
 * Needs: MariaDB (apt-get install mariadb-server) and Postfix with MySQL
 * support (apt-get install postfix postfix-mysql). Runs as root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Status } from "../../src/protocol/constants";
import { setMysqlMainConfig } from "../../src/tables/mysql/driver";
import { closeAllDicts } from "../../src/tables/dict";
import {
  closeOurTables,
  createTestDatabase,
  ourLookup,
  referenceLookup,
  requireMariadb,
  requireReference,
  type LookupReply,
  type TestDatabase,
  writeOld,
} from "../helpers/mariadb";

const FOLD_FIX = 16384;

let tdb: TestDatabase;
let dir: string;

const hex = (s: string) => Buffer.from(s, "latin1").toString("hex");

/** A .cf file: connection lines plus the given body. */
function cf(name: string, body: string, conn = true): string {
  const path = join(dir, `${name}.cf`);
  const head = conn ? `hosts = unix:${tdb.socket}\nuser = ${tdb.user}\npassword = ${tdb.password}\ndbname = ${tdb.db}\n` : "";
  writeOld(path, head + body);
  return `mysql:${path}`;
}

function setupData(): void {
  const rows: Array<[string, string | null, string | null, number | null]> = [
    ["plain", "value1", null, 1],
    ["o'brien", "quote", null, 2],
    ["back\\slash", "bs", "bs2", 3],
    ['dq"x', "dq", null, null],
    ["\xe9", "latin1-e", null, null],
    ["\xc3\xa9", "utf8-e", "\xc3\xa9", null],
    ["user@example.com", "u1@dest.org", "second", 4],
    ["multi", "a", null, null],
    ["multi", "b", "c", null],
    ["multi", null, null, null],
    ["multi", "", "d", null],
    ["nul", "x\0y", null, null],
    ["nulfirst", "\0a", null, null],
    ["pct", "100%", null, null],
    ["emptyonly", "", null, null],
    ["nullonly", null, null, null],
    ["user@sub.example.com", "deep", null, null],
    ["@example.com", "catchall", null, null],
    ["a\nb", "nl", null, null],
    ["a\rb", "cr", null, null],
    ["a\x1ab", "ctrlz", null, null],
    ["a\tb", "tab", null, null],
    ["a%b", "percentkey", null, null],
    ["a_b", "underscore", null, null],
    ["x@y@z.org", "twoat", null, null],
    ["@atonly", "atfirst", null, null],
    ["mixedcase", "Lower", null, null],
    ["MixedCase", "Upper", null, null],
    ["\xf0\x9f\x98\x80", "emoji", null, null],
    ["u-addr", "@nolocal", "ok@dom.org", null],
    ["u-addr2", "nodomain@", null, null],
    ["\\", "onebackslash", null, null],
    ["'", "onequote", null, null],
    ["\\'", "bsquote", null, null],
  ];
  const lit = (v: string | null) => (v === null ? "NULL" : `x'${hex(v)}'`);
  const values = rows.map(([k, v, v2, n]) => `(${lit(k)}, ${lit(v)}, ${lit(v2)}, ${n ?? "NULL"})`).join(",");
  tdb.sql(
    `CREATE TABLE t (k VARBINARY(255), v VARBINARY(255) NULL, v2 VARBINARY(255) NULL, n INT NULL);` +
      `INSERT INTO t VALUES ${values};` +
      `CREATE TABLE ud (u VARBINARY(64), d VARBINARY(64), v VARBINARY(64));` +
      `INSERT INTO ud VALUES ('user','example.com','ud1'), ('o''x','ex.org','ud2'), ('user','sub.example.com','ud3');` +
      `\nDELIMITER //\n` +
      `CREATE PROCEDURE p1(IN param VARBINARY(255)) READS SQL DATA SQL SECURITY INVOKER BEGIN SELECT v FROM t WHERE k=param; END//\n` +
      `CREATE PROCEDURE p2(IN param VARBINARY(255)) READS SQL DATA SQL SECURITY INVOKER BEGIN SELECT v FROM t WHERE k=param; SELECT 'again'; END//\n` +
      `DELIMITER ;\n`,
  );
}

const KEYS: string[] = [
  "plain",
  "Plain",
  "o'brien",
  "back\\slash",
  'dq"x',
  "\xe9",
  "\xc3\xa9",
  "user@example.com",
  "USER@Example.COM",
  "multi",
  "nul",
  "nulfirst",
  "pct",
  "emptyonly",
  "nullonly",
  "user@sub.example.com",
  "user@bad.example.com",
  "@example.com",
  "a\nb",
  "a\rb",
  "a\x1ab",
  "a\tb",
  "a%b",
  "a_b",
  "x@y@z.org",
  "@atonly",
  "user@",
  "mixedcase",
  "MixedCase",
  "\xf0\x9f\x98\x80",
  "u-addr",
  "u-addr2",
  "",
  "nosuchkey",
  "' OR 1=1 -- ",
  "'; DROP TABLE t; --",
  "\\",
  "'",
  "\\'",
  "x".repeat(300),
  "\xff\x80\xc3",
  "\xc3'",
  "\"'\\\n\r\x1a%",
  "user@mail.example.com",
  "a@b",
  "a@.b..c.",
];

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

/** Warning and error lines, in order (info lines are not compared). */
function problems(log: string[]): string[] {
  return log.filter((l) => l.startsWith("warning: ") || l.startsWith("error: ") || l.startsWith("fatal: "));
}

beforeAll(async () => {
  await requireMariadb();
  requireReference();
  tdb = createTestDatabase("diff");
  dir = mkdtempSync(join(tmpdir(), "pm-mysql-diff-"));
  setupData();

  const basic = cf("basic", "query = SELECT v FROM t WHERE k='%s'\n");
  add(basic, KEYS, [0, FOLD_FIX]);
  add(cf("multicol", "query = SELECT v, v2 FROM t WHERE k='%s'\n"), KEYS);
  add(cf("ud", "query = SELECT v FROM ud WHERE u='%u' AND d='%d'\n"), KEYS, [0, FOLD_FIX]);
  add(cf("uonly", "query = SELECT v FROM t WHERE k='%u'\n"), KEYS);
  add(cf("bigS", "query = SELECT v FROM t WHERE k='%S' OR k='%U'\n"), KEYS);
  writeOld(join(dir, "domains"), "# a comment\nexample.com\n!bad.example.com\nsub.example.com\n");
  add(cf("domain", "query = SELECT v FROM t WHERE k='%s'\ndomain = !bad.example.com, Example.COM sub.example.com\n"), KEYS, [0, FOLD_FIX]);
  add(cf("domainfile", `query = SELECT v FROM t WHERE k='%s'\ndomain = ${join(dir, "domains")}\n`), KEYS);
  add(cf("domaintable", "query = SELECT v FROM t WHERE k='%s'\ndomain = inline:{example.com=yes, sub.example.com=yes}\n"), ["user@example.com", "user@sub.example.com", "user@bad.example.com", "plain", "@example.com"]);
  add(cf("domainnofile", `query = SELECT v FROM t WHERE k='%s'\ndomain = ${join(dir, "nosuchfile")}\n`), ["user@example.com", "plain"]);
  add(cf("smtp", "query = SELECT v FROM t WHERE k='%s'\nresult_format = smtp:[%s]\n"), KEYS);
  add(cf("resfmt", "query = SELECT v, v2 FROM t WHERE k='%s'\nresult_format = %u=%d|%S|%U|%D|%%\n"), KEYS);
  add(cf("resparts", "query = SELECT v FROM t WHERE k='%s'\nresult_format = <%1.%2> %s\n"), KEYS);
  add(cf("limit1", "query = SELECT v, v2 FROM t WHERE k='%s'\nexpansion_limit = 1\n"), ["plain", "multi", "back\\slash", "nosuchkey", "nullonly"]);
  add(cf("limit3", "query = SELECT v, v2 FROM t WHERE k='%s'\nexpansion_limit = 3\n"), ["multi", "back\\slash"]);
  add(cf("legacy", "table = t\nselect_field = v\nwhere_field = k\nadditional_conditions = AND v IS NOT NULL\n"), KEYS);
  add(cf("legacy2", "table = t\nselect_field = v, v2\nwhere_field = k\n"), ["plain", "multi", "o'brien"]);
  add(cf("parts", "query = SELECT '%1|%2|%3' FROM DUAL WHERE '%s' <> ''\n"), KEYS);
  add(cf("nors", "query = DO '%s'\nrequire_result_set = no\n"), ["plain", "x@y"]);
  add(cf("norsreq", "query = DO '%s'\n"), ["plain"]);
  add(cf("proc1", "query = CALL p1('%s')\n"), ["plain", "multi", "nosuchkey", "o'brien"]);
  add(cf("proc2", "query = CALL p2('%s')\n"), ["plain"]);
  add(cf("pctq", "query = SELECT v FROM t WHERE k=CONCAT('a', '%%', 'b') AND '%s' <> ''\n"), ["plain"]);
  add(cf("numeric", "query = SELECT n, n+0.5 FROM t WHERE k='%s'\n"), ["plain", "user@example.com", "dq\"x"]);
  add(cf("sqlerr", "query = SELECT nosuchcol FROM t WHERE k='%s'\n"), ["plain"]);

  // Every single byte, and a few pairs, as the server receives them.
  const echo = cf("echo", "query = SELECT HEX('%s') FROM DUAL\n");
  const bytes: string[] = [];
  for (let b = 1; b < 256; b++) bytes.push(String.fromCharCode(b));
  add(echo, [...bytes, ...KEYS.filter((k) => k !== "")]);

  // Failover: a dead socket and a live one (random order in both).
  add(
    cf("failover", `hosts = unix:${join(dir, "nosock")} unix:${tdb.socket}\nuser = ${tdb.user}\npassword = ${tdb.password}\ndbname = ${tdb.db}\nquery = SELECT v FROM t WHERE k='%s'\n`, false),
    ["plain"],
  );
  add(cf("badpw", `hosts = unix:${tdb.socket}\nuser = ${tdb.user}\npassword = wrong\ndbname = ${tdb.db}\nquery = SELECT v FROM t WHERE k='%s'\n`, false), ["plain"]);

  // Option file: the user from [client], the character set from [postfix].
  writeOld(join(dir, "my.cnf"), `[client]\nuser = "${tdb.user}"\n# comment\n[postfix]\ndefault-character-set = latin1\n`);
  add(
    cf(
      "optfile",
      `hosts = unix:${tdb.socket}\npassword = ${tdb.password}\ndbname = ${tdb.db}\noption_file = ${join(dir, "my.cnf")}\noption_group = postfix\nquery = SELECT CONCAT(@@character_set_client, ' ', HEX('%s'), ' ', CURRENT_USER() LIKE '${tdb.user}@%%')\n`,
      false,
    ),
    ["plain", "\xe9", "\xc3\xa9", "o'brien"],
  );

  // Configurations the reference refuses (it exits: no reply).
  add(cf("badtemplate", "query = SELECT v FROM t WHERE k='%z'\n"), ["plain"]);
  add(cf("badresult", "query = SELECT v FROM t WHERE k='%s'\nresult_format = %x\n"), ["plain"]);
  add(cf("trailingpct", "query = SELECT v FROM t WHERE k='%s' %\n"), ["plain"]);
  add(cf("nolegacy", "select_field = v\nwhere_field = k\n"), ["plain"]);
  add(cf("badbool", "query = SELECT v FROM t WHERE k='%s'\nrequire_result_set = maybe\n"), ["plain"]);
  add(cf("badint", "query = SELECT v FROM t WHERE k='%s'\nexpansion_limit = 1x\n"), ["plain"]);
  add(cf("nodbname", `hosts = unix:${tdb.socket}\nuser = ${tdb.user}\npassword = ${tdb.password}\nquery = SELECT 1\n`, false), ["plain"]);
  add(cf("badport", `hosts = inet:127.0.0.1:nosuchservice\nuser = ${tdb.user}\npassword = ${tdb.password}\ndbname = ${tdb.db}\nquery = SELECT 1\n`, false), ["plain"]);
  add(cf("badbang", "query = SELECT v FROM t WHERE k='%s'\ndomain = example.com, !\n"), ["plain"]);
  add(`mysql:${join(dir, "does-not-exist.cf")}`, ["plain"]);
});

afterAll(async () => {
  await closeOurTables(true);
  await closeAllDicts();
  setMysqlMainConfig(undefined);
  tdb?.drop();
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

/** Failover tries the hosts in random order: which ones fail first is chance. */
function randomOrder(c: Case): boolean {
  return c.table.includes("/failover.cf");
}

describe("mysql differential (C proxymap 3.7 vs ours)", () => {
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
        mismatches.push(`${what}: reference ${r.status} ${show(r.value)}, ours ${o.status} ${show(o.value)}`);
        continue;
      }
      if (randomOrder(c)) continue;
      const seen = openErrors.get(c.table);
      if (!seen) openErrors.set(c.table, problems(o.log).filter((l) => l.startsWith("error: ")));
      const rp = problems(r.log).filter((l) => !(seen && l.startsWith("error: ") && seen.includes(l)));
      const op = problems(o.log);
      if (JSON.stringify(rp) !== JSON.stringify(op)) mismatches.push(`${what}: warnings differ:\n  reference ${show(rp.join(" | "))}\n  ours      ${show(op.join(" | "))}`);
    }
    if (mismatches.length) console.log(mismatches.join("\n"));
    expect(mismatches).toEqual([]);
    expect(cases.length).toBeGreaterThan(700);
  }, 120_000);

  test("main.cf form (mysql:NAME with NAME_field parameters)", async () => {
    const main = new Map<string, string>([
      ["mydb_hosts", `unix:${tdb.socket}`],
      ["mydb_user", tdb.user],
      ["mydb_password", tdb.password],
      ["mydb_dbname", tdb.db],
      ["mydb_query", "SELECT v FROM t WHERE k='%s'"],
      ["mydb_result_format", "<%s>"],
    ]);
    setMysqlMainConfig({ raw: (n) => main.get(n), get: (n) => main.get(n) ?? "" });
    const mainCf = [...main].map(([k, v]) => `${k} = ${v}`).join("\n") + "\n";
    for (const key of ["plain", "multi", "nosuchkey", "o'brien"]) {
      const r = await referenceLookup("mysql:mydb", key, 0, mainCf);
      const o = await ourLookup("mysql:mydb", key, 0);
      expect({ key, status: o.status, value: o.value }).toEqual({ key, status: r.status!, value: r.value });
    }
  }, 30_000);
});
