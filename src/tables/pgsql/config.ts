/**
 * pgsql/config.ts - a pgsql table's settings, read as the installed
 * Postfix's pgsql_parse_config() reads them (dict_pgsql.c), in its order
 * (the first fatal error wins), through the SQL tables' shared parser
 * (dbCommon/cfgParser.ts: a .cf file, or main.cf NAME_field parameters).
 *
 * Fields by generation:
 *   all:   user, password, dbname (required up to 3.9), result_format,
 *          expansion_limit, query, or select_function ("SELECT fn('%s')"),
 *          or the legacy table/select_field/where_field/
 *          additional_conditions; domain; hosts.
 *   3.8+:  encoding (default UTF8); 3.7 talks LATIN1, whatever is set.
 *   3.9+:  retry_interval, idle_interval (default 60 s). Honoured on 3.7
 *          as well when they are valid numbers (3.7 ignores them: so do
 *          we when they are not).
 *   3.10+: hosts may be URIs of any scheme; dbname may be left out when
 *          every host is a URI (else the table is the reference's
 *          surrogate: "host target 'X' requires dbname setting").
 * Ours (the reference has no pool): connection_limit (16), query_timeout
 * (seconds, 30: a statement, and the wait for a free connection),
 * connect_timeout (seconds, 10; a URI's connect_timeout wins).
 *
 * Errors: where the reference exits (bad number, bad template, empty
 * dbname up to 3.9, legacy field missing): TableError("config") with its
 * words. A client encoding other than UTF8 and LATIN1 that PostgreSQL
 * knows: TableError("config") (not supported by this proxymap).
 * Logs: with -v, "pgsql_parse_config: NAME: no hostnames specified,
 * defaulting to 'localhost'".
 */
import { atLeast, type Generation } from "../../config/declared";
import { msg } from "../../log/msg";
import { TableError } from "../table";
import { CfgParser, parseCInt } from "../dbCommon/cfgParser";
import { DomainList } from "../dbCommon/domain";
import { legacyQuery, TemplateContext } from "../dbCommon/expand";
import type { OpenContext } from "../table";
import { clientEncodingOf, knownEncodingName, type ClientEncoding } from "./encoding";
import { parseHost, splitHosts, type PgHost } from "./hosts";

const TYPE = "pgsql";

/** Defaults of the fields and of our own settings (documented in the README). */
export const PGSQL_DEFAULTS = {
  connectionLimit: 16,
  queryTimeoutSec: 30,
  connectTimeoutSec: 10,
  retryIntervalSec: 60,
  idleIntervalSec: 60,
} as const;

export interface PgsqlConfig {
  name: string;
  query: string;
  resultFormat: string;
  expansionLimit: number;
  ctx: TemplateContext;
  domain: DomainList | undefined;
  hosts: PgHost[];
  encoding: ClientEncoding;
  /** An encoding name PostgreSQL does not know: every connection fails as the reference's does. */
  badEncoding: string | undefined;
  limit: number;
  queryTimeoutMs: number;
  connectTimeout: number;
  retryMs: number;
  idleMs: number;
  /** 3.10+: the reference's surrogate text (RETRY at every lookup). */
  surrogate: string | undefined;
}

/** A 3.9 interval on an older generation: used when it is a valid number, else the default. */
function lenientInt(p: CfgParser, name: string, def: number): number {
  if (!p.isSet(name)) return def;
  const v = parseCInt(p.str(name, "") ?? "");
  return v !== undefined && v >= 1 ? v : def;
}

/** pgsql_parse_config() of Postfix generation `gen`. */
export function parsePgsqlConfig(p: CfgParser, gen: Generation, ctx: OpenContext): PgsqlConfig {
  const name = p.name;
  const user = p.str("user", "")!;
  const password = p.str("password", "")!;
  const dbname = p.str("dbname", "", atLeast(gen, 3, 10) ? 0 : 1)!;
  let encoding: ClientEncoding = "LATIN1";
  let badEncoding: string | undefined;
  if (atLeast(gen, 3, 8)) {
    const e = p.str("encoding", "UTF8", 1)!;
    const known = clientEncodingOf(e);
    if (known) encoding = known;
    else if (knownEncodingName(e)) throw new TableError("config", `${TYPE}:${name}: client encoding ${e} is not supported by this proxymap (only UTF8 and LATIN1)`);
    else badEncoding = e;
  }
  const modern = atLeast(gen, 3, 9);
  const retryInterval = modern ? p.int("retry_interval", PGSQL_DEFAULTS.retryIntervalSec, 1) : lenientInt(p, "retry_interval", PGSQL_DEFAULTS.retryIntervalSec);
  const idleInterval = modern ? p.int("idle_interval", PGSQL_DEFAULTS.idleIntervalSec, 1) : lenientInt(p, "idle_interval", PGSQL_DEFAULTS.idleIntervalSec);
  const resultFormat = p.str("result_format", "%s", 1)!;
  const expansionLimit = p.int("expansion_limit", 0);
  let query = p.str("query", null);
  if (query === null) {
    const selectFunction = p.str("select_function", null);
    if (selectFunction !== null) query = `SELECT ${selectFunction}('%s')`;
    else {
      const table = p.str("table", null, 1)!;
      const selectField = p.str("select_field", null, 1)!;
      const whereField = p.str("where_field", null, 1)!;
      const additional = p.str("additional_conditions", "")!;
      query = legacyQuery(selectField, table, whereField, additional);
    }
  }
  const templates = new TemplateContext(TYPE, name);
  templates.parse(query, true);
  templates.parse(resultFormat, false);
  const domainValue = p.str("domain", "")!;
  const domain = domainValue ? DomainList.parse(name, domainValue, ctx) : undefined;
  const hostsValue = p.str("hosts", "")!;
  const entries = splitHosts(hostsValue);
  if (msg.verbose && hostsValue.split(/[, \t\r\n]+/).every((w) => w === "")) msg.info(`pgsql_parse_config: ${name}: no hostnames specified, defaulting to 'localhost'`);
  const uriSchemes = atLeast(gen, 3, 10);
  const hosts = entries.map((h) => parseHost(h, { user, password, dbname }, uriSchemes));

  const limit = p.int("connection_limit", PGSQL_DEFAULTS.connectionLimit, 1);
  const queryTimeout = p.int("query_timeout", PGSQL_DEFAULTS.queryTimeoutSec, 1);
  const connectTimeout = p.int("connect_timeout", PGSQL_DEFAULTS.connectTimeoutSec, 1);

  let surrogate: string | undefined;
  if (uriSchemes) {
    // The last host that is not a URI needs a database name (3.10's check, its wording).
    const plain = [...hosts].reverse().find((h) => h.rank !== 2);
    if (plain && dbname === "") surrogate = `${TYPE}:${name} host target '${plainName(plain.label)}' requires dbname setting`;
    else if (!plain && dbname !== "" && msg.verbose) msg.info(`${TYPE}:${name} table ignores 'dbname' field -- all 'hosts' targets are URIs`);
  }
  return {
    name,
    query,
    resultFormat,
    expansionLimit,
    ctx: templates,
    domain,
    hosts,
    encoding,
    badEncoding,
    limit,
    queryTimeoutMs: queryTimeout * 1000,
    connectTimeout,
    retryMs: retryInterval * 1000,
    idleMs: idleInterval * 1000,
    surrogate,
  };
}

/** host_init()'s name for an entry: without "unix:"/"inet:" (and the port, for TCP). */
function plainName(label: string): string {
  const rest = label.startsWith("unix:") || label.startsWith("inet:") ? label.slice(5) : label;
  if (rest === "" || rest.startsWith("/")) return rest;
  const colon = rest.lastIndexOf(":");
  return colon >= 0 ? rest.slice(0, colon) : rest;
}
