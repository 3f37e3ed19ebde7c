/**
 * sqlite/jobs.ts - the SQLite calls of the sqlite table as worker jobs
 * (offload/worker.ts runs them; sqlite.ts sends them): a query may run for
 * as long as the administrator's SQL and the database's size make it, and
 * bun:sqlite runs it synchronously on the calling thread.
 *
 * Each worker keeps one read-only connection per database path, opened by
 * "sqlite.load" (a failure is remembered and reported by every query) and
 * closed by "sqlite.close" when the last table on that path closes. A query
 * answers column 0 of every row as sqlite3_column_text() gives it, as a
 * byte string (null for SQL NULL), or the step where it failed.
 *
 * A locked database fails at once with SQLITE_BUSY (no busy timeout, as the
 * reference), so waiting here is only ever the query itself.
 *
 * Reads: the database. Logs nothing (sqlite.ts logs what comes back).
 */
import { Database } from "bun:sqlite";
import { allAscii } from "../utf8";
import { cString } from "../../util/ctype";

export interface SqliteQuery {
  /** The database path as SQLite should see it (UTF-8 decoded). */
  dbpath: string;
  /** The expanded query, UTF-8 decoded. */
  sql: string;
}

export type SqliteAnswer =
  | { rows: Array<string | null> }
  | { failed: "open" | "prepare" | "step"; code: string; text: string };

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

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function codeOf(e: unknown): string {
  return String((e as { code?: unknown }).code ?? "");
}

/** This worker's connections by path: a Database, or the text of why it could not be opened. */
const open = new Map<string, Database | { code: string; text: string }>();

/** Open a database for this worker; the outcome is kept for the queries. Returns the error text, if any. */
function load(dbpath: string): string | undefined {
  let db = open.get(dbpath);
  if (!db) {
    try {
      db = new Database(dbpath, { readonly: true, create: false, safeIntegers: true });
    } catch (e) {
      db = { code: codeOf(e), text: errText(e) };
    }
    open.set(dbpath, db);
  }
  return db instanceof Database ? undefined : db.text;
}

function query(q: SqliteQuery): SqliteAnswer {
  load(q.dbpath);
  const db = open.get(q.dbpath)!;
  if (!(db instanceof Database)) return { failed: "open", code: db.code, text: db.text };
  let stmt;
  try {
    stmt = db.prepare(q.sql);
  } catch (e) {
    return { failed: "prepare", code: codeOf(e), text: errText(e) };
  }
  try {
    let rows: unknown[][];
    try {
      rows = stmt.values() as unknown[][];
    } catch (e) {
      return { failed: "step", code: codeOf(e), text: errText(e) };
    }
    return { rows: rows.map((r) => columnText(r[0])) };
  } finally {
    stmt.finalize();
  }
}

function close(dbpath: string): void {
  const db = open.get(dbpath);
  open.delete(dbpath);
  if (db instanceof Database) db.close();
}

export const sqliteJobs = {
  "sqlite.load": load,
  "sqlite.query": query,
  "sqlite.close": close,
};
