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
 * Reads: the configuration file, the database. Logs: the reference's
 * warnings (see above); with -v, the skipped keys and queries.
 */
import { Database, type Statement } from "bun:sqlite";
import { DictFlag } from "../protocol/constants";
import { msg } from "../log/msg";
import { TableError, type OpenArgs, type OpenContext, type Table, type TableType } from "./table";
import { CfgParser } from "./dbCommon/cfgParser";
import { DomainList, type DomainCheck } from "./dbCommon/domain";
import { legacyQuery, TemplateContext } from "./dbCommon/expand";
import { allAscii, lowercaseAscii, validUtf8 } from "./utf8";
import { cString } from "./strings";

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

/** What sqlite3_column_text() gives for a column value, as a byte string; null for SQL NULL. */
export function columnText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") return cString(allAscii(v) ? v : Buffer.from(v, "utf8").toString("latin1"));
  if (typeof v === "bigint") return v.toString();
  // INTEGER columns arrive as bigint (safeIntegers), so a number is a REAL.
  if (typeof v === "number") return realText(v);
  if (v instanceof Uint8Array) return cString(Buffer.from(v).toString("latin1"));
  return String(v);
}

/** SQLite's "%!.15g" rendering of a REAL. */
function realText(v: number): string {
  if (!Number.isFinite(v)) return v > 0 ? "Inf" : v < 0 ? "-Inf" : "";
  let s = v.toPrecision(15);
  if (s.includes("e")) {
    let [m, e] = s.split("e");
    if (m.includes(".")) m = m.replace(/0+$/, "").replace(/\.$/, ".0");
    else m += ".0";
    const exp = Number(e);
    return `${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  if (s.includes(".")) s = s.replace(/0+$/, "").replace(/\.$/, ".0");
  else s += ".0";
  return s;
}

function sqliteCode(e: unknown): string {
  return String((e as { code?: unknown }).code ?? "");
}

class SqliteTable implements Table {
  flags: number;

  constructor(
    private readonly name: string,
    private readonly db: Database,
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

  private afterDomain(name: string, domainRc: DomainCheck): string | undefined {
    if (domainRc === "nomatch") {
      if (msg.verbose) msg.info(`${ME}: ${this.name}: Skipping lookup of '${name}'`);
      return undefined;
    }
    // This driver has always answered a domain-list problem with a temporary error, CONFIG included.
    if (domainRc !== "match") throw new TableError("retry", "");
    const query = this.common.expand(this.query, name, undefined, "", sqliteQuote);
    if (query === undefined) return undefined;
    if (msg.verbose) msg.info(`${ME}: ${this.name}: Searching with query ${query}`);
    let stmt: Statement;
    try {
      stmt = this.db.prepare(bytesToText(query));
    } catch (e) {
      const code = sqliteCode(e);
      const kind = code === "SQLITE_BUSY" || code === "SQLITE_LOCKED" ? "retry" : "config";
      throw new TableError(kind, `${ME}: ${this.name}: SQL prepare failed: ${errText(e)}\n`);
    }
    let result = "";
    let expansions = 0;
    try {
      let rows: unknown[][];
      try {
        rows = stmt.values() as unknown[][];
      } catch (e) {
        msg.warn(`${ME}: ${this.name}: SQL step failed for query '${query}': ${errText(e)}\n`);
        throw new TableError("retry", "");
      }
      for (const row of rows) {
        const next = this.common.expand(this.resultFormat, columnText(row[0]), name, result);
        if (next === undefined) continue;
        result = next;
        if (this.expansionLimit > 0 && ++expansions > this.expansionLimit) {
          msg.warn(`${ME}: ${this.name}: Expansion limit exceeded for key '${name}'`);
          throw new TableError("retry", "");
        }
      }
    } finally {
      stmt.finalize();
    }
    return result === "" ? undefined : result;
  }

  close(): void {
    this.db.close();
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function open(args: OpenArgs, ctx?: OpenContext): Table | Promise<Table> {
  if (args.write) throw new TableError("retry", `${TYPE}:${args.name} map requires O_RDONLY access mode`);
  // A configuration file modified within the last second is read again
  // after a pause, as the reference's cfg_parser does: then open later.
  const cfg = CfgParser.open(args.name);
  return cfg instanceof Promise ? cfg.then((c) => openWith(c, args, ctx)) : openWith(cfg, args, ctx);
}

function openWith(cfg: CfgParser, args: OpenArgs, ctx: OpenContext | undefined): Table {
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
  let db: Database;
  try {
    db = new Database(bytesToText(dbpath), { readonly: true, create: false, safeIntegers: true });
  } catch (e) {
    throw new TableError("config", `${TYPE}:${name}: Can't open database: ${errText(e)}\n`);
  }
  // db_common_dict_partial() always says "no" in 3.7: the table is FIXED.
  return new SqliteTable(name, db, query, resultFormat, expansionLimit, common, domain, args.flags | DictFlag.FIXED);
}

export const sqlite: TableType = { type: TYPE, open };
