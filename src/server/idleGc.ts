/**
 * idleGc.ts - give memory back to the system once a burst of large requests
 * is over.
 *
 * JavaScriptCore collects garbage as allocation goes on, but when a process
 * that just moved hundreds of megabytes (big keys, big values) goes quiet,
 * nothing allocates any more, and its heap may stay at its high-water mark
 * for as long as the process lives (the C proxymap has no such memory: it
 * reuses one buffer). So: when more than THRESHOLD bytes went through
 * the process since the last full collection, and then nothing arrived for
 * QUIET_MS, one full, synchronous collection runs (Bun.gc(true), which also
 * lets the allocator return freed pages). It costs a few milliseconds of an
 * idle process, and ordinary traffic of small requests reaches the
 * threshold only after a long while.
 *
 * Measured (README "Memory"): after 1,000 lookups of 1 MB keys the process
 * is back near its start-up size within QUIET_MS plus a few seconds.
 *
 * Reads: nothing. Logs: the collection with -v -v.
 */
import { msg } from "../log/msg";

/** Bytes (received plus sent) after which a quiet moment triggers a collection. */
export const THRESHOLD = 32 * 1024 * 1024;
/** How long nothing must arrive before collecting. */
export const QUIET_MS = 2000;

export class IdleCollector {
  private bytes = 0;
  private last = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly collect: () => void = () => Bun.gc(true),
    private readonly threshold = THRESHOLD,
    private readonly quietMs = QUIET_MS,
  ) {}

  /** n bytes went in or out. */
  moved(n: number): void {
    this.bytes += n;
    this.last = performance.now();
    if (this.bytes >= this.threshold && !this.timer) this.arm(this.quietMs);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.check(), ms);
    this.timer.unref();
  }

  private check(): void {
    this.timer = undefined;
    const quiet = performance.now() - this.last;
    if (quiet < this.quietMs) {
      this.arm(this.quietMs - quiet);
      return;
    }
    const moved = this.bytes;
    this.bytes = 0;
    const t0 = performance.now();
    this.collect();
    if (msg.verbose > 1)
      msg.info(`idle: full garbage collection after ${(moved / 1048576).toFixed(0)} MB of traffic took ${(performance.now() - t0).toFixed(1)} ms`);
  }
}
