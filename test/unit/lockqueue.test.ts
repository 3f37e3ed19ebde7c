/**
 * lockqueue.test.ts - lock waits without blocking (src/tables/lockQueue.ts),
 * with real flock(2) locks (bdb/lock.ts's Locker) on a file that another
 * process (perl) holds: an operation runs at once when the file is free,
 * waits on a timer while it is not (the event loop keeps turning), runs
 * with the lock held only around itself, keeps arrival order, and is tried
 * again when it lost its lock midway (LockLost).
 *
 * Needs perl and libdb5.3 (bdb/lock.ts reaches flock() through it).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LockLost } from "../../src/tables/lockQueue";
import { flockQueue, tryLock, unlock } from "../../src/tables/bdb/lock";
import { LOCK_BUSY, LOCK_EXCLUSIVE, LOCK_NONE, LOCK_SHARED, tryFcntlLock } from "../../src/tables/lmdb/fcntl";
import { LockQueue, type Locker } from "../../src/tables/lockQueue";
import { requireCommand } from "../helpers/require";
import { nextTurn, othersCanWrite } from "../helpers/fcntl-probe";

const dir = mkdtempSync(join(tmpdir(), "lockqueue-"));
const file = join(dir, "f");
writeFileSync(file, "");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Another process holding an exclusive flock on the file until release() is called. */
async function holder(): Promise<{ release: () => Promise<void> }> {
  requireCommand("perl", "apt-get install perl");
  const p = Bun.spawn(["perl", "-e", 'use Fcntl qw(:flock); open(F, "<", $ARGV[0]) or die; flock(F, LOCK_EX) or die; $| = 1; print "held\\n"; <STDIN>;', file], {
    stdin: "pipe",
    stdout: "pipe",
  });
  await (p.stdout as ReadableStream<Uint8Array>).getReader().read();
  return {
    release: async () => {
      p.stdin.end();
      await p.exited;
    },
  };
}

/** Is the file free for another descriptor (i.e. does nobody, us included, hold it)? */
function freeNow(): boolean {
  const fd = openSync(file, "r");
  try {
    if (!tryLock(fd, "exclusive")) return false;
    unlock(fd);
    return true;
  } finally {
    closeSync(fd);
  }
}

describe("lock queue", () => {
  test("free file: runs at once, under the lock, released after", () => {
    const q = flockQueue();
    const fd = openSync(file, "r");
    try {
      const r = q.run(() => fd, "shared", () => (freeNow() ? "nobody holds it" : "held"));
      expect(r).toBe("held");
      expect(freeNow()).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  test("a file another process holds: waits on a timer, in order, and the event loop keeps turning", async () => {
    const q = flockQueue();
    const fd = openSync(file, "r");
    const h = await holder();
    try {
      const order: number[] = [];
      const a = q.run(() => fd, "shared", () => order.push(1));
      const b = q.run(() => fd, "exclusive", () => order.push(2));
      expect(a).toBeInstanceOf(Promise);
      expect(b).toBeInstanceOf(Promise);
      const t0 = performance.now();
      await Bun.sleep(30);
      expect(performance.now() - t0).toBeLessThan(200);
      expect(order).toEqual([]);
      await h.release();
      await Promise.all([a, b]);
      expect(order).toEqual([1, 2]);
      expect(freeNow()).toBe(true);
    } finally {
      await h.release();
      closeSync(fd);
    }
  });

  test("an operation that lost its lock midway runs again later", async () => {
    const q = flockQueue();
    const fd = openSync(file, "r");
    try {
      let runs = 0;
      const r = q.run(() => fd, "exclusive", () => {
        if (++runs === 1) throw new LockLost("lost");
        return runs;
      });
      expect(r).toBeInstanceOf(Promise);
      expect(await r).toBe(2);
    } finally {
      closeSync(fd);
    }
  });
});

/** lmdb's Locker shape: fcntl locks, the shared one lingering until the end of the turn. */
const FCNTL: Locker<number> = {
  tryLock: (fd, type) => {
    const e = tryFcntlLock(fd, type);
    if (e === LOCK_BUSY) return false;
    if (e !== 0) throw new Error(`lock: errno ${e}`);
    return true;
  },
  unlock: (fd) => {
    const e = tryFcntlLock(fd, LOCK_NONE);
    if (e !== 0) throw new Error(`unlock: errno ${e}`);
  },
  lingerMode: LOCK_SHARED,
};

describe("lock queue, lingering shared lock (fcntl)", () => {
  test("kept for the rest of the turn, dropped after; an exclusive operation drops it at once", async () => {
    const q = new LockQueue(FCNTL);
    const fd = openSync(file, "r+");
    try {
      expect(q.run(() => fd, LOCK_SHARED, () => 1)).toBe(1);
      expect(q.run(() => fd, LOCK_SHARED, () => 2)).toBe(2);
      expect(othersCanWrite(file)).toBe(false);
      await nextTurn();
      expect(othersCanWrite(file)).toBe(true);
      q.run(() => fd, LOCK_SHARED, () => 3);
      expect(q.run(() => fd, LOCK_EXCLUSIVE, () => 4)).toBe(4);
      expect(othersCanWrite(file)).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  test("an operation on another descriptor releases the kept lock before taking its own", async () => {
    const q = new LockQueue(FCNTL);
    const a = openSync(file, "r+");
    const b = openSync(file, "r+");
    try {
      expect(q.run(() => a, LOCK_SHARED, () => 1)).toBe(1);
      expect(q.run(() => b, LOCK_SHARED, () => 2)).toBe(2);
      expect(othersCanWrite(file)).toBe(false);
      await nextTurn();
      expect(othersCanWrite(file)).toBe(true);
    } finally {
      closeSync(a);
      closeSync(b);
    }
  });
});
