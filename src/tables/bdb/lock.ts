/**
 * lock.ts - Postfix's INTERNAL_LOCK on Linux: flock(2) on the database file
 * (myflock() with MYFLOCK_STYLE_FLOCK; Linux Postfix does not use fcntl
 * locks for tables - check sys_defs.h or `strace postmap`), shared to read,
 * exclusive to write, so that postmap(1) and Postfix daemons working on the
 * same FILE.db wait for us and we for them.
 *
 * The reference blocks its whole process in flock() while another program
 * holds the file (a postmap rebuild of a big table). Here an operation
 * first tries without waiting; when the file is busy it is queued and
 * retried on a timer, so the other tables of this process keep being
 * served. Operations on one file run in arrival order (one queue per
 * file), because flock locks of one process on one open file would merge,
 * and an unlock by one operation would drop another's lock.
 *
 * Reads: nothing. Logs: nothing (failures are thrown as LockError).
 */
import { errno, libdb } from "./lib";

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EINTR = 4;
const EWOULDBLOCK = 11;

export type LockMode = "shared" | "exclusive";

export class LockError extends Error {
  constructor(
    readonly errnum: number,
    readonly action: "lock" | "unlock",
  ) {
    super(`${action} failed: errno ${errnum}`);
  }
}

/** Longest wait for a busy file before the operation fails (RETRY). */
export const LOCK_WAIT_LIMIT_MS = 60_000;

/** flock(fd, op), retried on EINTR; 0, or the errno. */
function flock(fd: number, op: number): number {
  const c = libdb().c;
  for (;;) {
    if (c.flock(fd, op) === 0) return 0;
    const e = errno();
    if (e !== EINTR) return e;
  }
}

/** Try to take the lock now: true when held, false when busy; throws other errors. */
export function tryLock(fd: number, mode: LockMode): boolean {
  const e = flock(fd, (mode === "shared" ? LOCK_SH : LOCK_EX) | LOCK_NB);
  if (e === 0) return true;
  if (e === EWOULDBLOCK) return false;
  throw new LockError(e, "lock");
}

export function unlock(fd: number): void {
  const e = flock(fd, LOCK_UN);
  if (e !== 0) throw new LockError(e, "unlock");
}

/** The exclusive lock of DICT_FLAG_OPEN_LOCK: no waiting; throws when busy. */
export function lockNow(fd: number): void {
  if (!tryLock(fd, "exclusive")) throw new LockError(EWOULDBLOCK, "lock");
}

/** Thrown when the file stayed locked by someone else for LOCK_WAIT_LIMIT_MS. */
export class LockTimeout extends Error {}

/**
 * One file's queue of operations. run() executes fn under the lock (or
 * without one when mode is undefined), at once when nothing is queued and
 * the lock is free, else later in order.
 */
export class LockQueue {
  private tail: Promise<unknown> | undefined;
  private waiting = 0;

  run<T>(fd: () => number, mode: LockMode | undefined, fn: () => T): T | Promise<T> {
    if (this.waiting === 0) {
      const now = this.attempt(fd, mode, fn);
      if (now !== BUSY) return now as T;
    }
    this.waiting++;
    const prev = this.tail ?? Promise.resolve();
    const p = prev
      .catch(() => undefined)
      .then(() => this.wait(fd, mode, fn))
      .finally(() => {
        this.waiting--;
        if (this.tail === p) this.tail = undefined;
      });
    this.tail = p;
    return p;
  }

  private attempt<T>(fd: () => number, mode: LockMode | undefined, fn: () => T): T | typeof BUSY {
    if (mode === undefined) return fn();
    const f = fd();
    if (!tryLock(f, mode)) return BUSY;
    try {
      return fn();
    } finally {
      // fn may have replaced the descriptor (a file replaced by rename gets
      // a new one); closing the old one released its lock already.
      if (fd() === f) unlock(f);
    }
  }

  private async wait<T>(fd: () => number, mode: LockMode | undefined, fn: () => T): Promise<T> {
    const start = Date.now();
    let delay = 1;
    for (;;) {
      const r = this.attempt(fd, mode, fn);
      if (r !== BUSY) return r as T;
      if (Date.now() - start > LOCK_WAIT_LIMIT_MS) throw new LockTimeout("lock wait timed out");
      await new Promise((res) => setTimeout(res, delay));
      delay = Math.min(delay * 2, 50);
    }
  }
}

const BUSY = Symbol("busy");
