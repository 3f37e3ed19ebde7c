/**
 * connection.ts - one mysql2 connection as a mysql table needs it: opened
 * with the session the reference's client library would have, statements
 * run with a time-out and their results handed back as byte strings, and
 * failures described in the library's words.
 *
 * Bytes: mysql2 is told the connection is latin1, so our byte strings
 * reach the server unchanged; then SET NAMES gives the session the
 * character set the reference's client library uses (default utf8mb4 with
 * utf8mb4_general_ci, or the table's `charset` / the option files'
 * default-character-set). SESSION_TRACK is off so that mysql2 does not
 * switch its own encoding when the server reports that change; LOCAL_FILES
 * is off (no LOAD DATA LOCAL). Values come back as raw Buffers (typeCast
 * off) and become byte strings. The option files' init-command statements
 * run after SET NAMES.
 *
 * When SET NAMES fails (a server that does not know the character set,
 * such as MariaDB 10 and gb18030), the connection is not used: keys would
 * be quoted by one character set's rules and read by the server under
 * another, where a multi-byte character's trailing backslash is an escape
 * (a quote injection). The open fails, so lookups answer RETRY. (The
 * reference's client library keeps the server's default character set
 * then and goes on quoting by the configured one: a deliberate difference.)
 *
 * The escaping mode follows the session: NO_BACKSLASH_ESCAPES in the
 * server status of the last setup statement switches quote.ts to doubling
 * quotes.
 *
 * Reads and logs nothing; the pool logs.
 */
import type { Connection, ConnectionOptions, FieldPacket, QueryError, SslOptions } from "mysql2";

/**
 * mysql2 is pure JavaScript (it loads fine inside a chroot) but costs about
 * 11 MB and 7 ms when loaded: only processes that open a mysql table pay.
 */
let mysql2: typeof import("mysql2") | undefined;
function mysql(): typeof import("mysql2") {
  return (mysql2 ??= require("mysql2") as typeof import("mysql2"));
}
import { constants as osConstants } from "node:os";
import type { Target } from "./hosts";
import { makeEscaper } from "./quote";

/** What a connection is opened with. */
export interface ConnectionSettings {
  user: string;
  password: string;
  database: string;
  /** Session character set (SET NAMES). */
  charset: string;
  initCommands: readonly string[];
  ssl: SslOptions | undefined;
  connectTimeoutMs: number;
}

/** One result of a statement: the rows of a result set, or null for a plain OK. */
export type ResultSet = Array<Array<string | null>> | null;

/** A statement that got no reply in time. */
export class TimeoutError extends Error {}

const SERVER_STATUS_NO_BACKSLASH_ESCAPES = 0x200;
const ERRNO = osConstants.errno as Record<string, number>;

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The words the reference's client library uses for a failed connect. */
export function connectErrorText(e: QueryError | Error, t: Target): string {
  const err = e as QueryError & { sqlMessage?: string };
  if (typeof err.errno === "number" && err.errno > 0 && err.sqlMessage) return err.sqlMessage;
  const code = err.code ?? "";
  if ("socketPath" in t) {
    const n = code === "ETIMEDOUT" ? 110 : ERRNO[code];
    if (n !== undefined) return `Can't connect to local server through socket '${t.socketPath}' (${n})`;
  } else {
    if (code === "ENOTFOUND") return `Unknown server host '${t.host}' (-2)`;
    if (code === "EAI_AGAIN") return `Unknown server host '${t.host}' (-3)`;
    // The library connects without blocking and reports EINPROGRESS for a refused connection.
    if (code === "ECONNREFUSED") return `Can't connect to server on '${t.host}' (115)`;
    if (code === "ETIMEDOUT") return `Can't connect to server on '${t.host}' (110)`;
    const n = ERRNO[code];
    if (n !== undefined) return `Can't connect to server on '${t.host}' (${n})`;
  }
  return errText(e);
}

/** The words for a failed statement: the server's message, or the library's for a lost connection. */
export function queryErrorText(e: QueryError | Error): string {
  const err = e as QueryError & { sqlMessage?: string };
  if (err.sqlMessage) return err.sqlMessage;
  if (err.fatal) return "Lost connection to server during query";
  return errText(e);
}

/**
 * Open a connection and set up its session. `onLost` hears about errors
 * and the end of the connection that happen outside a statement. Rejects
 * (connection closed) on any failure, within connectTimeoutMs.
 */
export function openConnection(
  target: Target,
  s: ConnectionSettings,
  onLost: (e: QueryError | undefined) => void,
): Promise<{ raw: Connection; quote: (v: string) => string }> {
  const options: ConnectionOptions = {
    ...target,
    // The name TLS checks for a UNIX-socket connection, as the client library does.
    ...("socketPath" in target && s.ssl ? { host: "localhost" } : {}),
    user: s.user,
    password: s.password,
    database: s.database,
    // latin1 on the wire from mysql2's side: one char code = one byte.
    charset: "latin1",
    flags: ["-SESSION_TRACK", "-LOCAL_FILES"],
    connectTimeout: s.connectTimeoutMs,
    typeCast: false,
    rowsAsArray: true,
    multipleStatements: false,
    // The same object each time: mysql2 caches its TLS context by it.
    ssl: s.ssl,
  };
  return new Promise((resolve, reject) => {
    let settled = false;
    const raw = mysql().createConnection(options);
    const fail = (e: unknown): void => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      try {
        raw.destroy();
      } catch {
        // nothing to close
      }
      reject(e);
    };
    // mysql2's own connectTimeout ends at the handshake; this one covers the session setup too.
    const timer = setTimeout(() => fail(Object.assign(new Error("connect ETIMEDOUT"), { code: "ETIMEDOUT" })), s.connectTimeoutMs + 50);
    raw.on("error", (e: QueryError) => {
      if (!settled) fail(e);
      else onLost(e);
    });
    raw.on("end", () => {
      if (settled) onLost(undefined);
    });
    raw.connect((err) => {
      if (err) {
        fail(err);
        return;
      }
      setupSession(raw, s).then((noBackslashEscapes) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        resolve({ raw, quote: makeEscaper({ charset: s.charset, noBackslashEscapes }) });
      }, fail);
    });
  });
}

/** SET NAMES and the init commands; true when the server does not treat backslashes as escapes. */
async function setupSession(raw: Connection, s: ConnectionSettings): Promise<boolean> {
  const cs = s.charset.toLowerCase();
  // The client library's collation for utf8mb4 is utf8mb4_general_ci; say so,
  // because newer servers default to another one.
  const names = cs === "utf8mb4" ? "SET NAMES utf8mb4 COLLATE utf8mb4_general_ci" : `SET NAMES '${s.charset.replace(/[^A-Za-z0-9_]/g, "")}'`;
  let status: number;
  try {
    status = await simple(raw, names);
  } catch (e) {
    const why = (e as QueryError & { sqlMessage?: string }).sqlMessage ?? (e as Error).message;
    throw new Error(`${names}: ${why}; not quoting keys under a character set the server does not use`);
  }
  for (const cmd of s.initCommands) status = await simple(raw, cmd);
  return (status & SERVER_STATUS_NO_BACKSLASH_ESCAPES) !== 0;
}

/** A statement whose result does not matter; resolves the server status flags. */
function simple(raw: Connection, sql: string): Promise<number> {
  return new Promise((resolve, reject) => {
    raw.query(sql, (err, res) => {
      if (err) reject(err);
      else resolve((res as { serverStatus?: number } | undefined)?.serverStatus ?? 0);
    });
  });
}

/**
 * One statement, its results as byte strings. Rejects with mysql2's error
 * (err.fatal: the connection is gone) or, after timeoutMs without a reply,
 * with a TimeoutError (the caller must not use the connection again).
 */
export function runStatement(raw: Connection, sql: string, timeoutMs: number): Promise<ResultSet[]> {
  return new Promise<ResultSet[]>((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      reject(new TimeoutError(`no reply within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    try {
      raw.query({ sql, rowsAsArray: true, typeCast: false }, (err, results, fields) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(normalize(results, fields));
      });
    } catch (e) {
      done = true;
      clearTimeout(timer);
      reject(Object.assign(e as Error, { fatal: true }));
    }
  });
}

/**
 * mysql2's callback shapes made uniform: one entry per result of the
 * statement, rows of Buffers turned into byte strings.
 */
function normalize(results: unknown, fields: unknown): ResultSet[] {
  const multi = Array.isArray(fields) && fields.length > 0 && (Array.isArray(fields[0]) || fields[0] === undefined);
  if (!multi) return [toSet(results, fields as FieldPacket[] | undefined)];
  const rs = results as unknown[];
  const fs = fields as Array<FieldPacket[] | undefined>;
  return rs.map((r, i) => toSet(r, fs[i]));
}

function toSet(result: unknown, fields: FieldPacket[] | undefined): ResultSet {
  if (fields === undefined || !Array.isArray(result)) return null;
  return (result as Array<Array<Buffer | null>>).map((row) => row.map((v) => (v === null ? null : v.toString("latin1"))));
}
