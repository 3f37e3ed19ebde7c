/**
 * The sqlite driver (src/tables/sqlite.ts) and its helpers: sqlite_table(5)
 * configuration, %-expansion and quoting, multi-row results, and
 * differential runs against the C proxymap of the installed Postfix
 * (postfix-sqlite). Requests marked "!" are where the reference exits
 * (broken configuration, sequence): there we answer instead.
 */
import { describe, expect, mock, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { Database } from "bun:sqlite";
import * as registry from "../../src/tables/registry";
import { sqlite, columnText, sqliteQuote } from "../../src/tables/sqlite";
import { TemplateContext as DbCommon } from "../../src/tables/dbCommon/expand";
import { escape, parseIn, runOracle, runOurs, withoutReference } from "../golden/lib/golden";
import { existsSync, writeFileSync } from "node:fs";
import { setTableMainConfig } from "../../src/tables/dbCommon/mainConfig";
import type { MainConfig } from "../../src/config/mainCf";
import type { Table } from "../../src/tables/table";

// Until src/tables/registry.ts lists sqlite, put it in for these tests.
if (!registry.findTableType("sqlite")) {
  const find = registry.findTableType;
  mock.module("../../src/tables/registry", () => ({ ...registry, findTableType: (t: string) => (t === "sqlite" ? sqlite : find(t)) }));
}

/** The bytes of a database with table aliases(k, v) holding rows. */
function dbBytes(rows: Array<[string, string | null | number]>): string {
  const dir = mkdtempSync(join(tmpdir(), "sqlitetest-"));
  try {
    const p = join(dir, "db.sqlite");
    const db = new Database(p);
    db.run("CREATE TABLE aliases (k TEXT, v)");
    const ins = db.prepare("INSERT INTO aliases VALUES (?, ?)");
    for (const [k, v] of rows) ins.run(k, v);
    db.close();
    return readFileSync(p).toString("latin1");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ROWS: Array<[string, string | null | number]> = [
  ["a@example.com", "alpha"],
  ["multi@example.com", "one"],
  ["multi@example.com", "two"],
  ["multi@example.com", "three"],
  ["o'neil@example.com", "quoted"],
  ["empty@example.com", ""],
  ["null@example.com", null],
  ["num@example.com", 42],
  ["real@example.com", 2.5],
  ["x@sub.example.org", "deep"],
  ["example.org", "dom"],
  ["sub", "label2"],
  ["caf\u00e9@example.com", "utf8"],
  ["res@example.com", "bob@other.net"],
];

const L = 64 | 16384 | 524288;

function sqlCase(name: string, cf: string, requests: string, opts = "") {
  const db = dbBytes(ROWS);
  return parseIn("sqlite", name, `${opts}file db.sqlite "${escape(db)}"\nfile t.cf "${escape(cf)}"\n${requests}`);
}

const T = "sqlite:@DIR@/t.cf";
const look = (k: string, flags = L) => `lookup "${T}" ${flags} "${k}"`;

describe("sqlite helpers", () => {
  test("quoting as sqlite3_mprintf %q", () => {
    expect(sqliteQuote("o'neil''x")).toBe("o''neil''''x");
  });
  test("column text as sqlite3_column_text", () => {
    expect(columnText(5n)).toBe("5");
    expect(columnText(5)).toBe("5.0");
    expect(columnText(0.1)).toBe("0.1");
    expect(columnText(1e20)).toBe("1.0e+20");
    expect(columnText(null)).toBe(null);
    expect(columnText(new Uint8Array([97, 0, 98]))).toBe("a");
    expect(columnText("caf\u00e9")).toBe("caf\xc3\xa9");
  });
  test("templates: %u %d %[1-9] %S %U %D %%", () => {
    const c = new DbCommon("sqlite", "x");
    c.parse("u=%u d=%d 1=%1 2=%2 s=%s %%", true);
    expect(c.expand("u=%u d=%d 1=%1 2=%2 s=%s %%", "joe@a.b.c", undefined, "")).toBe("u=joe d=a.b.c 1=c 2=b s=joe@a.b.c %");
    expect(c.expand("u=%u", "joe", undefined, "")).toBeUndefined();
    expect(c.expand("u=%u", "joe@c", undefined, "")).toBeUndefined(); // too few labels for %2
    const r = new DbCommon("sqlite", "x");
    r.parse("%s", true);
    r.parse("%u+%d/%S/%U/%D", false);
    expect(r.expand("%u+%d/%S/%U/%D", "bob@x.net", "KEY@dom", "prev")).toBe("prev,bob+x.net/KEY@dom/KEY/dom");
  });
});

describe("sqlite against the C proxymap", () => {
  const cases = [
    sqlCase(
      "basic",
      `dbpath = @DIR@/db.sqlite\nquery = SELECT v FROM aliases WHERE k='%s'\n`,
      [
        `open "${T}" 0`,
        look("a@example.com"),
        look("A@Example.COM"),
        look("A@Example.COM", 64),
        look("nope@example.com"),
        look("multi@example.com"),
        look("o'neil@example.com"),
        look("empty@example.com"),
        look("null@example.com"),
        look("num@example.com"),
        look("real@example.com"),
        look("caf\\xc3\\xa9@example.com"),
        look(""),
      ].join("\n"),
    ),
    sqlCase(
      "parts",
      `dbpath = @DIR@/db.sqlite\nquery = SELECT v FROM aliases WHERE k='%u@%d' OR k='%2' OR k='%D'\nresult_format = <%s|%u|%d|%S|%U|%D>\n`,
      [look("a@example.com"), look("x@sub.example.org"), look("nodomain"), look("@example.com"), look("res@example.com"), look("u@org")].join("\n"),
    ),
    sqlCase(
      "domain_and_limit",
      `dbpath = @DIR@/db.sqlite\nquery = SELECT v FROM aliases WHERE k='%s'\ndomain = example.com, !sub.example.org\nexpansion_limit = 2\n`,
      [look("a@example.com"), look("multi@example.com"), look("x@sub.example.org"), look("a@EXAMPLE.com"), look("plain")].join("\n"),
    ),
    sqlCase(
      "legacy",
      `dbpath = @DIR@/db.sqlite\ntable = aliases\nselect_field = v\nwhere_field = k\nadditional_conditions = AND v <> 'two'\n`,
      [look("multi@example.com"), look("a@example.com")].join("\n"),
    ),
    sqlCase(
      "domain_file_and_table",
      `dbpath = @DIR@/db.sqlite\nquery = SELECT v FROM aliases WHERE k='%s'\ndomain = !/nonexistent/x, @DIR@/domains, inline:{sub.example.org=1}\n`,
      [look("a@example.com"), look("x@sub.example.org"), look("x@other.net")].join("\n"),
      `file domains "example.com\\n# comment\\nother.net\\n"\n`,
    ),
    sqlCase(
      "domain_file",
      `dbpath = @DIR@/db.sqlite\nquery = SELECT v FROM aliases WHERE k='%s'\ndomain = @DIR@/domains inline:{sub.example.org=1}\n`,
      [look("a@example.com"), look("x@sub.example.org"), look("x@other.net")].join("\n"),
      `file domains "example.com\\n# comment\\n!other.net\\n"\n`,
    ),
    sqlCase("no_dbpath", `query = SELECT v FROM aliases WHERE k='%s'\n`, `! ${look("a@example.com")}`),
    sqlCase("bad_template", `dbpath = @DIR@/db.sqlite\nquery = SELECT v FROM aliases WHERE k='%x'\n`, `! ${look("a@example.com")}`),
    sqlCase("no_legacy", `dbpath = @DIR@/db.sqlite\ntable = aliases\n`, `! ${look("a@example.com")}`),
    sqlCase("bad_query", `dbpath = @DIR@/db.sqlite\nquery = SELECT v FROM nosuch WHERE k='%s'\n`, `! ${look("a@example.com")}`),
    sqlCase("bad_int", `dbpath = @DIR@/db.sqlite\nquery = SELECT v FROM aliases WHERE k='%s'\nexpansion_limit = 1x\n`, `! ${look("a@example.com")}`),
    sqlCase("missing_cf", "", `lookup "sqlite:@DIR@/none.cf" ${L} "a"\nlookup "sqlite:@DIR@/none.cf" ${L} "b"`),
    sqlCase("sequence", `dbpath = @DIR@/db.sqlite\nquery = SELECT v FROM aliases WHERE k='%s'\n`, `${look("a@example.com")}\n! sequence "${T}" 0 0`),
    sqlCase("writer", `dbpath = @DIR@/db.sqlite\nquery = SELECT v FROM aliases WHERE k='%s'\n`, `open "${T}" 0\nlookup "${T}" ${L} "a@example.com"`, "option writer\n"),
    sqlCase(
      "nonutf8",
      `dbpath = @DIR@/db.sqlite\nquery = SELECT v FROM aliases WHERE k='%s'\n`,
      [look("caf\\xe9@example.com", 64), look("a@example.com", 64)].join("\n"),
      "option utf8 no\n",
    ),
  ];
  test("postfix-sqlite is installed", () => {
    if (!existsSync("/usr/lib/postfix/postfix-sqlite.so")) throw new Error("postfix-sqlite is missing: apt-get install postfix-sqlite");
  });
  for (const c of cases) {
    test(c.name, async () => {
      const { ref, diedAt } = await runOracle(c);
      expect(diedAt).toBe(c.requests.findIndex((r) => r.dies));
      expect(await runOurs(c)).toBe(withoutReference(ref));
    });
  }
});

describe("sqlite driver", () => {
  test("a name without '/' takes NAME_dbpath, NAME_query, ... from main.cf", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sqlitetest-"));
    try {
      writeFileSync(join(dir, "db.sqlite"), Buffer.from(dbBytes(ROWS), "latin1"));
      const values: Record<string, string> = { mydb_dbpath: join(dir, "db.sqlite"), mydb_query: "SELECT v FROM aliases WHERE k='%s'", mydb_result_format: "[%s]" };
      setTableMainConfig({ get: (n: string) => values[n] ?? "", has: (n: string) => n in values, expand: (s: string) => s, raw: (n: string) => values[n], configDir: "/etc/postfix", installedVersion: "3.7.11", defaultsSource: "builtin" } as MainConfig);
      const t = (await sqlite.open({ type: "sqlite", name: "mydb", write: false, flags: 0 }, {} as never)) as Table;
      expect(await t.lookup("multi@example.com", 0)).toBe("[one],[two],[three]");
      t.close!();
      delete values.mydb_dbpath;
      expect(() => sqlite.open({ type: "sqlite", name: "mydb", write: false, flags: 0 }, {} as never)).toThrow(/bad string length 0 < 1: mydb_dbpath = $/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("opens read-only and never creates the database", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sqlitetest-"));
    try {
      const cf = join(dir, "t.cf");
      writeFileSync(cf, `dbpath = ${dir}/absent.sqlite\nquery = SELECT 1\n`);
      expect(async () => await sqlite.open({ type: "sqlite", name: cf, write: false, flags: 0 }, {} as never)).toThrow(/Can't open database/);
      expect(existsSync(join(dir, "absent.sqlite"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
