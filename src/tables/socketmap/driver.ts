/**
 * socketmap/driver.ts - the "socketmap" table type: lookups sent to a server in
 * Sendmail's socket map protocol (Postfix util/dict_sockmap.c,
 * socketmap_table(5)). The table name is SERVER:NAME where SERVER is
 * unix:PATHNAME, local:PATHNAME or inet:HOST:PORT (split at the LAST ':');
 * each lookup sends the netstring "NAME KEY" and reads one netstring reply:
 *   "OK VALUE"      found (a bare "OK" is not found, as in the reference);
 *   "NOTFOUND ..."  not found;
 *   "TEMP ...", "TIMEOUT ...", anything else: RETRY with a warning;
 *   "PERM ...":     CONFIG with a warning.
 * Lookup only, read service only, refused for security-sensitive data
 * (NO_UNAUTH at open), with the reference's texts.
 *
 * Connections: tables naming the same SERVER share one pool (the reference
 * shares one client handle); each connection carries one request at a time
 * and up to MAX_CONNECTIONS requests are in flight per server, so a slow
 * answer delays only the requests queued behind it for that server. The
 * reference's limits apply: 100 s per connect or reply, replies up to
 * 100000 bytes, idle connections closed after 10 s, none reused after
 * 100 s. As in the reference, a connection that the server closed (EOF
 * before a reply, not a time-out) is retried once on a new connection, so
 * server restarts are transparent.
 *
 * Deliberate difference: after a time-out or a malformed reply the
 * reference keeps the connection, and the late or left-over bytes are
 * read as the answer to a later request; here the connection is closed.
 *
 * Statistics: backends() reports the pool's server (SERVER) with its
 * connections and the outcome and time of each lookup sent to it (net/pool.ts).
 *
 * Logs (reference wording): "connect to ENDPOINT: ERRNO", "table
 * socketmap:NAME lookup error: ERRNO|unexpected disconnect|time limit
 * exceeded|input format error|input exceeds size limit", "socketmap:NAME
 * socketmap server temporary|timeout|permanent|unknown error[: TEXT]".
 */
import { DictFlag } from "../../protocol/constants";
import { msg } from "../../log/msg";
import { TableError, type BackendStats, type OpenArgs, type Table } from "../table";
import { lowercaseAscii } from "../utf8";
import { cString } from "../../util/ctype";
import { warnConnectFailed, type ParseStep } from "../net/connection";
import { Pool } from "../net/pool";
import { parseService } from "../net/endpoint";
import { NETSTRING_ERROR_TEXT, decodeNetstring, encodeNetstring, type NetstringError } from "../net/netstring";
import { printableWith } from "../net/text";

const TYPE = "socketmap";

/** The reference's limits (dict_sockmap.c); tests may shorten them. */
export const socketmapLimits = {
  timeoutMs: 100_000,
  maxReply: 100_000,
  maxIdleMs: 10_000,
  maxTtlMs: 100_000,
  /** Ours: connections (requests in flight) per server. */
  maxConnections: 8,
};

/** One pool per SERVER string, shared by every table that names it. */
const pools = new Map<string, { pool: Pool; refs: number; endpoint: string }>();

function parseReply(buf: string): ParseStep<string> {
  const r = decodeNetstring(buf, socketmapLimits.maxReply);
  return r.kind === "error" ? { kind: "error", error: r.error } : r;
}

class SocketmapTable implements Table {
  flags: number;

  constructor(
    private readonly name: string,
    private readonly server: string,
    private readonly mapName: string,
    private readonly pool: Pool,
    private readonly endpoint: string,
    flags: number,
  ) {
    this.flags = flags | DictFlag.PATTERN;
  }

  private failed(what: string): TableError {
    return new TableError("retry", `table ${TYPE}:${this.name} lookup error: ${what}`);
  }

  /** One round trip; retried once on a new connection when the server closed it. */
  private async exchange(query: string): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      let conn;
      try {
        conn = (await this.pool.acquire()).conn;
      } catch (err) {
        throw this.failed(warnConnectFailed(this.endpoint, err));
      }
      conn.send(query);
      const r = await conn.read(parseReply, socketmapLimits.timeoutMs);
      if (r.kind === "ok") {
        this.pool.release(conn, true);
        return r.value;
      }
      this.pool.discard(conn);
      if (r.kind === "eof" && attempt === 0) continue;
      const err: NetstringError = r.kind === "error" ? (r.error as NetstringError) : r.kind;
      throw this.failed(NETSTRING_ERROR_TEXT[err]);
    }
  }

  lookup(key: string, flags: number): Promise<string | undefined> {
    return this.pool.counted(this.ask(key, flags));
  }

  /** The server's statistics (shared by every table naming it). */
  backends(): BackendStats[] {
    return [this.pool.backendStats(this.server)];
  }

  private async ask(key: string, flags: number): Promise<string | undefined> {
    if (msg.verbose) msg.info(`dict_sockmap_lookup: key ${key}`);
    const k = flags & DictFlag.FOLD_MUL ? lowercaseAscii(key) : key;
    const reply = cString(await this.exchange(encodeNetstring(`${this.mapName} ${k}`)));
    const sp = reply.indexOf(" ");
    const word = sp < 0 ? reply : reply.slice(0, sp);
    const payload = sp < 0 ? undefined : reply.slice(sp + 1);
    if (word === "OK") return payload;
    if (word === "NOTFOUND") return undefined;
    let what: string;
    let kind: "retry" | "config" = "retry";
    if (word === "TEMP") what = "temporary";
    else if (word === "TIMEOUT") what = "timeout";
    else if (word === "PERM") {
      what = "permanent";
      kind = "config";
    } else what = "unknown";
    const text = (payload ?? "").replace(/^[ \t\n\v\f\r]+/, "");
    const detail = text ? `: ${printableWith(text, "?").slice(0, 200)}` : "";
    throw new TableError(kind, `${TYPE}:${this.name} socketmap server ${what} error${detail}`);
  }

  close(): void {
    const entry = pools.get(this.server);
    if (entry && --entry.refs === 0) {
      entry.pool.close();
      pools.delete(this.server);
    }
  }
}

export function open(args: OpenArgs): Table {
  const { name, flags } = args;
  const colon = name.lastIndexOf(":");
  if (colon < 0) throw new TableError("retry", `${TYPE} requires server:socketmap argument`);
  const server = name.slice(0, colon);
  const mapName = name.slice(colon + 1);
  let entry = pools.get(server);
  if (entry === undefined) {
    const ep = parseService(server);
    // The reference exits on these (msg_fatal): CONFIG for this table only.
    if ("err" in ep) throw new TableError("config", ep.err);
    const pool = new Pool(ep, {
      maxConnections: socketmapLimits.maxConnections,
      connectTimeoutMs: socketmapLimits.timeoutMs,
      maxIdleMs: socketmapLimits.maxIdleMs,
      maxTtlMs: socketmapLimits.maxTtlMs,
    });
    entry = { pool, refs: 0, endpoint: server.slice(server.indexOf(":") + 1) };
    pools.set(server, entry);
  }
  entry.refs++;
  return new SocketmapTable(name, server, mapName, entry.pool, entry.endpoint, flags);
}
