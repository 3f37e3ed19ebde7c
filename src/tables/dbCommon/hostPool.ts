/**
 * dbCommon/hostPool.ts - a pool of database connections over a list of
 * interchangeable servers (a table's `hosts`), with failover: what the
 * mysql and pgsql drivers share. Each driver supplies a PoolDriver (how to
 * open a connection, run one statement, close it, and the reference's log
 * texts); one HostPool per distinct connection configuration is shared by
 * every table (and so every client) of the process that has it.
 *
 * Why a pool: the reference (dict_mysql.c, dict_pgsql.c) holds one
 * connection per table per process and waits for each query in turn, so
 * one slow query stalls every client of that process. Here each lookup
 * takes a connection of its own, many lookups are in flight at once, and
 * the number of connections is bounded (`limit`); lookups beyond the bound
 * wait in arrival order for the next free connection, at most the query
 * time-out.
 *
 * Hosts, as the references treat them: a new connection goes to a host not
 * known to be down, in the order of the hosts' rank (UNIX sockets first,
 * then TCP, then connection URIs for pgsql), at random among equals; idle
 * connections are reused, lowest rank first. A host whose connection
 * attempt fails, or whose connection breaks or times out during a
 * statement, is "down" for the retry interval: lookups skip it and try the
 * other hosts. Unlike the references, a down host is probed in the
 * background every 0.5 s meanwhile (one connection attempt at a time, no
 * lookup waits for it), so a server that comes back answers again within a
 * second; a driver may space the probes of a server that answers but
 * refuses the session (a wrong password) further apart. A statement the server refuses (an SQL error), or a reply the
 * table refuses, moves that lookup on to the next host without marking the
 * host down: the server is answering. A pooled connection found dead at
 * its next statement is replaced by a fresh one to the same host once
 * before the host counts as down (the server may have restarted since it
 * was last used). Connections idle for the idle interval are closed.
 *
 * Reads nothing. Logs: the driver's connect and statement warnings, an
 * info line when a probed host answers again, and with -v each connection
 * event and statement.
 */
import { msg } from "../../log/msg";
import { statsEnabled } from "../../stats/collector";
import { Counters, Op, Outcome, type OutcomeIndex } from "../../stats/counters";
import type { BackendStats } from "../table";

/** One server of a pool, as a `hosts` entry names it. */
export interface PoolHost {
  /** The entry as written in `hosts` (log lines use it). */
  readonly label: string;
  /** Lower ranks are preferred (UNIX sockets 0, TCP 1, ...). */
  readonly rank: number;
}

/**
 * How a statement failed: "server" = the server refused it and the
 * connection is fine; "lost" = the connection is gone; "timeout" = no
 * reply in time (the connection cannot be trusted any more).
 */
export class StatementFailure extends Error {
  constructor(
    readonly kind: "server" | "lost" | "timeout",
    message: string,
  ) {
    super(message);
  }
}

/** A statement or reply the table refuses: the reason is logged, the next host tried. */
export class Refused {
  constructor(readonly reason: string) {}
}

/** Every host failed or is down; the caller answers RETRY. */
export class Unavailable extends Error {}

/** What a driver gives the pool. C = its connection, R = a statement's result. */
export interface PoolDriver<H extends PoolHost, C, R> {
  /** "mysql", "pgsql": for info lines ("pgsql server X is answering again"). */
  readonly kind: string;
  /**
   * Open a connection with its session set up; reject on any failure.
   * `onLost` hears of the connection's end when no statement runs on it.
   */
  open(host: H, onLost: (why: string | undefined) => void): Promise<C>;
  /** Run one statement within timeoutMs; reject with a StatementFailure. */
  run(conn: C, sql: string, timeoutMs: number): Promise<R>;
  /** Close a connection (no reply awaited). */
  close(conn: C): void;
  /** The warning for a failed connection attempt. */
  connectWarning(host: H, e: unknown): string;
  /**
   * The warning for a failed statement or refused reply of table `label`;
   * `cause` is the Refused or StatementFailure it came from.
   */
  statementWarning(label: string, host: H, text: string, cause: Refused | StatementFailure): string;
  /** The text of a probe's failure (-v only). */
  probeText?(host: H, e: unknown): string;
  /**
   * How long after this connection failure to probe the host again (ms).
   * Default 500; a driver waits longer when the server answered and
   * refused the session (a wrong password), so as not to fill its log.
   */
  probeDelay?(e: unknown): number;
}

/** The settings the pool itself uses. */
export interface HostPoolSettings<H extends PoolHost> {
  readonly hosts: readonly H[];
  /** Connections at most (open or being opened). */
  readonly limit: number;
  /** A statement's time-out; also bounds a lookup's wait for a connection. */
  readonly queryTimeoutMs: number;
  readonly idleMs: number;
  readonly retryMs: number;
}

const PROBE_INTERVAL_MS = 500;

interface HostState<H> {
  readonly entry: H;
  /** 0 = up; otherwise skipped by lookups until this time (ms). */
  downUntil: number;
  /** Wait before the next probe (ms). */
  probeDelay: number;
  /** Open (or opening) connections. */
  conns: number;
  probeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Lookups tried on this host (undefined when statistics are off). */
  readonly counters: Counters | undefined;
}

interface Conn<H, C> {
  readonly raw: C;
  readonly host: HostState<H>;
  dead: boolean;
  /** Statements answered on it so far. */
  uses: number;
  lastUsed: number;
}

type Waiter<H, C> = (c: Conn<H, C> | undefined) => void;

function randomPick<T>(items: T[]): T | undefined {
  return items.length === 0 ? undefined : items[Math.floor(Math.random() * items.length)];
}

/** Pools of one driver, by configuration (the key says what makes connections interchangeable). */
export class PoolRegistry<H extends PoolHost, C, R> {
  private readonly pools = new Map<string, HostPool<H, C, R>>();

  constructor(private readonly driver: PoolDriver<H, C, R>) {}

  /** The shared pool for this key (created on first use); release() it when done. */
  acquire(key: string, settings: HostPoolSettings<H>): HostPool<H, C, R> {
    let p = this.pools.get(key);
    if (!p) {
      p = new HostPool(this.driver, settings, () => this.pools.delete(key));
      this.pools.set(key, p);
    }
    p.refs++;
    return p;
  }

  /** Live pools (tests, diagnostics). */
  get size(): number {
    return this.pools.size;
  }
}

export class HostPool<H extends PoolHost, C, R> {
  refs = 0;
  private readonly hosts: HostState<H>[];
  private readonly idle: Conn<H, C>[] = [];
  private readonly waiters: Waiter<H, C>[] = [];
  /** Connections open or being opened. */
  private total = 0;
  private closed = false;
  private sweeper: ReturnType<typeof setInterval> | undefined;
  /** Connections whose slot is still counted in `total`. */
  private readonly counted = new WeakSet<Conn<H, C>>();

  constructor(
    private readonly driver: PoolDriver<H, C, R>,
    readonly settings: HostPoolSettings<H>,
    private readonly onClose: () => void,
  ) {
    const counted = statsEnabled();
    this.hosts = settings.hosts.map((entry) => ({ entry, downUntil: 0, probeDelay: PROBE_INTERVAL_MS, conns: 0, probeTimer: undefined, counters: counted ? new Counters() : undefined }));
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
    this.onClose();
    if (this.sweeper) clearInterval(this.sweeper);
    for (const h of this.hosts) if (h.probeTimer) clearTimeout(h.probeTimer);
    for (const c of this.idle.splice(0)) this.discard(c);
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  /** Each host: connections, limit, set aside until, counts (Table.backends()). */
  backends(): BackendStats[] {
    return this.hosts.map((h) => {
      let idle = 0;
      for (const c of this.idle) if (c.host === h) idle++;
      return { host: h.entry.label, busy: h.conns - idle, open: h.conns, limit: this.settings.limit, downUntil: h.downUntil, counters: h.counters };
    });
  }

  /** Count one attempt of a lookup on a host (statistics). */
  private record(h: HostState<H>, started: number, outcome: OutcomeIndex): void {
    h.counters?.outcome(Op.lookup, outcome, performance.now() - started);
  }

  /**
   * Run one lookup's statement: build(conn) gives the statement for a
   * connection (quoting may depend on it) or refuses; accept() turns the
   * result into the answer or refuses it. Tries hosts until one answers;
   * throws Unavailable when none does (warnings logged on the way).
   * classify() tells the host's statistics what an answer was (default: ok).
   */
  async run<T>(
    label: string,
    build: (conn: C) => string | Refused,
    accept: (r: R, conn: C) => T | Refused,
    classify?: (answer: T) => OutcomeIndex,
  ): Promise<T> {
    const tried = new Set<HostState<H>>();
    const deadline = Date.now() + this.settings.queryTimeoutMs;
    for (;;) {
      const conn = await this.acquire(tried, deadline);
      if (!conn) throw new Unavailable("no database server available");
      let fresh = conn.uses === 0;
      let c = conn;
      for (;;) {
        const sql = build(c.raw);
        if (sql instanceof Refused) {
          msg.warn(this.driver.statementWarning(label, c.host.entry, sql.reason, sql));
          this.giveBack(c);
          tried.add(c.host);
          break;
        }
        if (msg.verbose) msg.info(`expanded and quoted query: >${sql}<`);
        let result: R;
        const started = performance.now();
        try {
          result = await this.statement(c, sql);
        } catch (e) {
          const f = e instanceof StatementFailure ? e : new StatementFailure("lost", String(e));
          if (f.kind === "server" && !c.dead) {
            // The server answered with an error: the host is fine.
            this.giveBack(c);
            msg.warn(this.driver.statementWarning(label, c.host.entry, f.message, f));
            this.record(c.host, started, Outcome.retry);
            tried.add(c.host);
            break;
          }
          this.discard(c);
          if (f.kind !== "timeout" && !fresh) {
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
          msg.warn(this.driver.statementWarning(label, c.host.entry, f.message, f));
          this.record(c.host, started, Outcome.retry);
          this.hostFailed(c.host);
          tried.add(c.host);
          break;
        }
        const out = accept(result, c.raw);
        if (out instanceof Refused) {
          msg.warn(this.driver.statementWarning(label, c.host.entry, out.reason, out));
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
  private async acquire(tried: Set<HostState<H>>, deadline: number): Promise<Conn<H, C> | undefined> {
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

  /** The most recently used idle connection of the best-ranked host, among hosts not tried. */
  private takeIdle(tried: Set<HostState<H>>): Conn<H, C> | undefined {
    let pick = -1;
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const c = this.idle[i];
      if (tried.has(c.host) || c.host.downUntil !== 0) continue;
      if (pick < 0 || c.host.entry.rank < this.idle[pick].host.entry.rank) pick = i;
      if (c.host.entry.rank === 0) break;
    }
    if (pick < 0) return undefined;
    return this.idle.splice(pick, 1)[0];
  }

  /**
   * Where a new connection goes: the best rank, at random among equals.
   * The references also prefer the host their one connection is open to;
   * a pool reuses its idle connections instead, and spreads new ones.
   */
  private pickHost(usable: HostState<H>[]): HostState<H> {
    const best = Math.min(...usable.map((h) => h.entry.rank));
    return randomPick(usable.filter((h) => h.entry.rank === best))!;
  }

  private waitForConnection(deadline: number): Promise<Conn<H, C> | undefined | "timeout"> {
    return new Promise((resolve) => {
      const waiter: Waiter<H, C> = (c) => {
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

  /** Back to the pool after a statement: to the first waiter, else idle. */
  private giveBack(c: Conn<H, C>): void {
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
  private discard(c: Conn<H, C>): void {
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    if (!c.dead) {
      c.dead = true;
      try {
        this.driver.close(c.raw);
      } catch {
        // already gone
      }
    }
    this.uncount(c);
  }

  private uncount(c: Conn<H, C>): void {
    if (!this.counted.has(c)) return;
    this.counted.delete(c);
    this.total--;
    c.host.conns--;
    const w = this.waiters.shift();
    if (w) w(undefined);
  }

  /**
   * Open a connection to a host (counted against the limit). On failure:
   * the driver's warning, and the host is down for the retry interval.
   */
  private async connectTo(host: HostState<H>): Promise<Conn<H, C> | undefined> {
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
      msg.warn(this.driver.connectWarning(host.entry, e));
      this.record(host, started, Outcome.retry);
      this.hostFailed(host, e);
      return undefined;
    }
  }

  /** A connection ended by itself (not during a statement of ours). */
  private connectionLost(c: Conn<H, C>, why: string | undefined): void {
    if (msg.verbose) msg.info(`${this.driver.kind} connection to ${c.host.entry.label} closed${why ? ": " + why : ""}`);
    const i = this.idle.indexOf(c);
    if (i >= 0) this.discard(c);
    else c.dead = true;
  }

  /** One statement on a connection, bounded by the query time-out. */
  private async statement(c: Conn<H, C>, sql: string): Promise<R> {
    if (c.dead) throw new StatementFailure("lost", "connection closed");
    try {
      return await this.driver.run(c.raw, sql, this.settings.queryTimeoutMs);
    } catch (e) {
      // After a time-out the reply may still come: the connection cannot be trusted any more.
      if (e instanceof StatementFailure && e.kind === "timeout") this.discard(c);
      throw e;
    } finally {
      c.uses++;
    }
  }

  /** A connection of ours, session set up; rejects on any failure. */
  private async open(host: HostState<H>): Promise<Conn<H, C>> {
    const holder: { conn?: Conn<H, C> } = {};
    const raw = await this.driver.open(host.entry, (why) => {
      if (holder.conn) this.connectionLost(holder.conn, why);
    });
    const conn: Conn<H, C> = { raw, host, dead: false, uses: 0, lastUsed: Date.now() };
    holder.conn = conn;
    if (msg.verbose) msg.info(`dict_${this.driver.kind}: successful connection to host ${host.entry.label}`);
    return conn;
  }

  // ------------------------------------------------------------ hosts

  /** Mark a host down for the retry interval and start probing it. */
  private hostFailed(h: HostState<H>, e?: unknown): void {
    h.downUntil = Date.now() + this.settings.retryMs;
    h.probeDelay = e === undefined ? PROBE_INTERVAL_MS : (this.driver.probeDelay?.(e) ?? PROBE_INTERVAL_MS);
    for (const c of this.idle.filter((x) => x.host === h)) this.discard(c);
    this.scheduleProbe(h);
  }

  private scheduleProbe(h: HostState<H>): void {
    if (h.probeTimer || this.closed) return;
    h.probeTimer = setTimeout(() => {
      h.probeTimer = undefined;
      void this.probe(h);
    }, h.probeDelay);
    h.probeTimer.unref?.();
  }

  private async probe(h: HostState<H>): Promise<void> {
    if (this.closed || h.downUntil === 0 || Date.now() >= h.downUntil) return;
    if (this.total >= this.settings.limit) {
      this.scheduleProbe(h);
      return;
    }
    this.total++;
    h.conns++;
    let c: Conn<H, C>;
    try {
      c = await this.open(h);
    } catch (e) {
      this.total--;
      h.conns--;
      if (msg.verbose) msg.info(`probe of ${this.driver.kind} server ${h.entry.label}: ${this.driver.probeText?.(h.entry, e) ?? String(e)}`);
      h.probeDelay = this.driver.probeDelay?.(e) ?? PROBE_INTERVAL_MS;
      this.scheduleProbe(h);
      return;
    }
    this.counted.add(c);
    if (this.closed) {
      this.discard(c);
      return;
    }
    if (h.downUntil !== 0) msg.info(`${this.driver.kind} server ${h.entry.label} is answering again`);
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
