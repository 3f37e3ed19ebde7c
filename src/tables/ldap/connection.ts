/**
 * ldap/connection.ts - one LDAPv3 connection with many operations in flight
 * (the C original is libldap's LDAP handle as dict_ldap.c drives it).
 *
 * LDAP numbers its messages, so any number of searches can share one
 * connection: each request gets a message id, replies are matched by id as
 * they arrive, and a slow search delays only the lookups waiting on it. The
 * BER codec is ldapts's (BerReader, BerWriter); the message layer is written
 * here because ldapts's Client cannot do what the reference does: it drops
 * the whole connection when one operation times out (the reference abandons
 * that operation only), hides result codes of partial results and the
 * referral URLs of a result, decodes DNs and values as UTF-8 (the reference
 * passes bytes), parses filters in its own way (see filter.ts) and has no
 * ldapi:// transport.
 *
 * Transports: TCP (ldap://), TLS from the start (ldaps://), a UNIX-domain
 * socket (ldapi://), and StartTLS on TCP. Operations: simple and SASL bind,
 * search, StartTLS, abandon, unbind.
 *
 * Outcomes are LDAP result codes as libldap reports them (errors.ts): the
 * server's code, or the library's negative codes for what happened here:
 * SERVER_DOWN when the connection could not be made or was lost (every
 * operation still waiting fails with it), TIMEOUT when no reply came in
 * time (the operation is then abandoned on the server, the connection
 * stays), FILTER_ERROR for a filter libldap would not encode.
 *
 * Strings are byte strings (latin1): DNs, filters, attribute values.
 * Logs nothing; the caller words the reference's warnings.
 */
import { connect as netConnect, isIP, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from "node:tls";
import { BerReader, BerWriter } from "ldapts";
import { Ldap } from "./errors";
import { writeFilter } from "./filter";
import { bunWire, nodeWire, type Wire, type WireEvents } from "./wire";

/** Where a server listens: TCP host and port, or a UNIX-domain socket path (ldapi). */
export type Address = { readonly kind: "tcp"; readonly host: string; readonly port: number; readonly tls: boolean } | { readonly kind: "ipc"; readonly path: string };

/** One attribute of an entry as the server sent it: the description and its values (bytes). */
export interface LdapAttribute {
  readonly type: string;
  readonly values: readonly string[];
}

export interface LdapEntry {
  readonly dn: string;
  readonly attrs: readonly LdapAttribute[];
}

export interface SearchRequest {
  base: string;
  /** 0 base, 1 one, 2 sub, 3 subordinates. */
  scope: number;
  /** 0 never, 1 searching, 2 finding, 3 always. */
  deref: number;
  sizeLimit: number;
  timeLimit: number;
  /** null: libldap's default "(objectclass=*)". */
  filter: string | null;
  attrs: readonly string[];
}

export interface SearchResult {
  /** The result code (0 = success), or a negative libldap code. */
  readonly code: number;
  readonly entries: readonly LdapEntry[];
  /** Search continuation references (each a list of URLs), in arrival order. */
  readonly references: readonly (readonly string[])[];
  /** The referral URLs of a referral result (code 10). */
  readonly referrals: readonly string[];
}

export interface BindResult {
  readonly code: number;
  readonly serverCreds?: Buffer;
}

const Op = {
  BIND_REQUEST: 0x60,
  BIND_RESPONSE: 0x61,
  UNBIND_REQUEST: 0x42,
  SEARCH_REQUEST: 0x63,
  SEARCH_ENTRY: 0x64,
  SEARCH_DONE: 0x65,
  SEARCH_REFERENCE: 0x73,
  ABANDON_REQUEST: 0x50,
  EXTENDED_REQUEST: 0x77,
  EXTENDED_RESPONSE: 0x78,
} as const;

/** Messages decoded before other work gets a turn. */
const DRAIN_BATCH = 200;
/** Requests in flight on one connection (slapd's conn_max_pending is 100 for anonymous sessions). */
const MAX_IN_FLIGHT = 64;
const OCTET_STRING = 0x04;
const SEQUENCE = 0x30;
const SET = 0x31;
const REFERRAL = 0xa3;
const SASL_CREDS = 0x87;
const STARTTLS_OID = "1.3.6.1.4.1.1466.20037";
/** LDAP_PVT_SASL_LOCAL_SSF: the security strength libldap gives a local (ldapi) connection. */
const LOCAL_SSF = 71;

interface Pending {
  readonly kind: "search" | "result";
  entries: LdapEntry[];
  references: string[][];
  done(r: { code: number; referrals: string[]; creds?: Buffer }): void;
  timer?: ReturnType<typeof setTimeout>;
}

const latin1 = (b: Buffer | null) => (b === null ? "" : b.toString("latin1"));

/** Thrown by the decoder for a message that does not parse: the connection is then unusable. */
class Malformed extends Error {}

function need<T>(v: T | null): T {
  if (v === null) throw new Malformed("truncated BER element");
  return v;
}

/** An open connection; make one with LdapConnection.open(). */
export class LdapConnection {
  private wire!: Wire;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private dead = false;
  private draining = false;
  private outbox: Buffer[] = [];
  private readonly closeListeners: Array<() => void> = [];
  private readonly waiting: Array<() => void> = [];
  /** Requests holding a slot (sent, or about to be). */
  private active = 0;
  /** When bytes last arrived (a server that answers nothing looks frozen). */
  lastReceived = Date.now();
  /** Security strength of the transport, as SASL sees it (0 plain TCP, 71 ldapi, TLS key bits). */
  ssf: number;
  /** True when the transport proves an identity SASL EXTERNAL can use (ldapi, or TLS with a client certificate). */
  external: boolean;

  private constructor(readonly address: Address, ssf: number, external: boolean) {
    this.ssf = ssf;
    this.external = external;
  }

  /** What the transport reports to this connection. */
  private readonly events: WireEvents = {
    data: (d) => this.receive(d),
    closed: () => this.lose(),
  };

  /**
   * Connect to one address within timeoutMs (TLS handshake included for
   * ldaps). Resolves to the connection, or to the Error that stopped it.
   * `startTls`: the connection will be upgraded (it needs a node socket).
   */
  static open(address: Address, timeoutMs: number, tls: ConnectionOptions | undefined, startTls = false): Promise<LdapConnection | Error> {
    const secure = address.kind === "tcp" && address.tls;
    if (!secure && !startTls) {
      const c = new LdapConnection(address, address.kind === "ipc" ? LOCAL_SSF : 0, address.kind === "ipc");
      const target = address.kind === "ipc" ? { path: address.path } : { host: address.host, port: address.port };
      return bunWire(target, timeoutMs, c.events).then((w) => {
        if (w instanceof Error) return w;
        c.wire = w;
        return c;
      });
    }
    return new Promise((resolve) => {
      let sock: Socket | TLSSocket;
      if (address.kind === "ipc") sock = netConnect({ path: address.path });
      else if (secure) sock = tlsConnect({ ...tls, host: address.host, port: address.port, servername: isIP(address.host) ? undefined : address.host });
      else sock = netConnect({ host: address.host, port: address.port });
      let settled = false;
      const finish = (r: LdapConnection | Error) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        if (r instanceof Error) sock.destroy();
        resolve(r);
      };
      const timer = timeoutMs > 0 ? setTimeout(() => finish(new Error("connect timed out")), timeoutMs) : undefined;
      sock.once("error", (e) => finish(e));
      sock.once(secure ? "secureConnect" : "connect", () => {
        sock.removeAllListeners("error");
        const ssf = address.kind === "ipc" ? LOCAL_SSF : secure ? tlsStrength(sock as TLSSocket) : 0;
        const external = address.kind === "ipc" || (secure && tls?.cert !== undefined);
        const c = new LdapConnection(address, ssf, external);
        c.wire = nodeWire(sock, c.events);
        finish(c);
      });
    });
  }

  get alive(): boolean {
    return !this.dead;
  }

  /** Called once when the connection is lost or closed. */
  onClose(fn: () => void): void {
    if (this.dead) fn();
    else this.closeListeners.push(fn);
  }

  /** The connection is gone: every waiting operation fails with SERVER_DOWN. */
  private lose(): void {
    if (this.dead) return;
    this.dead = true;
    this.wire.destroy();
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) {
      if (p.timer) clearTimeout(p.timer);
      p.done({ code: Ldap.SERVER_DOWN, referrals: [] });
    }
    for (const fn of this.closeListeners.splice(0)) fn();
  }

  /** Unbind and close (no reply is expected). */
  close(): void {
    if (this.dead) return;
    try {
      const w = new BerWriter();
      w.startSequence(SEQUENCE);
      w.writeInt(this.nextId++);
      w.writeByte(Op.UNBIND_REQUEST);
      w.writeByte(0);
      w.endSequence();
      this.flush();
      this.wire.end(w.buffer);
    } catch {
      // closing anyway
    }
    this.lose();
  }

  // ---- receiving --------------------------------------------------------------------

  private receive(d: Buffer): void {
    this.lastReceived = Date.now();
    this.chunks.push(d);
    this.buffered += d.length;
    if (!this.draining) this.drain();
  }

  /**
   * Decode the complete messages received, a batch at a time: a large
   * result (thousands of entries) must not hold the event loop, or the
   * replies of fast searches on other connections would wait behind it.
   */
  private drain(): void {
    this.draining = false;
    try {
      for (let n = 0; n < DRAIN_BATCH; n++) {
        if (this.dead) return;
        const size = this.frameSize();
        if (size < 0 || this.buffered < size) return;
        this.dispatch(this.take(size));
      }
      this.draining = true;
      setImmediate(() => this.drain());
    } catch {
      // A message that cannot be read: libldap's decoding error; the stream is out of step.
      this.lose();
    }
  }

  /** Bytes of the first message (tag, length and content), or -1 while the header is incomplete. */
  private frameSize(): number {
    if (this.buffered < 2) return -1;
    const head = this.peek(Math.min(this.buffered, 6));
    if (head[0] !== SEQUENCE) throw new Malformed("not an LDAPMessage");
    const first = head[1];
    if (first < 0x80) return 2 + first;
    const n = first & 0x7f;
    if (n === 0 || n > 4) throw new Malformed("bad length");
    if (head.length < 2 + n) return -1;
    let len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + head[2 + i];
    return 2 + n + len;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0];
    const all = Buffer.concat(this.chunks);
    this.chunks = [all];
    return all;
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const msg = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return msg;
  }

  private dispatch(msg: Buffer): void {
    const r = new BerReader(msg);
    need(r.readSequence(SEQUENCE));
    const id = need(r.readInt());
    const op = need(r.peek());
    need(r.readSequence(op));
    const end = r.offset + r.length;
    if (id === 0) {
      // An unsolicited notification (notice of disconnection): the server is going away.
      this.lose();
      return;
    }
    const p = this.pending.get(id);
    if (!p) return; // abandoned or timed out: dropped, as libldap drops it
    switch (op) {
      case Op.SEARCH_ENTRY:
        p.entries.push(readEntry(r, end));
        return;
      case Op.SEARCH_REFERENCE: {
        const urls: string[] = [];
        while (r.offset < end) urls.push(latin1(need(r.readString(OCTET_STRING, true))));
        p.references.push(urls);
        return;
      }
      case Op.SEARCH_DONE:
      case Op.BIND_RESPONSE:
      case Op.EXTENDED_RESPONSE: {
        const code = need(r.readEnumeration());
        need(r.readString(OCTET_STRING, true)); // matchedDN
        need(r.readString(OCTET_STRING, true)); // diagnosticMessage
        const referrals: string[] = [];
        let creds: Buffer | undefined;
        while (r.offset < end) {
          const tag = r.peek();
          if (tag === REFERRAL) {
            need(r.readSequence(REFERRAL));
            const refEnd = r.offset + r.length;
            while (r.offset < refEnd) referrals.push(latin1(need(r.readString(OCTET_STRING, true))));
          } else if (tag === SASL_CREDS && op === Op.BIND_RESPONSE) {
            creds = need(r.readString(SASL_CREDS, true));
          } else {
            break; // extended response name/value: not needed
          }
        }
        this.pending.delete(id);
        if (p.timer) clearTimeout(p.timer);
        p.done({ code, referrals, creds });
        return;
      }
      default:
        return; // intermediate responses and the like: not used here
    }
  }

  // ---- sending ----------------------------------------------------------------------

  /**
   * Operations sent and not answered are capped: slapd closes an anonymous
   * session that has more than 100 requests pending (conn_max_pending), so
   * beyond MAX_IN_FLIGHT a request waits here, in order, for a free slot.
   * Its time limit runs from when it is sent, as libldap's does.
   */
  private acquireSlot(): Promise<void> | undefined {
    if (this.active < MAX_IN_FLIGHT && this.waiting.length === 0) {
      this.active++;
      return undefined;
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** A finished request hands its slot to the next waiting one. */
  private releaseSlot(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }

  /** Send one request and wait for its result (or TIMEOUT / SERVER_DOWN). */
  private async request(kind: Pending["kind"], build: (w: BerWriter) => boolean | void, timeoutMs: number): Promise<{ code: number; referrals: string[]; creds?: Buffer; entries: LdapEntry[]; references: string[][] }> {
    const wait = this.acquireSlot();
    if (wait) await wait;
    try {
      return await this.send(kind, build, timeoutMs);
    } finally {
      this.releaseSlot();
    }
  }

  private send(kind: Pending["kind"], build: (w: BerWriter) => boolean | void, timeoutMs: number): Promise<{ code: number; referrals: string[]; creds?: Buffer; entries: LdapEntry[]; references: string[][] }> {
    return new Promise((resolve) => {
      if (this.dead) {
        resolve({ code: Ldap.SERVER_DOWN, referrals: [], entries: [], references: [] });
        return;
      }
      const id = this.nextId++;
      if (this.nextId > 0x7fffffff) this.nextId = 1;
      const w = new BerWriter();
      w.startSequence(SEQUENCE);
      w.writeInt(id);
      if (build(w) === false) {
        resolve({ code: Ldap.FILTER_ERROR, referrals: [], entries: [], references: [] });
        return;
      }
      w.endSequence();
      const p: Pending = {
        kind,
        entries: [],
        references: [],
        done: (res) => resolve({ ...res, entries: p.entries, references: p.references }),
      };
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          if (this.pending.get(id) !== p) return;
          this.pending.delete(id);
          this.abandon(id);
          p.done({ code: Ldap.TIMEOUT, referrals: [] });
        }, timeoutMs);
      }
      this.pending.set(id, p);
      this.output(w.buffer);
    });
  }

  /** Tell the server to stop working on a request whose answer nobody waits for. */
  private abandon(id: number): void {
    if (this.dead) return;
    const w = new BerWriter();
    w.startSequence(SEQUENCE);
    w.writeInt(this.nextId++);
    w.writeInt(id, Op.ABANDON_REQUEST);
    w.endSequence();
    this.output(w.buffer);
  }

  /**
   * Queue bytes for the server; everything queued in one turn of the event
   * loop goes out in one write (many lookups start together under load, and
   * a socket write is the dearest part of a search here).
   */
  private output(b: Buffer): void {
    this.outbox.push(b);
    if (this.outbox.length === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const out = this.outbox;
    this.outbox = [];
    if (this.dead || out.length === 0) return;
    this.wire.write(out.length === 1 ? out[0] : Buffer.concat(out));
  }

  /** A search; its entries, references and result (or a client-side code). */
  async search(req: SearchRequest, timeoutMs: number): Promise<SearchResult> {
    const r = await this.request(
      "search",
      (w) => {
        w.startSequence(Op.SEARCH_REQUEST);
        w.writeBuffer(Buffer.from(req.base, "latin1"), OCTET_STRING);
        w.writeEnumeration(req.scope);
        w.writeEnumeration(req.deref);
        w.writeInt(req.sizeLimit);
        w.writeInt(req.timeLimit);
        w.writeBoolean(false);
        if (!writeFilter(w, req.filter ?? "(objectclass=*)")) return false;
        w.startSequence(SEQUENCE);
        for (const a of req.attrs) w.writeBuffer(Buffer.from(a, "latin1"), OCTET_STRING);
        w.endSequence();
        w.endSequence();
      },
      timeoutMs,
    );
    return { code: r.code, entries: r.entries, references: r.references, referrals: r.referrals };
  }

  /** A simple bind (LDAPv3). */
  async bindSimple(dn: string, password: string, timeoutMs: number): Promise<BindResult> {
    const r = await this.request(
      "result",
      (w) => {
        w.startSequence(Op.BIND_REQUEST);
        w.writeInt(3);
        w.writeBuffer(Buffer.from(dn, "latin1"), OCTET_STRING);
        w.writeBuffer(Buffer.from(password, "latin1"), 0x80);
        w.endSequence();
      },
      timeoutMs,
    );
    return { code: r.code };
  }

  /** One SASL bind step; credentials undefined = none sent. */
  async bindSasl(mechanism: string, credentials: Buffer | undefined, timeoutMs: number): Promise<BindResult> {
    const r = await this.request(
      "result",
      (w) => {
        w.startSequence(Op.BIND_REQUEST);
        w.writeInt(3);
        w.writeBuffer(Buffer.alloc(0), OCTET_STRING);
        w.startSequence(0xa3);
        w.writeBuffer(Buffer.from(mechanism, "latin1"), OCTET_STRING);
        if (credentials !== undefined) w.writeBuffer(credentials, OCTET_STRING);
        w.endSequence();
        w.endSequence();
      },
      timeoutMs,
    );
    return { code: r.code, serverCreds: r.creds };
  }

  /** StartTLS: the extended operation, then the TLS handshake on the same socket. */
  async startTls(tls: ConnectionOptions, timeoutMs: number): Promise<number> {
    const r = await this.request(
      "result",
      (w) => {
        w.startSequence(Op.EXTENDED_REQUEST);
        w.writeBuffer(Buffer.from(STARTTLS_OID, "latin1"), 0x80);
        w.endSequence();
      },
      timeoutMs,
    );
    if (r.code !== Ldap.SUCCESS) return r.code;
    const raw = this.wire.node as Socket | undefined;
    if (this.dead || this.address.kind !== "tcp" || !raw) return Ldap.SERVER_DOWN;
    raw.removeAllListeners("data");
    raw.removeAllListeners("error");
    raw.removeAllListeners("close");
    raw.removeAllListeners("end");
    const host = this.address.host;
    return new Promise((resolve) => {
      const secure = tlsConnect({ ...tls, socket: raw, servername: isIP(host) ? undefined : host, host });
      const timer = timeoutMs > 0 ? setTimeout(() => fail(), timeoutMs) : undefined;
      let settled = false;
      const fail = () => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        secure.destroy();
        raw.destroy();
        this.lose();
        resolve(Ldap.CONNECT_ERROR);
      };
      secure.once("error", fail);
      secure.once("secureConnect", () => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        secure.removeAllListeners("error");
        this.wire = nodeWire(secure, this.events);
        this.ssf = tlsStrength(secure);
        this.external = tls.cert !== undefined;
        resolve(Ldap.SUCCESS);
      });
    });
  }

  /** Operations sent and not answered, and those waiting for a slot. */
  get inFlight(): number {
    return this.pending.size + this.waiting.length;
  }
}

/** A SearchResultEntry's DN and attributes (after the protocol-op header). */
function readEntry(r: BerReader, end: number): LdapEntry {
  const dn = latin1(need(r.readString(OCTET_STRING, true)));
  const attrs: LdapAttribute[] = [];
  if (r.offset < end) {
    need(r.readSequence(SEQUENCE));
    const listEnd = r.offset + r.length;
    while (r.offset < listEnd) {
      need(r.readSequence(SEQUENCE));
      const type = latin1(need(r.readString(OCTET_STRING, true)));
      need(r.readSequence(SET));
      const setEnd = r.offset + r.length;
      const values: string[] = [];
      while (r.offset < setEnd) values.push(latin1(need(r.readString(OCTET_STRING, true))));
      attrs.push({ type, values });
    }
  }
  return { dn, attrs };
}

/** The key length of a TLS session's cipher, as SASL's external SSF (at least 1). */
function tlsStrength(s: TLSSocket): number {
  const name = s.getCipher?.()?.name ?? "";
  if (/256|CHACHA20/i.test(name)) return 256;
  if (/128/.test(name)) return 128;
  return 1;
}
