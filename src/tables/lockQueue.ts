/**
 * lockQueue.ts - wait for a file lock without blocking the event loop: the
 * lock waits of the file tables whose writers (postmap, postalias, the C
 * daemons) hold a lock for as long as a rebuild takes.
 *
 * The reference blocks its whole process in the lock call (flock() for
 * hash/btree, fcntl(F_SETLKW) for lmdb) while another program holds the
 * file. Here an operation first tries without waiting; when the file is
 * busy it is queued and tried again on a timer (1 ms, doubling up to
 * 50 ms), so the other tables of this process keep being served. The lock
 * is held only around the operation itself, as in the reference.
 * Operations on one file run in arrival order (one queue per file), because
 * one process's locks on one file merge: an unlock by one operation would
 * drop another's lock.
 *
 * A wait longer than LOCK_WAIT_LIMIT_MS fails (LockTimeout: the driver
 * answers RETRY) where the reference would wait for ever.
 *
 * A Locker may name a mode that lingers (lmdb's shared fcntl lock): such a
 * lock is kept after its operation until the end of the event loop's
 * current turn (setImmediate), so that the lookups of all the requests
 * that arrived together take and drop it once instead of once each. On
 * this kind of machine a system call costs about a microsecond and the
 * lock and unlock were half of an lmdb lookup's calls (bench/filedb.ts).
 * No other process can tell the difference from a lookup that took a few
 * microseconds longer: the lock is still dropped before the process next
 * waits for input, and a writer (postmap) that waits for it gets it then.
 * Only for locks that belong to the process and merge (fcntl): a flock()
 * lock belongs to one descriptor, and bdb's open lock shares that
 * descriptor, so bdb keeps the one-lock-per-operation rule.
 *
 * The locking calls are the driver's (a Locker): bdb/lock.ts (flock),
 * lmdb/fcntl.ts (fcntl). Reads: nothing. Logs: nothing.
 */

/** How a driver takes and drops its kind of lock on a descriptor. */
export interface Locker<M> {
  /** Take the lock now: true when held, false when someone else holds it; throws other errors. */
  tryLock(fd: number, mode: M): boolean;
  /** Drop it; throws on failure. */
  unlock(fd: number): void;
  /** A mode whose lock may be kept until the end of the event loop's turn (see above). */
  readonly lingerMode?: M;
}

/** Longest wait for a busy file before the operation fails (RETRY). */
export const LOCK_WAIT_LIMIT_MS = 60_000;
/** Longest pause between two attempts. */
const MAX_DELAY_MS = 50;

/** Thrown when the file stayed locked by someone else for LOCK_WAIT_LIMIT_MS. */
export class LockTimeout extends Error {}

/**
 * Thrown by an operation that lost its lock midway and could not take it
 * again at once (lmdb re-opens its environment, which drops the process's
 * fcntl locks): the operation has changed nothing and is tried again later.
 */
export class LockLost extends Error {}

const BUSY = Symbol("busy");

/**
 * One file's queue of operations. run() executes fn under the lock (or
 * without one when mode is undefined), at once when nothing is queued and
 * the lock is free, else later in order.
 */
export class LockQueue<M> {
  private tail: Promise<unknown> | undefined;
  private waiting = 0;
  /** The lock an earlier operation of this turn left held (lingerMode), and on which descriptor. */
  private kept: { fd: number; mode: M; current: () => number } | undefined;
  private releaseQueued = false;

  constructor(private readonly locker: Locker<M>) {}

  run<T>(fd: () => number, mode: M | undefined, fn: () => T): T | Promise<T> {
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

  private attempt<T>(fd: () => number, mode: M | undefined, fn: () => T): T | typeof BUSY {
    if (mode === undefined) return fn();
    const f = fd();
    const k = this.kept;
    // A lock kept from earlier in this turn serves when it is the same one
    // on the same descriptor. On another descriptor it is dropped first; on
    // this one another mode converts it (fcntl), and while that is busy the
    // kept lock stays queued for release.
    const reuse = k !== undefined && k.fd === f && k.mode === mode && k.current() === f;
    if (k !== undefined && k.fd !== f) this.release();
    if (!reuse && !this.locker.tryLock(f, mode)) return BUSY;
    this.kept = undefined;
    let lost = false;
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof LockLost)) throw e;
      lost = true;
      return BUSY;
    } finally {
      // fn may have replaced the descriptor (a file replaced by rename gets
      // a new one); closing the old one released its lock already. A lost
      // lock needs no unlock.
      if (!lost && fd() === f) {
        if (this.locker.lingerMode !== undefined && mode === this.locker.lingerMode) this.keep(f, mode, fd);
        else this.locker.unlock(f);
      }
    }
  }

  /** Keep the lock until the end of this turn of the event loop. */
  private keep(f: number, mode: M, current: () => number): void {
    this.kept = { fd: f, mode, current };
    if (this.releaseQueued) return;
    this.releaseQueued = true;
    setImmediate(() => {
      this.releaseQueued = false;
      this.release();
    });
  }

  /** Drop the kept lock (at the end of the turn, or earlier when another descriptor is used). */
  private release(): void {
    const k = this.kept;
    this.kept = undefined;
    // A descriptor closed or replaced since took its locks with it.
    if (!k || k.current() !== k.fd) return;
    try {
      this.locker.unlock(k.fd);
    } catch {
      // Unlocking an open descriptor fails only when it is no longer ours to
      // lock (EBADF); the next operation's lock call reports that.
    }
  }

  private async wait<T>(fd: () => number, mode: M | undefined, fn: () => T): Promise<T> {
    const start = Date.now();
    let delay = 1;
    for (;;) {
      const r = this.attempt(fd, mode, fn);
      if (r !== BUSY) return r as T;
      if (Date.now() - start > LOCK_WAIT_LIMIT_MS) throw new LockTimeout("lock wait timed out");
      await new Promise((res) => setTimeout(res, delay));
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  }
}
