/**
 * wire.ts - a small proxymap client for tests.
 *
 * Speaks Postfix's local IPC attribute encoding (`name NUL value NUL ...
 * NUL`) over a UNIX stream socket, written here on purpose without any code
 * from src/: the tests must not trust the codec they are testing. Strings
 * are byte strings (one char code = one byte, latin1), as inside the service.
 *
 * What it offers:
 *  - encodeAttrs / encodeRequest: build raw request bytes;
 *  - parseList: cut one attribute list off the front of a buffer;
 *  - WireClient: connect, optionally read the greeting, send raw bytes, read
 *    one reply list, or read "until quiet" for inputs that may get no reply;
 *  - show(): a printable rendering of raw bytes for test messages.
 *
 * It logs nothing; every failure is a return value or a rejected promise.
 */
import { createConnection, type Socket } from "node:net";

export type Attr = readonly [name: string, value: string];

/** Bytes of a byte string (latin1: char code = byte). */
export function bytes(s: string): Buffer {
  return Buffer.from(s, "latin1");
}

/** The byte string of some bytes. */
export function text(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");
}

/** One attribute list: each pair as name NUL value NUL, then one NUL. */
export function encodeAttrs(attrs: readonly Attr[]): Buffer {
  let s = "";
  for (const [n, v] of attrs) s += `${n}\0${v}\0`;
  return bytes(s + "\0");
}

/** Attribute pairs of a request in 3.6-3.10 shape (request, table, flags, ...rest). */
export function encodeRequest(request: string, table: string, flags: number | string, rest: readonly Attr[] = []): Buffer {
  return encodeAttrs([["request", request], ["table", table], ["flags", String(flags)], ...rest]);
}

/** The greeting a 3.6+ proxymap sends on connect. */
export const GREETING = encodeAttrs([["protocol", "proxymap_protocol"]]);

export interface ParsedList {
  attrs: Attr[];
  /** Bytes the list took, terminator included. */
  used: number;
}

/**
 * Parse one complete attribute list at the start of buf, or return
 * undefined when the buffer does not yet hold a complete one.
 */
export function parseList(buf: Uint8Array): ParsedList | undefined {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const attrs: Attr[] = [];
  let pos = 0;
  for (;;) {
    const nEnd = b.indexOf(0, pos);
    if (nEnd < 0) return undefined;
    if (nEnd === pos) return { attrs, used: pos + 1 };
    const vEnd = b.indexOf(0, nEnd + 1);
    if (vEnd < 0) return undefined;
    attrs.push([b.toString("latin1", pos, nEnd), b.toString("latin1", nEnd + 1, vEnd)]);
    pos = vEnd + 1;
  }
}

/** Printable form of raw bytes: NUL as `|`, other control and 8-bit bytes as \xNN. */
export function show(b: Uint8Array | string, max = 400): string {
  const s = typeof b === "string" ? b : text(b);
  let out = "";
  for (let i = 0; i < s.length && out.length < max; i++) {
    const c = s.charCodeAt(i);
    if (c === 0) out += "|";
    else if (c < 0x20 || c >= 0x7f || c === 0x5c) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += s[i];
  }
  if (out.length >= max) out += `...(${s.length} bytes)`;
  return out;
}

/** Object form of a reply list (last value wins for a repeated name). */
export function attrsToObject(attrs: readonly Attr[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (const [n, v] of attrs) o[n] = v;
  return o;
}

export type ReadOutcome =
  | { kind: "reply"; attrs: Attr[]; raw: Buffer }
  | { kind: "timeout"; pending: Buffer }
  | { kind: "closed"; pending: Buffer };

export interface ConnectOptions {
  /** Read and check the greeting before returning (3.6+ servers). Default true. */
  greeting?: boolean;
  /** How long to wait for the connection and the greeting. Default 10 s. */
  timeoutMs?: number;
}

/**
 * One client connection. Received bytes accumulate in a buffer; the read
 * methods consume from its front.
 */
export class WireClient {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private waiters: Array<() => void> = [];
  /** The greeting bytes as received (when asked for). */
  greeting: Buffer | undefined;

  private constructor(readonly sock: Socket) {
    sock.on("data", (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    sock.on("end", end);
    sock.on("close", end);
    sock.on("error", end);
  }

  /** Connect to a UNIX socket; by default read the 3.6+ greeting first. */
  static connect(path: string, opts: ConnectOptions = {}): Promise<WireClient> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const sock = createConnection({ path });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connect ${path}: timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      sock.once("error", (e) => {
        clearTimeout(timer);
        reject(new Error(`connect ${path}: ${e.message}`));
      });
      sock.once("connect", async () => {
        clearTimeout(timer);
        const c = new WireClient(sock);
        if (opts.greeting === false) return resolve(c);
        const g = await c.readReply(timeoutMs);
        if (g.kind !== "reply") {
          c.close();
          return reject(new Error(`connect ${path}: no greeting (${g.kind}, got ${show(g.pending)})`));
        }
        c.greeting = g.raw;
        resolve(c);
      });
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolve at the next data/end event or after ms, whichever is first. */
  private waitEvent(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((f) => f !== done);
        resolve();
      }, Math.max(0, ms));
      const done = () => {
        clearTimeout(t);
        resolve();
      };
      this.waiters.push(done);
    });
  }

  /** Bytes received and not consumed yet. */
  get pending(): Buffer {
    return this.buf;
  }

  /** Drop n bytes from the front of the received buffer. */
  discard(n: number): void {
    this.buf = this.buf.subarray(n);
  }

  /** Resolve at the next received chunk or close, or after ms. */
  nextEvent(ms: number): Promise<void> {
    return this.ended ? Promise.resolve() : this.waitEvent(ms);
  }

  /** True once the server closed (or the socket failed). */
  get closed(): boolean {
    return this.ended;
  }

  /** Send raw bytes (or an attribute list). Resolves when handed to the kernel. */
  send(data: Uint8Array | readonly Attr[]): Promise<void> {
    const b = data instanceof Uint8Array ? data : encodeAttrs(data as readonly Attr[]);
    return new Promise((resolve) => {
      if (this.sock.destroyed) return resolve();
      this.sock.write(b, () => resolve());
    });
  }

  /** Read one reply list within timeoutMs. */
  async readReply(timeoutMs = 5000): Promise<ReadOutcome> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = parseList(this.buf);
      if (p) {
        const raw = this.buf.subarray(0, p.used);
        this.buf = this.buf.subarray(p.used);
        return { kind: "reply", attrs: p.attrs, raw: Buffer.from(raw) };
      }
      if (this.ended) return { kind: "closed", pending: this.take() };
      const left = deadline - Date.now();
      if (left <= 0) return { kind: "timeout", pending: Buffer.from(this.buf) };
      await this.waitEvent(left);
    }
  }

  /**
   * Read everything that arrives until no byte came for quietMs (or the
   * peer closed, or maxMs passed). For inputs that may get no reply at all.
   */
  async readUntilQuiet(quietMs: number, maxMs = 30_000): Promise<{ data: Buffer; closed: boolean }> {
    const deadline = Date.now() + maxMs;
    let seen = this.buf.length;
    let quietUntil = Date.now() + quietMs;
    for (;;) {
      if (this.ended) return { data: this.take(), closed: true };
      const now = Date.now();
      if (now >= quietUntil || now >= deadline) return { data: this.take(), closed: false };
      await this.waitEvent(Math.min(quietUntil, deadline) - now);
      if (this.buf.length !== seen) {
        seen = this.buf.length;
        quietUntil = Date.now() + quietMs;
      }
    }
  }

  /**
   * Read until the received bytes end with `tail` (consumed with them), the
   * peer closes, or nothing arrives for quietMs. Used with a probe request
   * sent after an input whose reply count is unknown.
   */
  async readUntilTail(tail: Uint8Array, quietMs: number, maxMs = 30_000): Promise<{ data: Buffer; found: boolean; closed: boolean }> {
    const t = Buffer.from(tail);
    const deadline = Date.now() + maxMs;
    let seen = -1;
    let quietUntil = Date.now() + quietMs;
    for (;;) {
      if (this.buf.length >= t.length && this.buf.subarray(this.buf.length - t.length).equals(t)) {
        const data = this.take();
        return { data: data.subarray(0, data.length - t.length), found: true, closed: false };
      }
      if (this.ended) return { data: this.take(), found: false, closed: true };
      const now = Date.now();
      if (now >= quietUntil || now >= deadline) return { data: this.take(), found: false, closed: false };
      await this.waitEvent(Math.min(quietUntil, deadline) - now);
      if (this.buf.length !== seen) {
        seen = this.buf.length;
        quietUntil = Date.now() + quietMs;
      }
    }
  }

  /** Wait until the peer closes; true if it did within timeoutMs. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.waitEvent(left);
    }
    return true;
  }

  /** One round: send a list, read its reply. */
  async request(attrs: readonly Attr[], timeoutMs = 5000): Promise<ReadOutcome> {
    await this.send(attrs);
    return this.readReply(timeoutMs);
  }

  /** One round, for byte comparisons: the reply as show() text, or "(timeout)" / "(closed)". */
  async exchange(data: Uint8Array | readonly Attr[], timeoutMs = 5000): Promise<string> {
    await this.send(data);
    const r = await this.readReply(timeoutMs);
    return r.kind === "reply" ? show(r.raw) : `(${r.kind})`;
  }

  /** One round that must be answered: the reply's attributes by name (throws on anything else). */
  async ask(attrs: readonly Attr[], timeoutMs = 5000): Promise<Record<string, string>> {
    const r = await this.request(attrs, timeoutMs);
    if (r.kind !== "reply") throw new Error(`no reply: ${r.kind}`);
    return attrsToObject(r.attrs);
  }

  /** A lookup with postmap -q's flags (UTF8_REQUEST|LOCK|DUP_WARN) unless given. */
  lookup(table: string, key: string, flags = "524353"): Promise<Record<string, string>> {
    return this.ask([["request", "lookup"], ["table", table], ["flags", flags], ["key", key]]);
  }

  private take(): Buffer {
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    return b;
  }

  close(): void {
    this.sock.destroy();
  }
}
