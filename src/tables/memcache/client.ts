/**
 * memcache/client.ts - one client per memcached server, shared by every
 * memcache table that names the same `memcache` setting (the reference
 * gives each table its own auto_clnt stream; one process of ours serves
 * many clients, so it shares a few pipelined connections instead).
 *
 * The server is named as Postfix's auto_clnt_create() reads it:
 * "inet:host:port" (IPv6 in brackets), "unix:/path" or "local:/path". Its
 * endpoint (the part after the transport) is what "connect to %s" shows.
 *
 * memcached answers in request order, so requests are pipelined
 * (net/pipeline.ts): many requests in flight on one connection, and up to
 * `memcacheLimits.maxConnections` connections per server when each has
 * `spreadAt` requests in flight. One attempt of the table's
 * retry loop is one request here; a request aborted because an earlier
 * reply on its connection broke the stream is sent again (it never reached
 * the reply stage, so it is not an attempt of its own).
 *
 * No npm package fits: memjs speaks only the binary protocol (deprecated
 * in memcached 1.6) and has no UNIX sockets; the text protocol's three
 * commands take a page (proto.ts).
 *
 * Logs nothing (the table logs with its own name); a bad server name is
 * TableError("config") with auto_clnt_create()'s fatal text.
 */
import { TableError } from "../table";
import { ConnectError } from "../net/connection";
import { parseService } from "../net/endpoint";
import { PipelinePool, type ReplyParser } from "../net/pipeline";
import { deleteCommand, getCommand, getReplyParser, lineReplyParser, setCommand, type GetReply, type LineReply } from "./proto";

/** Ours (the reference has one connection per table); tests may change them. */
export const memcacheLimits = {
  /** Connections per server. */
  maxConnections: 4,
  /**
   * Requests in flight on every open connection before another is opened:
   * requests that share a connection leave in one write and come back in
   * one read, which costs less than spreading them (measured: about a fifth
   * less CPU per lookup at 8 clients); past this, more connections let
   * memcached's threads share the work.
   */
  spreadAt: 16,
  /** Times a request aborted by another reply is sent again before it counts as an I/O error. */
  maxResend: 3,
};

/** One attempt: the server's reply, a failed connect, or an I/O error (errno text if any). */
export type Attempt<T> =
  | { readonly kind: "reply"; readonly reply: T }
  | { readonly kind: "connect"; readonly error: ConnectError }
  | { readonly kind: "io"; readonly errno: string | undefined };

const clients = new Map<string, { client: McClient; refs: number }>();

export class McClient {
  private constructor(
    /** The `memcache` setting, as given. */
    readonly server: string,
    /** auto_clnt_name(): the endpoint after "inet:" or "unix:". */
    readonly endpoint: string,
    private readonly pool: PipelinePool,
  ) {}

  /** The shared client of a server; TableError("config") for a name the reference exits on. */
  static acquire(server: string): McClient {
    let entry = clients.get(server);
    if (entry === undefined) {
      const ep = parseService(server);
      if ("err" in ep) throw new TableError("config", ep.err);
      const pool = new PipelinePool(ep, { maxConnections: memcacheLimits.maxConnections, spreadAt: memcacheLimits.spreadAt });
      entry = { client: new McClient(server, server.slice(server.indexOf(":") + 1), pool), refs: 0 };
      clients.set(server, entry);
    }
    entry.refs++;
    return entry.client;
  }

  /** A table is done with it; the last one closes the connections. */
  release(): void {
    const entry = clients.get(this.server);
    if (entry && entry.client === this && --entry.refs === 0) {
      clients.delete(this.server);
      this.pool.close();
    }
  }

  get(key: string, maxLine: number, maxData: number, timeoutMs: number): Promise<Attempt<GetReply>> {
    return this.exchange(getCommand(key), getReplyParser(key, maxLine, maxData), timeoutMs);
  }

  set(key: string, flags: number, ttl: number, value: string, maxLine: number, timeoutMs: number): Promise<Attempt<LineReply>> {
    return this.exchange(setCommand(key, flags, ttl, value), lineReplyParser(maxLine), timeoutMs);
  }

  delete(key: string, maxLine: number, timeoutMs: number): Promise<Attempt<LineReply>> {
    return this.exchange(deleteCommand(key), lineReplyParser(maxLine), timeoutMs);
  }

  private async exchange<T>(bytes: string, parse: ReplyParser<T>, timeoutMs: number): Promise<Attempt<T>> {
    for (let sent = 0; ; sent++) {
      let out;
      try {
        const c = this.pool.connection(timeoutMs);
        const conn = c instanceof Promise ? await c : c;
        out = await conn.request(bytes, parse, timeoutMs);
      } catch (err) {
        return { kind: "connect", error: err instanceof ConnectError ? err : new ConnectError(String(err)) };
      }
      if (out.kind === "reply") return { kind: "reply", reply: out.value };
      if (out.kind === "io") return { kind: "io", errno: out.errno };
      if (sent >= memcacheLimits.maxResend) return { kind: "io", errno: undefined };
    }
  }
}
