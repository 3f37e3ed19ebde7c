/**
 * libpq.ts - the installed libpq (libpq.so.5, which Debian's postfix-pgsql
 * links) called directly through bun:ffi: the oracle for what the
 * reference's client library does with a string or a connection, without
 * going through Postfix. Tests compare our quoting (PQescapeStringConn),
 * our rebuilt error texts (PQresultErrorMessage, PQerrorMessage after a
 * failed PQconnectdb) with libpq's own, byte for byte.
 *
 * Strings are byte strings (latin1) both ways. Synchronous: each call
 * blocks this process (fine in a test against a local server). Logs
 * nothing; a missing library throws with the install hint.
 */
import { dlopen, FFIType, ptr, toArrayBuffer, type Pointer } from "bun:ffi";

const symbols = {
  PQconnectdb: { args: ["ptr"], returns: "ptr" },
  PQstatus: { args: ["ptr"], returns: "i32" },
  PQerrorMessage: { args: ["ptr"], returns: "ptr" },
  PQfinish: { args: ["ptr"], returns: "void" },
  PQsetClientEncoding: { args: ["ptr", "ptr"], returns: "i32" },
  PQescapeStringConn: { args: ["ptr", "ptr", "ptr", "u64", "ptr"], returns: "u64" },
  PQexec: { args: ["ptr", "ptr"], returns: "ptr" },
  PQresultStatus: { args: ["ptr"], returns: "i32" },
  PQresultErrorMessage: { args: ["ptr"], returns: "ptr" },
  PQclear: { args: ["ptr"], returns: "void" },
} as const;

type Lib = ReturnType<typeof dlopen<typeof symbols>>;
let lib: Lib | undefined;

function pq(): Lib["symbols"] {
  if (!lib) {
    try {
      lib = dlopen("libpq.so.5", symbols);
    } catch (e) {
      throw new Error(`libpq.so.5 cannot be loaded (${(e as Error).message}): apt-get install libpq5`);
    }
  }
  return lib.symbols;
}

function cstr(s: string): Buffer {
  return Buffer.from(s + "\0", "latin1");
}

const libc = dlopen("libc.so.6", { strlen: { args: ["ptr"], returns: "u64" } });

/** The C string at p as a byte string ("" for NULL): its bytes, not a UTF-8 decoding. */
function bytesAt(p: Pointer | null): string {
  if (!p) return "";
  const n = Number(libc.symbols.strlen(p));
  return n === 0 ? "" : Buffer.from(toArrayBuffer(p, 0, n)).toString("latin1");
}

const CONNECTION_OK = 0;

/** One libpq connection. */
export class LibpqConn {
  private constructor(private readonly conn: Pointer) {}

  /** PQconnectdb(); the connection or PQerrorMessage() of the failed attempt. */
  static connect(conninfo: string): LibpqConn | { error: string } {
    const c = pq().PQconnectdb(ptr(cstr(conninfo))) as Pointer | null;
    if (!c) return { error: "out of memory" };
    if (pq().PQstatus(c) !== CONNECTION_OK) {
      const error = bytesAt(pq().PQerrorMessage(c) as Pointer);
      pq().PQfinish(c);
      return { error };
    }
    return new LibpqConn(c as Pointer);
  }

  /** PQsetClientEncoding(); 0 on success. */
  setClientEncoding(name: string): number {
    return pq().PQsetClientEncoding(this.conn, ptr(cstr(name)));
  }

  /** PQescapeStringConn() of a byte string: the escaped text, or the error message. */
  escape(s: string): { text: string } | { error: string } {
    const from = Buffer.from(s, "latin1");
    const to = Buffer.alloc(from.length * 2 + 1);
    const err = new Int32Array(1);
    const fromZ = Buffer.concat([from, Buffer.from([0])]);
    const n = Number(pq().PQescapeStringConn(this.conn, ptr(to), ptr(fromZ), from.length, ptr(err)));
    if (err[0] !== 0) return { error: bytesAt(pq().PQerrorMessage(this.conn) as Pointer) };
    return { text: to.subarray(0, n).toString("latin1") };
  }

  /** PQexec(): "ok" or PQresultErrorMessage() of a failed statement. */
  exec(sql: string): { ok: true } | { error: string } {
    const r = pq().PQexec(this.conn, ptr(cstr(sql))) as Pointer | null;
    if (!r) return { error: bytesAt(pq().PQerrorMessage(this.conn) as Pointer) };
    const status = pq().PQresultStatus(r);
    const msg = bytesAt(pq().PQresultErrorMessage(r) as Pointer);
    pq().PQclear(r);
    // PGRES_COMMAND_OK 1, PGRES_TUPLES_OK 2
    return status === 1 || status === 2 ? { ok: true } : { error: msg };
  }

  close(): void {
    pq().PQfinish(this.conn);
  }
}
