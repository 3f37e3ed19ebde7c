/**
 * The table-driver interface: what every table type (one module per Postfix
 * type, src/tables/<type>.ts) implements, and what the service calls.
 *
 * Strings here are BYTE STRINGS: every char code is one byte 0..255 (the wire
 * bytes decoded as latin1). Postfix tables are byte-oriented C strings; keeping
 * bytes 1:1 means 8-bit keys and values survive untouched. A driver that talks
 * to a library wanting UTF-8 or Buffers converts at its own edge
 * (Buffer.from(s, "latin1")).
 *
 * Results are `T | Promise<T>`: an in-memory table answers synchronously (no
 * Promise on the hot path); a network table returns a Promise and the service
 * keeps other clients going meanwhile. Failures are thrown (or rejected) as a
 * TableError carrying RETRY or CONFIG, like Postfix's dict->error.
 */

import type { Gen } from "../protocol/scan";
import type { Counters } from "../stats/counters";

export type Maybe<T> = T | Promise<T>;

/** Postfix's DICT_ERR_RETRY / DICT_ERR_CONFIG, as proxymap status codes. */
export type TableErrorKind = "retry" | "config";

export class TableError extends Error {
  constructor(
    readonly kind: TableErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A driver result that also reports the call's flags word after the
 * operation, for the drivers that change it as Postfix drivers change
 * dict->flags (hash, btree, cdb, lmdb settle TRY0NULL/TRY1NULL on their
 * first hit). Every other driver returns the bare value.
 */
export class Settled<T> {
  constructor(
    readonly result: T,
    readonly flags: number,
  ) {}
}

/** What an operation returns: the value, or the value with the call's new flags. */
export type Out<T> = T | Settled<T>;

/** result, reported with the call's new flags when the driver changed them. */
export function settledIf<T>(result: T, before: number, after: number): Out<T> {
  return after === before ? result : new Settled(result, after);
}

/** The operations a driver may have. Absent ones are answered by the service. */
export interface Table {
  /**
   * dict->flags right after the open: the open flags plus the
   * implementation bits (FIXED, PATTERN, MULTI_WRITER, TRY*NULL) the driver
   * sets. The dict layer copies it once; it is what `open` replies.
   */
  readonly flags: number;
  /**
   * undefined = not found (NOKEY). `flags` = the dict flags of this call
   * (the instance's word with the request's bits); a driver never keeps
   * them: overlapping calls may carry different flags.
   */
  lookup(key: string, flags: number): Maybe<Out<string | undefined>>;
  /** true = stored; false = not stored without error (duplicate, NOKEY). */
  update?(key: string, value: string, flags: number): Maybe<Out<boolean>>;
  /** true = deleted; false = not found. */
  delete?(key: string, flags: number): Maybe<Out<boolean>>;
  /** fn 0 = first, 1 = next; undefined = end of table (NOKEY). */
  sequence?(fn: 0 | 1, flags: number): Maybe<Out<[string, string] | undefined>>;
  /** File tables: true when the file on disk is no longer the one loaded. */
  changed?(): boolean;
  /**
   * True for types whose file changes the reference never notices (cidr,
   * regexp, pcre: it gives them no change stamp). Ours re-reads them all the
   * same, but proxymap_table_change_restart does not exit for them.
   */
  readonly changeUnnoticedByReference?: boolean;
  /**
   * Tables that are not multi-writer safe and have a lock file: take the
   * exclusive lock that DICT_FLAG_OPEN_LOCK asks for at open (no waiting);
   * throw when it cannot be had. Absent = nothing to lock (Postfix's
   * default lock with no lock_fd).
   */
  openLock?(): void;
  /**
   * The name Postfix's own dict has when it differs from the table's name
   * (hash/btree: NAME.db, cdb: NAME.cdb): what DEBUG and UTF-8 log lines show.
   */
  readonly dictName?: string;
  /**
   * Tables that talk to servers (databases, directories, socketmap, tcp,
   * memcache): what their connection pool knows about each server, for
   * statistics (proxymap --status, the interval log lines, Prometheus).
   * Called about once a second while the table is in use, never per
   * request; it must be cheap and must not throw. Tables sharing one
   * pool may return the same entries: entries with the same `counters`
   * object are counted once.
   */
  backends?(): readonly BackendStats[];
  close?(): Maybe<void>;
}

/** One backend server of a table, as its pool sees it now (Table.backends()). */
export interface BackendStats {
  /** The server as the table's configuration names it ("inet:db1:3306", "unix:/run/x.sock", "db1"). */
  readonly host: string;
  /** Connections carrying a request now. */
  readonly busy: number;
  /** Connections open (or being opened) now, busy or idle. */
  readonly open: number;
  /** The most connections the pool opens to this server (0 = no limit of its own). */
  readonly limit: number;
  /** Set aside after failures until this time (ms since the epoch); 0 = in use. */
  readonly downUntil: number;
  /**
   * Requests this server answered, by outcome, with their latency
   * (src/stats/counters.ts; the pool counts with counters.outcome() when
   * an exchange with this server ends). Absent when the pool does not
   * count per server.
   */
  readonly counters?: Counters;
}

/** What a driver's open() receives. */
export interface OpenArgs {
  /** The type string, e.g. "texthash". */
  type: string;
  /** Everything after the first ':' of "type:name". */
  name: string;
  /** The proxywrite service opens O_RDWR|O_CREAT, proxymap O_RDONLY. */
  write: boolean;
  /** The dict flags sent with the first request that opened this table. */
  flags: number;
  /**
   * Whose rules: "classic" (Postfix up to 3.10) or "instance" (3.11 and
   * later), from the request's shape. Most drivers do not care; those whose
   * open changed between the generations (texthash, inline) do.
   */
  gen?: Gen;
}

/**
 * The outcome of one operation on a table opened through the dict layer,
 * for that call only: the proxymap status (OK, NOKEY, RETRY, CONFIG, BAD),
 * the value ("" unless OK) and the call's flags word after the operation
 * (what a 3.11+ reply carries).
 */
export interface OpResult {
  readonly status: number;
  readonly value: string;
  readonly flags: number;
}

/** One step of a walk: OpResult plus the key ("" unless OK). */
export interface SeqOpResult extends OpResult {
  readonly key: string;
}

/**
 * A table opened through the dict layer on behalf of another table: a
 * unionmap/pipemap member, a `domain` list's type:table item, memcache's
 * `backup`. It behaves exactly as a table a client names (shared
 * instances, surrogates for failed opens, UTF-8 and DEBUG layers), and its
 * operations never throw: failures come back as statuses, already logged.
 * `flags` defaults to the flags the table was opened with, which is what
 * the reference's nested dict_get() uses.
 */
export interface OpenedTable {
  /** "type:name" as log lines show it. */
  readonly label: string;
  /** The flags the open reply would carry (open flags plus implementation bits). */
  readonly flags: number;
  lookup(key: string, flags?: number): Maybe<OpResult>;
  update(key: string, value: string, flags?: number): Maybe<OpResult>;
  delete(key: string, flags?: number): Maybe<OpResult>;
  sequence(fn: 0 | 1, flags?: number): Maybe<SeqOpResult>;
  /** The opener is done with it (a composite or memcache table closing). */
  release(): void;
}

/**
 * What a driver's open() may use besides its arguments. Handing this in,
 * instead of importing the dict layer, keeps drivers free of import loops
 * and lets a composite be tested with a fake.
 */
export interface OpenContext {
  /**
   * Open (or share) another table, as dict_open() does inside the
   * reference's proxymap: "proxy:" prefixes are dropped (the proxymap
   * server opens such a table itself), no approval check. `write` defaults
   * to false (O_RDONLY). By default the table is registered under its name
   * as the reference's composites and match lists register theirs (up to
   * 3.10 the first opener's flags stick to the name; from 3.11 one instance
   * per name and flags, shared with clients naming the same); `private`
   * opens an instance of the caller's own (dict_open() without
   * registration, as memcache opens its backup).
   */
  openTable(typeName: string, flags: number, opts?: { write?: boolean; private?: boolean }): Maybe<OpenedTable>;
}

/**
 * A refusal many types make at open, before anything else, in the
 * reference's words (each a RETRY surrogate there):
 * - "write": "TYPE:NAME map requires O_RDONLY access mode" on the write service;
 * - unauth: "TYPE:NAME map is not allowed for TEXT" when the request says
 *   NO_UNAUTH (the table's data cannot be trusted for security decisions).
 */
export type OpenRefusal = "write" | { readonly unauth: string };

/** The refusal of the read-only types. */
export const READ_ONLY: readonly OpenRefusal[] = ["write"];

/** What TableType.prepare() is told. */
export interface PrepareContext {
  /**
   * The process is about to chroot: what a type may otherwise load on
   * first use (at a cost most processes never pay) must be loaded now.
   */
  readonly jailed: boolean;
}

/** One entry of the static registry (src/tables/registry.ts). */
export interface TableType {
  type: string;
  /** The standard refusals this type makes at open, in its order; the dict layer makes them. */
  readonly refuses?: readonly OpenRefusal[];
  /**
   * The type exists from this Postfix generation on (debug: 3.11): a
   * request of an older shape naming it gets the unknown-type surrogate.
   */
  readonly since?: "3.11";
  /**
   * The type is built on Postfix's "internal" in-memory table (texthash,
   * inline): there the UTF-8 layer sits inside the DEBUG logging, so debug
   * lines show the key as received, also for keys the UTF-8 layer refuses.
   */
  readonly utf8Inside?: boolean;
  /**
   * false for types the reference opens without its DEBUG wrapper
   * (internal: dict_ht_open() has no DICT_DEBUG). Default: logged.
   */
  readonly debugLogged?: boolean;
  /**
   * Types whose read-write open (proxywrite) creates or may change files
   * (hash, btree: NAME.db; lmdb: NAME.lmdb): those files. `proxymap
   * --check` must create and change nothing, so for these types it checks
   * that the service user may write the files (or create them in their
   * directory) and opens them read-only. A type without it promises that
   * its read-write open creates and changes nothing (only updates and
   * deletes write), so --check opens it read-write as proxywrite does.
   */
  writeFiles?(name: string): string[];
  /**
   * What the type needs before it can open a table, kept out of the
   * process's start-up: code loaded on first use (a driver whose libraries
   * cost start-up time and memory: the dynamic import() of a fixed path,
   * see src/util/lazyModule.ts), shared libraries that bun:ffi opens by
   * path (they cannot be found inside a chroot jail). Run once per process
   * (src/tables/prepare.ts): by the server skeleton before it enters the jail
   * and drops privileges, for every type the service's approved lists name;
   * for any other type, by the dict layer before its first open. A library
   * that cannot be loaded is no error here: open() reports it.
   */
  prepare?(ctx: PrepareContext): void | Promise<void>;
  /** Throw TableError("config"|"retry", text) when the table cannot be opened. */
  open(args: OpenArgs, ctx: OpenContext): Maybe<Table>;
}
