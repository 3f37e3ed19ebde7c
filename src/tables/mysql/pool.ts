/**
 * pool.ts - database connections for mysql tables: the shared host pool
 * (dbCommon/hostPool.ts: one pool per distinct connection configuration,
 * shared by every table of the process, `connection_limit` connections,
 * failover, down hosts probed in the background) over mysql2 connections
 * (connection.ts).
 *
 * What is mysql's own: the hosts' ranks (UNIX sockets, "localhost"
 * included, before TCP: mysql_table(5)), the reference's words ("connect
 * to mysql server HOST: REASON", "TYPE:NAME: query failed: REASON"), and
 * how mysql2 reports failures: an error with `fatal` set means the
 * connection is gone; any other is the server refusing the statement.
 *
 * Each connection has the session the reference's client library would
 * set up, and returns values as byte strings.
 *
 * Statistics: the shared pool counts every attempt of a lookup on a host
 * (hostPool.ts backends()); the table's classify() says what an answer was.
 *
 * Reads: nothing. Logs: see hostPool.ts.
 */
import type { OutcomeIndex } from "../../stats/counters";
import type { BackendStats } from "../table";
import type { Connection, QueryError } from "mysql2";
import { HostPool, PoolRegistry, Refused, StatementFailure, type PoolDriver, type PoolHost } from "../dbCommon/hostPool";
import { connectErrorText, openConnection, queryErrorText, runStatement, TimeoutError, type ConnectionSettings, type ResultSet } from "./connection";
import type { HostEntry, Target } from "./hosts";

export type { ResultSet } from "./connection";
export { Refused, Unavailable } from "../dbCommon/hostPool";

/** Everything that makes two tables' connections interchangeable. */
export interface PoolSettings extends ConnectionSettings {
  hosts: readonly HostEntry[];
  targets: readonly Target[];
  queryTimeoutMs: number;
  limit: number;
  idleMs: number;
  retryMs: number;
}

/** A `hosts` entry with where it connects and the session it sets up. */
interface MysqlHost extends PoolHost {
  readonly target: Target;
  readonly session: ConnectionSettings;
}

/** One open connection and the quoting its session needs. */
interface MysqlConn {
  readonly raw: Connection;
  readonly quote: (s: string) => string;
}

const DRIVER: PoolDriver<MysqlHost, MysqlConn, ResultSet[]> = {
  kind: "mysql",
  async open(host, onLost) {
    const { raw, quote } = await openConnection(host.target, host.session, (e) => onLost(e?.message));
    return { raw, quote };
  },
  async run(conn, sql, timeoutMs) {
    try {
      return await runStatement(conn.raw, sql, timeoutMs);
    } catch (e) {
      if (e instanceof TimeoutError) throw new StatementFailure("timeout", e.message);
      const err = e as QueryError;
      throw new StatementFailure(err.fatal ? "lost" : "server", queryErrorText(err));
    }
  },
  close(conn) {
    conn.raw.destroy();
  },
  connectWarning: (host, e) => `connect to mysql server ${host.label}: ${connectErrorText(e as Error, host.target)}`,
  statementWarning: (label, _host, text) => `${label}: query failed: ${text}`,
  probeText: (host, e) => connectErrorText(e as Error, host.target),
};

const registry = new PoolRegistry(DRIVER);

/** A mysql pool: statements are built with the connection's quoting. */
export class Pool {
  constructor(private readonly pool: HostPool<MysqlHost, MysqlConn, ResultSet[]>) {}

  /** Connections open or being opened (tests, bench). */
  get connections(): number {
    return this.pool.connections;
  }

  /** Lookups waiting for a connection. */
  get waiting(): number {
    return this.pool.waiting;
  }

  run<T>(label: string, build: (quote: (s: string) => string) => string, accept: (sets: ResultSet[]) => T | Refused, classify?: (answer: T) => OutcomeIndex): Promise<T> {
    return this.pool.run(label, (c) => build(c.quote), (sets) => accept(sets), classify);
  }

  /** Each host of the shared pool (Table.backends()). */
  backends(): BackendStats[] {
    return this.pool.backends();
  }

  release(): void {
    this.pool.release();
  }
}

/** The shared pool for these settings (created on first use). */
export function acquirePool(settings: PoolSettings): Pool {
  const hosts: MysqlHost[] = settings.hosts.map((h, i) => ({ label: h.label, rank: h.kind === "unix" ? 0 : 1, target: settings.targets[i], session: settings }));
  const { limit, queryTimeoutMs, idleMs, retryMs } = settings;
  return new Pool(registry.acquire(JSON.stringify(settings), { hosts, limit, queryTimeoutMs, idleMs, retryMs }));
}

/** Number of live pools (tests, diagnostics). */
export function poolCount(): number {
  return registry.size;
}
