/**
 * pool.ts - a few client connections to one table server, each carrying
 * one request at a time (see connection.ts for why there is no
 * pipelining). A request takes an idle connection, or opens a new one
 * while fewer than maxConnections exist, or waits for one to come free.
 * So lookups to a server proceed in parallel up to that limit, and a
 * stalled server holds only the requests queued for it: every other table
 * has its own pool and every wait here is asynchronous.
 *
 * Like Postfix's auto_clnt, a connection idle for maxIdleMs or older than
 * maxTtlMs is closed instead of reused (0 = no limit), and one the server
 * closed is dropped as soon as that is noticed.
 *
 * Statistics: the pool reports its server through backends() (busy and
 * open connections, its limit) and keeps the server's Counters, which
 * the table driver fills as each exchange ends (record()); a server here
 * is never set aside (socketmap and tcp retry as the reference does).
 *
 * Reads and logs nothing.
 */
import { statsEnabled } from "../../stats/collector";
import { Counters, Op, Outcome, type OutcomeIndex } from "../../stats/counters";
import { TableError, type BackendStats } from "../table";
import { Connection, type Endpoint } from "./connection";

export interface PoolOptions {
  /** Connections open (or opening) at once, at most. */
  maxConnections: number;
  connectTimeoutMs: number;
  /** Close a connection idle this long (0: never). */
  maxIdleMs: number;
  /** Do not reuse a connection older than this (0: no limit). */
  maxTtlMs: number;
}

export class Pool {
  private readonly idle: Connection[] = [];
  private open = 0;
  private readonly waiters: Array<() => void> = [];
  private sweeper: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  /** This server's statistics (undefined when statistics are off). */
  readonly counters = statsEnabled() ? new Counters() : undefined;

  constructor(
    readonly endpoint: Endpoint,
    private readonly opts: PoolOptions,
  ) {}

  /** Count one lookup exchange with the server that ended now; started = performance.now() at its start. */
  record(started: number, outcome: OutcomeIndex): void {
    this.counters?.outcome(Op.lookup, outcome, performance.now() - started);
  }

  /**
   * A lookup's answer, counted for this server when it settles: a value is
   * ok, undefined not found, a TableError its kind, anything else retry.
   */
  counted<T extends string | undefined>(answer: Promise<T>): Promise<T> {
    if (this.counters === undefined) return answer;
    const started = performance.now();
    return answer.then(
      (v) => {
        this.record(started, v === undefined ? Outcome.notfound : Outcome.ok);
        return v;
      },
      (e: unknown) => {
        this.record(started, e instanceof TableError && e.kind === "config" ? Outcome.config : Outcome.retry);
        throw e;
      },
    );
  }

  /** What backends() reports for this pool's server, named `host`. */
  backendStats(host: string): BackendStats {
    return { host, busy: this.open - this.idle.length, open: this.open, limit: this.opts.maxConnections, downUntil: 0, counters: this.counters };
  }

  /** Connections open or opening now (tests). */
  get size(): number {
    return this.open;
  }

  private fit(c: Connection, now: number): boolean {
    const o = this.opts;
    return c.usable && (o.maxIdleMs <= 0 || now - c.lastUsed < o.maxIdleMs) && (o.maxTtlMs <= 0 || now - c.born < o.maxTtlMs);
  }

  /**
   * A connection for one request, and whether it is new. Rejects with a
   * ConnectError when a new connection cannot be made.
   */
  async acquire(): Promise<{ conn: Connection; fresh: boolean }> {
    for (;;) {
      const now = Date.now();
      while (this.idle.length > 0) {
        const c = this.idle.pop() as Connection;
        if (this.fit(c, now)) return { conn: c, fresh: false };
        this.discard(c);
      }
      if (this.open < this.opts.maxConnections) {
        this.open++;
        try {
          return { conn: await Connection.open(this.endpoint, this.opts.connectTimeoutMs), fresh: true };
        } catch (err) {
          this.open--;
          this.wakeOne();
          throw err;
        }
      }
      await new Promise<void>((res) => this.waiters.push(res));
    }
  }

  /** Give a connection back: kept for the next request when reusable, else closed. */
  release(conn: Connection, reusable: boolean): void {
    if (reusable && !this.closed && this.fit(conn, Date.now())) {
      this.idle.push(conn);
      this.startSweeper();
      this.wakeOne();
    } else {
      this.discard(conn);
    }
  }

  /** Close a connection that was taken from the pool. */
  discard(conn: Connection): void {
    conn.close();
    this.open--;
    this.wakeOne();
  }

  private wakeOne(): void {
    this.waiters.shift()?.();
  }

  /** Close idle connections that are past their limits or closed by the server. */
  private startSweeper(): void {
    if (this.sweeper !== undefined) return;
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (let i = this.idle.length - 1; i >= 0; i--) {
        const c = this.idle[i];
        if (!this.fit(c, now)) {
          this.idle.splice(i, 1);
          this.discard(c);
        }
      }
      if (this.idle.length === 0 && this.sweeper !== undefined) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
    }, 1000);
    (this.sweeper as { unref?: () => void }).unref?.();
  }

  /** Close every idle connection; busy ones close when released. */
  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) this.discard(c);
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}
