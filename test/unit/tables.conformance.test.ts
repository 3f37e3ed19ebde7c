/**
 * The conformance suite every table driver runs through the dict layer:
 * open flags, lookup, miss, folding, the synchronous hot path, sequence,
 * unsupported operations, the write service, open failures (surrogates),
 * and the UTF-8 layer. A new driver adds one entry to DRIVERS.
 *
 * The file databases differ from the in-memory types in ways the reference
 * shares (each checked against the C proxymap): the db types settle the
 * TRY0NULL/TRY1NULL convention on first use (`nullBits`), some really
 * update and delete (`writableOps`), and some name themselves after their
 * database file in messages (`labelName`).
 *
 * Real sources only: files in a scratch directory (db files built by the
 * installed postmap(1), sqlite through bun:sqlite), NSS through libc.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { setLogSinks } from "../../src/log/msg";
import { DictFlag, Status } from "../../src/protocol/constants";
import { closeAllDicts, dictDel, dictGet, dictPut, dictSeq, openDict, setUtf8Enabled, type Dict } from "../../src/tables/dict";
import { TABLE_TYPES } from "../../src/tables/registry";
import { requireCommand } from "../helpers/require";
import { SocketmapServer } from "../helpers/socketmap-server";
import { TcpTableServer } from "../helpers/tcp-server";
import { createTestDatabase, requireMariadb, type TestDatabase } from "../helpers/mariadb";
import { createTestDatabase as createPgDatabase, requirePostgres, type TestDatabase as PgDatabase } from "../helpers/postgres";
import { writeCoolFile } from "../helpers/files";

const F = DictFlag;
const TRY_BOTH = F.TRY0NULL | F.TRY1NULL;
let dir = "";
let logs: string[] = [];

interface DriverSpec {
  type: string;
  /** A table of this type holding exactly `entries` (created in the scratch dir if needed). */
  table: () => string;
  /** [key, value] pairs the table holds (keys lower-case ASCII). */
  entries: Array<[string, string]>;
  /** A key the table does not hold; undefined when every key matches. */
  missing?: string;
  /** The implementation bit the open reply carries. */
  impl: number;
  /** FOLD_FIX finds the entries under upper-case keys. */
  folds: boolean;
  sequence: boolean;
  /** Can the write service open it? */
  writable: boolean;
  /** A name of this type that fails to open, and the failure text. */
  failure?: [name: string, reason: string];
  /** Lookups always fail with this status (fail:). */
  lookupStatus?: number;
  /**
   * A db type (Postfix dict_db/dict_cdb/dict_lmdb): an open request with
   * neither TRY0NULL nor TRY1NULL gets both, and the first hit keeps only
   * this one: the convention the table was built with (postmap on Linux
   * writes hash/btree/lmdb keys with their NUL: TRY1NULL; cdb keys without:
   * TRY0NULL). Undefined: the flags carry only what the request asked for.
   */
  nullBits?: number;
  /** Lookups complete later (a network table): a Promise, never the hot path. */
  async?: boolean;
  /** Update and delete really work on the write service (OK), instead of CONFIG. */
  writableOps?: boolean;
  /** Update works on the write service, delete is not supported (environ). */
  updateOnly?: boolean;
  /**
   * The "type:name" that the table's own messages (UTF-8 layer, unsupported
   * operations) show, from the "type:name" it was opened as; the reference's
   * dict name is the database file for hash/btree (NAME.db) and cdb
   * (NAME.cdb), the table name for the others (lmdb included). Default: as
   * opened.
   */
  labelName?: (name: string) => string;
}

/** The "type:name" a table's own messages show. */
function label(spec: DriverSpec, name: string): string {
  return spec.labelName ? spec.labelName(name) : name;
}

/** The flags of a table just opened with `request`, before any lookup. */
function openFlags(spec: DriverSpec, request: number): number {
  const added = spec.nullBits !== undefined && (request & TRY_BOTH) === 0 ? TRY_BOTH : 0;
  return request | added | spec.impl;
}

/** A file database built by the installed postmap(1) from the two conformance entries. */
function postmapTable(type: string, hint: string): string {
  const postmap = requireCommand("postmap", hint);
  const p = join(dir, `conf-${type}`);
  writeFileSync(p, "alpha 1\nbeta two words\n");
  const r = Bun.spawnSync([postmap, `${type}:${p}`]);
  if (r.exitCode !== 0) throw new Error(`postmap ${type}:${p} failed (${hint}): ${r.stderr.toString()}`);
  return `${type}:${p}`;
}

const DRIVERS: DriverSpec[] = [
  {
    type: "texthash",
    table: () => {
      return `texthash:${writeCoolFile(join(dir, "conf.map"), "alpha 1\nbeta two words\n")}`;
    },
    entries: [["alpha", "1"], ["beta", "two words"]],
    missing: "gamma",
    impl: F.FIXED,
    folds: true,
    sequence: true,
    writable: false,
    failure: ["texthash:/nonexistent/conf.map", "open database /nonexistent/conf.map: No such file or directory"],
  },
  {
    type: "inline",
    table: () => "inline:{alpha=1, {beta = two words}}",
    entries: [["alpha", "1"], ["beta", "two words"]],
    missing: "gamma",
    impl: F.FIXED,
    folds: true,
    sequence: true,
    writable: false,
    failure: ["inline:{}", 'bad syntax: "inline:{}"; need "inline:{name=value...}"'],
  },
  {
    type: "static",
    table: () => "static:{ two words }",
    entries: [["alpha", "two words"], ["anything", "two words"]],
    impl: F.FIXED,
    folds: true,
    sequence: false,
    writable: true,
    failure: ["static:{a}b", `bad static:name syntax: syntax error after '}' in "{a}b"`],
  },
  {
    type: "fail",
    table: () => "fail:conformance",
    entries: [],
    missing: "alpha",
    impl: F.PATTERN,
    folds: false,
    sequence: true,
    writable: true,
    lookupStatus: Status.RETRY,
  },
  {
    type: "unix",
    table: () => "unix:passwd.byname",
    entries: [["root", "root:x:0:0:root:/root:/bin/bash"]],
    missing: "no-such-user-here",
    impl: F.FIXED,
    folds: true,
    sequence: false,
    writable: false,
    failure: ["unix:shadow.byname", "unknown table: unix:shadow.byname"],
  },
  ...(["hash", "btree"] as const).map(
    (type): DriverSpec => ({
      type,
      table: () => postmapTable(type, "apt-get install postfix"),
      entries: [["alpha", "1"], ["beta", "two words"]],
      missing: "gamma",
      impl: F.FIXED,
      folds: true,
      sequence: true,
      writable: true,
      failure: [`${type}:/nonexistent/conf`, "open database /nonexistent/conf.db: No such file or directory"],
      nullBits: F.TRY1NULL,
      writableOps: true,
      labelName: (name) => `${name}.db`,
    }),
  ),
  {
    type: "cdb",
    table: () => postmapTable("cdb", "apt-get install postfix postfix-cdb"),
    entries: [["alpha", "1"], ["beta", "two words"]],
    missing: "gamma",
    impl: F.FIXED,
    folds: true,
    sequence: true,
    // The reference's proxywrite exits on a cdb table; ours opens it read-only (cdb.ts).
    writable: true,
    failure: ["cdb:/nonexistent/conf", "open database /nonexistent/conf.cdb: No such file or directory"],
    nullBits: F.TRY0NULL,
    labelName: (name) => `${name}.cdb`,
  },
  {
    type: "lmdb",
    table: () => postmapTable("lmdb", "apt-get install postfix postfix-lmdb"),
    entries: [["alpha", "1"], ["beta", "two words"]],
    missing: "gamma",
    impl: F.FIXED | F.MULTI_WRITER,
    folds: true,
    sequence: true,
    writable: true,
    failure: ["lmdb:/nonexistent/conf", "open database /nonexistent/conf.lmdb: No such file or directory"],
    nullBits: F.TRY1NULL,
    writableOps: true,
  },
  {
    type: "sqlite",
    table: () => {
      const db = join(dir, "conf.sqlite");
      const cf = join(dir, "conf-sqlite.cf");
      const d = new Database(db);
      d.run("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT)");
      d.run("INSERT OR REPLACE INTO t VALUES ('alpha', '1'), ('beta', 'two words')");
      d.close();
      writeFileSync(cf, `dbpath = ${db}\nquery = SELECT v FROM t WHERE k='%s'\n`);
      return `sqlite:${cf}`;
    },
    entries: [["alpha", "1"], ["beta", "two words"]],
    missing: "gamma",
    impl: F.FIXED,
    folds: true,
    sequence: false,
    writable: false,
    failure: ["sqlite:/nonexistent/conf.cf", "open /nonexistent/conf.cf: No such file or directory"],
  },
  {
    type: "mysql",
    table: () => {
      // The real MariaDB (requireMariadb in beforeAll), a database of our own.
      mysqlDb ??= createTestDatabase("conformance");
      mysqlDb.sql("CREATE TABLE IF NOT EXISTS t (k VARCHAR(64) COLLATE utf8mb4_bin PRIMARY KEY, v TEXT);" +
        "REPLACE INTO t VALUES ('alpha', '1'), ('beta', 'two words');");
      const cf = join(dir, "conf-mysql.cf");
      writeCoolFile(
        cf,
        `hosts = unix:${mysqlDb.socket}\nuser = ${mysqlDb.user}\npassword = ${mysqlDb.password}\n` +
          `dbname = ${mysqlDb.db}\nquery = SELECT v FROM t WHERE k='%s'\n`,
      );
      return `mysql:${cf}`;
    },
    async: true,
    entries: [["alpha", "1"], ["beta", "two words"]],
    missing: "gamma",
    impl: F.FIXED,
    folds: true,
    sequence: false,
    writable: false,
    failure: ["mysql:/nonexistent/conf.cf", "open /nonexistent/conf.cf: No such file or directory"],
  },
  {
    type: "pgsql",
    table: () => {
      // The machine's PostgreSQL (requirePostgres in beforeAll), a database of our own.
      pgDb ??= createPgDatabase("conformance");
      pgDb.sql("CREATE TABLE IF NOT EXISTS t (k text PRIMARY KEY, v text); INSERT INTO t VALUES ('alpha', '1'), ('beta', 'two words') ON CONFLICT DO NOTHING;");
      const cf = join(dir, "conf-pgsql.cf");
      writeCoolFile(cf, `hosts = inet:127.0.0.1:${pgDb.port}\nuser = ${pgDb.user}\npassword = ${pgDb.password}\ndbname = ${pgDb.db}\nquery = SELECT v FROM t WHERE k='%s'\n`);
      return `pgsql:${cf}`;
    },
    async: true,
    entries: [["alpha", "1"], ["beta", "two words"]],
    missing: "gamma",
    impl: F.FIXED,
    folds: true,
    sequence: false,
    writable: false,
    failure: ["pgsql:/nonexistent/conf.cf", "open /nonexistent/conf.cf: No such file or directory"],
  },
  {
    type: "cidr",
    table: () => patternFile("conf.cidr", "192.0.2.1 1\n192.0.2.0/24 two words\n"),
    entries: [["192.0.2.1", "1"], ["192.0.2.2", "two words"]],
    missing: "198.51.100.1",
    impl: F.PATTERN,
    folds: false,
    sequence: false,
    writable: false,
    failure: ["cidr:/nonexistent/conf.cidr", "open /nonexistent/conf.cidr: No such file or directory"],
  },
  ...(["regexp", "pcre"] as const).map(
    (type): DriverSpec => ({
      type,
      table: () => patternFile(`conf.${type}`, "/^alpha$/ 1\n/^beta$/ two words\n"),
      entries: [["alpha", "1"], ["beta", "two words"]],
      missing: "gamma",
      impl: F.PATTERN,
      // Case-insensitive by default (flag i): an upper-case key matches with or without FOLD_FIX.
      folds: false,
      sequence: false,
      writable: false,
      failure: [`${type}:/nonexistent/conf.${type}`, `open /nonexistent/conf.${type}: No such file or directory`],
    }),
  ),
  {
    type: "unionmap",
    table: () => "unionmap:{inline:{alpha=1}, inline:{{beta = two words}}}",
    entries: [["alpha", "1"], ["beta", "two words"]],
    missing: "gamma",
    async: true,
    impl: F.FIXED,
    // Members fold with their own open flags, not the request's (as the reference).
    folds: false,
    sequence: false,
    writable: false,
    failure: ["unionmap:{}", 'bad syntax: "unionmap:{}"; need "unionmap:{type:name...}"'],
  },
  {
    type: "pipemap",
    table: () => "pipemap:{inline:{alpha=a, beta=b}, inline:{a=1, {b = two words}}}",
    entries: [["alpha", "1"], ["beta", "two words"]],
    missing: "gamma",
    async: true,
    impl: F.FIXED,
    folds: false,
    sequence: false,
    writable: false,
    failure: ["pipemap:{}", 'bad syntax: "pipemap:{}"; need "pipemap:{type:name...}"'],
  },
  {
    type: "randmap",
    // One member: deterministic (test/unit/randmap.test.ts covers the pick).
    table: () => "randmap:{{two words}}",
    entries: [["alpha", "{two words}"], ["beta", "{two words}"]],
    impl: F.PATTERN,
    folds: false,
    sequence: false,
    writable: false,
    failure: ["randmap:{}", 'bad syntax: "randmap:{}"; need "randmap:{value...}"'],
  },
  {
    type: "environ",
    table: () => {
      process.env.alpha = "1";
      process.env.beta = "two words";
      return "environ:conformance";
    },
    entries: [["alpha", "1"], ["beta", "two words"]],
    missing: "gamma_not_in_the_environment",
    impl: F.FIXED,
    folds: true,
    sequence: false,
    writable: true,
    // update works (setenv), delete does not exist: OK, then CONFIG.
    updateOnly: true,
  },
  {
    type: "internal",
    // Empty at open; filled through the write service.
    table: () => "internal:conformance",
    entries: [],
    missing: "alpha",
    impl: F.FIXED,
    folds: false,
    sequence: true,
    writable: true,
    writableOps: true,
  },
  {
    type: "socketmap",
    table: () => `socketmap:unix:${confSocketmap.path}:conf`,
    entries: [["alpha", "1"], ["beta", "two words"]],
    missing: "gamma",
    async: true,
    impl: F.PATTERN,
    folds: false,
    sequence: false,
    writable: false,
    failure: ["socketmap:nocolon", "socketmap requires server:socketmap argument"],
  },
  {
    type: "tcp",
    table: () => `tcp:127.0.0.1:${confTcp.port}`,
    entries: [["alpha", "1"], ["beta", "two words"]],
    missing: "gamma",
    async: true,
    impl: F.PATTERN,
    folds: false,
    sequence: false,
    writable: false,
  },
];

/** A pattern table file (cidr, regexp, pcre) in the scratch directory, as "type:path". */
function patternFile(name: string, text: string): string {
  return `${name.slice(name.lastIndexOf(".") + 1)}:${writeCoolFile(join(dir, name), text)}`;
}

// The socketmap and tcp servers the network entries talk to.
let confSocketmap: { path: string; srv?: SocketmapServer } = { path: "" };
let confTcp: { port: number; srv?: TcpTableServer } = { port: 0 };
const CONF_DATA = { alpha: "1", beta: "two words" };
beforeAll(async () => {
  confSocketmap.path = join(mkdtempSync(join(tmpdir(), "conf-sm-")), "sm.sock");
  confSocketmap.srv = await SocketmapServer.start({ path: confSocketmap.path, data: { conf: CONF_DATA } });
  confTcp.srv = await TcpTableServer.start({ data: CONF_DATA });
  confTcp.port = Number(confTcp.srv.address.split(":")[1]);
});
afterAll(async () => {
  await confSocketmap.srv?.close();
  await confTcp.srv?.close();
});

let mysqlDb: TestDatabase | undefined;
let pgDb: PgDatabase | undefined;
beforeAll(async () => {
  await requireMariadb();
  await requirePostgres();
});
afterAll(() => {
  mysqlDb?.drop();
  pgDb?.drop();
});

async function open(name: string, flags = 0, writer = false): Promise<Dict> {
  return await openDict(name, writer, flags);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tables-conformance-"));
  setLogSinks([{ write: (_s, line) => logs.push(line) }]);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  setLogSinks([{ write: (_s, line) => process.stderr.write(`proxymap: ${line}\n`) }]);
});
afterEach(async () => {
  await closeAllDicts();
  logs = [];
  setUtf8Enabled(false);
});

test("every registered type has a conformance entry", () => {
  expect(TABLE_TYPES.map((t) => t.type).sort()).toEqual(DRIVERS.map((d) => d.type).sort());
});

for (const spec of DRIVERS) {
  describe(`${spec.type} conformance`, () => {
    test("open replies the request flags plus the implementation bits", async () => {
      const d = await open(spec.table(), F.TRY0NULL);
      expect(d.openStatus).toBe(Status.OK);
      expect(d.flags).toBe(F.TRY0NULL | spec.impl);
    });

    test("NUL convention: only a db type adds TRY0NULL|TRY1NULL to a request with neither, and the first hit keeps one", async () => {
      const d = await open(spec.table());
      expect(d.flags).toBe(spec.impl | (spec.nullBits !== undefined ? TRY_BOTH : 0));
      if (spec.entries.length === 0) return;
      expect((await dictGet(d, spec.entries[0][0], 0)).status).toBe(spec.lookupStatus ?? Status.OK);
      expect(d.flags).toBe(spec.impl | (spec.nullBits ?? 0));
      if (spec.missing !== undefined) {
        await dictGet(d, spec.missing, 0);
        expect(d.flags).toBe(spec.impl | (spec.nullBits ?? 0));
      }
    });

    if (spec.nullBits !== undefined) {
      test("NUL convention: a convention the request names is kept; the other one finds nothing", async () => {
        const other = spec.nullBits === F.TRY1NULL ? F.TRY0NULL : F.TRY1NULL;
        const right = await open(spec.table(), spec.nullBits!);
        for (const [k, v] of spec.entries) expect(await dictGet(right, k, 0)).toEqual({ status: Status.OK, value: v });
        expect(right.flags).toBe(spec.impl | spec.nullBits!);
        const wrong = await open(spec.table(), other);
        for (const [k] of spec.entries) expect(await dictGet(wrong, k, 0)).toEqual({ status: Status.NOKEY, value: "" });
        expect(wrong.flags).toBe(spec.impl | other);
        expect(logs).toEqual([]);
      });
    }

    test("lookup finds each entry, synchronously (no Promise on the hot path)", async () => {
      const d = await open(spec.table());
      for (const [k, v] of spec.entries) {
        const r = dictGet(d, k, 0);
        // Network tables (spec.async) answer later by design.
        expect(r instanceof Promise).toBe(spec.async === true);
        expect(await r).toEqual({ status: Status.OK, value: v });
      }
    });

    if (spec.missing !== undefined) {
      test("a missing key is NOKEY (or the type's failure)", async () => {
        const d = await open(spec.table());
        expect(await dictGet(d, spec.missing!, 0)).toEqual({ status: spec.lookupStatus ?? Status.NOKEY, value: "" });
        expect(logs).toEqual([]);
      });
    }

    if (spec.folds) {
      test("FOLD_FIX folds an upper-case key; without it the key is taken as is", async () => {
        const d = await open(spec.table());
        for (const [k, v] of spec.entries) {
          expect(await dictGet(d, k.toUpperCase(), F.FOLD_FIX)).toEqual({ status: Status.OK, value: v });
          if (spec.type !== "static") expect((await dictGet(d, k.toUpperCase(), 0)).status).toBe(Status.NOKEY);
        }
      });
    }

    test("the request bits of the flags follow the last request", async () => {
      const d = await open(spec.table());
      // A miss leaves a db type's NUL convention undecided: both bits stay.
      const table = openFlags(spec, 0);
      await dictGet(d, "x", F.FOLD_FIX | F.LOCK);
      expect(d.flags).toBe(table | F.FOLD_FIX | F.LOCK);
      await dictGet(d, "x", 0);
      expect(d.flags).toBe(table);
    });

    if (spec.sequence) {
      test("sequence walks every entry, then NOKEY", async () => {
        const d = await open(spec.table());
        const seen: Array<[string, string]> = [];
        let r = await dictSeq(d, 0, 0);
        while (r.status === Status.OK) {
          seen.push([r.key, r.value]);
          r = await dictSeq(d, 1, 0);
        }
        expect(r.status).toBe(spec.lookupStatus ?? Status.NOKEY);
        expect(seen.sort()).toEqual([...spec.entries].sort());
      });
    } else {
      test("sequence is not supported: CONFIG and a warning, process goes on", async () => {
        const name = spec.table();
        const d = await open(name);
        expect(await dictSeq(d, 0, 0)).toEqual({ status: Status.CONFIG, key: "", value: "" });
        expect(logs).toEqual([`warning: table ${name}: sequence operation is not supported`]);
        expect((await dictGet(d, spec.entries[0][0], 0)).status).toBe(Status.OK);
      });
    }

    test("update and delete on the write service", async () => {
      const name = spec.table();
      const d = await open(name, 0, true);
      const put = await dictPut(d, "k", "v", 0);
      const del = await dictDel(d, "k", 0);
      if (spec.type === "fail") {
        expect([put, del]).toEqual([Status.RETRY, Status.RETRY]);
      } else if (spec.writableOps) {
        expect([put, del]).toEqual([Status.OK, Status.OK]);
        expect(logs).toEqual([]);
      } else if (spec.updateOnly) {
        expect([put, del]).toEqual([Status.OK, Status.CONFIG]);
        expect(logs).toEqual([`warning: table ${label(spec, name)}: delete operation is not supported`]);
      } else if (!spec.writable) {
        const why = `${name} is unavailable. ${name} map requires O_RDONLY access mode`;
        expect([put, del]).toEqual([Status.RETRY, Status.RETRY]);
        expect(logs.filter((l) => l.startsWith("warning:"))).toEqual([`warning: ${why}`, `warning: ${why}`]);
      } else {
        expect([put, del]).toEqual([Status.CONFIG, Status.CONFIG]);
        expect(logs).toEqual([
          `warning: table ${label(spec, name)}: update operation is not supported`,
          `warning: table ${label(spec, name)}: delete operation is not supported`,
        ]);
      }
    });

    if (spec.writableOps) {
      test("the write service stores, finds, deletes, and then misses a key", async () => {
        const d = await open(spec.table(), 0, true);
        expect(d.flags).toBe(openFlags(spec, 0));
        expect(await dictPut(d, "k", "v", F.DUP_REPLACE)).toBe(Status.OK);
        // An undecided update writes the platform's convention, which then stays.
        if (spec.nullBits !== undefined) expect(d.flags & TRY_BOTH).toBe(spec.nullBits);
        expect(await dictGet(d, "k", 0)).toEqual({ status: Status.OK, value: "v" });
        expect(await dictPut(d, "k", "w", F.DUP_REPLACE)).toBe(Status.OK);
        expect(await dictGet(d, "k", 0)).toEqual({ status: Status.OK, value: "w" });
        expect(await dictDel(d, "k", 0)).toBe(Status.OK);
        expect(await dictGet(d, "k", 0)).toEqual({ status: Status.NOKEY, value: "" });
        expect(await dictDel(d, "k", 0)).toBe(Status.NOKEY);
        for (const [k, v] of spec.entries) expect(await dictGet(d, k, 0)).toEqual({ status: Status.OK, value: v });
        expect(logs).toEqual([]);
      });
    }

    if (spec.failure) {
      test("an open failure is a surrogate: logged once, RETRY with a warning each time", async () => {
        const [name, reason] = spec.failure!;
        const d = await open(name);
        expect(d.openStatus).toBe(Status.OK);
        expect(d.flags & F.PATTERN).toBe(F.PATTERN);
        expect(logs).toEqual([`error: ${reason}`]);
        expect(await dictGet(d, "alpha", 0)).toEqual({ status: Status.RETRY, value: "" });
        expect(await dictSeq(d, 0, 0)).toEqual({ status: Status.RETRY, key: "", value: "" });
        expect(logs.slice(1)).toEqual([`warning: ${name} is unavailable. ${reason}`, `warning: ${name} is unavailable. ${reason}`]);
        expect(await open(name)).toBe(d);
        expect(logs.length).toBe(3);
      });
    }

    test("UTF-8 layer: a non-UTF-8 key is NOKEY with the reference warning", async () => {
      setUtf8Enabled(true);
      const name = spec.table();
      const d = await open(name, F.UTF8_REQUEST);
      expect(d.flags & F.UTF8_ACTIVE).toBe(F.UTF8_ACTIVE);
      expect(await dictGet(d, "a\xff", F.UTF8_REQUEST)).toEqual({ status: Status.NOKEY, value: "" });
      expect(logs).toEqual([`warning: ${label(spec, name)}: non-UTF-8 key "a\xff": malformed UTF-8 or invalid codepoint`]);
    });

    test("the same name and instance flags share one instance; other instance flags do not", async () => {
      const name = spec.table();
      const a = await open(name, F.FOLD_FIX);
      expect(await open(name, F.LOCK)).toBe(a);
      expect(await open(name, F.TRY1NULL)).not.toBe(a);
    });
  });
}
