/**
 * pgsql/connection.ts - one PostgreSQL connection as a pgsql table needs
 * it, on Bun's built-in SQL client (one `SQL` of max 1 connection, so the
 * pool decides where and when connections go): opened as libpq would open
 * it for the reference, its session checked, statements run with the
 * simple query protocol (what PQexec() uses: several statements allowed,
 * text results, the last result counts) and their values handed back as
 * Buffers, failures described in libpq's words.
 *
 * Opening (libpq's order): a `hosts` entry's targets one after another; a
 * TCP host name is resolved (getaddrinfo) and each address tried in turn;
 * a socket-level failure moves on to the next address or target, a server
 * that refuses the session (wrong password, no such database) ends the
 * attempt (libpq does not try further hosts after a failed
 * authentication). The failure texts accumulate as libpq's do. Bun does
 * not say why a socket could not connect, so on that path a plain socket
 * connect to the same address asks the system (the errno text).
 *
 * Session: client_encoding UTF8 (see encoding.ts for the reference's
 * encoding, emulated at the edge), the URI's options and
 * application_name; then one query reads server_encoding and
 * standard_conforming_strings (libpq learns them from the start-up
 * messages; the quoting depends on the latter). With the LATIN1 client
 * encoding and a database that is neither UTF8, LATIN1 nor SQL_ASCII, the
 * server must have conversions between the two, as PQsetClientEncoding()
 * requires; else the reference's "cannot set the encoding" failure.
 *
 * TLS: sslmode as libpq (default prefer) on TCP; verify-ca/verify-full
 * need sslrootcert. As libpq, `prefer` asks again without TLS when the
 * server refuses a session that went over TLS. TLS failures are described
 * in Bun's words.
 *
 * Reads: TLS files named by a URI. Logs nothing; the pool logs.
 */
import { SQL } from "bun";
import { lookup } from "node:dns/promises";
import { isIP, createConnection } from "node:net";
import { readFileSync } from "node:fs";
import { errnoText } from "../../util/errno";
import { StatementFailure } from "../dbCommon/hostPool";
import type { ClientEncoding } from "./encoding";
import { invalidUtf8Report, messageBytes, queryText } from "./encoding";
import type { PgHost, PgTarget } from "./hosts";
import { connectFailure, hostIdentity, LOST_CONNECTION, serverErrorText, type ServerError } from "./messages";

/** What every connection of a pool is opened with. */
export interface SessionSettings {
  readonly encoding: ClientEncoding;
  /** An encoding name PostgreSQL does not know (3.8+ `encoding`): each connection fails as the reference's. */
  readonly badEncoding?: string;
  /** Seconds, for targets that do not say (URI connect_timeout). */
  readonly connectTimeout: number;
}

/** An open connection. */
export interface PgConn {
  readonly sql: SQL;
  readonly encoding: ClientEncoding;
  readonly standardStrings: boolean;
  /** The database does no conversion (SQL_ASCII): values are the bytes stored. */
  readonly rawBytes: boolean;
}

/** One statement's last result: column names and rows of values (null = SQL NULL). */
export interface PgResult {
  readonly columns: readonly string[];
  readonly rows: ReadonlyArray<ReadonlyArray<Uint8Array | null>>;
}

/**
 * A failed connection attempt: the message is libpq's PQerrorMessage();
 * `encoding` set when the server cannot convert the client encoding (the
 * reference's own warning then).
 */
export class ConnectFailure extends Error {
  constructor(
    message: string,
    readonly encoding?: string,
    /** The server answered and refused the session (libpq tries no further hosts). */
    readonly serverRefused?: boolean,
    /** The SQLSTATE of that refusal. */
    readonly sqlstate?: string,
  ) {
    super(message);
  }
}

interface BunPgError {
  code?: string;
  errno?: string;
  severity?: string;
  message: string;
  detail?: string;
  hint?: string;
  position?: string;
  internalPosition?: string;
  internalQuery?: string;
  where?: string;
}

function fields(e: BunPgError, encoding: ClientEncoding): ServerError {
  const m = (s: string | undefined) => (s === undefined ? undefined : messageBytes(s, encoding));
  return {
    severity: m(e.severity),
    message: messageBytes(e.message, encoding),
    detail: m(e.detail),
    hint: m(e.hint),
    position: e.position,
    internalPosition: e.internalPosition,
    internalQuery: m(e.internalQuery),
    where: m(e.where),
  };
}

/** True for an error the server sent (it has an SQLSTATE). */
function fromServer(e: unknown): e is BunPgError {
  return typeof (e as BunPgError)?.errno === "string" && typeof (e as BunPgError).message === "string";
}

/**
 * Why a socket could not connect, in the system's words (strerror of the
 * errno); undefined when it connects now.
 */
function socketReason(path: string | undefined, addr: string | undefined, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const sock = path !== undefined ? createConnection({ path }) : createConnection({ host: addr!, port });
    const done = (why: string | undefined) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done("Connection timed out"), Math.max(100, Math.min(timeoutMs, 5000)));
    sock.once("error", (e) => done(errnoText(e)));
    sock.once("connect", () => done(undefined));
  });
}

/** A TLS file a URI names; libpq's words when it cannot be read. */
function tlsFile(t: PgTarget, addr: string | undefined, path: string, what: string): string {
  try {
    return readFileSync(path, "latin1");
  } catch (e) {
    throw new ConnectFailure(`${hostIdentity(t, addr)}could not read ${what} file "${path}": ${errnoText(e)}\n`);
  }
}

function tlsOption(t: PgTarget, addr: string | undefined): SQL.PostgresOrMySQLOptions["tls"] {
  if (t.socket !== undefined || t.sslmode === "disable") return false;
  const files: { ca?: string; cert?: string; key?: string } = {};
  if (t.sslrootcert) files.ca = tlsFile(t, addr, t.sslrootcert, "root certificate");
  if (t.sslcert) files.cert = tlsFile(t, addr, t.sslcert, "certificate");
  if (t.sslkey) files.key = tlsFile(t, addr, t.sslkey, "private key");
  if (t.sslmode === "verify-full") return { ...files, rejectUnauthorized: true, serverName: t.host };
  if (t.sslmode === "verify-ca") return { ...files, rejectUnauthorized: true, checkServerIdentity: () => undefined };
  if (files.cert || files.key) return { ...files, rejectUnauthorized: false };
  return t.sslmode as "allow" | "prefer" | "require";
}

/** Resolve a TCP target's addresses (getaddrinfo order), or libpq's failure text. */
async function addresses(t: PgTarget): Promise<string[] | string> {
  if (t.hostaddr !== undefined) return [t.hostaddr];
  if (isIP(t.host)) return [t.host];
  try {
    const all = await lookup(t.host, { all: true, verbatim: true });
    return all.map((a) => a.address);
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === "ENOTFOUND" ? "Name or service not known" : code === "EAI_AGAIN" ? "Temporary failure in name resolution" : errnoText(e);
    return `could not translate host name "${t.host}" to address: ${why}\n`;
  }
}

/**
 * Does the server at addr:port accept TLS? Its one-byte answer ('S') to an
 * SSLRequest: asked only after a server refused a session that went
 * through `prefer`, to tell whether libpq would now try again without TLS.
 */
function serverOffersTls(addr: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: addr, port });
    const done = (yes: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(yes);
    };
    const timer = setTimeout(() => done(false), Math.max(100, Math.min(timeoutMs, 5000)));
    sock.once("error", () => done(false));
    sock.once("connect", () => sock.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])));
    sock.once("data", (d) => done(d[0] === 0x53));
  });
}

/**
 * One connection attempt to one address; resolves the session or rejects
 * with the text to add. With sslmode=prefer, a server that refuses the
 * session over TLS is asked again without it, and both refusals are told,
 * as libpq does.
 */
async function attempt(t: PgTarget, addr: string | undefined, s: SessionSettings, onLost: (why: string | undefined) => void): Promise<PgConn> {
  try {
    return await attemptOnce(t, addr, s, onLost);
  } catch (e) {
    if (!(e instanceof ConnectFailure) || e.serverRefused !== true || t.sslmode !== "prefer" || t.socket !== undefined || addr === undefined) throw e;
    if (!(await serverOffersTls(addr, t.port, (t.connectTimeout || s.connectTimeout) * 1000))) throw e;
    try {
      return await attemptOnce({ ...t, sslmode: "disable" }, addr, s, onLost);
    } catch (e2) {
      if (!(e2 instanceof ConnectFailure) || e2.encoding !== undefined) throw e2;
      throw new ConnectFailure(e.message + e2.message, undefined, e2.serverRefused, e2.sqlstate);
    }
  }
}

async function attemptOnce(t: PgTarget, addr: string | undefined, s: SessionSettings, onLost: (why: string | undefined) => void): Promise<PgConn> {
  const timeout = t.connectTimeout || s.connectTimeout;
  const connection: Record<string, string> = { client_encoding: "UTF8" };
  if (t.options !== undefined) connection.options = t.options;
  if (t.applicationName !== undefined) connection.application_name = t.applicationName;
  let opened = false;
  const started = Date.now();
  const sql = new SQL({
    adapter: "postgres",
    ...(t.socket !== undefined ? { path: t.socket } : { hostname: addr, port: t.port }),
    username: t.user,
    password: t.password,
    database: t.dbname,
    max: 1,
    prepare: false,
    idleTimeout: 0,
    connectionTimeout: timeout,
    tls: tlsOption(t, addr),
    connection,
    onclose: (e) => {
      if (opened) onLost(e?.message);
    },
  });
  // Bun's connectionTimeout ends with the start-up; the session's first query is bounded too.
  const bounded = <T>(p: Promise<T>): Promise<T> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const left = Math.max(1, timeout * 1000 - (Date.now() - started));
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ConnectFailure(`${hostIdentity(t, addr)}timeout expired\n`)), left);
    });
    p.catch(() => {});
    return Promise.race([p, expired]).finally(() => clearTimeout(timer));
  };
  try {
    const r = (await bounded(sql.unsafe("SELECT pg_catalog.current_setting('server_encoding'), pg_catalog.current_setting('standard_conforming_strings')").simple().raw())) as unknown as Array<Array<Buffer | null>>;
    const serverEncoding = r[0]?.[0]?.toString("latin1") ?? "";
    const standardStrings = r[0]?.[1]?.toString("latin1") === "on";
    if (s.badEncoding !== undefined) throw new ConnectFailure("", s.badEncoding);
    if (s.encoding === "LATIN1" && !["UTF8", "LATIN1", "SQL_ASCII"].includes(serverEncoding)) {
      const c = (await bounded(sql
        .unsafe(
          "SELECT count(*) FROM pg_catalog.pg_conversion WHERE condefault AND ((conforencoding = pg_catalog.pg_char_to_encoding('LATIN1') AND contoencoding = pg_catalog.pg_char_to_encoding(pg_catalog.current_setting('server_encoding'))) OR (contoencoding = pg_catalog.pg_char_to_encoding('LATIN1') AND conforencoding = pg_catalog.pg_char_to_encoding(pg_catalog.current_setting('server_encoding'))))",
        )
        .simple()
        .raw())) as unknown as Array<Array<Buffer | null>>;
      if (c[0]?.[0]?.toString("latin1") !== "2") throw new ConnectFailure("", "LATIN1");
    }
    opened = true;
    return { sql, encoding: s.encoding, standardStrings, rawBytes: serverEncoding === "SQL_ASCII" };
  } catch (e) {
    void sql.close().catch(() => {});
    if (e instanceof ConnectFailure) throw e;
    if (fromServer(e)) throw new ConnectFailure(hostIdentity(t, addr) + serverErrorText(fields(e, s.encoding), undefined, s.encoding), undefined, true, e.errno);
    const message = (e as Error).message ?? "";
    if (/tls|ssl|certificate/i.test(message)) throw new ConnectFailure(`${hostIdentity(t, addr)}${message}\n`);
    if (Date.now() - started >= timeout * 1000 - 50) throw new ConnectFailure(`${hostIdentity(t, addr)}timeout expired\n`);
    const why = await socketReason(t.socket, addr, t.port, timeout * 1000);
    // The socket connects: the server hung up on us.
    if (why === undefined) throw new ConnectFailure(hostIdentity(t, addr) + LOST_CONNECTION);
    throw new ConnectFailure(connectFailure(t, addr, why));
  }
}

/**
 * Open a connection for a `hosts` entry: its targets and their addresses
 * in order. Rejects with a ConnectFailure holding libpq's whole text.
 */
export async function openConnection(h: PgHost, s: SessionSettings, onLost: (why: string | undefined) => void): Promise<PgConn> {
  if (h.error !== undefined) throw new ConnectFailure(h.error);
  let text = "";
  for (const t of h.targets) {
    const addrs = t.socket !== undefined ? [undefined] : await addresses(t);
    if (typeof addrs === "string") {
      text += addrs;
      continue;
    }
    for (const addr of addrs) {
      try {
        return await attempt(t, addr, s, onLost);
      } catch (e) {
        const f = e as ConnectFailure;
        if (f.encoding !== undefined) throw f;
        text += f.message;
        // A server that answered and refused the session ends the attempt.
        if (f.serverRefused) throw new ConnectFailure(text, undefined, true, f.sqlstate);
      }
    }
  }
  throw new ConnectFailure(text);
}

/** One statement's failure as a StatementFailure with libpq's text. */
function statementFailure(e: unknown, query: string, encoding: ClientEncoding): StatementFailure {
  if (fromServer(e)) {
    // A FATAL or PANIC ends the session: libpq then reports the connection lost.
    if (e.severity === "FATAL" || e.severity === "PANIC") return new StatementFailure("lost", LOST_CONNECTION);
    return new StatementFailure("server", serverErrorText(fields(e, encoding), query, encoding));
  }
  const code = (e as { code?: string }).code ?? "";
  // PQexec() hands back a COPY state (PGRES_COPY_OUT 3, PGRES_COPY_IN 4) that the reference reports by number.
  if (code === "ERR_POSTGRES_COPY_NOT_SUPPORTED") return new StatementFailure("lost", `unknown code 0x${/TO STDOUT/i.test(query) ? 3 : 4}`);
  return new StatementFailure("lost", LOST_CONNECTION);
}

type RawResult = Array<Array<Buffer | null>> & { command?: string | null; columns?: Array<{ name: string }> | null };

/**
 * Run one statement (a byte string) with the simple query protocol;
 * resolves the last result, rejects with a StatementFailure (kind
 * "timeout" after timeoutMs without a reply).
 */
export async function runStatement(c: PgConn, query: string, timeoutMs: number): Promise<PgResult> {
  const text = queryText(query, c.encoding);
  if (text === undefined) throw new StatementFailure("server", serverErrorText({ severity: "ERROR", message: invalidUtf8Report(query)! }, undefined, c.encoding));
  const q = c.sql.unsafe(text).simple().raw();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StatementFailure("timeout", `no reply within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  let r: RawResult;
  try {
    r = (await Promise.race([q, timedOut])) as unknown as RawResult;
  } catch (e) {
    if (e instanceof StatementFailure) {
      q.catch(() => {});
      throw e;
    }
    throw statementFailure(e, query, c.encoding);
  } finally {
    clearTimeout(timer);
  }
  // Several statements: an array of results, the last one counts (PQexec()).
  const last: RawResult = r.command === undefined && r.length > 0 && Array.isArray(r[0]) && (r[0] as unknown as RawResult).command !== undefined ? (r[r.length - 1] as unknown as RawResult) : r;
  if (last.command === null || last.command === undefined) {
    // An empty query string: PGRES_EMPTY_QUERY, which the reference reports by number.
    throw new StatementFailure("server", "unknown code 0x0");
  }
  return { columns: (last.columns ?? []).map((col) => col.name), rows: last };
}

/** Close a connection without waiting. */
export function closeConnection(c: PgConn): void {
  void c.sql.close({ timeout: 0 }).catch(() => {});
}
