/**
 * lmdb/slmdb.ts - one lmdb database file opened as Postfix's slmdb.c opens
 * it, on top of the `lmdb` package (format-1 addon, see
 * scripts/build-lmdb-v1.sh):
 *  - single-file environment (MDB_NOSUBDIR), MDB_NOLOCK (lmdb/noLock.ts),
 *    read-only on the read service;
 *  - raw byte keys and values (binary encodings, no value cache);
 *  - the map size starts at lmdb_map_size, or at the file size plus 10240
 *    bytes when the file is already larger (slmdb_open);
 *  - MDB_MAP_FULL on a write: the map size doubles and the write is retried
 *    (slmdb_recover); MDB_MAP_RESIZED (another process grew the map): the
 *    environment is re-opened with the new size and the call retried. The
 *    package cannot resize an open environment, so both re-open it;
 *  - each write is its own transaction, committed synchronously (fsync)
 *    before the caller sees success;
 *  - a walk re-positions on the last key it returned, in a fresh read
 *    transaction each step, as slmdb does with MDB_NOLOCK (its "saved
 *    key"), so no read snapshot stays open between requests.
 *
 * One instance per file and process (shared by every table instance that
 * names it): the package itself shares environments by path. Its lock
 * queue (../lockQueue.ts) runs the operations that need the fcntl lock in
 * order, each taking the lock without waiting, else later on a timer.
 *
 * Reads and writes FILE.lmdb. Logs, with -v, the reference's size-limit
 * lines ("database lmdb:NAME: using size limit N ...").
 */
import { statSync } from "node:fs";
import type { RootDatabase } from "lmdb";
import { msg } from "../../log/msg";
import { lmdbPackage } from "./native";
import { LOCK_BUSY, LOCK_NONE, LOCK_SHARED, closeFd, openForLock, tryFcntlLock } from "./fcntl";
import { LockLost, LockQueue, type Locker } from "../lockQueue";

/** slmdb.c's allowance above the file size when sizing the map. */
const FUDGE = 10240;
/** Growth factor on MDB_MAP_FULL (DICT_LMDB_SIZE_INCR). */
const SIZE_INCR = 2;
/** Largest map we grow to. */
const HARD_LIMIT = Number.MAX_SAFE_INTEGER;
/** Re-tries of one call after MAP_FULL / MAP_RESIZED. */
const RETRY_LIMIT = 8;

/**
 * Longest key Postfix's liblmdb (0.9, MDB_MAXKEYSIZE 511) can read or
 * write; the package's own limit is higher, but a longer key written here
 * would make the real postmap fail on it.
 */
export const MAX_KEY_SIZE = 511;

export const MDB_KEYEXIST = -30799;
export const MDB_NOTFOUND = -30798;
export const MDB_MAP_FULL = -30792;
export const MDB_MAP_RESIZED = -30785;
export const MDB_BAD_VALSIZE = -30781;

/** mdb_strerror() texts of the codes we name in messages. */
const MDB_TEXT: Record<number, string> = {
  [MDB_KEYEXIST]: "MDB_KEYEXIST: Key/data pair already exists",
  [MDB_NOTFOUND]: "MDB_NOTFOUND: No matching key/data pair found",
  [MDB_MAP_FULL]: "MDB_MAP_FULL: Environment mapsize limit reached",
  [MDB_MAP_RESIZED]: "MDB_MAP_RESIZED: Database contents grew beyond environment mapsize",
  [MDB_BAD_VALSIZE]: "MDB_BAD_VALSIZE: Unsupported size of key/DB name/data, or wrong DUPFIXED size",
};

export class LmdbError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** The LMDB error code of an exception from the package (0 if none). */
function mdbCode(e: unknown): number {
  const code = (e as { code?: unknown }).code;
  if (typeof code === "number") return code;
  const m = /^(MDB_[A-Z_]+)/.exec(e instanceof Error ? e.message : "");
  if (m) for (const [k, v] of Object.entries(MDB_TEXT)) if (v.startsWith(m[1] + ":")) return Number(k);
  return 0;
}

/** The text of a failure as mdb_strerror() or strerror() would give it. */
export function mdbText(e: unknown): string {
  const code = mdbCode(e);
  if (MDB_TEXT[code]) return MDB_TEXT[code];
  return e instanceof Error ? e.message : String(e);
}

function inodeOf(path: string): number {
  try {
    return statSync(path).ino;
  } catch {
    return -1;
  }
}

/** A failed fcntl() lock or unlock (not "busy": that is waited for). */
export class LockFailed extends Error {
  constructor(
    readonly errnum: number,
    readonly action: "lock" | "unlock",
  ) {
    super(`${action} failed: errno ${errnum}`);
  }
}

export class Slmdb {
  private db: RootDatabase<Buffer, Buffer> | undefined;
  private limit: number;
  private users = 0;
  /**
   * Our descriptor of the file for fcntl() locks, one per file and process:
   * closing any descriptor of a file drops all of the process's locks on it.
   */
  lockFd = -1;
  /** The fcntl lock type held now (LOCK_NONE = 2 when none). */
  private held = 2;
  /** Inode of the file when opened (a file renamed over it is another database). */
  ino = 0;

  private constructor(
    /** FILE.lmdb */
    readonly path: string,
    readonly write: boolean,
    mapSize: number,
    /** "lmdb:FILE" for messages. */
    private readonly label: string,
  ) {
    this.limit = mapSize;
  }

  private static open = new Map<string, Slmdb>();

  /** The shared handle of a file; throws (with the reason) when it cannot be opened. */
  static acquire(path: string, write: boolean, mapSize: number, label: string): Slmdb {
    const key = `${write ? "w" : "r"}:${path}`;
    let s = Slmdb.open.get(key);
    if (s && s.ino !== inodeOf(path)) s = undefined; // replaced: its users keep the old one
    if (!s) {
      s = new Slmdb(path, write, mapSize, label);
      s.openEnv(true);
      const fd = openForLock(path, write);
      s.lockFd = fd < 0 ? -1 : fd;
      s.ino = inodeOf(path);
      Slmdb.open.set(key, s);
    }
    s.users++;
    return s;
  }

  release(): void {
    if (--this.users > 0) return;
    const key = `${this.write ? "w" : "r"}:${this.path}`;
    if (Slmdb.open.get(key) === this) Slmdb.open.delete(key);
    this.closeEnv();
    if (this.lockFd >= 0) closeFd(this.lockFd);
    this.lockFd = -1;
  }

  /** fcntl() as the lock queue's Locker, keeping track of the lock held. */
  private readonly locker: Locker<number> = {
    tryLock: (fd, type) => {
      const err = tryFcntlLock(fd, type);
      if (err === LOCK_BUSY) return false;
      if (err !== 0) throw new LockFailed(err, "lock");
      this.held = type;
      return true;
    },
    unlock: (fd) => {
      const err = tryFcntlLock(fd, LOCK_NONE);
      if (err !== 0) throw new LockFailed(err, "unlock");
      this.held = LOCK_NONE;
    },
    // fcntl locks belong to the process and merge: a shared one may stay
    // for the rest of the event loop's turn (../lockQueue.ts).
    lingerMode: LOCK_SHARED,
  };

  /** The file's operations, in order, each under the lock it asks for. */
  private readonly queue = new LockQueue<number>(this.locker);

  /**
   * Run fn holding the whole-file fcntl lock `type` (0 shared, 1 exclusive),
   * now or, while another process holds a conflicting lock, later. Throws
   * (rejects) LockFailed or LockTimeout. Without a lock (undefined) fn runs
   * at once: LMDB readers see the last commit whatever others hold, so there
   * is nothing to wait for.
   */
  locked<T>(type: number | undefined, fn: () => T): T | Promise<T> {
    if (type === undefined) return fn();
    return this.queue.run(() => (this.lockFd < 0 ? -1 : this.lockFd), type, fn);
  }

  /** (Re-)open the environment with the current size limit. */
  private openEnv(first: boolean): void {
    const { installNoLock, open } = lmdbPackage();
    installNoLock();
    if (this.limit < FUDGE) this.limit = FUDGE;
    try {
      const size = statSync(this.path).size;
      if (size > this.limit - FUDGE) this.limit = size + FUDGE;
    } catch {
      // absent (the write service creates it)
    }
    this.db = open<Buffer, Buffer>({
      path: this.path,
      noSubdir: true,
      readOnly: !this.write,
      encoding: "binary",
      keyEncoding: "binary",
      mapSize: this.limit,
      maxDbs: 1,
      cache: false,
      // A new file gets Postfix's mode (slmdb_open), not the package's 0664.
      permissionsMode: 0o644,
      // lmdb/noLock.ts turns this into MDB_NOLOCK.
      postfixNoLock: true,
    } as Parameters<typeof open>[0]) as RootDatabase<Buffer, Buffer>;
    if (first && msg.verbose) msg.info(`database ${this.label}: using size limit ${this.limit} during open`);
  }

  private closeEnv(): void {
    const db = this.db;
    this.db = undefined;
    if (db) {
      try {
        db.close();
      } catch {
        // closing is best effort
      }
    }
  }

  private env(): RootDatabase<Buffer, Buffer> {
    if (!this.db) this.openEnv(false);
    return this.db!;
  }

  /** Recover from MAP_FULL / MAP_RESIZED as slmdb_recover(); false when the error is another. */
  private recover(e: unknown): boolean {
    const code = mdbCode(e);
    if (code === MDB_MAP_FULL) {
      if (this.limit >= HARD_LIMIT) return false;
      this.limit = this.limit < HARD_LIMIT / SIZE_INCR ? this.limit * SIZE_INCR : HARD_LIMIT;
      if (msg.verbose) msg.info(`database ${this.label}: using size limit ${this.limit} after MDB_MAP_FULL`);
    } else if (code === MDB_MAP_RESIZED || this.outgrown()) {
      // The package does not always pass MDB_MAP_RESIZED on (a read
      // transaction that failed to renew surfaces as EINVAL): a file larger
      // than our map means the same.
      if (msg.verbose) msg.info(`database ${this.label}: using size limit ${this.limit} after MDB_MAP_RESIZED`);
    } else {
      return false;
    }
    this.closeEnv();
    this.openEnv(false);
    // Closing the environment closed its descriptor of the file, and with
    // it every fcntl lock this process had there: take ours again. When
    // another process took it meanwhile, nothing has been done yet: the
    // operation waits in the queue and runs again.
    if (this.held !== LOCK_NONE) {
      const err = tryFcntlLock(this.lockFd, this.held);
      if (err !== 0) {
        this.held = LOCK_NONE;
        if (err === LOCK_BUSY) throw new LockLost("lock taken by another process during a re-open");
        throw new LockFailed(err, "lock");
      }
    }
    return true;
  }

  /** Has another process grown the file beyond our map? */
  private outgrown(): boolean {
    try {
      return statSync(this.path).size > this.limit;
    } catch {
      return false;
    }
  }

  private retrying<T>(fn: (db: RootDatabase<Buffer, Buffer>) => T): T {
    for (let attempt = 0; ; attempt++) {
      try {
        return fn(this.env());
      } catch (e) {
        if (attempt >= RETRY_LIMIT || !this.recover(e)) throw new LmdbError(mdbCode(e), mdbText(e));
      }
    }
  }

  /**
   * The value of a key, from the latest committed state, as a byte string.
   * Read through the package's reused buffer (getBinaryFast) and copied
   * into the string at once: no Buffer per lookup for the collector.
   */
  get(key: Buffer): string | undefined {
    return this.retrying((db) => {
      // Never answer from a snapshot older than the last commit (ours or another process's).
      db.resetReadTxn();
      const v = (db as unknown as { getBinaryFast(k: Buffer): Uint8Array | undefined }).getBinaryFast(key);
      // The package sets .length on its reused buffer to the value's size
      // (its byteLength is the whole buffer's).
      return v === undefined ? undefined : Buffer.from(v.buffer, v.byteOffset, v.length).toString("latin1");
    });
  }

  /** Store a pair; returns 0 or MDB_KEYEXIST (noOverwrite and the key exists). Committed with fsync. */
  put(key: Buffer, value: Buffer, noOverwrite: boolean): number {
    return this.retrying((db) => {
      // The package's typings say void; it returns false when a condition (noOverwrite) failed.
      const put = db.putSync as unknown as (k: Buffer, v: Buffer, o?: { noOverwrite: boolean }) => boolean;
      const ok = put.call(db, key, value, noOverwrite ? { noOverwrite: true } : undefined);
      db.resetReadTxn();
      return ok === false ? MDB_KEYEXIST : 0;
    });
  }

  /** Delete a key; false when it was not there. Committed with fsync. */
  del(key: Buffer): boolean {
    return this.retrying((db) => {
      const ok = db.removeSync(key);
      db.resetReadTxn();
      return ok;
    });
  }

  /**
   * One step of a walk, as slmdb_cursor_get() with MDB_NOLOCK: the first
   * pair when `after` is undefined; else the pair after `after`, which must
   * still exist ("gone" when it does not: the reference's cursor cannot be
   * re-positioned on it, and its walk ends there). undefined at the end.
   */
  next(after: Buffer | undefined): [Buffer, Buffer] | undefined | "gone" {
    return this.retrying((db) => {
      db.resetReadTxn();
      const range = db.getRange(after === undefined ? { limit: 1, snapshot: false } : { start: after, limit: 2, snapshot: false });
      let first = true;
      for (const { key, value } of range) {
        const k = key as Buffer;
        if (after !== undefined && first) {
          first = false;
          if (!k.equals(after)) return "gone";
          continue;
        }
        return [Buffer.from(k), Buffer.from(value as Buffer)];
      }
      return after !== undefined && first ? "gone" : undefined;
    });
  }

  /** Current map size limit (tests). */
  get sizeLimit(): number {
    return this.limit;
  }
}
