/**
 * handle.ts - one open Berkeley DB file: a private environment (memory pool
 * only), the DB handle, its file descriptor and at most one cursor, opened
 * the way Postfix's dict_db.c opens FILE.db (DB 3+ interface):
 * - environment: DB_INIT_MPOOL | DB_CREATE | DB_PRIVATE, home = the file's
 *   directory, cache raised to 128 KiB (berkeley_db_read_buffer_size);
 * - hash tables get a 4096-element size hint (as postmap's files);
 * - DB_FCNTL_LOCKING always; DB_RDONLY for the read service, DB_CREATE for
 *   the write service.
 * Methods return Berkeley DB's status codes (0, DB_NOTFOUND, DB_KEYEXIST,
 * errno values, ...); the driver decides what they mean.
 *
 * Values come back in Berkeley DB's own memory (no DB_DBT_MALLOC: the
 * environment is not threaded), valid until the next call on the handle;
 * they are copied out at once.
 *
 * Reads: FILE.db, and DB_CONFIG in the file's directory (Berkeley DB does).
 * Logs: nothing.
 */
import { ptr, toBuffer, type Pointer } from "bun:ffi";
import { basename, dirname } from "node:path";
import { DBC_OFF, DBT_OFF, DB_CONST, DB_OFF, ENV_OFF } from "./offsets.generated";
import { errcallPointer, libdb, method, takeDbMessages } from "./lib";

/** Default berkeley_db_read_buffer_size (DEF_DB_READ_BUF). */
export const READ_CACHE_SIZE = 128 * 1024;
/** dict_db.c's hash element count hint. */
const HASH_NELEM = 4096;

/** A failed Berkeley DB call: its code and any messages the library gave. */
export class BdbCallError extends Error {
  constructor(
    readonly code: number,
    readonly detail: string[],
  ) {
    super(`Berkeley DB error ${code}`);
  }
}

const P = "ptr";
const SIG = {
  envOpen: { args: [P, P, "u32", "i32"], returns: "i32" },
  envClose: { args: [P, "u32"], returns: "i32" },
  envGetCache: { args: [P, P, P, P], returns: "i32" },
  envSetCacheMax: { args: [P, "u32", "u32"], returns: "i32" },
  envSetCache: { args: [P, "u32", "u32", "i32"], returns: "i32" },
  envSetErrcall: { args: [P, P], returns: "void" },
  dbSetHNelem: { args: [P, "u32"], returns: "i32" },
  dbOpen: { args: [P, P, P, P, "i32", "u32", "i32"], returns: "i32" },
  dbGet: { args: [P, P, P, P, "u32"], returns: "i32" },
  dbPut: { args: [P, P, P, P, "u32"], returns: "i32" },
  dbDel: { args: [P, P, P, "u32"], returns: "i32" },
  dbSync: { args: [P, "u32"], returns: "i32" },
  dbClose: { args: [P, "u32"], returns: "i32" },
  dbCursor: { args: [P, P, P, "u32"], returns: "i32" },
  dbFd: { args: [P, P], returns: "i32" },
  dbcGet: { args: [P, P, P, "u32"], returns: "i32" },
  dbcClose: { args: [P], returns: "i32" },
} as const;

/** A C string copy of a byte string. */
function cbuf(s: string): Buffer {
  return Buffer.from(s + "\0", "latin1");
}

/** One DBT in JS-owned memory. */
class Dbt {
  readonly mem = new Uint8Array(DBT_OFF.sizeof);
  readonly view = new DataView(this.mem.buffer);
  readonly p = ptr(this.mem);
  /** Keeps the bytes the DBT points at alive. */
  private hold: Uint8Array | undefined;

  /** Point at bytes (size may be shorter than the buffer). */
  set(bytes: Uint8Array, size: number): void {
    this.mem.fill(0);
    this.hold = bytes;
    if (size > 0) this.view.setBigUint64(DBT_OFF.data, BigInt(ptr(bytes)), true);
    this.view.setUint32(DBT_OFF.size, size, true);
  }

  /** Empty, for Berkeley DB to fill in. */
  clear(): void {
    this.mem.fill(0);
    this.hold = undefined;
  }

  /** The bytes Berkeley DB returned, copied, as a byte string. */
  text(): string {
    const size = this.view.getUint32(DBT_OFF.size, true);
    const data = Number(this.view.getBigUint64(DBT_OFF.data, true));
    if (size === 0 || data === 0) return "";
    return toBuffer(data as unknown as Pointer, 0, size).toString("latin1");
  }
}

export type BdbType = "hash" | "btree";

export class BdbHandle {
  private env = 0;
  private db = 0;
  private cursor = 0;
  /** DB->open succeeded (sync is only allowed then). */
  private opened = false;
  /** The file descriptor Berkeley DB reads and writes (the lock fd). */
  fd = -1;
  private readonly key = new Dbt();
  private readonly val = new Dbt();
  private readonly out = new BigUint64Array(1);

  private constructor(readonly path: string) {}

  /** Open path (FILE.db); throws BdbCallError or BdbUnavailable. */
  static open(path: string, type: BdbType, write: boolean): BdbHandle {
    const lib = libdb();
    const h = new BdbHandle(path);
    try {
      takeDbMessages();
      h.openEnv(lib);
      let rc = lib.db.db_create(ptr(h.out), h.env as unknown as Pointer, 0);
      if (rc !== 0) throw new BdbCallError(rc, takeDbMessages());
      h.db = Number(h.out[0]);
      if (type === "hash") {
        rc = h.call(h.db, DB_OFF.set_h_nelem, SIG.dbSetHNelem, HASH_NELEM);
        if (rc !== 0) throw new BdbCallError(rc, takeDbMessages());
      }
      let flags = DB_CONST.DB_FCNTL_LOCKING;
      flags |= write ? DB_CONST.DB_CREATE : DB_CONST.DB_RDONLY;
      const file = cbuf(basename(path));
      rc = h.call(h.db, DB_OFF.open, SIG.dbOpen, 0, file, 0, type === "hash" ? DB_CONST.DB_HASH : DB_CONST.DB_BTREE, flags, 0o644);
      if (rc !== 0) throw new BdbCallError(rc, takeDbMessages());
      h.opened = true;
      const fdOut = new Int32Array(1);
      rc = h.call(h.db, DB_OFF.fd, SIG.dbFd, fdOut);
      if (rc !== 0) throw new BdbCallError(rc, takeDbMessages());
      h.fd = fdOut[0];
      return h;
    } catch (e) {
      h.close();
      throw e;
    }
  }

  private openEnv(lib: ReturnType<typeof libdb>): void {
    let rc = lib.db.db_env_create(ptr(this.out), 0);
    if (rc !== 0) throw new BdbCallError(rc, takeDbMessages());
    this.env = Number(this.out[0]);
    this.call(this.env, ENV_OFF.set_errcall, SIG.envSetErrcall, errcallPointer());
    const gb = new Uint32Array(1);
    const bytes = new Uint32Array(1);
    const ncache = new Int32Array(1);
    rc = this.call(this.env, ENV_OFF.get_cachesize, SIG.envGetCache, gb, bytes, ncache);
    if (rc !== 0) throw new BdbCallError(rc, takeDbMessages());
    if (gb[0] === 0 && bytes[0] < READ_CACHE_SIZE) {
      rc = this.call(this.env, ENV_OFF.set_cache_max, SIG.envSetCacheMax, 0, READ_CACHE_SIZE);
      if (rc === 0) rc = this.call(this.env, ENV_OFF.set_cachesize, SIG.envSetCache, 0, READ_CACHE_SIZE, ncache[0]);
      if (rc !== 0) throw new BdbCallError(rc, takeDbMessages());
    }
    const home = cbuf(dirname(this.path));
    rc = this.call(this.env, ENV_OFF.open, SIG.envOpen, home, DB_CONST.DB_INIT_MPOOL | DB_CONST.DB_CREATE | DB_CONST.DB_PRIVATE, 0);
    if (rc !== 0) throw new BdbCallError(rc, takeDbMessages());
  }

  private call(handle: number, off: number, sig: { args: readonly string[]; returns: string }, ...args: unknown[]): number {
    const f = method(handle, off, sig);
    return (f(handle, ...args) as number | undefined) ?? 0;
  }

  get isOpen(): boolean {
    return this.db !== 0;
  }

  /** DB->get; on 0 the value is in value(). */
  get(key: Uint8Array, size: number): number {
    this.key.set(key, size);
    this.val.clear();
    return this.call(this.db, DB_OFF.get, SIG.dbGet, 0, this.key.p, this.val.p, 0);
  }

  /** The value of the last successful get or cursor step. */
  value(): string {
    return this.val.text();
  }

  /** The key of the last successful cursor step. */
  keyText(): string {
    return this.key.text();
  }

  /** DB->put; noOverwrite gives DB_KEYEXIST for an existing key. */
  put(key: Uint8Array, keySize: number, value: Uint8Array, valueSize: number, noOverwrite: boolean): number {
    this.key.set(key, keySize);
    this.val.set(value, valueSize);
    const rc = this.call(this.db, DB_OFF.put, SIG.dbPut, 0, this.key.p, this.val.p, noOverwrite ? DB_CONST.DB_NOOVERWRITE : 0);
    this.val.clear();
    return rc;
  }

  /** DB->del. */
  del(key: Uint8Array, size: number): number {
    this.key.set(key, size);
    return this.call(this.db, DB_OFF.del, SIG.dbDel, 0, this.key.p, 0);
  }

  /** DB->sync: write dirty pages to the file and fdatasync it. */
  sync(): number {
    return this.call(this.db, DB_OFF.sync, SIG.dbSync, 0);
  }

  /** A cursor step: first (opening the cursor if needed) or next. */
  step(first: boolean): number {
    if (first && this.cursor === 0) {
      const rc = this.call(this.db, DB_OFF.cursor, SIG.dbCursor, 0, ptr(this.out), 0);
      if (rc !== 0) return rc;
      this.cursor = Number(this.out[0]);
    }
    this.key.clear();
    this.val.clear();
    return this.call(this.cursor, DBC_OFF.get, SIG.dbcGet, this.key.p, this.val.p, first ? DB_CONST.DB_FIRST : DB_CONST.DB_NEXT);
  }

  get hasCursor(): boolean {
    return this.cursor !== 0;
  }

  /** Forget the cursor (after an error it may be unusable). */
  closeCursor(): void {
    if (this.cursor !== 0) {
      const c = this.cursor;
      this.cursor = 0;
      this.call(c, DBC_OFF.close, SIG.dbcClose);
    }
  }

  /**
   * Close everything (cursor, DB after a sync, environment). Returns the
   * first non-zero status; the handle is unusable afterwards either way.
   */
  close(): number {
    let status = 0;
    try {
      this.closeCursor();
      if (this.db !== 0) {
        const db = this.db;
        this.db = 0;
        if (this.opened) status = this.call(db, DB_OFF.sync, SIG.dbSync, 0);
        this.opened = false;
        const rc = this.call(db, DB_OFF.close, SIG.dbClose, 0);
        if (status === 0) status = rc;
      }
    } finally {
      if (this.env !== 0) {
        const env = this.env;
        this.env = 0;
        this.call(env, ENV_OFF.close, SIG.envClose, 0);
      }
      this.fd = -1;
      takeDbMessages();
    }
    return status;
  }
}
