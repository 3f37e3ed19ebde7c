/**
 * ldap/session.ts - LDAP connections shared between tables, and how one is
 * made (Postfix dict_ldap.c: dict_ldap_conn_find() and dict_ldap_connect()).
 *
 * Tables whose connection settings are equal (config.ts connKey: servers,
 * bind identity, TLS settings, ...) share one Share and through it one
 * connection, on which many searches are in flight (LDAP numbers its
 * messages); while every connection has work in flight, a few more are
 * made (Share.acquire()). While a connection is being made, every lookup that needs
 * it waits for the same attempt; when the attempt fails each of them logs
 * the reference's lines for it (as each of the reference's lookups would
 * have made and logged its own attempt) and answers RETRY.
 *
 * Making a connection, in the reference's order:
 *   server URLs (a list libldap would not take: "Unable to init LDAP
 *   server"); TLS settings (tls.ts); StartTLS ("Unable to set STARTTLS",
 *   error level); the bind, simple or SASL ("Unable to bind to server ...
 *   with dn ...: CODE (TEXT)"). Servers of the list are tried in order, the
 *   first that accepts the connection is used.
 * When nothing has to be done at connect time (bind = no, no StartTLS) no
 * socket is opened until the first search, as libldap does; a search that
 * cannot open it fails with SERVER_DOWN.
 *
 * A handle whose connection was lost stays lost: the lookup that sees
 * SERVER_DOWN asks for a new one (reconnect()) and retries once. Handles
 * for following referrals (chase_referrals) are kept per server URL in the
 * Share, anonymous, as libldap follows them without a rebind function.
 *
 * Logs the reference's -v lines for connecting; failures are returned
 * as lines for the caller to log.
 */
import type { ConnectionOptions } from "node:tls";
import { msg } from "../../log/msg";
import { Bind, type LdapConfig } from "./config";
import { LdapConnection, type Address, type SearchRequest, type SearchResult } from "./connection";
import { Ldap, ldapErrText } from "./errors";
import { saslBind } from "./sasl";
import { tlsOptions } from "./tls";
import { parseLdapUrl, UrlFlags, type LdapUrl } from "./url";

const CONNECT = "dict_ldap_connect";
/** Where libldap looks for slapd's socket when an ldapi:// URL names none (Debian). */
const DEFAULT_LDAPI = "/var/run/slapd/ldapi";

/** A log line for the caller: severity and text. */
export type LogLine = readonly ["warn" | "error", string];

/** A connection that could not be made: what each waiting lookup logs and answers. */
export interface ConnectFailure {
  readonly kind: "retry" | "config";
  readonly lines: readonly LogLine[];
}

/** The address a parsed URL names. */
export function addressOf(u: LdapUrl): Address {
  if (u.scheme === "ldapi") return { kind: "ipc", path: u.host || DEFAULT_LDAPI };
  return { kind: "tcp", host: u.host ?? "localhost", port: u.port || (u.scheme === "ldaps" ? 636 : 389), tls: u.scheme === "ldaps" || u.scheme === "pldaps" };
}

/**
 * A connection handle as the reference keeps one: the servers to try, and
 * the connection once opened.
 */
export class LdapHandle {
  private conn: LdapConnection | undefined;
  private opening: Promise<LdapConnection | undefined> | undefined;
  private closed = false;

  constructor(
    private readonly addresses: readonly Address[],
    private readonly connectMs: number,
    private readonly tls: ConnectionOptions | undefined,
    /** The connection will do StartTLS (it needs a socket that can be upgraded). */
    private readonly startTls = false,
  ) {}

  /** False once an opened connection was lost or the handle closed. */
  get usable(): boolean {
    return !this.closed && (this.conn === undefined || this.conn.alive);
  }

  /** The connection, opened now if need be; undefined when no server could be reached. */
  connection(): Promise<LdapConnection | undefined> {
    if (this.conn) return Promise.resolve(this.conn.alive ? this.conn : undefined);
    if (this.closed) return Promise.resolve(undefined);
    this.opening ??= this.open().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private async open(): Promise<LdapConnection | undefined> {
    for (const a of this.addresses) {
      const c = await LdapConnection.open(a, this.connectMs, this.tls, this.startTls);
      if (c instanceof LdapConnection) {
        if (this.closed) {
          c.close();
          return undefined;
        }
        this.conn = c;
        return c;
      }
    }
    return undefined;
  }

  async search(req: SearchRequest, timeoutMs: number): Promise<SearchResult> {
    const c = await this.connection();
    if (!c) return { code: Ldap.SERVER_DOWN, entries: [], references: [], referrals: [] };
    return c.search(req, timeoutMs);
  }

  /** Unbind and forget the connection. */
  close(): void {
    this.closed = true;
    this.conn?.close();
  }

  /** Operations in flight (tests). */
  get inFlight(): number {
    return this.conn?.inFlight ?? 0;
  }

  /** True when the server sent nothing at all for the last `ms`: it looks frozen, not slow. */
  silentFor(ms: number): boolean {
    return this.conn !== undefined && Date.now() - this.conn.lastReceived >= ms;
  }
}

/** dict_ldap_connect(): a ready handle for a table, or why there is none. */
async function establish(cfg: LdapConfig): Promise<LdapHandle | ConnectFailure> {
  if (msg.verbose) msg.info(`${CONNECT}: Connecting to server ${cfg.serverHost}`);
  const addresses: Address[] = [];
  for (const url of cfg.urls.length ? cfg.urls : ["ldap://localhost:389"]) {
    const u = parseLdapUrl(url, UrlFlags.NOEMPTY_HOST | UrlFlags.DEF_PORT);
    if (typeof u === "number") return { kind: "retry", lines: [["warn", `${CONNECT}: Unable to init LDAP server ${cfg.serverHost}`]] };
    addresses.push(addressOf(u));
  }
  if (msg.verbose) msg.info(`${CONNECT}: Actual Protocol version used is ${cfg.version}.`);
  const timeoutMs = cfg.timeout > 0 ? cfg.timeout * 1000 : 0;
  let tls: ConnectionOptions | undefined;
  if (cfg.startTls || cfg.ldapSsl) {
    const t = tlsOptions(cfg.name, cfg.tls);
    if ("warning" in t) return { kind: "retry", lines: [["warn", t.warning]] };
    tls = t.options;
  }
  const handle = new LdapHandle(addresses, timeoutMs, tls, cfg.startTls);
  if (cfg.startTls) {
    const conn = await handle.connection();
    const rc = conn ? await conn.startTls(tls!, timeoutMs) : Ldap.SERVER_DOWN;
    if (rc !== Ldap.SUCCESS) {
      handle.close();
      return { kind: "retry", lines: [["error", `${CONNECT}: Unable to set STARTTLS: ${rc}: ${ldapErrText(rc)}`]] };
    }
  }
  if (cfg.bind !== Bind.NONE) {
    const dnLog = cfg.bindDn || "empty or implicit";
    if (msg.verbose) msg.info(`${CONNECT}: Binding to server ${cfg.serverHost} with dn ${dnLog}`);
    const conn = await handle.connection();
    let rc: number;
    if (!conn) {
      rc = Ldap.SERVER_DOWN;
    } else if (cfg.bind === Bind.SASL) {
      const r = await saslBind(conn, cfg, timeoutMs);
      if ("config" in r) {
        handle.close();
        return { kind: "config", lines: [["warn", r.config]] };
      }
      rc = r.code;
    } else if (timeoutMs === 0) {
      // The reference waits for the bind's answer with a zero time-out: it is never there yet.
      rc = Ldap.TIMEOUT;
    } else {
      rc = (await conn.bindSimple(cfg.bindDn, cfg.bindPw, timeoutMs)).code;
    }
    if (rc !== Ldap.SUCCESS) {
      handle.close();
      return { kind: "retry", lines: [["warn", `${CONNECT}: Unable to bind to server ${cfg.serverHost} with dn ${dnLog}: ${rc} (${ldapErrText(rc)})`]] };
    }
    if (msg.verbose) msg.info(`${CONNECT}: Successful bind to server ${cfg.serverHost} with dn ${dnLog}`);
  }
  if (msg.verbose) msg.info(`${CONNECT}: Cached connection handle for LDAP source ${cfg.name}`);
  return handle;
}

/** Connections one Share may hold: more only while all are busy (see acquire()). */
export const POOL_SIZE = 4;

/**
 * The connections tables with one connection key share: usually one, with
 * many searches in flight on it. Replies on one connection come in one byte
 * stream, so a search with a large result delays the replies queued behind
 * it; when every connection has work in flight, another one is made (up to
 * POOL_SIZE) and a lookup takes the least busy one.
 */
export class Share {
  private handles: LdapHandle[] = [];
  private connecting: Promise<LdapHandle | ConnectFailure> | undefined;
  private growing: Promise<LdapHandle | undefined> | undefined;
  private readonly referral = new Map<string, LdapHandle>();
  refs = 0;

  constructor(readonly key: string) {}

  private usable(): LdapHandle[] {
    this.handles = this.handles.filter((h) => h.usable);
    return this.handles;
  }

  /** The least busy usable connection, if there is one now (no waiting). */
  get current(): LdapHandle | undefined {
    let best: LdapHandle | undefined;
    for (const h of this.usable()) if (!best || h.inFlight < best.inFlight) best = h;
    return best;
  }

  /**
   * A usable connection: the least busy one; a new one when there is none
   * (one attempt for all waiting lookups; its failure is theirs) or when all
   * are busy and the pool may grow (a failure to grow is silent: the busy
   * ones serve).
   */
  async acquire(cfg: LdapConfig): Promise<LdapHandle | ConnectFailure> {
    const best = this.current;
    if (!best) return this.first(cfg);
    if (best.inFlight === 0 || this.handles.length >= POOL_SIZE) return best;
    return (await this.grow(cfg)) ?? this.current ?? best;
  }

  private first(cfg: LdapConfig): Promise<LdapHandle | ConnectFailure> {
    if (!this.connecting) {
      const attempt = establish(cfg);
      this.connecting = attempt;
      attempt.then(
        (r) => {
          if (this.connecting === attempt) this.connecting = undefined;
          if (r instanceof LdapHandle) this.adopt(r);
        },
        () => {
          if (this.connecting === attempt) this.connecting = undefined;
        },
      );
    }
    return this.connecting;
  }

  private grow(cfg: LdapConfig): Promise<LdapHandle | undefined> {
    if (!this.growing) {
      const attempt = establish(cfg).then(
        (r) => (r instanceof LdapHandle && this.adopt(r) ? r : undefined),
        () => undefined,
      );
      this.growing = attempt;
      attempt.finally(() => {
        if (this.growing === attempt) this.growing = undefined;
      });
    }
    return this.growing;
  }

  /** Keep a new connection, unless every table let go meanwhile. */
  private adopt(h: LdapHandle): boolean {
    if (this.refs <= 0) {
      h.close();
      return false;
    }
    this.handles.push(h);
    return true;
  }

  /** Drop a connection that failed (the reference's unbind); the next acquire() makes a new one if need be. */
  invalidate(h: LdapHandle): void {
    this.handles = this.handles.filter((x) => x !== h);
    h.close();
  }

  /** Connections held (tests). */
  get size(): number {
    return this.usable().length;
  }

  /** An anonymous handle for following a referral to `url` (one per server). */
  referralHandle(url: LdapUrl, cfg: LdapConfig): LdapHandle | undefined {
    const address = addressOf(url);
    const key = JSON.stringify(address);
    let h = this.referral.get(key);
    if (h?.usable) return h;
    let tls: ConnectionOptions | undefined;
    if (address.kind === "tcp" && address.tls) {
      const t = tlsOptions(cfg.name, cfg.tls);
      if ("warning" in t) return undefined;
      tls = t.options;
    }
    h = new LdapHandle([address], cfg.timeout > 0 ? cfg.timeout * 1000 : 0, tls);
    this.referral.set(key, h);
    return h;
  }

  close(): void {
    for (const h of this.handles) h.close();
    this.handles = [];
    for (const h of this.referral.values()) h.close();
    this.referral.clear();
  }
}

const shares = new Map<string, Share>();

/** The Share for a connection key (counted; give it back with releaseShare). */
export function acquireShare(key: string): Share {
  let s = shares.get(key);
  if (!s) {
    s = new Share(key);
    shares.set(key, s);
  }
  s.refs++;
  return s;
}

/** The last table using a Share closes its connections (dict_ldap_close()). */
export function releaseShare(s: Share): void {
  if (--s.refs > 0) return;
  if (shares.get(s.key) === s) shares.delete(s.key);
  s.close();
}

/** Shares in use (tests). */
export function shareCount(): number {
  return shares.size;
}
