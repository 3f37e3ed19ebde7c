/**
 * pgsql/pool.ts - database connections for pgsql tables: the shared host
 * pool (dbCommon/hostPool.ts: one pool per distinct server configuration,
 * shared by every table of the process, `connection_limit` connections,
 * failover, down hosts probed in the background) over Bun SQL connections
 * (connection.ts).
 *
 * What is pgsql's own: the hosts' ranks (UNIX sockets, then TCP, then
 * URIs, as dict_pgsql_get_active() tries them), and the reference's words:
 *   connect to pgsql server HOST: LIBPQ-TEXT
 *   dict_pgsql: cannot set the encoding to ENC, skipping HOST
 *   pgsql query failed: fatal error from host HOST: LIBPQ-TEXT
 *   pgsql query failed: unknown code 0xN from host HOST
 *   dict pgsql: (host HOST) cannot escape input string: LIBPQ-TEXT
 * (libpq's texts end in a newline, which the log shows as '?', as the
 * reference's does).
 *
 * Reads: nothing. Logs: see hostPool.ts.
 */
import { HostPool, PoolRegistry, Refused, type PoolDriver } from "../dbCommon/hostPool";
import { closeConnection, ConnectFailure, openConnection, runStatement, type PgConn, type PgResult, type SessionSettings } from "./connection";
import type { PgHost } from "./hosts";

/** A `hosts` entry with the session its connections set up. */
interface PoolPgHost extends PgHost {
  readonly session: SessionSettings;
}

/** A quoting failure: the reference logs it in its own words and tries the next host. */
export class EscapeRefused extends Refused {}

const DRIVER: PoolDriver<PoolPgHost, PgConn, PgResult> = {
  kind: "pgsql",
  open: (host, onLost) => openConnection(host, host.session, onLost),
  run: runStatement,
  close: closeConnection,
  connectWarning(host, e) {
    if (e instanceof ConnectFailure && e.encoding !== undefined) return `dict_pgsql: cannot set the encoding to ${e.encoding}, skipping ${host.label}`;
    return `connect to pgsql server ${host.label}: ${(e as Error).message}`;
  },
  statementWarning(_label, host, text, cause) {
    if (cause instanceof EscapeRefused) return `dict pgsql: (host ${host.label}) cannot escape input string: ${text}`;
    if (/^unknown code 0x[0-9a-f]+$/.test(text)) return `pgsql query failed: ${text} from host ${host.label}`;
    return `pgsql query failed: fatal error from host ${host.label}: ${text}`;
  },
  probeText: (_host, e) => (e as Error).message,
  // Credentials (28xxx), a missing database (3D000) or role: the server is up and says no. Ask it
  // again every 5 s, not twice a second (each refusal is a line in its log). A server starting up
  // (57P03) and everything else: every 0.5 s.
  probeDelay: (e) => (e instanceof ConnectFailure && e.serverRefused && /^(28|3D)/.test(e.sqlstate ?? "") ? 5000 : 500),
};

const registry = new PoolRegistry(DRIVER);

/** Everything that makes two tables' connections interchangeable. */
export interface PgPoolSettings {
  hosts: readonly PgHost[];
  session: SessionSettings;
  limit: number;
  queryTimeoutMs: number;
  idleMs: number;
  retryMs: number;
}

export type PgPool = HostPool<PoolPgHost, PgConn, PgResult>;

/** The shared pool for these settings (created on first use); release() it when done. */
export function acquirePgPool(s: PgPoolSettings): PgPool {
  const hosts: PoolPgHost[] = s.hosts.map((h) => ({ ...h, session: s.session }));
  return registry.acquire(JSON.stringify(s), { hosts, limit: s.limit, queryTimeoutMs: s.queryTimeoutMs, idleMs: s.idleMs, retryMs: s.retryMs });
}

/** Live pools (tests, diagnostics). */
export function pgPoolCount(): number {
  return registry.size;
}
