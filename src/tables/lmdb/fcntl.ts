/**
 * lmdb/fcntl.ts - the file-descriptor calls the lmdb driver needs and
 * Bun does not offer, through bun:ffi on the C library:
 *  - fcntl() whole-file read/write locks, as Postfix's
 *    myflock(MYFLOCK_STYLE_FCNTL) takes them on an lmdb database file, so
 *    that our readers and writers coordinate with postmap, postalias and
 *    the C daemons exactly as theirs do. Only the non-waiting F_SETLK is
 *    used: where Postfix waits in F_SETLKW (for as long as a `postmap
 *    lmdb:FILE` rebuild holds the write lock), the lmdb driver waits in
 *    ../lockQueue.ts on a timer, so the event loop keeps serving the other
 *    clients;
 *  - dup/dup2/open/close, to keep the lmdb addon's one-line stderr notice
 *    about MDB_NOLOCK out of our standard error (lmdb/noLock.ts).
 *
 * struct flock as on LP64 Linux (x86_64, aarch64): short l_type, short
 * l_whence, off_t l_start, off_t l_len, pid_t l_pid (32 bytes).
 *
 * Reads and logs nothing; failures are returned as errno values.
 */
import { read } from "bun:ffi";
import { libcSymbols } from "../../sys/libc";

const F_SETLK = 6;
export const LOCK_SHARED = 0; // F_RDLCK
export const LOCK_EXCLUSIVE = 1; // F_WRLCK
export const LOCK_NONE = 2; // F_UNLCK

const O_WRONLY = 1;
const O_RDWR = 2;
const O_CLOEXEC = 0o2000000;

const load = libcSymbols({
  fcntl: { args: ["i32", "i32", "ptr"], returns: "i32" },
  open: { args: ["ptr", "i32", "i32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  dup: { args: ["i32"], returns: "i32" },
  dup2: { args: ["i32", "i32"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
});
const c = load;

function errno(): number {
  const p = c().__errno_location();
  return p ? read.i32(p, 0) : 0;
}

const EINTR = 4;
const EACCES = 13;
const EAGAIN = 11;

const flock = Buffer.alloc(32);

/** What tryFcntlLock() returns when another process holds a conflicting lock. */
export const LOCK_BUSY = -1;

/**
 * Set (shared/exclusive) or release the whole-file fcntl lock on fd without
 * waiting: 0, LOCK_BUSY when another process holds a conflicting lock, or
 * errno.
 */
export function tryFcntlLock(fd: number, type: number): number {
  // One struct for every call: SEEK_SET, start 0, length 0 (the whole
  // file) never change; only l_type does. Calls never overlap (one thread).
  const fl = flock;
  fl.writeInt16LE(type, 0);
  for (;;) {
    if (c().fcntl(fd, F_SETLK, fl) === 0) return 0;
    const e = errno();
    if (e === EACCES || e === EAGAIN) return LOCK_BUSY;
    if (e !== EINTR) return e;
  }
}

/**
 * Open a file (close-on-exec) to lock it: read-only for shared locks,
 * read-write when exclusive locks are needed (fcntl demands it). fd or -errno.
 */
export function openForLock(path: string, write: boolean): number {
  const fd = c().open(Buffer.from(path + "\0", "latin1"), (write ? O_RDWR : 0) | O_CLOEXEC, 0);
  return fd < 0 ? -errno() : fd;
}

export function closeFd(fd: number): void {
  c().close(fd);
}

/** Run fn with file descriptor 2 pointed at /dev/null. */
export function withStderrSilenced<T>(fn: () => T): T {
  const l = c();
  const saved = l.dup(2);
  const nul = saved < 0 ? -1 : l.open(Buffer.from("/dev/null\0"), O_WRONLY | O_CLOEXEC, 0);
  if (nul < 0) {
    if (saved >= 0) l.close(saved);
    return fn();
  }
  l.dup2(nul, 2);
  l.close(nul);
  try {
    return fn();
  } finally {
    l.dup2(saved, 2);
    l.close(saved);
  }
}
