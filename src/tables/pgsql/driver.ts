/**
 * pgsql/driver.ts - the "pgsql" table type: lookups in PostgreSQL databases as
 * pgsql_table(5) describes them (Postfix global/dict_pgsql.c with
 * db_common.c), through Bun's built-in SQL client with a shared
 * connection pool.
 *
 * Settings (file "pgsql:/path/file.cf", or main.cf parameters NAME_field
 * for "pgsql:NAME"), read once at open as the installed Postfix reads them
 * (pgsql/config.ts: fields by generation, and ours: connection_limit,
 * query_timeout, connect_timeout).
 *
 * A lookup: fold the key (FOLD_FIX), skip it unless `domain` accepts it,
 * skip it unless the key has what the templates need, then run the query
 * on the pool (pgsql/pool.ts: hosts, failover, time-outs) with the key
 * quoted as libpq's PQescapeStringConn() quotes it for that connection
 * (pgsql/encoding.ts). Of the last result of the query, every value of
 * every row, column by column, goes through result_format (a NULL is an
 * empty string here, as PQgetvalue() gives it: both are skipped with the
 * reference's "empty lookup result" warning); the pieces are joined with
 * ','. No rows, or only skipped values: not found.
 *
 * Errors, as the reference maps them: every host failing or down, a query
 * the server refuses, a value the client encoding cannot hold, more than
 * expansion_limit values, a failed `domain` table lookup: RETRY. A
 * configuration the reference refuses with a fatal error: CONFIG for this
 * table, the process keeps serving the others. A missing configuration
 * file, or (3.10+) a host that needs a dbname that is not set: the
 * reference's surrogate (RETRY). A wrong password is a failed connection:
 * RETRY. The write service: the reference's "map requires O_RDONLY access
 * mode" surrogate.
 *
 * Reads: the .cf file (or main.cf). Logs: the reference's warnings (see
 * pgsql/pool.ts, dbCommon/expand.ts, dbCommon/domain.ts and below); with
 * -v, the skipped keys and the number of rows.
 */
import { msg } from "../../log/msg";
import { DictFlag } from "../../protocol/constants";
import { TableError, type BackendStats, type OpenArgs, type OpenContext, type Table } from "../table";
import { lowercaseAscii } from "../utf8";
import { CfgParser } from "../dbCommon/cfgParser";
import { installedGeneration } from "../dbCommon/mainConfig";
import { Refused } from "../dbCommon/hostPool";
import { answerOutcome, sqlLookup, type Answer } from "../dbCommon/lookup";
import { parsePgsqlConfig, type PgsqlConfig } from "./config";
import { checkLatin1, ConversionError, escapeString, QuoteError, resultBytes } from "./encoding";
import { serverErrorText } from "./messages";
import { acquirePgPool, EscapeRefused, type PgPool } from "./pool";
import type { PgConn, PgResult } from "./connection";

const TYPE = "pgsql";
const ME = "dict_pgsql_lookup";

class PgsqlTable implements Table {
  flags: number;
  private readonly label: string;

  constructor(
    readonly cfg: PgsqlConfig,
    private readonly pool: PgPool,
    flags: number,
  ) {
    // db_common_dict_partial() always says "no" in 3.7 to 3.12: the table is FIXED.
    this.flags = flags | DictFlag.FIXED;
    this.label = `${TYPE}:${cfg.name}`;
  }

  lookup(key: string, flags: number): Promise<string | undefined> {
    const name = flags & DictFlag.FOLD_FIX ? lowercaseAscii(key) : key;
    return this.lookupFolded(name);
  }

  private lookupFolded(name: string): Promise<string | undefined> {
    const cfg = this.cfg;
    return sqlLookup(
      {
        me: ME,
        label: this.label,
        name: cfg.name,
        domain: cfg.domain,
        // The table lookup problem is logged already; unlike mysql, the reference adds nothing.
        domainFailure: () => "",
        expandable: (key) => cfg.ctx.expandQuery(cfg.query, key) !== undefined,
        run: (key) =>
          this.pool.run(
            this.label,
            (conn) => this.build(conn, key),
            (result, conn) => this.accept(result, conn, key),
            answerOutcome,
          ),
      },
      name,
    );
  }

  /** The query for one connection: the key quoted for its encoding and string mode. */
  private build(conn: PgConn, name: string): string | Refused {
    const quote = (s: string) => escapeString(s, conn.encoding, conn.standardStrings);
    try {
      return this.cfg.ctx.expandQuery(this.cfg.query, name, quote) ?? "";
    } catch (e) {
      if (e instanceof QuoteError) return new EscapeRefused(e.message);
      throw e;
    }
  }

  /** The reference's result handling; Refused makes the pool try the next host. */
  private accept(result: PgResult, conn: PgConn, name: string): Answer | Refused {
    const cfg = this.cfg;
    // The whole result reaches the reference first, converted to its encoding: a value
    // it cannot hold fails the query before any is used.
    let rows: string[][];
    try {
      if (conn.encoding === "LATIN1") for (const col of result.columns) checkLatin1(col);
      rows = result.rows.map((row) => row.map((v) => (v === null ? "" : resultBytes(v, conn.encoding, conn.rawBytes))));
    } catch (e) {
      if (e instanceof ConversionError) return new Refused(serverErrorText({ severity: "ERROR", message: e.message }, undefined, conn.encoding));
      throw e;
    }
    if (msg.verbose) msg.info(`${ME}: retrieved ${rows.length} rows`);
    let out = "";
    let count = 0;
    for (const row of rows) {
      for (const value of row) {
        const piece = cfg.ctx.expandResult(cfg.resultFormat, value, name);
        if (piece === undefined) continue;
        out = out.length > 0 ? `${out},${piece}` : piece;
        if (cfg.expansionLimit > 0 && ++count > cfg.expansionLimit) return { overLimit: true };
      }
    }
    return { value: out.length > 0 ? out : undefined };
  }

  /** The pool's hosts (shared with every table of the same connection settings). */
  backends(): BackendStats[] {
    return this.pool.backends();
  }

  close(): void {
    this.pool.release();
    this.cfg.domain?.close();
  }
}

/** The table for a configuration (tests build configurations directly). */
export function pgsqlTableFor(cfg: PgsqlConfig, flags: number): Table {
  if (cfg.surrogate !== undefined) throw new TableError("retry", cfg.surrogate);
  const pool = acquirePgPool({
    hosts: cfg.hosts,
    session: { encoding: cfg.encoding, badEncoding: cfg.badEncoding, connectTimeout: cfg.connectTimeout },
    limit: cfg.limit,
    queryTimeoutMs: cfg.queryTimeoutMs,
    idleMs: cfg.idleMs,
    retryMs: cfg.retryMs,
  });
  return new PgsqlTable(cfg, pool, flags);
}

export async function open(args: OpenArgs, ctx: OpenContext): Promise<Table> {
  const parser = await CfgParser.open(args.name);
  return pgsqlTableFor(parsePgsqlConfig(parser, installedGeneration(), ctx), args.flags);
}
