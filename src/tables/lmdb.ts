/**
 * lmdb.ts - the "lmdb" table type: FILE.lmdb as written by `postmap
 * lmdb:FILE`, Postfix's verify/postscreen caches through proxywrite
 * (Postfix util/dict_lmdb.c), on the `lmdb` package (lmdb/slmdb.ts).
 *
 * As the reference:
 *  - FOLD_FIX lowercases ASCII letters of keys;
 *  - NUL conventions: lookups and deletes try the key with a trailing NUL
 *    (TRY1NULL), then without (TRY0NULL); a hit fixes the convention for
 *    this table instance. An update on a table that is still undecided
 *    appends the NUL (the Linux default) and stores the value the same way;
 *  - with the LOCK flag, a shared fcntl() lock on FILE.lmdb is held around
 *    each lookup and walk step, an exclusive one around each write, so
 *    postmap/postalias and the C daemons never see a half-written state.
 *    Where the reference waits in fcntl(F_SETLKW) while a `postmap
 *    lmdb:FILE` holds the file, stalling its whole process, this one tries
 *    without waiting and, when busy, answers later from a timer
 *    (lockQueue.ts): the other clients are served meanwhile;
 *  - each update and delete is committed synchronously; a duplicate with
 *    DUP_WARN warns; table flags FIXED and MULTI_WRITER;
 *  - sequence walks the keys in LMDB order (first/next), one walk per
 *    table instance, re-positioned on the last key each step as slmdb
 *    does (so deleting that key ends the walk, as in the reference; the
 *    next "next" starts over); keys and values are shown up to their
 *    first NUL.
 *
 * Deliberate differences (the reference exits in each case):
 *  - a key longer than liblmdb 0.9 supports (511 bytes with its NUL):
 *    lookup and delete answer NOKEY; update warns with the reference's
 *    MDB_BAD_VALSIZE text and answers CONFIG;
 *  - an LMDB or locking error: warning with the reference's text and RETRY;
 *  - a file another process keeps locked for over a minute: RETRY (the
 *    reference waits for as long as it takes);
 *  - an update of an existing key without DUP_REPLACE/IGNORE/WARN: warning
 *    and CONFIG (proxymap always sends DUP_REPLACE, so only direct use).
 *
 * The database stays open; commits of other processes are seen at the next
 * request. changed() reports a FILE.lmdb that was replaced by another file
 * (renamed over); in-place updates need no re-open.
 *
 * Reads: FILE.lmdb, FILE's mtime, main.cf lmdb_map_size. Writes FILE.lmdb
 * (write service). Logs: "database FILE.lmdb is older than source file
 * FILE", duplicate-entry and error warnings; with -v, the map size.
 */
import { existsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { DictFlag } from "../protocol/constants";
import { msg } from "../log/msg";
import { TableError, settledIf, type Maybe, type OpenArgs, type Out, type Table, type TableType } from "./table";
import { LmdbError, LockFailed, MAX_KEY_SIZE, MDB_BAD_VALSIZE, MDB_KEYEXIST, Slmdb, mdbText } from "./lmdb/slmdb";
import { LOCK_EXCLUSIVE, LOCK_SHARED } from "./lmdb/fcntl";
import { LockLost, LockTimeout } from "./lockQueue";
import { loadLmdb, lmdbLoaded } from "./lmdb/native";
import { tableMainConfig } from "./dbCommon/mainConfig";
import { lowercaseAscii } from "./utf8";
import { cString } from "../util/ctype";
import { errnoText } from "../util/errno";
import { strerror } from "../sys/libc";

const TYPE = "lmdb";
const TRY_BOTH = DictFlag.TRY0NULL | DictFlag.TRY1NULL;
const DEFAULT_MAP_SIZE = 16777216;

/** Bytes of a byte string. */
function bytes(s: string): Buffer {
  return Buffer.from(s, "latin1");
}

class LmdbTable implements Table {
  flags: number;
  /** Last key a walk returned (exact bytes), undefined before the first step. */
  private seqKey: Buffer | undefined;
  private closed = false;

  constructor(
    private readonly name: string,
    private readonly db: Slmdb,
    flags: number,
  ) {
    this.flags = flags;
  }

  private get label(): string {
    return `${TYPE}:${this.name}`;
  }

  /**
   * Run fn under the fcntl lock `type` when the request asks for locking
   * (the lock held only around fn, as the reference); LMDB errors become
   * RETRY with the reference's text. While another process holds the file
   * (postmap rebuilding it) the answer is a Promise: the wait does not
   * block the event loop (../lockQueue.ts).
   */
  private locked<T>(flags: number, type: number, what: string, fn: () => T): T | Promise<T> {
    const run = (): T => {
      try {
        return fn();
      } catch (e) {
        if (e instanceof TableError || e instanceof LockLost || e instanceof LockFailed) throw e;
        throw new TableError("retry", `${what} ${this.label}: ${e instanceof LmdbError ? e.message : mdbText(e)}`);
      }
    };
    try {
      const r = this.db.locked(flags & DictFlag.LOCK ? type : undefined, run);
      return r instanceof Promise ? r.catch((e) => Promise.reject(this.lockFailure(e))) : r;
    } catch (e) {
      throw this.lockFailure(e);
    }
  }

  /** A lock failure as the reference words it (where it would exit, RETRY here). */
  private lockFailure(e: unknown): unknown {
    if (e instanceof LockFailed) return new TableError("retry", `${this.name}: ${e.action} dictionary: ${strerror(e.errnum)}`);
    if (e instanceof LockTimeout) return new TableError("retry", `${this.name}: lock dictionary: timed out after waiting for another process`);
    return e;
  }

  /** A hit with TRY1NULL (key + NUL) or TRY0NULL (bare key) fixes the convention in the call's flags. */
  lookup(key: string, flags: number): Maybe<Out<string | undefined>> {
    const name = flags & DictFlag.FOLD_FIX ? lowercaseAscii(key) : key;
    const k = bytes(name + "\0");
    if (k.length - 1 > MAX_KEY_SIZE || (k.length > MAX_KEY_SIZE && (flags & DictFlag.TRY0NULL) === 0)) return undefined;
    return this.locked(flags, LOCK_SHARED, "error reading", () => {
      if (flags & DictFlag.TRY1NULL && k.length <= MAX_KEY_SIZE) {
        const v = this.db.get(k);
        if (v !== undefined) return settledIf(cString(v), flags, flags & ~DictFlag.TRY0NULL);
      }
      if (flags & DictFlag.TRY0NULL && k.length > 1) {
        const v = this.db.get(k.subarray(0, k.length - 1));
        if (v !== undefined) return settledIf(cString(v), flags, flags & ~DictFlag.TRY1NULL);
      }
      return undefined;
    });
  }

  update(key: string, value: string, flags: number): Maybe<Out<boolean>> {
    if (!this.db.write) throw new TableError("config", `table ${this.label}: update operation is not supported`);
    const name = flags & DictFlag.FOLD_FIX ? lowercaseAscii(key) : key;
    // Undecided: append the NUL, as the reference does on this platform.
    const after = (flags & TRY_BOTH) === TRY_BOTH ? flags & ~DictFlag.TRY0NULL : flags;
    const nul = after & DictFlag.TRY1NULL ? "\0" : "";
    const k = bytes(name + nul);
    if (k.length > MAX_KEY_SIZE || k.length === 0) {
      throw new TableError("config", `error updating ${this.label}: ${mdbText(new LmdbError(MDB_BAD_VALSIZE, ""))}`);
    }
    const v = bytes(value + nul);
    return this.locked(flags, LOCK_EXCLUSIVE, "error updating", () => {
      const status = this.db.put(k, v, (flags & DictFlag.DUP_REPLACE) === 0);
      if (status === MDB_KEYEXIST) {
        if (flags & DictFlag.DUP_IGNORE) {
          // keep the old value
        } else if (flags & DictFlag.DUP_WARN) {
          msg.warn(`${this.label}: duplicate entry: "${name}"`);
        } else {
          throw new TableError("config", `${this.label}: duplicate entry: "${name}"`);
        }
        return settledIf(false, flags, after);
      }
      return settledIf(true, flags, after);
    });
  }

  delete(key: string, flags: number): Maybe<Out<boolean>> {
    if (!this.db.write) throw new TableError("config", `table ${this.label}: delete operation is not supported`);
    const name = flags & DictFlag.FOLD_FIX ? lowercaseAscii(key) : key;
    const k = bytes(name + "\0");
    if (k.length - 1 > MAX_KEY_SIZE) return false;
    return this.locked(flags, LOCK_EXCLUSIVE, "error deleting from", () => {
      if (flags & DictFlag.TRY1NULL && k.length <= MAX_KEY_SIZE && this.db.del(k)) return settledIf(true, flags, flags & ~DictFlag.TRY0NULL);
      if (flags & DictFlag.TRY0NULL && k.length > 1 && this.db.del(k.subarray(0, k.length - 1))) return settledIf(true, flags, flags & ~DictFlag.TRY1NULL);
      return false;
    });
  }

  sequence(fn: 0 | 1, flags: number): [string, string] | undefined | Promise<[string, string] | undefined> {
    return this.locked(flags, LOCK_SHARED, "error seeking", () => {
      // As the reference: "next" without a walk in progress starts one (a
      // fresh cursor's MDB_NEXT); "next" after the last returned key was
      // deleted ends the walk (the cursor cannot be put back on that key).
      const r = this.db.next(fn === 0 ? undefined : this.seqKey);
      if (r === undefined || r === "gone") {
        this.seqKey = undefined;
        return undefined;
      }
      this.seqKey = r[0];
      return [cString(r[0].toString("latin1")), cString(r[1].toString("latin1"))];
    });
  }

  changed(): boolean {
    try {
      const st = statSync(this.db.path);
      return st.ino !== this.db.ino;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.release();
  }
}

/** lmdb_map_size from main.cf (default 16 MiB). */
function mapSize(): number {
  try {
    const v = tableMainConfig().get("lmdb_map_size");
    const n = Number(v);
    if (v !== "" && Number.isSafeInteger(n) && n > 0) return n;
  } catch {
    // no main.cf: the default
  }
  return DEFAULT_MAP_SIZE;
}

/** Open, loading the lmdb package first when this process has not yet. */
function open(args: OpenArgs): Table | Promise<Table> {
  return lmdbLoaded() ? openLoaded(args) : loadLmdb().then(() => openLoaded(args));
}

function openLoaded(args: OpenArgs): Table {
  const name = args.name;
  const path = `${name}.${TYPE}`;
  const fail = (why: string): never => {
    throw new TableError("retry", `open database ${path}: ${why}`);
  };
  // The package would create missing directories (and, read-only, fail
  // differently); Postfix just fails.
  if (!existsSync(dirname(path))) fail(strerror(2));
  if (!args.write && !existsSync(path)) fail(strerror(2));
  let db: Slmdb;
  try {
    db = Slmdb.acquire(path, args.write, mapSize(), `${TYPE}:${name}`);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    return fail(typeof code === "string" ? errnoText(e) : mdbText(e));
  }
  let mtime = 0;
  try {
    mtime = Math.floor(statSync(path).mtimeMs / 1000);
  } catch {
    // raced with a rename: changed() will tell
  }
  if (args.flags & DictFlag.LOCK) {
    try {
      const src = Math.floor(statSync(bytes(name)).mtimeMs / 1000);
      if (src > mtime && src < Math.floor(Date.now() / 1000) - 100) msg.warn(`database ${path} is older than source file ${name}`);
    } catch {
      // no source file
    }
  }
  let flags = args.flags | DictFlag.FIXED | DictFlag.MULTI_WRITER;
  if ((args.flags & TRY_BOTH) === 0) flags |= TRY_BOTH;
  return new LmdbTable(name, db, flags);
}

export const lmdb: TableType = {
  type: TYPE,
  open,
  writeFiles: (name) => [`${name}.${TYPE}`],
  // The package and its native addon: about 9 MB and 3 ms that a process
  // serving no lmdb table does not pay (lmdb/native.ts).
  prepare: () => loadLmdb().then(() => undefined),
};
