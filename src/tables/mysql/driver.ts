/**
 * mysql/driver.ts - the "mysql" table type: lookups in MySQL or MariaDB databases
 * as mysql_table(5) describes them (Postfix global/dict_mysql.c with
 * db_common.c), through the mysql2 client with a shared connection pool.
 *
 * Settings (file "mysql:/path/file.cf", or main.cf parameters NAME_field
 * for "mysql:NAME"), read once at open:
 *   hosts, user, password, dbname, query, result_format, domain,
 *   expansion_limit, option_file, option_group, require_result_set,
 *   tls_cert_file, tls_key_file, tls_CAfile, tls_CApath, tls_ciphers,
 *   tls_verify_cert, and without `query` the legacy select_field, table,
 *   where_field, additional_conditions - all as in Postfix 3.7;
 *   charset, retry_interval, idle_interval - as in Postfix 3.9 (a 3.7
 *   proxymap ignores them; we honour them);
 *   connection_limit (default 16), query_timeout (seconds, default 30),
 *   connect_timeout (seconds; default the option file's connect-timeout,
 *   else 10) - ours: the C proxymap has no pool and ignores them.
 *
 * A lookup: fold the key (FOLD_FIX), skip it unless `domain` accepts it,
 * skip it unless the key has what the templates need, then run the query
 * on the pool (pool.ts: hosts, failover, time-outs) with the key quoted as
 * the reference's client library quotes it (quote.ts). Every value of
 * every row, column by column, NULLs and empty strings skipped, goes
 * through result_format; the pieces are joined with ','. No rows, or only
 * skipped values: not found.
 *
 * Errors, as the reference maps them: every host failing or down, more than
 * expansion_limit values, a query with no result set (require_result_set =
 * yes) or with several, or a failed `domain` table lookup: RETRY. A
 * configuration the reference refuses with a fatal error (bad number or
 * boolean, invalid template, empty dbname, legacy field missing, bad
 * port): CONFIG for this table, the process keeps serving the others. A
 * missing configuration file: the reference's surrogate (RETRY). A wrong
 * password is a failed connection: RETRY, as in the reference.
 *
 * Reads: the .cf file, option files, TLS files. Logs: the reference's
 * warnings (see mysql/pool.ts, dbCommon/expand.ts, dbCommon/domain.ts and below).
 */
import { readFileSync } from "node:fs";
import { userInfo } from "node:os";
import type { SslOptions } from "mysql2";
import { msg } from "../../log/msg";
import { DictFlag } from "../../protocol/constants";
import { TableError, type BackendStats, type OpenArgs, type OpenContext, type Table } from "../table";
import { lowercaseAscii } from "../utf8";
import { cString } from "../../util/ctype";
import { CfgParser } from "../dbCommon/cfgParser";
import { DomainList } from "../dbCommon/domain";
import { parseHosts, resolveTarget } from "./hosts";
import { readClientOptions, type ClientOptions } from "./optionFile";
import { acquirePool, Refused, type Pool, type PoolSettings, type ResultSet } from "./pool";
import { answerOutcome, sqlLookup, type Answer } from "../dbCommon/lookup";
import { legacyQuery, TemplateContext } from "../dbCommon/expand";
import { readCertificateDir } from "../net/certDir";

// The one main.cf setter serves every driver; this older name stays for callers that used it.
export { setTableMainConfig as setMysqlMainConfig } from "../dbCommon/mainConfig";

const TYPE = "mysql";

/** Defaults of our own settings (documented in the README). */
export const MYSQL_DEFAULTS = {
  connectionLimit: 16,
  queryTimeoutSec: 30,
  connectTimeoutSec: 10,
  retryIntervalSec: 60,
  idleIntervalSec: 60,
  charset: "utf8mb4",
} as const;

/**
 * Client character sets whose column names mysql2 cannot decode (its
 * connection fails on the first result); refused at open with a clear
 * message instead.
 */
const UNSUPPORTED_CHARSETS = new Set(["dec8", "hp8", "swe7", "keybcs2", "geostd8", "eucjpms"]);

/** Everything a mysql table was configured with. */
export interface MysqlConfig {
  name: string;
  query: string;
  resultFormat: string;
  expansionLimit: number;
  requireResultSet: boolean;
  ctx: TemplateContext;
  domain: DomainList | undefined;
  pool: PoolSettings;
}

function readTlsFile(name: string, field: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new TableError("retry", `${TYPE}:${name}: cannot read ${field} ${path}: ${(e as Error).message}`);
  }
}

/** Every certificate file of a CA directory (hashed links or plain PEM files). */
function readCaDir(name: string, dir: string): Buffer[] {
  try {
    return readCertificateDir(dir);
  } catch (e) {
    throw new TableError("retry", `${TYPE}:${name}: cannot read tls_CApath ${dir}: ${(e as Error).message}`);
  }
}

/**
 * The TLS options of a table: Postfix's tls_* settings, then the option
 * files' ssl-* settings over them (the client library reads those at
 * connect time, after Postfix has set its own). TLS is used when any key,
 * certificate, CA or cipher setting is present. The certificate chain is
 * verified when a CA is given or tls_verify_cert = yes; the server's name
 * only with tls_verify_cert = yes (Connector/C 3.3).
 */
function tlsOptions(
  name: string,
  t: { key: string | null; cert: string | null; ca: string | null; capath: string | null; ciphers: string | null; verify: number },
  o: ClientOptions,
): SslOptions | undefined {
  const key = o.sslKey ?? t.key;
  const cert = o.sslCert ?? t.cert;
  const ca = o.sslCa ?? t.ca;
  const capath = o.sslCapath ?? t.capath;
  const ciphers = o.sslCipher ?? t.ciphers;
  const verify = o.sslVerifyServerCert !== undefined ? (o.sslVerifyServerCert ? 1 : 0) : t.verify;
  if (!key && !cert && !ca && !capath && !ciphers && !o.sslEnforce) return undefined;
  const ssl: SslOptions = {};
  if (key) ssl.key = readTlsFile(name, "tls_key_file", key).toString("latin1");
  if (cert) ssl.cert = readTlsFile(name, "tls_cert_file", cert).toString("latin1");
  const cas: string[] = [];
  if (ca) cas.push(readTlsFile(name, "tls_CAfile", ca).toString("latin1"));
  if (capath) for (const b of readCaDir(name, capath)) cas.push(b.toString("latin1"));
  if (cas.length > 0) ssl.ca = cas;
  if (ciphers) ssl.ciphers = ciphers;
  ssl.rejectUnauthorized = verify === 1 || cas.length > 0;
  ssl.verifyIdentity = verify === 1;
  return ssl;
}

/** The user name the client library sends when none is configured. */
function defaultUser(): string {
  if (process.geteuid?.() === 0) return "root";
  return process.env.USER || process.env.LOGNAME || userInfo().username || "UNKNOWN_USER";
}

/** mysql_parse_config(): every setting, checked in the reference's order. */
export function parseMysqlConfig(p: CfgParser, open: OpenContext): MysqlConfig {
  const name = p.name;
  const user = p.str("user", "")!;
  const password = p.str("password", "")!;
  const dbname = p.str("dbname", "", 1)!;
  const charset = p.isSet("charset") ? p.str("charset", null, 1) : null;
  const retryInterval = p.int("retry_interval", MYSQL_DEFAULTS.retryIntervalSec, 1);
  const idleInterval = p.int("idle_interval", MYSQL_DEFAULTS.idleIntervalSec, 1);
  const resultFormat = p.str("result_format", "%s", 1)!;
  const optionFile = p.str("option_file", null);
  const optionGroup = p.str("option_group", "client")!;
  const tlsKey = p.str("tls_key_file", null);
  const tlsCert = p.str("tls_cert_file", null);
  const tlsCa = p.str("tls_CAfile", null);
  const tlsCapath = p.str("tls_CApath", null);
  const tlsCiphers = p.str("tls_ciphers", null);
  const tlsVerify = p.bool("tls_verify_cert", -1);
  const requireResultSet = p.bool("require_result_set", 1) !== 0;
  const expansionLimit = p.int("expansion_limit", 0);
  let query = p.str("query", null);
  if (query === null) {
    const table = p.str("table", null, 1)!;
    const selectField = p.str("select_field", null, 1)!;
    const whereField = p.str("where_field", null, 1)!;
    const additional = p.str("additional_conditions", "")!;
    query = legacyQuery(selectField, table, whereField, additional);
  }
  const ctx = new TemplateContext(TYPE, name);
  ctx.parse(query, true);
  ctx.parse(resultFormat, false);
  const domainValue = p.str("domain", "")!;
  const domain = domainValue ? DomainList.parse(name, domainValue, open) : undefined;
  const hostsValue = p.str("hosts", "")!;
  const hosts = parseHosts(hostsValue);
  if (msg.verbose && hostsValue.trim() === "") msg.info(`mysql_parse_config: ${name}: no hostnames specified, defaulting to 'localhost'`);

  const connectionLimit = p.int("connection_limit", MYSQL_DEFAULTS.connectionLimit, 1);
  const queryTimeout = p.int("query_timeout", MYSQL_DEFAULTS.queryTimeoutSec, 1);
  const opts = readClientOptions(optionFile, optionGroup);
  const connectTimeout = p.int("connect_timeout", opts.connectTimeout && opts.connectTimeout > 0 ? opts.connectTimeout : MYSQL_DEFAULTS.connectTimeoutSec, 1);

  const sessionCharset = charset ?? opts.charset ?? MYSQL_DEFAULTS.charset;
  if (UNSUPPORTED_CHARSETS.has(sessionCharset.toLowerCase())) {
    throw new TableError("config", `${TYPE}:${name}: client character set ${sessionCharset} is not supported by this proxymap (mysql2 cannot decode its column names)`);
  }
  const ssl = tlsOptions(name, { key: tlsKey, cert: tlsCert, ca: tlsCa, capath: tlsCapath, ciphers: tlsCiphers, verify: tlsVerify }, opts);
  return {
    name,
    query,
    resultFormat,
    expansionLimit,
    requireResultSet,
    ctx,
    domain,
    pool: {
      hosts,
      targets: hosts.map((h) => resolveTarget(h, opts)),
      // Postfix passes user "" (the library then takes the option files'),
      // and password "" as is (so an option file's password is not used).
      user: user || opts.user || defaultUser(),
      password,
      database: dbname,
      charset: sessionCharset,
      initCommands: opts.initCommands,
      ssl,
      connectTimeoutMs: connectTimeout * 1000,
      queryTimeoutMs: queryTimeout * 1000,
      limit: connectionLimit,
      idleMs: idleInterval * 1000,
      retryMs: retryInterval * 1000,
    },
  };
}

class MysqlTable implements Table {
  flags: number;
  private readonly label: string;

  constructor(
    readonly cfg: MysqlConfig,
    private readonly pool: Pool,
    flags: number,
  ) {
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
        me: "dict_mysql_lookup",
        label: this.label,
        name: cfg.name,
        domain: cfg.domain,
        domainFailure: (key) => `${this.label} 'domain' pattern match failed for '${key}'`,
        expandable: (key) => cfg.ctx.expandQuery(cfg.query, key) !== undefined,
        run: (key) =>
          this.pool.run(
            this.label,
            (quote) => cfg.ctx.expandQuery(cfg.query, key, quote) ?? "",
            (sets) => this.accept(sets, key),
            answerOutcome,
          ),
      },
      name,
    );
  }

  /** The reference's result handling; Refused makes the pool try the next host. */
  private accept(sets: ResultSet[], name: string): Answer | Refused {
    const cfg = this.cfg;
    const data = sets.filter((s): s is NonNullable<ResultSet> => s !== null);
    if (data.length > 1) return new Refused("multiple result sets returning data are not supported");
    if (data.length === 0) {
      if (cfg.requireResultSet) return new Refused("query returned no result set(require_result_set = yes)");
      return { value: undefined };
    }
    let out = "";
    let count = 0;
    for (const row of data[0]) {
      for (const raw of row) {
        // Values are C strings in the reference: a NUL ends them.
        const value = raw === null ? null : cString(raw);
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

export async function open(args: OpenArgs, ctx: OpenContext): Promise<Table> {
  const parser = await CfgParser.open(args.name);
  const cfg = parseMysqlConfig(parser, ctx);
  return new MysqlTable(cfg, acquirePool(cfg.pool), args.flags);
}
