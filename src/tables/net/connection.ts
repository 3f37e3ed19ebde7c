/**
 * connection.ts - one client stream to a table server (socketmap or tcp),
 * over a UNIX-domain socket or TCP, with the reference's per-operation time
 * limits. It carries ONE request at a time: the socketmap and tcp_table
 * protocols have no request identifiers, so a reply can only be matched to
 * its request by order, and a server written for Postfix's client (which
 * never has two requests outstanding) may not expect more. Concurrency
 * comes from several connections (pool.ts), never from pipelining.
 *
 * Received bytes accumulate as a byte string; read() hands them to a
 * parser until it has a complete reply, the peer closes, or the time limit
 * passes. Any outcome other than a complete reply leaves the connection
 * unusable (the caller closes it): a late reply must never be taken as
 * the answer to the next request.
 *
 * Reads nothing; errors carry the C library's errno text for the caller's
 * "%m". Logs only through warnConnectFailed(), the auto_clnt client's
 * connect warnings that socketmap and memcache share.
 */
import { createConnection, type Socket } from "node:net";
import { msg } from "../../log/msg";
import { errnoText } from "../../util/errno";

/** A server address; an inet port of -1 is a service name that did not resolve. */
export type Endpoint = { readonly kind: "unix"; readonly path: string } | { readonly kind: "inet"; readonly host: string; readonly port: number };

/** What a reply parser says about the bytes received so far. */
export type ParseStep<T> = { readonly kind: "more" } | { readonly kind: "ok"; readonly value: T; readonly used: number } | { readonly kind: "error"; readonly error: string };

export type ReadOutcome<T> =
  | { readonly kind: "ok"; readonly value: T }
  | { readonly kind: "error"; readonly error: string }
  /** The peer closed (or reset) before a complete reply; errno text when there was an error. */
  | { readonly kind: "eof"; readonly errno: string | undefined }
  | { readonly kind: "time" };

/**
 * A failed connect: the message is the errno text for "%m". When the name
 * did not resolve, `resolver` holds the resolver's text (the caller logs
 * the reference's "host or service ADDR not found: TEXT") and the errno
 * text is EADDRNOTAVAIL's, as Postfix's inet_connect() sets it.
 */
export class ConnectError extends Error {
  constructor(
    message: string,
    readonly resolver?: string,
  ) {
    super(message);
  }
}

/**
 * auto_clnt_open()'s warning for a failed connect to ENDPOINT ("connect to
 * ENDPOINT: %m"), after inet_connect()'s "host or service ... not found"
 * when the name did not resolve. Returns the errno text.
 */
export function warnConnectFailed(endpoint: string, err: unknown): string {
  if (err instanceof ConnectError && err.resolver) msg.warn(`host or service ${endpoint} not found: ${err.resolver}`);
  const why = err instanceof ConnectError ? err.message : String(err);
  msg.warn(`connect to ${endpoint}: ${why}`);
  return why;
}

/** gai_strerror() texts for the resolver failures Node reports by code. */
const RESOLVER_TEXT: Readonly<Record<string, string>> = {
  ENOTFOUND: "Name or service not known",
  EAI_NONAME: "Name or service not known",
  EAI_AGAIN: "Temporary failure in name resolution",
  EAI_FAIL: "Non-recoverable failure in name resolution",
  EAI_NODATA: "No address associated with hostname",
};

function connectError(e: unknown): ConnectError {
  const code = (e as { code?: unknown } | null)?.code;
  const resolver = typeof code === "string" ? RESOLVER_TEXT[code] : undefined;
  return resolver !== undefined ? new ConnectError("Cannot assign requested address", resolver) : new ConnectError(errnoText(e));
}

/** strerror(ETIMEDOUT), what a timed-out connect reports. */
const ETIMEDOUT_TEXT = "Connection timed out";

/**
 * A connected socket to ep within timeoutMs (0: no limit, as Postfix's
 * blocking connect without a time-out); rejects with a ConnectError
 * holding the errno text. Shared by one-request connections (below) and
 * pipelined ones (pipeline.ts).
 */
export function connectSocket(ep: Endpoint, timeoutMs: number): Promise<Socket> {
  if (ep.kind === "inet" && ep.port < 0) {
    return Promise.reject(new ConnectError("Cannot assign requested address", "Servname not supported for ai_socktype"));
  }
  return new Promise((resolve, reject) => {
    const sock = ep.kind === "unix" ? createConnection({ path: ep.path }) : createConnection({ host: ep.host, port: ep.port });
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            sock.destroy();
            reject(new ConnectError(ETIMEDOUT_TEXT));
          }, timeoutMs)
        : undefined;
    const onError = (e: unknown) => {
      clearTimeout(timer);
      sock.destroy();
      reject(connectError(e));
    };
    sock.once("error", onError);
    sock.once("connect", () => {
      clearTimeout(timer);
      sock.off("error", onError);
      resolve(sock);
    });
  });
}

export class Connection {
  /** When the connection was made (for the reference's max_ttl). */
  readonly born = Date.now();
  /** Time of the last completed request (for max_idle). */
  lastUsed = Date.now();
  private buf = "";
  private closed = false;
  private closeErr: string | undefined;
  private wake: (() => void) | undefined;

  private constructor(private readonly sock: Socket) {
    sock.setNoDelay?.(true);
    sock.on("data", (d: Buffer) => {
      this.buf += d.toString("latin1");
      this.wake?.();
    });
    const end = (err?: unknown) => {
      if (err !== undefined && this.closeErr === undefined) this.closeErr = errnoText(err);
      this.closed = true;
      this.wake?.();
    };
    sock.on("end", () => end());
    sock.on("close", () => end());
    sock.on("error", (e) => end(e));
  }

  /** Connect within timeoutMs; rejects with a ConnectError holding the errno text. */
  static async open(ep: Endpoint, timeoutMs: number): Promise<Connection> {
    return new Connection(await connectSocket(ep, timeoutMs));
  }

  /** Still connected, nothing unread: fit to carry another request. */
  get usable(): boolean {
    return !this.closed && this.buf.length === 0;
  }

  /** Bytes received and not yet consumed. */
  get pending(): number {
    return this.buf.length;
  }

  /** Queue bytes (a byte string) for the server. */
  send(data: string): void {
    this.buf = "";
    this.sock.write(Buffer.from(data, "latin1"));
  }

  /** Wait for one complete reply, the peer's close, or the time limit. */
  async read<T>(parse: (buf: string) => ParseStep<T>, timeoutMs: number): Promise<ReadOutcome<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const step = parse(this.buf);
      if (step.kind === "ok") {
        this.buf = this.buf.slice(step.used);
        this.lastUsed = Date.now();
        return { kind: "ok", value: step.value };
      }
      if (step.kind === "error") return { kind: "error", error: step.error };
      if (this.closed) return { kind: "eof", errno: this.closeErr };
      const left = deadline - Date.now();
      if (left <= 0) return { kind: "time" };
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.wake = () => {
          clearTimeout(t);
          res();
        };
      });
      this.wake = undefined;
    }
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }
}
