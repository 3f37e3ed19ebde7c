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
 */
import { msg } from "../log/msg";
import { TokenReader } from "../protocol/attr";
import { scanRequest, type Installed, type Scanned } from "../protocol/scan";

export interface ClientIO {
  /** Queue bytes to the client (the skeleton owns buffering and ipc_timeout on writes). */
  write(data: Uint8Array): void;
  /** Close the connection (after a fatal stream error). */
  close(): void;
}

export interface Session {
  /** Bytes read from the client. Never throws. */
  feed(chunk: Uint8Array): void;
  /** True while a request is partly received (skeleton applies ipc_timeout to it). */
  readonly partial: boolean;
  /** Requests received whose reply has not been written yet. */
  readonly pending: number;
  /** End of input from the client: answer what the reference would, then stop. */
  end(): void;
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

export class ClientSession implements Session {
  private buf: Buffer = EMPTY;
  private waiting = false;
  private closed = false;
  /** The client sent end-of-file: buffered bytes are all there is. */
  private ended = false;

  constructor(
    private readonly io: ClientIO,
    private readonly handler: RequestHandler,
  ) {}

  get partial(): boolean {
    return !this.waiting && this.buf.length > 0;
  }

  get pending(): number {
    return this.waiting ? 1 : 0;
  }

  feed(chunk: Uint8Array): void {
    if (this.closed || chunk.length === 0) return;
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    // Anything held on to is a private copy (Buffer.concat copies): the
    // caller may reuse its chunk. Only a lone chunk drained now is borrowed.
    const borrowed = this.buf.length === 0 && !this.waiting;
    this.buf = borrowed ? bytes : Buffer.concat([this.buf, bytes]);
    if (this.waiting) {
      if (this.buf.length > this.handler.maxRequestSize) this.tooLarge();
      return;
    }
    this.drain(borrowed);
  }

  end(): void {
    if (this.closed) return;
    this.ended = true;
    if (!this.waiting && this.buf.length > 0) this.drain(false);
  }

  close(): void {
    this.closed = true;
    this.buf = EMPTY;
  }

  /** Answer every complete request in the buffer, until one goes async. */
  private drain(borrowed: boolean): void {
    const buf = this.buf;
    const reader = new TokenReader(buf, 0, buf.length, this.ended);
    let consumed = 0;
    try {
      while (consumed < buf.length && !this.closed) {
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
          consumed = buf.length;
          reader.consumeAll();
        }
        const reply = this.handler.handle(result.scanned);
        if (reply instanceof Promise) {
          this.keep(buf, consumed, borrowed);
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
    this.keep(buf, consumed, borrowed);
    if (this.buf.length > this.handler.maxRequestSize) this.tooLarge();
  }

  private tooLarge(): void {
    msg.warn(
      `${this.handler.streamName}: request exceeds proxymap_max_request_size (${this.handler.maxRequestSize} bytes); closing connection`,
    );
    this.abort();
  }

  /** Keep the unconsumed tail, copied when it still points into the caller's chunk. */
  private keep(buf: Buffer, consumed: number, borrowed: boolean): void {
    if (consumed >= buf.length) this.buf = EMPTY;
    else if (consumed === 0 && !borrowed) this.buf = buf;
    else this.buf = Buffer.from(buf.subarray(consumed));
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
    if (this.buf.length > 0) this.drain(false);
    else if (this.ended) this.io.close();
  }

  private abort(): void {
    this.closed = true;
    this.buf = EMPTY;
    this.io.close();
  }
}
