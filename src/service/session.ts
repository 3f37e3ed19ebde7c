/**
 * One client connection of the proxymap service.
 *
 * The server skeleton creates a Session per accepted connection, feeds it
 * the bytes it reads and writes what the session hands to io.write(). The
 * session cuts the byte stream into requests (src/protocol/scan.ts), asks
 * the service for each reply, and keeps replies in request order.
 *
 * A request that completes later (a database lookup) pauses this session
 * only: its following requests wait until it is answered, so a client's
 * replies leave in order and it reads its own writes, while every other
 * session goes on. A request larger than the configured limit closes the
 * connection with a warning, so memory stays bounded.
 *
 * Cost stays linear in the bytes received, however the client cuts them:
 * input is appended to one growing buffer (capacity doubles, consumed bytes
 * are reclaimed when it is full), and a partial request is scanned again
 * only when a chunk brings a NUL byte, since only a NUL can complete a token
 * (a request has a dozen tokens at most, so 1-byte writes cost a dozen scans
 * of it, not one per byte).
 *
 * Output is bounded too: while the connection reports itself congested (the
 * client does not read its replies), no further request is answered; the
 * connection calls resume() once its queue has drained.
 */
import { msg } from "../log/msg";
import { TokenReader } from "../protocol/attr";
import { scanRequest, type Installed, type Scanned } from "../protocol/scan";

export interface ClientIO {
  /** Queue bytes to the client (the skeleton owns buffering and ipc_timeout on writes). */
  write(data: Uint8Array): void;
  /** Close the connection (after a fatal stream error). */
  close(): void;
  /** True while enough output waits that no further request should be answered (see resume()). */
  readonly congested?: boolean;
}

export interface Session {
  /** Bytes read from the client. Never throws. */
  feed(chunk: Uint8Array): void;
  /** True while a request is partly received (skeleton applies ipc_timeout to it). */
  readonly partial: boolean;
  /** Requests received whose reply has not been written yet (0 or 1: they are answered in turn). */
  readonly pending: number;
  /** End of input from the client: answer what the reference would, then stop. */
  end(): void;
  /** The connection is no longer congested: answer what waits. */
  resume(): void;
  /** The client went away: drop queued work for it. */
  close(): void;
}

/** What a session needs from the service. */
export interface RequestHandler {
  /** The reply to one scanned request; null when there is none to send. */
  handle(request: Scanned): Buffer | null | Promise<Buffer | null>;
  /** How the reference names the peer in warnings: "proxymap socket". */
  readonly streamName: string;
  /** The installed Postfix's generation: how requests are read (scanRequest's `installed`). */
  readonly installedGen: Installed;
  /** Largest request, in bytes, before the connection is closed. */
  readonly maxRequestSize: number;
  /** Called when a session's async request starts and settles. */
  onAsync(delta: 1 | -1): void;
}

const EMPTY = Buffer.alloc(0);
/** First capacity of a session's input buffer once it must keep bytes. */
const MIN_CAPACITY = 4096;
/** An emptied input buffer larger than this is released rather than kept for the next request. */
const KEEP_CAPACITY = 65536;

export class ClientSession implements Session {
  /** Input storage; the unconsumed bytes are store[start, end). */
  private store: Buffer = EMPTY;
  private start = 0;
  private end_ = 0;
  private waiting = false;
  /** Answering stopped because the connection was congested, with input left. */
  private held = false;
  private closed = false;
  /** The client sent end-of-file: buffered bytes are all there is. */
  private ended = false;

  constructor(
    private readonly io: ClientIO,
    private readonly handler: RequestHandler,
  ) {}

  private get buffered(): number {
    return this.end_ - this.start;
  }

  get partial(): boolean {
    return !this.waiting && !this.held && this.buffered > 0;
  }

  get pending(): number {
    return this.waiting || this.held ? 1 : 0;
  }

  feed(chunk: Uint8Array): void {
    if (this.closed || chunk.length === 0) return;
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    if (this.buffered === 0 && !this.waiting && !this.held) {
      // The everyday case: whole requests in one chunk, answered straight
      // from the caller's bytes; only a left-over tail is copied.
      this.drain(bytes, 0, bytes.length);
      return;
    }
    this.append(bytes);
    const blocked = this.waiting || this.held;
    // Without a new NUL byte the partial request cannot have completed.
    if (blocked || bytes.indexOf(0) < 0) {
      // Nothing can be answered now, so everything buffered counts against
      // the limit: a partial request, or the backlog behind a slow one.
      if (this.buffered > this.handler.maxRequestSize) this.tooLarge();
      return;
    }
    this.drainStore();
  }

  end(): void {
    if (this.closed) return;
    this.ended = true;
    if (!this.waiting && !this.held && this.buffered > 0) this.drainStore();
  }

  resume(): void {
    if (this.closed || !this.held || this.io.congested) return;
    this.held = false;
    this.drainStore();
    if (!this.closed && !this.waiting && !this.held && this.ended && this.buffered === 0) this.io.close();
  }

  close(): void {
    this.closed = true;
    this.release();
  }

  private release(): void {
    this.store = EMPTY;
    this.start = this.end_ = 0;
  }

  /** Append bytes to the store (amortized: the capacity doubles, consumed space is reused). */
  private append(bytes: Buffer): void {
    const live = this.buffered;
    const need = live + bytes.length;
    if (this.end_ + bytes.length > this.store.length) {
      if (need <= this.store.length / 2 && this.store.length > 0) {
        this.store.copyWithin(0, this.start, this.end_);
      } else {
        let cap = Math.max(MIN_CAPACITY, this.store.length);
        while (cap < need) cap *= 2;
        // Doubling past the request limit would only hold bytes that close the connection.
        cap = Math.max(need, Math.min(cap, this.handler.maxRequestSize + MIN_CAPACITY));
        const next = Buffer.allocUnsafe(cap);
        this.store.copy(next, 0, this.start, this.end_);
        this.store = next;
      }
      this.start = 0;
      this.end_ = live;
    }
    bytes.copy(this.store, this.end_);
    this.end_ += bytes.length;
  }

  private drainStore(): void {
    this.drain(this.store, this.start, this.end_);
  }

  /**
   * Answer every complete request in buf[from, to), until one goes async or
   * the connection is congested; keep what is left. buf is either the store
   * or the caller's chunk (then nothing is buffered).
   */
  private drain(buf: Buffer, from: number, to: number): void {
    const inStore = buf === this.store;
    const reader = new TokenReader(buf, from, to, this.ended);
    let consumed = from;
    let stop: "input" | "async" | "congested" = "input";
    try {
      while (consumed < to && !this.closed) {
        if (this.io.congested) {
          stop = "congested";
          break;
        }
        const result = scanRequest(reader, this.handler.streamName, this.handler.installedGen);
        if (result === undefined) break;
        consumed = reader.pos;
        for (const w of result.warnings) msg.warn(w);
        // The reference drops whatever input it has buffered once it has
        // answered (or ignored) one request. Well-formed requests sent
        // back to back are all answered here (no Postfix client does that,
        // but it costs nothing); after malformed input, the rest of what
        // arrived with it is dropped as the reference drops it, so that
        // garbage gets exactly the reference's (non-)answers.
        if (result.warnings.length > 0 || result.scanned.op === "none" || result.scanned.op === "unknown" || result.scanned.op === "bad") {
          consumed = to;
          reader.consumeAll();
        }
        const reply = this.handler.handle(result.scanned);
        if (reply instanceof Promise) {
          this.keep(buf, consumed, to, inStore);
          this.await(reply);
          return;
        }
        if (reply !== null) this.io.write(reply);
      }
    } catch (err) {
      // handle() never throws by contract; this is the last line of defence.
      msg.warn(`${this.handler.streamName}: internal error: ${String(err)}; closing connection`);
      this.abort();
      return;
    }
    if (this.closed) return;
    this.keep(buf, consumed, to, inStore);
    if (stop === "congested") {
      this.held = true;
      return;
    }
    if (this.buffered > this.handler.maxRequestSize) this.tooLarge();
  }

  private tooLarge(): void {
    msg.warn(
      `${this.handler.streamName}: request exceeds proxymap_max_request_size (${this.handler.maxRequestSize} bytes); closing connection`,
    );
    this.abort();
  }

  /** Keep buf[consumed, to) as the unconsumed input (copied when it is the caller's chunk). */
  private keep(buf: Buffer, consumed: number, to: number, inStore: boolean): void {
    if (inStore) {
      this.start = consumed;
      if (this.start < this.end_) return;
      // All consumed: an idle connection keeps no large buffer.
      if (this.store.length > KEEP_CAPACITY) this.store = EMPTY;
      this.start = this.end_ = 0;
      return;
    }
    this.start = this.end_ = 0;
    if (consumed < to) this.append(buf.subarray(consumed, to));
  }

  private await(reply: Promise<Buffer | null>): void {
    this.waiting = true;
    this.handler.onAsync(1);
    reply.then(
      (bytes) => this.settle(bytes),
      (err) => {
        msg.warn(`${this.handler.streamName}: internal error: ${String(err)}; closing connection`);
        this.settle(null);
        this.abort();
      },
    );
  }

  private settle(bytes: Buffer | null): void {
    this.waiting = false;
    this.handler.onAsync(-1);
    if (this.closed) return;
    if (bytes !== null) this.io.write(bytes);
    if (this.buffered > 0) this.drainStore();
    else if (this.ended) this.io.close();
  }

  private abort(): void {
    this.closed = true;
    this.release();
    this.io.close();
  }
}
