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
 * retried on a timer (../lockQueue.ts, shared with lmdb), so the other
 * tables of this process keep being served.
 *
 * Reads: nothing. Logs: nothing (failures are thrown as LockError).
 */
import { errno, libdb } from "./lib";
import { LockQueue, type Locker } from "../lockQueue";

export { LOCK_WAIT_LIMIT_MS, LockTimeout } from "../lockQueue";

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

/** flock(2) as the lock queue's Locker. */
export const FLOCK: Locker<LockMode> = { tryLock, unlock };

/** A queue of operations on one file, waiting for its flock() lock without blocking. */
export function flockQueue(): LockQueue<LockMode> {
  return new LockQueue(FLOCK);
}
