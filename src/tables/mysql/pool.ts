/**
 * pool.ts - database connections for mysql tables: one Pool per distinct
 * connection configuration, shared by every table (and so every client)
 * of the process that has that configuration.
 *
 * Why a pool: the reference holds one connection per table per process and
 * waits for each query in turn, so one slow query stalls every client of
 * that process. Here each lookup takes a connection of its own, many
 * lookups are in flight at once, and the number of connections is bounded
 * (`connection_limit`, default 16); lookups beyond the bound wait in
 * arrival order for the next free connection, at most `query_timeout`.
 *
 * Hosts, as the reference treats them (dict_mysql.c): a new connection
 * goes to a host not known to be down, UNIX-socket hosts first, at random
 * among equals; idle connections are reused (UNIX-socket ones first). A host whose connection attempt fails, or whose connection
 * breaks or times out during a query, is "down" for `retry_interval`
 * seconds: lookups skip it and try the other hosts (failover). Unlike the
 * reference, a down host is probed in the background every 0.5 s during
 * that time (one connection attempt at a time, no lookup waits for it), so
 * a database that comes back answers again within a second. A query that
 * the server refuses (an SQL error) moves that lookup on to the next host
 * without marking the host down: the server is answering. A pooled
 * connection that turns out to be dead before its first reply is replaced
 * by a fresh one to the same host once before the host counts as down (the
 * server may have restarted since it was last used). Connections idle for
 * `idle_interval` seconds are closed.
 *
 * Each connection (connection.ts) has the session the reference's client
 * library would set up, and returns values as byte strings.
 *
 * Statistics: backends() reports each host (connections busy and open,
 * the pool's limit, set aside until when) with its Counters: every
 * attempt of a lookup on a host is counted there with the query's time
 * and outcome (a connection that cannot be made, a failed or refused
 * query: retry; an answer: what the table's classify() makes of it).
 *
 * Reads: nothing. Logs: the reference's "connect to mysql server HOST:
 * REASON" and "TYPE:NAME: query failed: REASON" warnings; an info line
 * when a probed host answers again; with -v, each connection event.
 */
import type { Connection, QueryError } from "mysql2";
import { msg } from "../../log/msg";
import { connectErrorText, openConnection, queryErrorText, runStatement, TimeoutError, type ConnectionSettings, type ResultSet } from "./connection";
import type { HostEntry, Target } from "./hosts";
import { statsEnabled } from "../../stats/collector";
import { Counters, Op, Outcome, type OutcomeIndex } from "../../stats/counters";
import type { BackendStats } from "../table";

export type { ResultSet } from "./connection";

/** Everything that makes two tables' connections interchangeable. */
export interface PoolSettings extends ConnectionSettings {
  hosts: readonly HostEntry[];
  targets: readonly Target[];
  queryTimeoutMs: number;
  limit: number;
  idleMs: number;
  retryMs: number;
}

/** A reply the table refuses (e.g. no result set): try the next host. */
export class Refused {
  constructor(readonly reason: string) {}
}

/** Every host failed or is down; the caller answers RETRY. */
export class Unavailable extends Error {}

const PROBE_INTERVAL_MS = 500;

interface HostState {
  readonly entry: HostEntry;
  readonly target: Target;
  /** 0 = up; otherwise skipped by lookups until this time (ms). */
  downUntil: number;
  /** Open (or opening) connections. */
  conns: number;
  probeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Lookups tried on this host (undefined when statistics are off). */
  readonly counters: Counters | undefined;
}

interface Conn {
  readonly raw: Connection;
  readonly host: HostState;
  readonly quote: (s: string) => string;
  dead: boolean;
  /** Queries answered on it so far. */
  uses: number;
  lastUsed: number;
}

type Waiter = (c: Conn | undefined) => void;

const pools = new Map<string, Pool>();

/** The shared pool for these settings (created on first use). */
export function acquirePool(settings: PoolSettings): Pool {
  const key = JSON.stringify(settings);
  let p = pools.get(key);
  if (!p) {
    p = new Pool(key, settings);
    pools.set(key, p);
  }
  p.refs++;
  return p;
}

/** Number of live pools (tests, diagnostics). */
export function poolCount(): number {
  return pools.size;
}

function shuffledPick<T>(items: T[]): T | undefined {
  return items.length === 0 ? undefined : items[Math.floor(Math.random() * items.length)];
}

export class Pool {
  refs = 0;
  private readonly hosts: HostState[];
  private readonly idle: Conn[] = [];
  private readonly waiters: Waiter[] = [];
  /** Connections open or being opened. */
  private total = 0;
  private closed = false;
  private sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly key: string,
    readonly settings: PoolSettings,
  ) {
    const counted = statsEnabled();
    this.hosts = settings.hosts.map((entry, i) => ({ entry, target: settings.targets[i], downUntil: 0, conns: 0, probeTimer: undefined, counters: counted ? new Counters() : undefined }));
  }

  /** Each host: connections, limit, set aside until, counts (Table.backends()). */
  backends(): BackendStats[] {
    return this.hosts.map((h) => {
      let idle = 0;
      for (const c of this.idle) if (c.host === h) idle++;
      return { host: h.entry.label, busy: h.conns - idle, open: h.conns, limit: this.settings.limit, downUntil: h.downUntil, counters: h.counters };
    });
  }

  private record(h: HostState, started: number, outcome: OutcomeIndex): void {
    h.counters?.outcome(Op.lookup, outcome, performance.now() - started);
  }

  /** Connections open or being opened (tests, bench). */
  get connections(): number {
    return this.total;
  }

  /** Lookups waiting for a connection. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Give up one table's share; the last one closes the connections. */
  release(): void {
    if (--this.refs > 0) return;
    this.closed = true;
    pools.delete(this.key);
    if (this.sweeper) clearInterval(this.sweeper);
    for (const h of this.hosts) if (h.probeTimer) clearTimeout(h.probeTimer);
    for (const c of this.idle.splice(0)) this.discard(c);
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  /**
   * Run one lookup's statement: build(quote) gives the SQL for a
   * connection (quoting depends on it), accept() turns the server's result
   * sets into the answer or refuses them. Tries hosts until one answers;
   * throws Unavailable when none does (warnings logged on the way).
   * classify() tells the host's statistics what an answer was (default: ok).
   */
  async run<T>(
    label: string,
    build: (quote: (s: string) => string) => string,
    accept: (sets: ResultSet[]) => T | Refused,
    classify?: (answer: T) => OutcomeIndex,
  ): Promise<T> {
    const tried = new Set<HostState>();
    const deadline = Date.now() + this.settings.queryTimeoutMs;
    for (;;) {
      const conn = await this.acquire(tried, deadline);
      if (!conn) throw new Unavailable("no database server available");
      let fresh = conn.uses === 0;
      let c = conn;
      for (;;) {
        const sql = build(c.quote);
        if (msg.verbose) msg.info(`expanded and quoted query: >${sql}<`);
        let sets: ResultSet[];
        const started = performance.now();
        try {
          sets = await this.query(c, sql);
        } catch (e) {
          if (e instanceof TimeoutError) {
            msg.warn(`${label}: query failed: ${e.message}`);
            this.record(c.host, started, Outcome.retry);
            this.hostFailed(c.host);
            tried.add(c.host);
            break;
          }
          const err = e as QueryError;
          if (!err.fatal && !c.dead) {
            // The server answered with an error: the host is fine.
            this.giveBack(c);
            msg.warn(`${label}: query failed: ${queryErrorText(err)}`);
            this.record(c.host, started, Outcome.retry);
            tried.add(c.host);
            break;
          }
          this.discard(c);
          if (!fresh) {
            // A pooled connection that died while idle: one fresh try on the same host.
            fresh = true;
            const again = await this.connectTo(c.host);
            if (again) {
              c = again;
              continue;
            }
            tried.add(c.host);
            break;
          }
          msg.warn(`${label}: query failed: ${queryErrorText(err)}`);
          this.record(c.host, started, Outcome.retry);
          this.hostFailed(c.host);
          tried.add(c.host);
          break;
        }
        const out = accept(sets);
        if (out instanceof Refused) {
          msg.warn(`${label}: query failed: ${out.reason}`);
          this.record(c.host, started, Outcome.retry);
          this.giveBack(c);
          tried.add(c.host);
          break;
        }
        if (msg.verbose) msg.info(`${label}: successful query result from host ${c.host.entry.label}`);
        this.record(c.host, started, classify ? classify(out) : Outcome.ok);
        this.giveBack(c);
        return out;
      }
    }
  }

  // ------------------------------------------------------------ connections

  /** A connection for a lookup that has already tried `tried`, or undefined. */
  private async acquire(tried: Set<HostState>, deadline: number): Promise<Conn | undefined> {
    for (;;) {
      if (this.closed) return undefined;
      const idle = this.takeIdle(tried);
      if (idle) return idle;
      const now = Date.now();
      const usable = this.hosts.filter((h) => !tried.has(h) && (h.downUntil === 0 || h.downUntil <= now));
      if (usable.length === 0) return undefined;
      if (this.total < this.settings.limit) {
        const host = this.pickHost(usable);
        const conn = await this.connectTo(host);
        if (conn) return conn;
        tried.add(host);
        continue;
      }
      const handed = await this.waitForConnection(deadline);
      if (handed === "timeout") {
        throw new Unavailable(`no free database connection within ${this.settings.queryTimeoutMs / 1000} s`);
      }
      if (handed) {
        if (!tried.has(handed.host) && handed.host.downUntil === 0) return handed;
        // Not usable for this lookup: make room for one it can use.
        this.discard(handed);
      }
    }
  }

  private takeIdle(tried: Set<HostState>): Conn | undefined {
    let pick = -1;
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const c = this.idle[i];
      if (tried.has(c.host) || c.host.downUntil !== 0) continue;
      if (c.host.entry.kind === "unix") {
        pick = i;
        break;
      }
      if (pick < 0) pick = i;
    }
    if (pick < 0) return undefined;
    return this.idle.splice(pick, 1)[0];
  }

  /**
   * Where a new connection goes: UNIX-socket hosts before TCP ones, at
   * random among equals (mysql_table(5)). The reference also prefers the
   * host its one connection is open to; a pool reuses its idle connections
   * instead, and spreads new ones over the hosts.
   */
  private pickHost(usable: HostState[]): HostState {
    const unix = usable.filter((h) => h.entry.kind === "unix");
    return shuffledPick(unix.length > 0 ? unix : usable)!;
  }

  private waitForConnection(deadline: number): Promise<Conn | undefined | "timeout"> {
    return new Promise((resolve) => {
      const waiter: Waiter = (c) => {
        clearTimeout(timer);
        resolve(c);
      };
      const timer = setTimeout(
        () => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          resolve("timeout");
        },
        Math.max(0, deadline - Date.now()),
      );
      this.waiters.push(waiter);
    });
  }

  /** Back to the pool after a query: to the first waiter, else idle. */
  private giveBack(c: Conn): void {
    if (c.dead || this.closed || c.host.downUntil !== 0) {
      this.discard(c);
      return;
    }
    c.lastUsed = Date.now();
    const w = this.waiters.shift();
    if (w) {
      w(c);
      return;
    }
    this.idle.push(c);
    this.startSweeper();
  }

  /** Close a connection and free its slot (wakes one waiter). */
  private discard(c: Conn): void {
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    if (!c.dead) {
      c.dead = true;
      try {
        c.raw.destroy();
      } catch {
        // already gone
      }
    }
    this.uncount(c);
  }

  /** Connections whose slot is still counted in `total`. */
  private readonly counted = new WeakSet<Conn>();

  private uncount(c: Conn): void {
    if (!this.counted.has(c)) return;
    this.counted.delete(c);
    this.total--;
    c.host.conns--;
    const w = this.waiters.shift();
    if (w) w(undefined);
  }

  /**
   * Open a connection to a host (counted against the limit). On failure:
   * the reference's warning, and the host is down for retry_interval.
   */
  private async connectTo(host: HostState): Promise<Conn | undefined> {
    this.total++;
    host.conns++;
    const started = performance.now();
    try {
      const c = await this.open(host);
      this.counted.add(c);
      if (this.closed) {
        this.discard(c);
        return undefined;
      }
      host.downUntil = 0;
      return c;
    } catch (e) {
      this.total--;
      host.conns--;
      const w = this.waiters.shift();
      if (w) w(undefined);
      msg.warn(`connect to mysql server ${host.entry.label}: ${connectErrorText(e as Error, host.target)}`);
      this.record(host, started, Outcome.retry);
      this.hostFailed(host);
      return undefined;
    }
  }

  /** A connection reported an error or end by itself (not during our query). */
  private connectionLost(c: Conn, e: QueryError | undefined): void {
    if (msg.verbose) msg.info(`mysql connection to ${c.host.entry.label} closed${e ? ": " + e.message : ""}`);
    const i = this.idle.indexOf(c);
    if (i >= 0) this.discard(c);
    else c.dead = true;
  }

  /** One statement on a connection, bounded by query_timeout. */
  private async query(c: Conn, sql: string): Promise<ResultSet[]> {
    if (c.dead) throw Object.assign(new Error("connection closed"), { fatal: true });
    try {
      return await runStatement(c.raw, sql, this.settings.queryTimeoutMs);
    } catch (e) {
      // After a time-out the reply may still come: the connection cannot be trusted any more.
      if (e instanceof TimeoutError) this.discard(c);
      throw e;
    } finally {
      c.uses++;
    }
  }

  /** A connection of ours, session set up; rejects on any failure. */
  private async open(host: HostState): Promise<Conn> {
    const holder: { conn?: Conn } = {};
    const { raw, quote } = await openConnection(host.target, this.settings, (e) => {
      if (holder.conn) this.connectionLost(holder.conn, e);
    });
    const conn: Conn = { raw, host, quote, dead: false, uses: 0, lastUsed: Date.now() };
    holder.conn = conn;
    if (msg.verbose) msg.info(`dict_mysql: successful connection to host ${host.entry.label}`);
    return conn;
  }

  // ------------------------------------------------------------ hosts

  /** Mark a host down for retry_interval and start probing it. */
  private hostFailed(h: HostState): void {
    h.downUntil = Date.now() + this.settings.retryMs;
    for (const c of this.idle.filter((x) => x.host === h)) this.discard(c);
    this.scheduleProbe(h);
  }

  private scheduleProbe(h: HostState): void {
    if (h.probeTimer || this.closed) return;
    h.probeTimer = setTimeout(() => {
      h.probeTimer = undefined;
      void this.probe(h);
    }, PROBE_INTERVAL_MS);
    h.probeTimer.unref?.();
  }

  private async probe(h: HostState): Promise<void> {
    if (this.closed || h.downUntil === 0 || Date.now() >= h.downUntil) return;
    if (this.total >= this.settings.limit) {
      this.scheduleProbe(h);
      return;
    }
    this.total++;
    h.conns++;
    let c: Conn;
    try {
      c = await this.open(h);
    } catch (e) {
      this.total--;
      h.conns--;
      if (msg.verbose) msg.info(`probe of mysql server ${h.entry.label}: ${connectErrorText(e as Error, h.target)}`);
      this.scheduleProbe(h);
      return;
    }
    this.counted.add(c);
    if (h.downUntil !== 0) msg.info(`mysql server ${h.entry.label} is answering again`);
    h.downUntil = 0;
    this.giveBack(c);
  }

  // ------------------------------------------------------------ idle connections

  private startSweeper(): void {
    if (this.sweeper || this.closed) return;
    const every = Math.min(this.settings.idleMs, 1000);
    this.sweeper = setInterval(() => {
      const limit = Date.now() - this.settings.idleMs;
      for (const c of this.idle.filter((x) => x.lastUsed <= limit)) this.discard(c);
      if (this.total === 0 && this.sweeper) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
    }, every);
    this.sweeper.unref?.();
  }
}
