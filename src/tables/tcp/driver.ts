/**
 * tcp/driver.ts - the "tcp" table type: lookups sent to a server in the
 * tcp_table(5) protocol (Postfix util/dict_tcp.c). The table name is
 * HOST:PORT ([host]:port, :port or a bare port for localhost). Each lookup
 * sends "get KEY\n" with the key %XX-quoted ('%', whitespace and
 * unprintable bytes) and reads one reply line (at most 4096 bytes):
 *   "2xx VALUE"  found; VALUE is %XX-decoded (a %00 ends it, as in C);
 *   "5xx ..."    not found;
 *   "4xx ..."    RETRY, silently, and the connection is closed;
 *   other codes, or a line that is not "DDD<space>..." with valid %XX:
 *                RETRY with a warning, connection closed.
 * A connect failure, an EOF or an over-long line is retried: up to 10
 * attempts one second apart (warning each time), then RETRY, as the
 * reference. The waits are asynchronous: other lookups go on meanwhile.
 * Lookup only, read service only, refused for security-sensitive data.
 *
 * Connections: a small pool per table (one request per connection at a
 * time; the protocol has no request identifiers), so several lookups of
 * one table are in flight at once; the reference has one connection per
 * table and one lookup at a time. Time limit 100 s per connect and reply.
 *
 * Statistics: backends() reports the pool's server (HOST:PORT) with its
 * connections and the outcome and time of each lookup sent to it (net/pool.ts).
 *
 * Logs (reference wording): "connect to TCP map NAME: ERRNO", "read TCP
 * map reply from NAME: unexpected EOF (ERRNO)|text longer than 4096|
 * malformed reply: TEXT|bad status code: TEXT", "host or service NAME not
 * found: ..." for a name that does not resolve.
 */
import { DictFlag } from "../../protocol/constants";
import { msg } from "../../log/msg";
import { TableError, type BackendStats, type OpenArgs, type Table } from "../table";
import { lowercaseAscii } from "../utf8";
import { cString, isSpaceCode } from "../../util/ctype";
import { ConnectError, type Connection, type Endpoint, type ParseStep } from "../net/connection";
import { Pool } from "../net/pool";
import { parseHostPort } from "../net/endpoint";
import { hexQuote, hexUnquote, printableWith } from "../net/text";

const TYPE = "tcp";

/** The reference's limits (dict_tcp.c); tests may shorten them. */
export const tcpLimits = {
  timeoutMs: 100_000,
  maxLen: 4096,
  maxTries: 10,
  retryDelayMs: 1000,
  /** Ours: connections (lookups in flight) per table. */
  maxConnections: 8,
};

/**
 * What the reference's "%m" shows after an EOF on a connection it just
 * made: the errno its non-blocking connect left behind (EINPROGRESS).
 */
const EOF_ERRNO = "Operation now in progress";

const TOO_LONG = "toolong";

/** vstring_get_nonl_bound(): a line within maxLen bytes, or "too long". */
function parseLine(buf: string): ParseStep<string> {
  const nl = buf.indexOf("\n");
  if (nl >= 0 && nl < tcpLimits.maxLen) return { kind: "ok", value: buf.slice(0, nl), used: nl + 1 };
  if (buf.length >= tcpLimits.maxLen) return { kind: "error", error: TOO_LONG };
  return { kind: "more" };
}

class TcpTable implements Table {
  flags: number;
  private readonly pool: Pool;

  constructor(
    private readonly name: string,
    endpoint: Endpoint,
    flags: number,
  ) {
    this.flags = flags | DictFlag.PATTERN;
    this.pool = new Pool(endpoint, { maxConnections: tcpLimits.maxConnections, connectTimeoutMs: tcpLimits.timeoutMs, maxIdleMs: 0, maxTtlMs: 0 });
  }

  private readonly where = (): string => `read TCP map reply from ${this.name}`;

  /** Connect, send, read one line; retried as the reference does. */
  private async exchange(request: string): Promise<{ line: string; conn: Connection }> {
    for (let tries = 0; ; ) {
      let conn: Connection | undefined;
      try {
        conn = (await this.pool.acquire()).conn;
      } catch (err) {
        if (err instanceof ConnectError && err.resolver) msg.warn(`host or service ${this.name} not found: ${err.resolver}`);
        msg.warn(`connect to TCP map ${this.name}: ${err instanceof ConnectError ? err.message : String(err)}`);
      }
      if (conn !== undefined) {
        conn.send(request);
        if (msg.verbose) msg.info(`dict_tcp_lookup: send: ${request.slice(0, -1)}`);
        const r = await conn.read(parseLine, tcpLimits.timeoutMs);
        if (r.kind === "ok") return { line: r.value, conn };
        // A partial line before EOF or time-out counts as over-long, as in the reference.
        const partial = r.kind === "error" || conn.pending > 0;
        if (partial) msg.warn(`${this.where()}: text longer than ${tcpLimits.maxLen}`);
        else msg.warn(`${this.where()}: unexpected EOF (${r.kind === "time" ? "Connection timed out" : EOF_ERRNO})`);
        this.pool.discard(conn);
      }
      if (++tries >= tcpLimits.maxTries) throw new TableError("retry", "");
      await Bun.sleep(tcpLimits.retryDelayMs);
    }
  }

  lookup(key: string, flags: number): Promise<string | undefined> {
    return this.pool.counted(this.ask(key, flags));
  }

  /** The server's statistics. */
  backends(): BackendStats[] {
    return [this.pool.backendStats(this.name)];
  }

  private async ask(key: string, flags: number): Promise<string | undefined> {
    if (msg.verbose) msg.info(`dict_tcp_lookup: key ${key}`);
    const k = flags & DictFlag.FOLD_MUL ? lowercaseAscii(key) : key;
    const { line: raw, conn } = await this.exchange(`get ${hexQuote(k)}\n`);
    if (msg.verbose) msg.info(`dict_tcp_lookup: recv: ${raw}`);
    const line = cString(raw);
    const value =
      /^[0-9]{3}/.test(line) && isSpaceCode(line.charCodeAt(3)) ? hexUnquote(line.slice(4)) : undefined;
    if (value === undefined) {
      this.pool.discard(conn);
      throw new TableError("retry", `${this.where()}: malformed reply: ${printableWith(line, "_").slice(0, 100)}`);
    }
    switch (line[0]) {
      case "2":
        if (msg.verbose) msg.info(`dict_tcp_lookup: found: ${printableWith(cString(value), "_")}`);
        this.pool.release(conn, true);
        return cString(value);
      case "5":
        if (msg.verbose) msg.info(`dict_tcp_lookup: not found: ${printableWith(line, "_")}`);
        this.pool.release(conn, true);
        return undefined;
      case "4":
        if (msg.verbose) msg.info(`dict_tcp_lookup: soft error: ${printableWith(line, "_")}`);
        this.pool.discard(conn);
        throw new TableError("retry", "");
      default:
        this.pool.discard(conn);
        throw new TableError("retry", `${this.where()}: bad status code: ${printableWith(line, "_").slice(0, 100)}`);
    }
  }

  close(): void {
    this.pool.close();
  }
}

export function open(args: OpenArgs): Table {
  const { name, flags } = args;
  const ep = parseHostPort(name);
  // The reference exits on a malformed address (at its first lookup): CONFIG for this table only.
  if ("err" in ep) throw new TableError("config", `${name}: ${ep.err}`);
  return new TcpTable(name, ep, flags);
}
