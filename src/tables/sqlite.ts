/**
 * sqlite.ts - the "sqlite" table type: lookups by SQL query in an SQLite
 * database through bun:sqlite, configured by a sqlite_table(5) file
 * (Postfix global/dict_sqlite.c).
 *
 * Settings (dbCommon/cfgParser.ts): dbpath (required), query, or the legacy
 * table/select_field/where_field/additional_conditions that build
 * "SELECT select_field FROM table WHERE where_field='%s' additional_conditions";
 * result_format (default %s), expansion_limit (default 0 = none), domain.
 * Templates and the domain filter: dbCommon/expand.ts, dbCommon/domain.ts. Values put into the
 * query are quoted as sqlite3_mprintf("%q") does (single quotes doubled).
 *
 * A lookup skips (not found) a non-UTF-8 key unless the UTF-8 layer checked
 * it, folds ASCII case with FOLD_FIX, runs the query and joins the result
 * template's expansion of column 0 of every row with ','; NULL columns are
 * skipped, empty ones warned about. More rows than expansion_limit, or a
 * failing step, is RETRY with the reference's warning. The database is
 * opened read-only (only the read service may open sqlite tables: the write
 * service gets the reference's "map requires O_RDONLY access mode").
 *
 * Where the reference exits (bad configuration, database that cannot be
 * opened, query that cannot be prepared), this table answers CONFIG (a
 * busy or locked database: RETRY) and the process keeps serving.
 *
 * Strings: keys and results are byte strings; SQLite text is UTF-8, so the
 * query is handed over as the UTF-8 decoding of its bytes and results are
 * turned back into bytes.
 *
 * Threads: bun:sqlite runs a query synchronously, and a query on a large
 * database (or a slow one an administrator wrote) would stall every client
 * of the process. So the queries, and the database connections, live on the
 * worker threads of the "sqlite" pool (offload/pool.ts, sqlite/jobs.ts): the
 * configuration, the domain filter, %-expansion and the result template
 * stay here. Measured: the main thread spends about 17 us of CPU on a
 * lookup (28 us when it ran the query itself, 10,000 rows, by key); the
 * latency grows by a worker round trip (about 25 us).
 *
 * Reads: the configuration file, the database. Logs: the reference's
 * warnings (see above); with -v, the skipped keys and queries.
 */
import { DictFlag } from "../protocol/constants";
import { msg } from "../log/msg";
import { TableError, type OpenArgs, type OpenContext, type Table, type TableType, READ_ONLY } from "./table";
import { CfgParser } from "./dbCommon/cfgParser";
import { DomainList, type DomainCheck } from "./dbCommon/domain";
import { legacyQuery, TemplateContext } from "./dbCommon/expand";
import { allAscii, lowercaseAscii, validUtf8 } from "./utf8";
import { OffloadPool, type Preload } from "./offload/pool";
import type { SqliteAnswer, SqliteQuery } from "./sqlite/jobs";

export { columnText } from "./sqlite/jobs";

const TYPE = "sqlite";
const ME = "dict_sqlite_lookup";

/** sqlite3_mprintf("%q"): double every single quote. */
export function sqliteQuote(raw: string): string {
  return raw.replaceAll("'", "''");
}

/** A byte string (UTF-8 bytes as latin1 chars) as the JS string SQLite should see. */
function bytesToText(s: string): string {
  return allAscii(s) ? s : Buffer.from(s, "latin1").toString("utf8");
}

/** The worker threads that run the queries (started by the first sqlite table opened). */
export const sqlitePool = new OffloadPool("sqlite");

/** Tables open per database path: the workers' connections close with the last. */
const users = new Map<string, number>();

/** What makes a worker open the database before its first query there. */
function preload(dbpath: string): Preload {
  return { key: dbpath, job: "sqlite.load", arg: dbpath };
}

function release(dbpath: string): void {
  const n = (users.get(dbpath) ?? 0) - 1;
  if (n > 0) {
    users.set(dbpath, n);
    return;
  }
  users.delete(dbpath);
  sqlitePool.forget(dbpath, "sqlite.close");
}

class SqliteTable implements Table {
  flags: number;

  constructor(
    private readonly name: string,
    /** The database path as SQLite sees it. */
    private readonly dbpath: string,
    private readonly query: string,
    private readonly resultFormat: string,
    private readonly expansionLimit: number,
    private readonly common: TemplateContext,
    private readonly domain: DomainList | undefined,
    flags: number,
  ) {
    this.flags = flags;
  }

  lookup(key: string, flags: number): string | undefined | Promise<string | undefined> {
    if ((flags & DictFlag.UTF8_ACTIVE) === 0 && !allAscii(key) && !validUtf8(key)) {
      if (msg.verbose) msg.info(`${ME}: ${this.name}: Skipping lookup of non-UTF-8 key '${key}'`);
      return undefined;
    }
    const name = flags & DictFlag.FOLD_FIX ? lowercaseAscii(key) : key;
    if (!this.domain) return this.afterDomain(name, "match");
    const rc = this.domain.check(name);
    if (rc instanceof Promise) return rc.then((r) => this.afterDomain(name, r));
    return this.afterDomain(name, rc);
  }

  private afterDomain(name: string, domainRc: DomainCheck): string | undefined | Promise<string | undefined> {
    if (domainRc === "nomatch") {
      if (msg.verbose) msg.info(`${ME}: ${this.name}: Skipping lookup of '${name}'`);
      return undefined;
    }
    // This driver has always answered a domain-list problem with a temporary error, CONFIG included.
    if (domainRc !== "match") throw new TableError("retry", "");
    const query = this.common.expand(this.query, name, undefined, "", sqliteQuote);
    if (query === undefined) return undefined;
    if (msg.verbose) msg.info(`${ME}: ${this.name}: Searching with query ${query}`);
    return sqlitePool.call<SqliteAnswer>("sqlite.query", { dbpath: this.dbpath, sql: bytesToText(query) } satisfies SqliteQuery, preload(this.dbpath)).then(
      (a) => this.result(a, name, query),
      (e) => Promise.reject(new TableError("retry", `${ME}: ${this.name}: ${(e as Error).message}`)),
    );
  }

  /** The lookup's value from the worker's answer, with the reference's warnings and errors. */
  private result(a: SqliteAnswer, name: string, query: string): string | undefined {
    if ("failed" in a) {
      if (a.failed === "step") {
        msg.warn(`${ME}: ${this.name}: SQL step failed for query '${query}': ${a.text}\n`);
        throw new TableError("retry", "");
      }
      if (a.failed === "open") throw new TableError("config", `${TYPE}:${this.name}: Can't open database: ${a.text}\n`);
      const kind = a.code === "SQLITE_BUSY" || a.code === "SQLITE_LOCKED" ? "retry" : "config";
      throw new TableError(kind, `${ME}: ${this.name}: SQL prepare failed: ${a.text}\n`);
    }
    let result = "";
    let expansions = 0;
    for (const column of a.rows) {
      const next = this.common.expand(this.resultFormat, column, name, result);
      if (next === undefined) continue;
      result = next;
      if (this.expansionLimit > 0 && ++expansions > this.expansionLimit) {
        msg.warn(`${ME}: ${this.name}: Expansion limit exceeded for key '${name}'`);
        throw new TableError("retry", "");
      }
    }
    return result === "" ? undefined : result;
  }

  close(): void {
    release(this.dbpath);
    this.domain?.close();
  }
}

function open(args: OpenArgs, ctx: OpenContext): Table | Promise<Table> {
  // A configuration file modified within the last second is read again
  // after a pause, as the reference's cfg_parser does: then open later.
  const cfg = CfgParser.open(args.name);
  return cfg instanceof Promise ? cfg.then((c) => openWith(c, args, ctx)) : openWith(cfg, args, ctx);
}

function openWith(cfg: CfgParser, args: OpenArgs, ctx: OpenContext): Promise<Table> {
  const name = args.name;
  const dbpath = cfg.str("dbpath", "", 1, 0)!;
  let query = cfg.str("query", null);
  if (query === null) {
    const need = (s: string) => {
      const v = cfg.str(s, null, 1, 0);
      if (v === null) throw new TableError("config", `db_common_sql_build_query: '${s}' parameter not defined`);
      return v;
    };
    const table = need("table");
    const select = need("select_field");
    const where = need("where_field");
    const extra = cfg.str("additional_conditions", "")!;
    query = legacyQuery(select, table, where, extra);
  }
  const resultFormat = cfg.str("result_format", "%s", 1, 0)!;
  const expansionLimit = cfg.int("expansion_limit", 0, 0, 0);
  const common = new TemplateContext(TYPE, name);
  common.parse(query, true);
  common.parse(resultFormat, false);
  const domainValue = cfg.str("domain", "")!;
  const domain = domainValue === "" ? undefined : DomainList.parse(name, domainValue, ctx);
  // The database is opened by the workers that run the queries; this
  // first one tells whether it can be (the reference opens it here).
  const path = bytesToText(dbpath);
  users.set(path, (users.get(path) ?? 0) + 1);
  return sqlitePool.call<string | undefined>("sqlite.load", path, preload(path)).then(
    (err) => {
      if (err !== undefined) {
        release(path);
        throw new TableError("config", `${TYPE}:${name}: Can't open database: ${err}\n`);
      }
      // db_common_dict_partial() always says "no" in 3.7: the table is FIXED.
      return new SqliteTable(name, path, query, resultFormat, expansionLimit, common, domain, args.flags | DictFlag.FIXED);
    },
    (e) => {
      release(path);
      throw new TableError("retry", `${TYPE}:${name}: ${(e as Error).message}`);
    },
  );
}

export const sqlite: TableType = { type: TYPE, open, refuses: READ_ONLY };
