/**
 * pipeline.ts - client connections that carry many requests at once, for
 * servers that answer strictly in request order (memcached's text
 * protocol). Unlike connection.ts (one request at a time, for socketmap and
 * tcp_table, whose servers may not expect more), a request here is written
 * at once and its reply parser is queued; bytes that arrive are handed to
 * the parser at the head of the queue until it has its whole reply, then
 * to the next one.
 *
 * A parser sees the unread bytes and says "more", or "done" with what it
 * used and whether the stream is still in step. A reply that leaves the
 * stream out of step (a length it will not read, a line cut short) ends
 * the connection: the requests queued behind it are handed back as
 * "aborted" (they did nothing wrong; the caller sends them again). When
 * the peer closes, the socket fails or a request's time limit passes, the
 * parsers still queued get one last look (`final`) at what arrived, and
 * the ones that cannot finish fail with the errno text ("%m").
 *
 * Requests made during one turn of the event loop (several clients' in
 * the same poll) leave in one write, after the turn (setImmediate): the
 * server then reads them at once and answers them in one write too.
 *
 * PipelinePool keeps a few such connections to one server: a request goes
 * to a connection with nothing in flight, else to the least busy one while
 * it has fewer than spreadAt in flight, else to a new one while fewer than
 * maxConnections exist, else to the least busy one.
 *
 * Reads and logs nothing.
 */
import type { Socket } from "node:net";
import { errnoText } from "../../util/errno";
import { connectSocket, type Endpoint } from "./connection";

/** What a reply parser says about the bytes from `pos` on. */
export type ReplyStep<T> =
  | { readonly kind: "more" }
  /** `broken`: the stream is out of step after this reply; close the connection. */
  | { readonly kind: "done"; readonly value: T; readonly used: number; readonly broken?: boolean };

/**
 * Parse one reply at buf[pos..]. `final` is true when no more bytes will
 * come (peer closed, time limit): then "more" means the reply failed.
 */
export type ReplyParser<T> = (buf: string, pos: number, final: boolean) => ReplyStep<T>;

export type Outcome<T> =
  | { readonly kind: "reply"; readonly value: T }
  /** The connection failed under this request; errno text when there was one. */
  | { readonly kind: "io"; readonly errno: string | undefined }
  /** An earlier reply broke the stream before this one was read: send it again. */
  | { readonly kind: "aborted" };

const ETIMEDOUT_TEXT = "Connection timed out";
const ABORTED: Outcome<never> = Object.freeze({ kind: "aborted" });

interface Pending {
  readonly parse: ReplyParser<unknown>;
  /** Epoch ms after which the request fails; 0 = no limit. */
  readonly deadline: number;
  readonly done: (o: Outcome<unknown>) => void;
}

/** Connections with requests in flight, checked for time limits by one shared ticker. */
const busy = new Set<Pipeline>();
let ticker: ReturnType<typeof setInterval> | undefined;
const TICK_MS = 100;

function watch(p: Pipeline): void {
  busy.add(p);
  if (ticker !== undefined) return;
  ticker = setInterval(() => {
    const now = Date.now();
    for (const c of busy) c.checkDeadline(now);
    if (busy.size === 0 && ticker !== undefined) {
      clearInterval(ticker);
      ticker = undefined;
    }
  }, TICK_MS);
  (ticker as { unref?: () => void }).unref?.();
}

export class Pipeline {
  private buf = "";
  private readonly queue: Pending[] = [];
  private closed = false;
  private closeErr: string | undefined;
  /** Requests not written yet (flushed after this turn of the event loop). */
  private out = "";

  private constructor(private readonly sock: Socket) {
    sock.setNoDelay?.(true);
    sock.on("data", (d: Buffer) => this.receive(d.toString("latin1")));
    sock.on("end", () => this.fail(undefined));
    sock.on("close", () => this.fail(undefined));
    sock.on("error", (e) => this.fail(errnoText(e)));
  }

  /** Connect within timeoutMs (0: no limit); rejects with a ConnectError. */
  static async open(ep: Endpoint, timeoutMs: number): Promise<Pipeline> {
    return new Pipeline(await connectSocket(ep, timeoutMs));
  }

  /** Requests written and not yet answered. */
  get inFlight(): number {
    return this.queue.length;
  }

  /** Still connected: fit to carry another request. */
  get usable(): boolean {
    return !this.closed;
  }

  /**
   * Write a request (a byte string) and wait for its reply, parsed by
   * `parse`, within timeoutMs (0: no limit).
   */
  request<T>(bytes: string, parse: ReplyParser<T>, timeoutMs: number): Promise<Outcome<T>> {
    if (this.closed) return Promise.resolve(ABORTED);
    return new Promise((resolve) => {
      this.queue.push({ parse, deadline: timeoutMs > 0 ? Date.now() + timeoutMs : 0, done: resolve as (o: Outcome<unknown>) => void });
      if (this.queue.length === 1) watch(this);
      if (this.out.length === 0) setImmediate(this.flush);
      this.out += bytes;
    });
  }

  private readonly flush = (): void => {
    const out = this.out;
    this.out = "";
    if (!this.closed && out.length > 0) this.sock.write(Buffer.from(out, "latin1"));
  };

  private receive(data: string): void {
    this.buf = this.buf.length === 0 ? data : this.buf + data;
    let pos = 0;
    while (this.queue.length > 0) {
      const step = this.queue[0].parse(this.buf, pos, false);
      if (step.kind === "more") break;
      pos = step.used;
      this.queue.shift()!.done({ kind: "reply", value: step.value });
      if (step.broken) {
        this.buf = "";
        this.close();
        return;
      }
    }
    this.buf = pos >= this.buf.length ? "" : this.buf.slice(pos);
    // Bytes nobody asked for: the stream is out of step.
    if (this.queue.length === 0) {
      busy.delete(this);
      if (this.buf.length > 0) this.close();
    }
  }

  /**
   * Called by the ticker: fail the connection when a request is past its
   * time (its reply can only come after those of the requests before it,
   * which may have other limits, or none).
   */
  checkDeadline(now: number): void {
    if (this.queue.length === 0) {
      busy.delete(this);
      return;
    }
    for (const p of this.queue) {
      if (p.deadline !== 0 && now >= p.deadline) {
        this.fail(ETIMEDOUT_TEXT);
        return;
      }
    }
  }

  /**
   * No more bytes will come: the head gets a last look at what arrived
   * (a reply may be complete enough), the rest fail with the errno text.
   */
  private fail(errno: string | undefined): void {
    if (this.closed && this.queue.length === 0) return;
    if (errno !== undefined && this.closeErr === undefined) this.closeErr = errno;
    this.closed = true;
    busy.delete(this);
    const pending = this.queue.splice(0);
    const head = pending.shift();
    if (head !== undefined) {
      const step = head.parse(this.buf, 0, true);
      head.done(step.kind === "done" ? { kind: "reply", value: step.value } : { kind: "io", errno: this.closeErr });
    }
    const failed: Outcome<never> = { kind: "io", errno: this.closeErr };
    for (const p of pending) p.done(failed);
    this.buf = "";
    this.sock.destroy();
  }

  /** Close now; requests still queued are handed back as "aborted". */
  close(): void {
    this.closed = true;
    busy.delete(this);
    for (const p of this.queue.splice(0)) p.done(ABORTED);
    this.buf = "";
    this.sock.destroy();
  }
}

export interface PipelinePoolOptions {
  /** Connections open (or opening) at once, at most. */
  maxConnections: number;
  /** Requests in flight on each open connection before another is opened (default 1: spread at once). */
  spreadAt?: number;
}

/** A few pipelined connections to one server, shared by every request to it. */
export class PipelinePool {
  private readonly conns: Pipeline[] = [];
  private readonly opening: Promise<Pipeline>[] = [];

  constructor(
    readonly endpoint: Endpoint,
    private readonly opts: PipelinePoolOptions,
  ) {}

  /** Connections open or opening now (tests). */
  get size(): number {
    this.prune();
    return this.conns.length + this.opening.length;
  }

  private prune(): void {
    for (let i = this.conns.length - 1; i >= 0; i--) if (!this.conns[i].usable) this.conns.splice(i, 1);
  }

  /**
   * A connection for the next request. Rejects with a ConnectError when a
   * new connection was needed and cannot be made (every request waiting
   * for that connection gets the same error).
   */
  connection(connectTimeoutMs: number): Pipeline | Promise<Pipeline> {
    this.prune();
    let least: Pipeline | undefined;
    for (const c of this.conns) {
      if (c.inFlight === 0) return c;
      if (least === undefined || c.inFlight < least.inFlight) least = c;
    }
    if (least !== undefined && least.inFlight < (this.opts.spreadAt ?? 1)) return least;
    if (this.conns.length + this.opening.length < this.opts.maxConnections) return this.connect(connectTimeoutMs);
    return least ?? this.opening[0];
  }

  private connect(timeoutMs: number): Promise<Pipeline> {
    const p = Pipeline.open(this.endpoint, timeoutMs);
    this.opening.push(p);
    const settle = () => {
      const i = this.opening.indexOf(p);
      if (i >= 0) this.opening.splice(i, 1);
    };
    p.then(
      (c) => {
        settle();
        this.conns.push(c);
      },
      settle,
    );
    return p;
  }

  /** Close every connection; requests in flight are handed back as "aborted". */
  close(): void {
    for (const c of this.conns.splice(0)) c.close();
  }
}
