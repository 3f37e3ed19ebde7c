/**
 * clientConn.ts - one accepted client connection: the ClientIO a Session
 * writes to, the output queue behind it, and the clocks the server's sweep
 * uses for time limits.
 *
 * Writes go straight to the socket; only what the kernel does not take is
 * copied and queued until the socket drains. Once more than HIGH_WATER bytes
 * wait, the connection is congested: reading from this client pauses and its
 * session answers no further request, until the queue is below LOW_WATER
 * (then the session resumes). A client that sends requests but does not read
 * its replies so holds at most HIGH_WATER bytes plus one reply of output.
 *
 * A client may shut down its sending side and still wait for replies (the
 * server listens with half-open connections allowed): the connection is
 * closed once nothing is in flight and the queue is empty, which is what
 * Postfix's one-request-at-a-time loop does on end-of-file.
 *
 * Clocks (milliseconds, performance.now()):
 *   lastRead     last bytes from the client (ipc_timeout on a partial request)
 *   lastDrain    last time queued output moved (ipc_timeout on writes)
 *   replyClock   last reply written, or when requests started waiting
 *                (daemon_timeout on a request)
 *
 * Reads: the socket. Logs: nothing (the server logs closes and time-outs).
 */
import type { Socket } from "bun";
import type { ClientIO, Session } from "../service/session";

/** Congested (reading paused, no further request answered) once this much output waits. */
export const HIGH_WATER = 1024 * 1024;
/** No longer congested once the queue is below this. */
export const LOW_WATER = 256 * 1024;

export interface ConnOwner {
  /** The connection is gone (closed by either side). */
  connClosed(conn: ClientConn): void;
  /** Bytes handed to the socket (for the idle collector). */
  moved(bytes: number): void;
}

export class ClientConn implements ClientIO {
  session: Session | undefined;
  lastRead: number;
  lastDrain: number;
  replyClock: number;
  /** The client sent end-of-file. */
  clientDone = false;
  /** Close once the queue is empty. */
  private closing = false;
  private closed = false;
  private paused = false;
  private queue: Uint8Array[] = [];
  private queued = 0;

  constructor(
    private readonly sock: Socket<ClientConn>,
    private readonly owner: ConnOwner,
  ) {
    const now = performance.now();
    this.lastRead = now;
    this.lastDrain = now;
    this.replyClock = now;
  }

  /** Bytes waiting to be written. */
  get backlog(): number {
    return this.queued;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The client is not reading its replies fast enough: answer nothing more for now. */
  get congested(): boolean {
    return this.paused;
  }

  // ClientIO

  write(data: Uint8Array): void {
    if (this.closed || data.length === 0) return;
    this.replyClock = performance.now();
    this.owner.moved(data.length);
    if (this.queued === 0) {
      const n = this.sock.write(data);
      if (n === data.length) {
        if (this.clientDone) queueMicrotask(() => this.maybeFinish());
        return;
      }
      if (n < 0) {
        this.destroy();
        return;
      }
      // The session may reuse its buffer: keep a copy of what is left.
      this.queue.push(data.slice(n));
      this.queued += data.length - n;
      this.lastDrain = this.replyClock;
    } else {
      this.queue.push(data.slice());
      this.queued += data.length;
    }
    if (this.queued > HIGH_WATER && !this.paused) {
      this.paused = true;
      this.sock.pause();
    }
  }

  close(): void {
    if (this.closed) return;
    if (this.queued === 0) this.sock.end();
    else this.closing = true;
  }

  // Socket events, called by the server.

  /** The socket can take more output. */
  drained(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0];
      const n = this.sock.write(head);
      if (n < 0) {
        this.destroy();
        return;
      }
      if (n > 0) this.lastDrain = performance.now();
      this.queued -= Math.max(n, 0);
      if (n < head.length) {
        this.queue[0] = head.subarray(n);
        break;
      }
      this.queue.shift();
    }
    if (this.paused && this.queued < LOW_WATER) {
      this.paused = false;
      this.sock.resume();
      this.session?.resume();
      if (this.closed) return;
    }
    if (this.queued === 0) {
      if (this.closing) this.sock.end();
      else if (this.clientDone) this.maybeFinish();
    }
  }

  /** The client shut down its sending side. */
  ended(): void {
    this.clientDone = true;
    // A request cut off by end-of-file still gets the reference's answer.
    this.session?.end();
    this.maybeFinish();
  }

  /** Close now, dropping queued output (time-outs, errors). */
  destroy(): void {
    if (this.closed) return;
    this.queue = [];
    this.queued = 0;
    this.sock.terminate();
    this.socketClosed();
  }

  /** The socket is closed (its close event, or destroy()). */
  socketClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.queued = 0;
    this.session?.close();
    this.owner.connClosed(this);
  }

  /** After end-of-file from the client: close when every reply is out. */
  private maybeFinish(): void {
    if (this.closed || !this.clientDone) return;
    const s = this.session;
    // A partial request can no longer complete; requests in flight still get replies.
    if (this.queued === 0 && (!s || s.pending === 0)) this.sock.end();
  }
}
