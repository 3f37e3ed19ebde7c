/**
 * driver.ts - the table driver shared by the "hash" and "btree" types:
 * Postfix's dict_db.c semantics over the Berkeley DB binding (handle.ts).
 *
 * - The table "TYPE:NAME" is the file NAME.db (made by `postmap TYPE:NAME`).
 * - NUL terminators: a table opened without TRY0NULL/TRY1NULL tries both
 *   (key with its NUL byte first); the first key found decides for good
 *   (the other bit is dropped from the table's flags). An update made while
 *   undecided stores key and value with a NUL byte, as Postfix on Linux.
 *   Values and sequence keys are cut at their first NUL, as C strings.
 * - FOLD_FIX lowercases ASCII letters of keys (the UTF-8 layer of dict.ts
 *   folds instead when it is active).
 * - LOCK (a request flag): flock() shared around reads, exclusive around
 *   writes (lock.ts); SYNC_UPDATE: DB->sync after each update and delete,
 *   so the change is on disk before the reply. OPEN_LOCK: openLock().
 * - sequence keeps one cursor per table; deletes and updates go through
 *   the same handle, which moves the cursor past deleted records, so a walk
 *   that deletes as it goes neither skips nor repeats.
 * - The read service re-opens the handle (under the shared lock when the
 *   request has LOCK) as soon as it sees the file changed on disk - a
 *   rebuild by postmap - because Berkeley DB's private page cache would
 *   otherwise serve stale pages; changed() reports the same for dict.ts.
 *
 * Deliberate differences (the reference exits in each case; we answer):
 * - library missing or of a version not tested: CONFIG at open, with what
 *   to install;
 * - a read, write, sync or cursor error (damaged file, full disk): the
 *   reference's fatal text as a warning, RETRY; the handle is closed and
 *   re-opened by the next request;
 * - sequence "next" with no walk in progress: warning
 *   "dict_db_sequence: no cursor", RETRY;
 * - a file locked by someone else for more than a minute: RETRY.
 *
 * Reads: NAME.db (and the source NAME for the age check). Logs: the
 * reference's warnings ("database X is older than source file Y",
 * "X: duplicate entry: ...", the fatal texts above as warnings).
 */
import { closeSync, fstatSync, openSync, statSync, constants as fsc } from "node:fs";
import { DictFlag } from "../../protocol/constants";
import { msg } from "../../log/msg";
import { TableError, settledIf, type Maybe, type OpenArgs, type Out, type Table, type TableType } from "../table";
import { lowercaseAscii } from "../utf8";
import { cString } from "../../util/ctype";
import { BdbHandle, BdbCallError, type BdbType } from "./handle";
import { BdbUnavailable, dbStrerror, libdb, preloadLibdb, takeDbMessages } from "./lib";
import { LOCK_WAIT_LIMIT_MS, LockError, LockTimeout, flockQueue, lockNow, tryLock, type LockMode } from "./lock";
import type { LockQueue } from "../lockQueue";
import { DB_CONST } from "./offsets.generated";
import { strerror } from "../../sys/libc";
import { errnoText } from "../../util/errno";

const TRY_BOTH = DictFlag.TRY0NULL | DictFlag.TRY1NULL;

/** What identifies the file contents a handle was opened on. */
interface FileId {
  dev: bigint;
  ino: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  size: bigint;
  nlink: bigint;
}

function fileId(fd: number): FileId {
  const s = fstatSync(fd, { bigint: true });
  return { dev: s.dev, ino: s.ino, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs, size: s.size, nlink: s.nlink };
}

function sameContents(a: FileId, b: FileId): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.size === b.size;
}

/** One queue per file (device and inode), shared by every table on it in this process. */
const queues = new Map<string, LockQueue<LockMode>>();

function queueFor(id: FileId): LockQueue<LockMode> {
  const k = `${id.dev}:${id.ino}`;
  let q = queues.get(k);
  if (!q) queues.set(k, (q = flockQueue()));
  return q;
}

/** Text of a Berkeley DB status (errno values and DB_* codes), as %m would print. */
function errText(code: number): string {
  return dbStrerror(code);
}

/** What dict_db.c's sanitize() calls fatal: anything but success, not-found and key-exists. */
function isFatal(rc: number): boolean {
  return rc !== 0 && rc !== DB_CONST.DB_NOTFOUND && rc !== DB_CONST.DB_KEYEXIST;
}

function bytes(s: string): Buffer {
  // One spare byte for the NUL terminator of TRY1NULL files.
  return Buffer.from(s + "\0", "latin1");
}

export class BdbTable implements Table {
  flags: number;
  private handle: BdbHandle | undefined;
  private id: FileId | undefined;
  /** Our own descriptor of the file for flock(), so locks outlive a handle re-open. */
  private lockFd = -1;
  private queue: LockQueue<LockMode> | undefined;
  private readonly dbPath: string;
  /**
   * The reference's dict->name: NAME.db, which its DEBUG and UTF-8 lines
   * show (dict.ts uses it when it knows the property; see the report).
   */
  readonly dictName: string;
  /** True while an operation runs under our flock (a re-open then needs no lock of its own). */
  private holding = false;
  /** OPEN_LOCK taken: we hold the file exclusively for good; no per-request locking. */
  private openLocked = false;

  constructor(
    readonly type: BdbType,
    readonly name: string,
    readonly write: boolean,
    openFlags: number,
  ) {
    this.dbPath = name + ".db";
    this.dictName = this.dbPath;
    this.flags = openFlags | DictFlag.FIXED;
    if ((openFlags & TRY_BOTH) === 0) this.flags |= TRY_BOTH;
  }

  // ------------------------------------------------------------ opening

  /**
   * Open (or re-open) the handle; throws TableError. A file locked by
   * someone else (when the request asks for locking and we do not hold the
   * lock already) throws FileBusy: openWhenFree() waits without blocking.
   */
  openFile(requestFlags: number): void {
    const path = this.dbPath;
    // With LOCK, hold a shared lock while Berkeley DB reads the file's meta data.
    let tmpFd = -1;
    if (requestFlags & DictFlag.LOCK && !this.holding && !this.openLocked) {
      try {
        // (Bun, like Node, opens every file close-on-exec.)
        tmpFd = openSync(Buffer.from(path, "latin1"), this.write ? fsc.O_RDWR : fsc.O_RDONLY);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code !== "ENOENT") throw new TableError("retry", `open database ${path}: ${errnoText(e)}`);
      }
      if (tmpFd >= 0) {
        try {
          if (!tryLock(tmpFd, "shared")) throw new FileBusy();
        } catch (e) {
          closeSync(tmpFd);
          if (e instanceof TableError || e instanceof FileBusy) throw e;
          throw new TableError("retry", `shared-lock database ${path} for open: ${lockErrText(e)}`);
        }
      }
    }
    let h: BdbHandle;
    try {
      h = BdbHandle.open(path, this.type, this.write);
    } catch (e) {
      if (e instanceof BdbCallError) {
        // Berkeley DB's own words, as the reference lets the library print them.
        for (const line of e.detail) msg.info(line);
        throw new TableError("retry", `open database ${path}: ${errText(e.code)}`);
      }
      throw e;
    } finally {
      if (tmpFd >= 0) closeSync(tmpFd); // also drops its lock
    }
    const id = fileId(h.fd);
    if (this.lockFd < 0 || !this.id || this.id.ino !== id.ino || this.id.dev !== id.dev) {
      if (this.lockFd >= 0) closeSync(this.lockFd);
      this.lockFd = openSync(Buffer.from(path, "latin1"), fsc.O_RDONLY);
    }
    this.handle = h;
    this.id = id;
    this.queue = queueFor(id);
  }

  /** The reference's warning about a stale FILE.db (only with LOCK, as there). */
  checkAge(requestFlags: number): void {
    if (!(requestFlags & DictFlag.LOCK) || !this.id) return;
    try {
      const src = statSync(Buffer.from(this.name, "latin1"));
      const srcMtime = Math.floor(src.mtimeMs / 1000);
      const dbMtime = Number(this.id.mtimeNs / 1_000_000_000n);
      if (srcMtime > dbMtime && srcMtime < Math.floor(Date.now() / 1000) - 100) {
        msg.warn(`database ${this.dbPath} is older than source file ${this.name}`);
      }
    } catch {
      // no source file: nothing to compare
    }
  }

  /** Drop a handle that failed (it is re-opened by the next request). */
  private drop(): void {
    const h = this.handle;
    this.handle = undefined;
    if (h) {
      try {
        h.close();
      } catch {
        // a broken handle may fail to close; it is gone either way
      }
    }
  }

  /** A usable handle: re-opened after a failure, or (read service) after a rebuild. */
  private ready(requestFlags: number): BdbHandle {
    if (this.handle && !this.write && this.handle.fd >= 0 && this.id) {
      let now: FileId | undefined;
      try {
        now = fileId(this.handle.fd);
      } catch {
        now = undefined;
      }
      if (!now || !sameContents(now, this.id) || now.nlink === 0n || this.replacedOnDisk()) {
        if (msg.verbose) msg.info(`${this.type}:${this.dbPath}: file changed on disk -- re-opening`);
        this.drop();
      }
    }
    if (!this.handle) this.openFile(requestFlags);
    return this.handle!;
  }

  /** Is another file now at our path (replaced by rename)? */
  private replacedOnDisk(): boolean {
    if (!this.id) return false;
    try {
      const s = statSync(Buffer.from(this.dbPath, "latin1"), { bigint: true });
      return s.ino !== this.id.ino || s.dev !== this.id.dev;
    } catch {
      return true;
    }
  }

  /** Run op under the request's lock (if LOCK), in file order; TableError on failure. */
  private locked<T>(requestFlags: number, mode: LockMode, op: () => T): T | Promise<T> {
    // With the open lock held, a per-request flock (and its unlock) on the
    // same descriptor would give the persistent lock away.
    const useLock = (requestFlags & DictFlag.LOCK) !== 0 && !this.openLocked;
    if (!this.queue) {
      // No file yet (a failed open): open it now, outside any lock queue,
      // waiting (without blocking) while another process holds it.
      let opened: void | Promise<void>;
      try {
        opened = openWhenFree(this, requestFlags);
      } catch (e) {
        throw asTableError(e, this.dbPath);
      }
      if (opened instanceof Promise) {
        return opened.then(
          () => this.locked(requestFlags, mode, op),
          (e) => Promise.reject(asTableError(e, this.dbPath)),
        );
      }
    }
    const run = () => {
      this.holding = useLock;
      try {
        return op();
      } catch (e) {
        throw asTableError(e, this.dbPath);
      } finally {
        this.holding = false;
      }
    };
    try {
      const r = this.queue!.run(() => this.lockFd, useLock ? mode : undefined, run);
      if (r instanceof Promise) return r.catch((e) => Promise.reject(this.lockFailure(e, mode)));
      return r;
    } catch (e) {
      throw this.lockFailure(e, mode);
    }
  }

  private lockFailure(e: unknown, _mode: LockMode): unknown {
    if (e instanceof TableError) return e;
    if (e instanceof LockTimeout) return new TableError("retry", `${this.dbPath}: lock dictionary: timed out after waiting for another process`);
    if (e instanceof LockError) return new TableError("retry", `${this.dbPath}: ${e.action} dictionary: ${lockErrText(e)}`);
    return asTableError(e, this.dbPath);
  }

  // ------------------------------------------------------------ operations

  /** A hit with TRY1NULL (key + NUL) or TRY0NULL (bare key) fixes the convention in the call's flags. */
  lookup(key: string, flags: number): Maybe<Out<string | undefined>> {
    if (flags & DictFlag.FOLD_FIX) key = lowercaseAscii(key);
    const k = bytes(cString(key));
    const len = k.length - 1;
    return this.locked(flags, "shared", (): Out<string | undefined> => {
      const h = this.ready(flags);
      if (flags & DictFlag.TRY1NULL) {
        const rc = h.get(k, len + 1);
        if (rc === 0) return settledIf(cString(h.value()), flags, flags & ~DictFlag.TRY0NULL);
        if (isFatal(rc)) this.fail(rc, `error reading ${this.dbPath}`);
      }
      if (flags & DictFlag.TRY0NULL) {
        const rc = h.get(k, len);
        if (rc === 0) return settledIf(cString(h.value()), flags, flags & ~DictFlag.TRY1NULL);
        if (isFatal(rc)) this.fail(rc, `error reading ${this.dbPath}`);
      }
      return undefined;
    });
  }

  update(key: string, value: string, flags: number): Maybe<Out<boolean>> {
    if (flags & DictFlag.FOLD_FIX) key = lowercaseAscii(key);
    key = cString(key);
    const k = bytes(key);
    const v = bytes(cString(value));
    return this.locked(flags, "exclusive", (): Out<boolean> => {
      const h = this.ready(flags);
      // Undecided: Postfix on Linux stores the NUL byte.
      const after = (flags & TRY_BOTH) === TRY_BOTH ? flags & ~DictFlag.TRY0NULL : flags;
      const extra = after & DictFlag.TRY1NULL ? 1 : 0;
      const rc = h.put(k, k.length - 1 + extra, v, v.length - 1 + extra, (flags & DictFlag.DUP_REPLACE) === 0);
      if (isFatal(rc)) this.fail(rc, `error writing ${this.dbPath}`);
      const stored = rc === 0;
      if (!stored) {
        if (flags & DictFlag.DUP_IGNORE) {
          // keep the old value quietly
        } else if (flags & DictFlag.DUP_WARN) {
          msg.warn(`${this.dbPath}: duplicate entry: "${key}"`);
        } else {
          // The reference exits here; we refuse the update instead.
          msg.warn(`${this.dbPath}: duplicate entry: "${key}"`);
        }
      }
      if (flags & DictFlag.SYNC_UPDATE) this.sync(h);
      return settledIf(stored, flags, after);
    });
  }

  delete(key: string, flags: number): Maybe<Out<boolean>> {
    if (flags & DictFlag.FOLD_FIX) key = lowercaseAscii(key);
    const k = bytes(cString(key));
    const len = k.length - 1;
    return this.locked(flags, "exclusive", (): Out<boolean> => {
      const h = this.ready(flags);
      let rc = DB_CONST.DB_NOTFOUND as number;
      let after = flags;
      if (flags & DictFlag.TRY1NULL) {
        rc = h.del(k, len + 1);
        if (isFatal(rc)) this.fail(rc, `error deleting from ${this.dbPath}`);
        if (rc === 0) after = flags & ~DictFlag.TRY0NULL;
      }
      if (rc !== 0 && flags & DictFlag.TRY0NULL) {
        rc = h.del(k, len);
        if (isFatal(rc)) this.fail(rc, `error deleting from ${this.dbPath}`);
        if (rc === 0) after = flags & ~DictFlag.TRY1NULL;
      }
      if (flags & DictFlag.SYNC_UPDATE) this.sync(h);
      return settledIf(rc === 0, flags, after);
    });
  }

  sequence(fn: 0 | 1, flags: number): [string, string] | undefined | Promise<[string, string] | undefined> {
    return this.locked(flags, "shared", () => {
      if (fn === 1 && !this.handle?.hasCursor) throw new TableError("retry", "dict_db_sequence: no cursor");
      const h = fn === 0 ? this.ready(flags) : this.handle!;
      const rc = h.step(fn === 0);
      if (rc === DB_CONST.DB_NOTFOUND) return undefined;
      if (rc !== 0) {
        h.closeCursor();
        this.fail(rc, `error [${rc}] seeking ${this.dbPath}`);
      }
      return [cString(h.keyText()), cString(h.value())];
    });
  }

  private sync(h: BdbHandle): void {
    const rc = h.sync();
    if (rc !== 0) this.fail(rc, `${this.dbPath}: flush dictionary`);
  }

  /** A fatal Berkeley DB status: warn (with the library's detail), drop the handle, RETRY. */
  private fail(rc: number, what: string): never {
    for (const line of takeDbMessages()) msg.info(line);
    this.drop();
    throw new TableError("retry", `${what}: ${errText(rc)}`);
  }

  // ------------------------------------------------------------ the rest

  changed(): boolean {
    if (!this.id) return false;
    if (this.replacedOnDisk()) return true;
    if (!this.handle || this.handle.fd < 0) return false;
    try {
      const now = fileId(this.handle.fd);
      return !sameContents(now, this.id) || now.nlink === 0n;
    } catch {
      return true;
    }
  }

  openLock(): void {
    try {
      lockNow(this.lockFd);
      this.openLocked = true;
    } catch (e) {
      throw new Error(lockErrText(e));
    }
  }

  close(): void {
    const h = this.handle;
    this.handle = undefined;
    if (h) {
      const rc = h.close();
      if (rc !== 0) msg.info(`close database ${this.dbPath}: ${errText(rc)} (possible Berkeley DB bug)`);
    }
    if (this.lockFd >= 0) {
      closeSync(this.lockFd);
      this.lockFd = -1;
    }
  }
}

function lockErrText(e: unknown): string {
  if (e instanceof LockError) return e.errnum === 11 ? "Resource temporarily unavailable" : strerror(e.errnum);
  return e instanceof Error ? e.message : String(e);
}

/** The file is locked by another process (postmap rebuilding it): try again later. */
class FileBusy extends Error {}

/**
 * Open t's file now, or (when another process holds it: a postmap rebuild)
 * on a timer until it is free, without stopping the other tables of this
 * process; TableError after LOCK_WAIT_LIMIT_MS.
 */
function openWhenFree(t: BdbTable, flags: number): void | Promise<void> {
  const attempt = (): boolean => {
    try {
      t.openFile(flags);
    } catch (e) {
      if (e instanceof FileBusy) return false;
      throw e;
    }
    return true;
  };
  if (attempt()) return;
  return (async () => {
    const start = Date.now();
    let delay = 1;
    for (;;) {
      await Bun.sleep(delay);
      if (attempt()) return;
      if (Date.now() - start > LOCK_WAIT_LIMIT_MS) {
        throw new TableError("retry", `shared-lock database ${t.name}.db for open: timed out after waiting for another process`);
      }
      delay = Math.min(delay * 2, 50);
    }
  })();
}

function asTableError(e: unknown, path: string): TableError {
  if (e instanceof TableError) return e;
  if (e instanceof BdbUnavailable) return new TableError("config", `${path}: ${e.message}`);
  if (e instanceof BdbCallError) return new TableError("retry", `${path}: ${errText(e.code)}`);
  return new TableError("retry", `${path}: ${e instanceof Error ? e.message : String(e)}`);
}

/** The TableType of "hash" or "btree". */
export function bdbTableType(type: BdbType): TableType {
  return {
    type,
    writeFiles: (name) => [`${name}.db`],
    // bun:ffi opens libdb-5.3.so by path, which a chroot jail hides. A
    // missing library is no error here: open() reports it.
    prepare: () => void preloadLibdb(),
    open(args: OpenArgs): Table | Promise<Table> {
      try {
        libdb();
      } catch (e) {
        throw new TableError("config", `${type}:${args.name}: ${e instanceof Error ? e.message : String(e)}`);
      }
      const t = new BdbTable(type, args.name, args.write, args.flags);
      const opened = openWhenFree(t, args.flags);
      if (opened instanceof Promise) return opened.then(() => (t.checkAge(args.flags), t));
      t.checkAge(args.flags);
      return t;
    },
  };
}
