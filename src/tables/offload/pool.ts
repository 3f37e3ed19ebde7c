/**
 * offload/pool.ts - run a table's blocking calls on worker threads, so that
 * one slow call holds up only the lookups waiting on it, never the event
 * loop that serves every other client of the process.
 *
 * Why threads: some calls cannot be split into non-blocking steps - NSS
 * (getpwnam may go to LDAP or sssd), a bun:sqlite query, a POSIX regexec or
 * PCRE2 match on a hostile pattern. While one runs on the main thread, no
 * client gets a greeting and the busy report to master (a timer) cannot
 * fire. Such a driver hands the call to a pool of Bun Workers instead.
 *
 * One pool per driver kind (nss, sqlite, regexp/pcre), so a stuck regexp
 * never delays an NSS lookup. A pool starts no thread until its first call:
 * a process that serves only in-memory tables pays nothing. Each pool runs
 * one call (or one batch, below) per worker at a time and starts another
 * worker (up to MAX_WORKERS) only when every worker has been inside one
 * call for longer than STALL_MS; a steady stream of short calls therefore
 * uses one worker.
 * When every worker of a pool is stalled, further calls queue here and
 * offloadStalled() is true, which the busy monitor reports to master
 * ("taken"), so that master starts another process for new clients. Extra
 * workers that stay idle for IDLE_RETIRE_MS are stopped again; the first
 * stays for the life of the process.
 *
 * Batches: calls that queue while a worker is busy go to it, when it is
 * free again, in one message (at most MAX_BATCH, all for the same job and
 * the same worker state, so all for one table), and come back in one
 * reply. A message's round trip costs the main thread about 20 us of CPU,
 * as much as an NSS or SQLite call itself; one per call made a busy unix:
 * or sqlite table serve 0.6x of the C proxymap's lookups at 8 clients
 * (bench/blocking.ts). Nothing waits to fill a batch: a call that finds a
 * worker free is sent at once. The price is that the calls of one batch
 * wait for each other: a stuck call holds up the calls of its own table
 * that were sent with it (those would most likely stick on the same
 * database, directory server or pattern), and calls queued after it get
 * another worker after STALL_MS as before.
 *
 * State in workers: a job may need data a worker must load once (compiled
 * regexp rules, an open database). call() names it with a key and a loader;
 * each worker is sent the loader's message before its first call needing it,
 * and forget() tells every worker that has it to drop it.
 *
 * Measured (README "Blocking calls", bench/blocking.ts): a message's round
 * trip adds about 40 us of latency to the call itself and costs the main
 * thread about 20 us of CPU (batched, with 32 calls in flight, under 5 us a
 * call); a worker costs 4-7 MB of resident memory and 14-25 ms to start (in
 * the executable).
 *
 * Reads: nothing. Logs: a warning when a worker dies (its calls fail, the
 * next call starts another); with -v, worker starts.
 */
import { msg } from "../../log/msg";
import { READY, type JobReply, type JobRequest } from "./protocol";

/**
 * A call running longer than this counts as stalled: the next call gets
 * another worker. Short enough that a call queued behind a stuck one waits
 * little (this plus a worker's start, 15-25 ms), long enough that a worker
 * descheduled for a moment on a busy machine does not start another.
 */
export const STALL_MS = 20;
/** Workers per pool. Stalled ones keep their slot until their call returns. */
export const MAX_WORKERS = 4;
/** Calls sent to a worker in one message, at most. */
export const MAX_BATCH = 16;
/** An extra worker idle this long is stopped (its memory returned). */
export const IDLE_RETIRE_MS = 30_000;

/**
 * The worker entry point (build.ts bundles it as a second entry point of
 * the executable). From source it sits beside this file; in the compiled
 * executable every module shares the main entry's URL, whose directory
 * stands for src/, and the worker keeps its path below src/.
 */
function workerUrl(): string {
  const fromSource = import.meta.url.endsWith("/offload/pool.ts");
  return new URL(fromSource ? "./worker.ts" : "./tables/offload/worker.ts", import.meta.url).href;
}

/** State a worker must hold before a call: sent once per worker. */
export interface Preload {
  key: string;
  job: string;
  arg: unknown;
}

interface Call {
  id: number;
  job: string;
  arg: unknown;
  preload?: Preload;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

interface Slot {
  worker: Worker;
  /** The batch the worker runs now (its message id is its first call's), or undefined when idle. */
  current: Call[] | undefined;
  startedAt: number;
  /**
   * The worker has loaded its code (it says so first thing). Until then its
   * call is not counted as stalled: a start takes 15-25 ms, longer than
   * STALL_MS, and a burst of first calls should not start four workers.
   */
  ready: boolean;
  /** When its last call ended. */
  idleSince: number;
  loaded: Set<string>;
  dead: boolean;
}

/** Thrown (rejected) when a worker could not run a call: the driver answers RETRY. */
export class OffloadError extends Error {}

const pools = new Set<OffloadPool>();

export class OffloadPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Call[] = [];
  private nextId = 1;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private retireTimer: ReturnType<typeof setTimeout> | undefined;
  /** Calls made, messages that carried them and workers started since the process began (tests, benches). */
  readonly stats = { calls: 0, messages: 0, started: 0 };

  constructor(
    /** For log lines: "nss", "sqlite", "regexp". */
    readonly name: string,
    private readonly maxWorkers = MAX_WORKERS,
    private readonly retireMs = IDLE_RETIRE_MS,
  ) {
    pools.add(this);
  }

  /** Run job(arg) on a worker; resolves with its result, rejects with OffloadError or the job's error text. */
  call<T>(job: string, arg: unknown, preload?: Preload): Promise<T> {
    this.stats.calls++;
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, job, arg, preload, resolve: resolve as (v: unknown) => void, reject });
      this.pump();
    });
  }

  /** Tell every worker holding `key` to drop it (job receives the key). */
  forget(key: string, job: string): void {
    for (const s of this.slots) {
      if (!s.loaded.delete(key) || s.dead) continue;
      s.worker.postMessage({ id: 0, calls: [{ job, arg: key }] } satisfies JobRequest);
    }
  }

  /** Workers alive now. */
  get workers(): number {
    return this.slots.length;
  }

  /** True when calls wait and every worker is stuck in a call (and no more may start). */
  get stalled(): boolean {
    if (this.queue.length === 0) return false;
    if (this.slots.length < this.maxWorkers) return false;
    const now = performance.now();
    return this.slots.every((s) => s.ready && s.current !== undefined && now - s.startedAt >= STALL_MS);
  }

  /** Stop every worker (tests). Calls in progress are rejected. */
  close(): void {
    for (const s of [...this.slots]) this.lose(s, "pool closed");
    for (const c of this.queue.splice(0)) c.reject(new OffloadError(`${this.name} worker: pool closed`));
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.retireTimer) clearTimeout(this.retireTimer);
    this.retireTimer = undefined;
  }

  /** Hand queued calls to idle workers; start a worker when all are stalled. */
  private pump(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => s.current === undefined);
      if (!slot) {
        const now = performance.now();
        const starting = this.slots.some((s) => !s.ready);
        const youngest = Math.max(...this.slots.map((s) => s.startedAt));
        const allStalled = this.slots.length === 0 || (!starting && now - youngest >= STALL_MS);
        if (!allStalled || this.slots.length >= this.maxWorkers) {
          // Look again when the youngest call turns stalled (a start may then
          // be due); a worker still starting calls pump() when it is ready.
          if (!this.timer && !starting && this.slots.length < this.maxWorkers) {
            this.timer = setTimeout(() => {
              this.timer = undefined;
              this.pump();
            }, Math.max(1, STALL_MS - (now - youngest)));
          }
          return;
        }
        try {
          slot = this.start();
        } catch (e) {
          // No thread to be had (resource limits): these calls fail (RETRY), later ones try again.
          const why = `cannot start a worker thread: ${e instanceof Error ? e.message : String(e)}`;
          msg.warn(`${this.name} worker: ${why}`);
          for (const c of this.queue.splice(0)) c.reject(new OffloadError(why));
          return;
        }
      }
      this.send(slot, this.takeBatch());
    }
  }

  /**
   * The first queued call and, in queue order, the later ones of the same
   * job and worker state (same table), up to MAX_BATCH.
   */
  private takeBatch(): Call[] {
    const first = this.queue.shift()!;
    const batch = [first];
    const key = first.preload?.key;
    for (let i = 0; i < this.queue.length && batch.length < MAX_BATCH; ) {
      const c = this.queue[i];
      if (c.job === first.job && c.preload?.key === key) {
        batch.push(c);
        this.queue.splice(i, 1);
      } else i++;
    }
    return batch;
  }

  private start(): Slot {
    const worker = new Worker(workerUrl());
    const slot: Slot = { worker, current: undefined, startedAt: 0, ready: false, idleSince: 0, loaded: new Set(), dead: false };
    worker.onmessage = (e: MessageEvent<JobReply>) => this.answered(slot, e.data);
    worker.onerror = (e: ErrorEvent) => this.lose(slot, e.message || "worker failed");
    worker.addEventListener("close", () => this.lose(slot, "worker exited"));
    worker.unref();
    this.slots.push(slot);
    this.stats.started++;
    if (msg.verbose) msg.info(`${this.name} worker started (${this.slots.length} of ${this.maxWorkers})`);
    if (this.slots.length > 1) this.armRetire();
    return slot;
  }

  /** Look, every retireMs while there are extra workers, for idle ones to stop. */
  private armRetire(): void {
    if (this.retireTimer) return;
    this.retireTimer = setTimeout(() => {
      this.retireTimer = undefined;
      const now = performance.now();
      for (const s of this.slots.slice(1)) {
        if (s.current === undefined && now - s.idleSince >= this.retireMs) {
          s.dead = true;
          this.slots.splice(this.slots.indexOf(s), 1);
          s.worker.terminate();
          if (msg.verbose) msg.info(`${this.name} worker stopped after ${this.retireMs / 1000}s idle (${this.slots.length} left)`);
        }
      }
      if (this.slots.length > 1) this.armRetire();
    }, this.retireMs);
    this.retireTimer.unref();
  }

  private send(slot: Slot, batch: Call[]): void {
    const p = batch[0].preload;
    if (p && !slot.loaded.has(p.key)) {
      slot.loaded.add(p.key);
      slot.worker.postMessage({ id: 0, calls: [{ job: p.job, arg: p.arg }] } satisfies JobRequest);
    }
    slot.current = batch;
    slot.startedAt = performance.now();
    // A call in progress keeps the process alive; an idle worker does not.
    slot.worker.ref();
    this.stats.messages++;
    slot.worker.postMessage({ id: batch[0].id, calls: batch.map((c) => ({ job: c.job, arg: c.arg })) } satisfies JobRequest);
  }

  private answered(slot: Slot, r: JobReply): void {
    if (r.id === READY) {
      slot.ready = true;
      // A call sent before counts from now: the start was not the call's time.
      if (slot.current) slot.startedAt = performance.now();
      this.pump();
      return;
    }
    const batch = slot.current;
    if (!batch || batch[0].id !== r.id) return;
    slot.current = undefined;
    slot.idleSince = performance.now();
    slot.worker.unref();
    batch.forEach((call, i) => {
      const res = r.results[i];
      if (res?.ok) call.resolve(res.value);
      else call.reject(new OffloadError(res ? res.error : `${this.name} worker: no answer`));
    });
    this.pump();
  }

  /** A worker is gone: fail its call, forget it; the next call starts another. */
  private lose(slot: Slot, why: string): void {
    if (slot.dead) return;
    slot.dead = true;
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    const batch = slot.current;
    slot.current = undefined;
    try {
      slot.worker.terminate();
    } catch {
      // already gone
    }
    if (why !== "pool closed") msg.warn(`${this.name} worker: ${why}`);
    for (const call of batch ?? []) call.reject(new OffloadError(`${this.name} worker: ${why}`));
    this.pump();
  }
}

/** True when some pool has calls waiting behind workers that are all stuck (busy.ts reports "taken"). */
export function offloadStalled(): boolean {
  for (const p of pools) if (p.stalled) return true;
  return false;
}
