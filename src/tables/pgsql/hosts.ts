/**
 * pgsql/hosts.ts - pgsql_table(5) `hosts` entries and where each one
 * connects (Postfix dict_pgsql.c host_init(), then libpq's rules for what
 * an entry leaves open).
 *
 * Entries, as host_init() reads them:
 *   - a connection URI: "postgresql:..." (Postfix 3.7 to 3.9: that prefix;
 *     3.10 and later: any RFC 3986 scheme followed by "://"). It goes to
 *     libpq whole (PQconnectdb): user, password and database come from the
 *     URI (or libpq's defaults), not from the table's settings;
 *   - "unix:" or "inet:" and the rest, or the rest alone: a rest that starts
 *     with '/' (or is empty) is a UNIX-socket directory (the socket is
 *     DIR/.s.PGSQL.5432: this form cannot name a port); anything else is
 *     "host[:port]", the port after the LAST ':'.
 * Ranks (which hosts the reference tries first): UNIX 0, TCP 1, URI 2.
 *
 * libpq's defaults fill in the rest, as in the reference's process: host
 * $PGHOST or the socket directory /var/run/postgresql, port $PGPORT or
 * 5432, user the table's, else $PGUSER, else the name of the effective
 * user; password the table's, else $PGPASSWORD; database the table's (3.7
 * requires it), else the user name; sslmode $PGSSLMODE or "prefer".
 * A URI may name several hosts; they are tried in order.
 *
 * Reads: the environment, the user database (getpwuid). Logs nothing.
 */
import { userInfo } from "node:os";
import type { PoolHost } from "../dbCommon/hostPool";
import { parseConninfo } from "./conninfo";

/** libpq's socket directory in Debian's build (DEFAULT_PGSOCKET_DIR). */
export const DEFAULT_SOCKET_DIR = "/var/run/postgresql";
export const DEFAULT_PORT = 5432;
const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];

/** One place to connect to, everything resolved. */
export interface PgTarget {
  /** The socket file (UNIX) or undefined (TCP). */
  readonly socket: string | undefined;
  /** TCP: the host name or address as given; UNIX: the directory. */
  readonly host: string;
  /** TCP: a numeric address to use instead of resolving `host` (hostaddr). */
  readonly hostaddr: string | undefined;
  readonly port: number;
  /** The port as written (libpq's messages show it so). */
  readonly portText: string;
  readonly user: string;
  readonly password: string;
  readonly dbname: string;
  readonly sslmode: string;
  readonly sslrootcert: string | undefined;
  readonly sslcert: string | undefined;
  readonly sslkey: string | undefined;
  /** Seconds; 0 = the table's connect_timeout. */
  readonly connectTimeout: number;
  readonly options: string | undefined;
  readonly applicationName: string | undefined;
}

/** One `hosts` entry: its targets, or libpq's error for every attempt. */
export interface PgHost extends PoolHost {
  readonly targets: readonly PgTarget[];
  /** libpq's text (ending in a newline) when the entry cannot be used. */
  readonly error: string | undefined;
}

/** What the table's settings give a connection. */
export interface Credentials {
  readonly user: string;
  readonly password: string;
  readonly dbname: string;
}

/** valid_uri_scheme() of Postfix 3.10: ALPHA *( ALPHA / DIGIT / "+" / "-" ) "://". */
export function validUriScheme(s: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+-]*:\/\//.test(s);
}

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === "" ? undefined : v;
}

/** pg_fe_getauthname(): the effective user's name. */
function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? "postgres";
  }
}

/** A port as libpq reads it (its number, and the text its messages show); throws libpq's text when bad. */
function portOf(s: string | undefined): { port: number; text: string } {
  if (s === undefined || s === "") {
    const e = env("PGPORT");
    return e === undefined ? { port: DEFAULT_PORT, text: String(DEFAULT_PORT) } : portOf(e);
  }
  if (!/^\s*[+-]?\d+\s*$/.test(s)) throw new Error(`invalid integer value "${s}" for connection option "port"\n`);
  const port = Number(s.trim());
  if (port < 1 || port > 65535) throw new Error(`invalid port number: "${s}"\n`);
  return { port, text: s };
}

function sslmodeOf(s: string | undefined): string {
  const mode = s ?? env("PGSSLMODE") ?? "prefer";
  if (!SSL_MODES.includes(mode)) throw new Error(`invalid sslmode value: "${mode}"\n`);
  return mode;
}

/** A target for a host as libpq reads it (a leading '/' = socket directory). */
function target(host: string, port: string | undefined, hostaddr: string | undefined, c: Credentials, extra: Map<string, string>): PgTarget {
  const h = host === "" && hostaddr === undefined ? (env("PGHOST") ?? DEFAULT_SOCKET_DIR) : host;
  const p = portOf(port);
  const unix = hostaddr === undefined && h.startsWith("/");
  const user = c.user !== "" ? c.user : (env("PGUSER") ?? osUser());
  const timeout = extra.get("connect_timeout") ?? env("PGCONNECT_TIMEOUT");
  return {
    socket: unix ? `${h}/.s.PGSQL.${p.port}` : undefined,
    host: h,
    hostaddr,
    port: p.port,
    portText: p.text,
    user,
    password: c.password !== "" ? c.password : (env("PGPASSWORD") ?? ""),
    dbname: c.dbname !== "" ? c.dbname : (env("PGDATABASE") ?? user),
    sslmode: unix ? "disable" : sslmodeOf(extra.get("sslmode")),
    sslrootcert: extra.get("sslrootcert"),
    sslcert: extra.get("sslcert"),
    sslkey: extra.get("sslkey"),
    connectTimeout: timeout !== undefined && /^\s*\d+\s*$/.test(timeout) && Number(timeout) > 0 ? Math.max(2, Number(timeout)) : 0,
    options: extra.get("options") ?? env("PGOPTIONS"),
    applicationName: extra.get("application_name") ?? env("PGAPPNAME") ?? extra.get("fallback_application_name"),
  };
}

/** The targets of a connection string (URI or keywords), or libpq's error text. */
function conninfoTargets(s: string): { targets: PgTarget[] } | { error: string } {
  const ci = parseConninfo(s);
  if ("error" in ci) return ci;
  const v = ci.values;
  const c: Credentials = { user: v.get("user") ?? "", password: v.get("password") ?? "", dbname: v.get("dbname") ?? "" };
  const hosts = (v.get("host") ?? "").split(",");
  const addrs = v.get("hostaddr")?.split(",");
  const ports = (v.get("port") ?? "").split(",");
  const n = Math.max(hosts.length, addrs?.length ?? 0);
  if (addrs && hosts.length > 1 && addrs.length !== hosts.length) return { error: `could not match ${hosts.length} host names to ${addrs.length} hostaddr values\n` };
  if (ports.length > 1 && ports.length !== n) return { error: `could not match ${ports.length} port numbers to ${n} hosts\n` };
  try {
    const targets: PgTarget[] = [];
    for (let i = 0; i < n; i++) {
      const addr = addrs?.[i] || undefined;
      targets.push(target(hosts[i] ?? "", ports.length > 1 ? ports[i] : ports[0], addr, c, v));
    }
    return { targets };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** host_init() of the installed generation; `uriSchemes` = Postfix 3.10+ (any scheme). */
export function parseHost(entry: string, c: Credentials, uriSchemes: boolean): PgHost {
  const uri = uriSchemes ? validUriScheme(entry) : entry.startsWith("postgresql:");
  if (uri) {
    // libpq knows only its own two schemes; anything else is read as keyword=value text.
    const r = conninfoTargets(entry);
    return { label: entry, rank: 2, targets: "targets" in r ? r.targets : [], error: "error" in r ? r.error : undefined };
  }
  let name = entry;
  if (name.startsWith("unix:") || name.startsWith("inet:")) name = name.slice(5);
  let host = name;
  let port: string | undefined;
  let rank = 0;
  if (name !== "" && !name.startsWith("/")) {
    rank = 1;
    const colon = name.lastIndexOf(":");
    if (colon >= 0) {
      host = name.slice(0, colon);
      port = name.slice(colon + 1);
    }
  }
  try {
    return { label: entry, rank, targets: [target(host, port, undefined, c, new Map())], error: undefined };
  } catch (e) {
    return { label: entry, rank, targets: [], error: (e as Error).message };
  }
}

/** The `hosts` value split as argv_split(CHARS_COMMA_SP); empty means "localhost". */
export function splitHosts(value: string): string[] {
  const words = value.split(/[, \t\r\n]+/).filter((w) => w !== "");
  return words.length === 0 ? ["localhost"] : words;
}
