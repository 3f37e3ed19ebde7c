/**
 * dict.ts - the dict layer between the proxymap service and the table
 * drivers: what Postfix does in dict_open3(), dict.c, dict_utf8.c,
 * dict_surrogate.c, dict_debug.c and proxymap.c's proxy_map_find().
 *
 * - Opening: one instance per "type:name:" + dict_flags_str(request flags
 *   & INST_MASK), the reference's cache key; the first open's flags stick
 *   to it. Opens in flight are shared. A table that cannot be opened
 *   becomes a surrogate, as in the reference (dict_allow_surrogate is on in
 *   daemons): the failure is logged once as an error, and every operation
 *   logs "TYPE:NAME is unavailable. REASON" and fails with RETRY.
 * - UTF-8: when smtputf8 is enabled (setUtf8Enabled) and the opening
 *   request asked for UTF-8, keys are checked (non-UTF-8 key: warning and
 *   NOKEY for lookup, warning and OK for update/delete, as dict_utf8.c) and
 *   case-folded with Unicode rules when the table is fixed-key and the
 *   request says FOLD_FIX (FOLD_MUL for pattern tables); a non-UTF-8 value
 *   found by a lookup is a CONFIG error. Otherwise the drivers fold
 *   FOLD_FIX keys to ASCII lower case themselves, as the C drivers do.
 * - Each operation first sets the request bits of the table's flags:
 *   flags = (flags & ~RQST_MASK) | (request & RQST_MASK).
 * - DEBUG (an instance flag) logs each operation as dict_debug.c does.
 *
 * Errors from drivers: a TableError's message is logged as a warning
 * (nothing when empty) and its kind gives RETRY or CONFIG. Any other
 * exception is a defect or an unexpected environment problem: it is logged
 * with the table's name and answered RETRY, because a temporary failure
 * makes Postfix clients defer and try again rather than treat the mail as
 * misconfigured. At open, TableError("retry") makes a surrogate (the
 * reference's behaviour for tables that fail to open); TableError("config")
 * and other exceptions make a table that answers CONFIG to everything,
 * for the cases where the reference exits instead.
 *
 * Deliberate differences from the reference (it exits in each case; we
 * answer and keep serving every other client):
 * - sequence, update or delete on a type that lacks the operation (and, on
 *   the write service, update/delete on read-only types that do open):
 *   warning "table TYPE:NAME: OP operation is not supported", CONFIG;
 * - request flags holding both OPEN_LOCK and LOCK: the Dict has
 *   openStatus BAD (not cached) and every operation on it answers BAD;
 *   logged as a warning with the reference's panic text;
 * - "type:name" with an empty type or name: CONFIG on every operation;
 * - a texthash "file" that is a directory: CONFIG on every operation
 *   (texthash.ts; the reference dies on the read error);
 * - "next" after the end of a walk of an empty in-memory table: NOKEY
 *   (the reference reads past the end of its list and crashes; ht.ts);
 * - more than 13 failed opens: the reference's msg_error() counter ends
 *   the process ("too many errors"); we have no such limit;
 * - a table whose file changed on disk (drivers with changed()) is
 *   re-opened on the next request that names it, at most one probe per
 *   second, on the read service only; the reference's read service exits
 *   instead ("table TYPE:NAME: has changed -- restarting") and master
 *   starts a new process. changedTables() lists changed tables for a
 *   service that prefers the reference's way.
 *
 * Reads: nothing itself (drivers read their sources). Logs: see above.
 */
import { DictFlag, FOLD_ANY, INST_MASK, RQST_MASK, Status } from "../protocol/constants";
import { msg } from "../log/msg";
import { TableError, type OpenContext, type OpenedTable, type OpResult, type SeqOpResult, type Table } from "./table";
import { findTableType } from "./registry";
import { dictFlagsStr } from "./flagsStr";
import { UTF8_ERROR, allAscii, casefold, needUtf8Activation, validUtf8 } from "./utf8";

export { setUtf8Enabled } from "./utf8";

/** Result of a lookup: status and value ("" unless OK). */
export interface Result {
  readonly status: number;
  readonly value: string;
}

/** Result of a sequence step: status, key and value ("" unless OK). */
export interface SeqResult {
  readonly status: number;
  readonly key: string;
  readonly value: string;
}

const R_NOKEY: Result = Object.freeze({ status: Status.NOKEY, value: "" });
const R_RETRY: Result = Object.freeze({ status: Status.RETRY, value: "" });
const R_CONFIG: Result = Object.freeze({ status: Status.CONFIG, value: "" });
const R_BAD: Result = Object.freeze({ status: Status.BAD, value: "" });
const S_NOKEY: SeqResult = Object.freeze({ status: Status.NOKEY, key: "", value: "" });
const S_RETRY: SeqResult = Object.freeze({ status: Status.RETRY, key: "", value: "" });
const S_CONFIG: SeqResult = Object.freeze({ status: Status.CONFIG, key: "", value: "" });
const S_BAD: SeqResult = Object.freeze({ status: Status.BAD, key: "", value: "" });

/** What stands behind a Dict. */
const enum Kind {
  /** A working table. */
  Table,
  /** Failed open: every operation RETRY (dict_surrogate.c). */
  Surrogate,
  /** The reference would have exited at open: every operation CONFIG. */
  Broken,
  /** OPEN_LOCK with LOCK: every operation BAD. */
  BadFlags,
}

/** Minimum time between two changed() probes of one table. */
const PROBE_INTERVAL_MS = 1000;

/** One open table instance, shared by every client that names it with the same instance flags. */
export class Dict {
  /** dict->flags: what `open` replies; the request bits follow the last request. */
  flags: number;
  /**
   * The status the service should reply to `open`: OK, or BAD when the
   * request's flags were refused (OPEN_LOCK with LOCK). Operations on a
   * Dict whose openStatus is not OK answer the same status.
   */
  readonly openStatus: number;
  /** @internal */ readonly kind: Kind;
  /** @internal */ readonly table: Table | undefined;
  /** @internal */ readonly reason: string;
  /** @internal UTF-8 layer present (dict_utf8_activate). */ readonly utf8: boolean;
  /** @internal flags of the request that opened this instance. */ readonly openFlags: number;
  /** @internal */ lastProbe = 0;
  /** @internal */ lastChanged = false;
  /** @internal async operations in flight (close waits for them). */ busy = 0;
  /** @internal */ retired = false;

  /** @internal */
  constructor(
    /** Type for diagnostics ("texthash"). */
    readonly type: string,
    /** Name for diagnostics ("/etc/postfix/x"). */
    readonly name: string,
    /** The cache key: "type:name:" + instance flag names. */
    readonly cacheKey: string,
    /** Opened by the write service. */
    readonly writer: boolean,
    kind: Kind,
    table: Table | undefined,
    flags: number,
    openFlags: number,
    reason = "",
    /** Does dict_open3() reach its UTF-8 step for this Dict? */
    utf8Step = kind === Kind.Table || kind === Kind.Surrogate,
  ) {
    this.kind = kind;
    this.table = table;
    this.reason = reason;
    this.openFlags = openFlags;
    this.openStatus = kind === Kind.BadFlags ? Status.BAD : Status.OK;
    // dict_open3(), last step: the UTF-8 layer goes in front of the table
    // when the opening request asked for it and nothing claims it is there.
    let f = flags;
    let utf8 = false;
    if (utf8Step && (f & DictFlag.UTF8_ACTIVE) === 0 && needUtf8Activation(openFlags)) {
      f |= DictFlag.UTF8_ACTIVE;
      utf8 = true;
    }
    this.flags = f;
    this.utf8 = utf8;
  }

  /** "type:name" for messages; the driver's own dict name when it has one (hash: NAME.db). */
  get label(): string {
    return `${this.type}:${this.table?.dictName ?? this.name}`;
  }
}

/** Open instances, or their opening in progress, by cache key. */
const cache = new Map<string, Dict | Promise<Dict>>();

/** The cache key of a table for a request's flags (proxy_map_find()). */
export function dictCacheKey(typeName: string, requestFlags: number): string {
  return `${typeName}:${dictFlagsStr(requestFlags & INST_MASK)}`;
}

/**
 * Open (or find) the table for a request. typeName is the request's table
 * with proxy: prefixes stripped and already approved. Never throws; a
 * failure gives a Dict that fails each operation (see the file comment).
 */
export function openDict(typeName: string, writer: boolean, requestFlags: number): Dict | Promise<Dict> {
  const flags = requestFlags | 0;
  const key = dictCacheKey(typeName, flags);
  const hit = cache.get(key);
  if (hit !== undefined) {
    if (hit instanceof Promise || !hit.table?.changed || hit.writer) return hit;
    if (!probeChanged(hit, false)) return hit;
    msg.info(`table ${key} has changed -- reopening`);
    cache.delete(key);
    retire(hit);
    return create(typeName, key, writer, hit.openFlags);
  }
  return create(typeName, key, writer, flags);
}

function create(typeName: string, key: string, writer: boolean, flags: number): Dict | Promise<Dict> {
  const colon = typeName.indexOf(":");
  const type = colon < 0 ? typeName : typeName.slice(0, colon);
  const name = colon < 0 ? "" : typeName.slice(colon + 1);

  if (flags & DictFlag.OPEN_LOCK && flags & DictFlag.LOCK) {
    // The reference panics (after opening the table). Not cached, so the
    // same table with valid flags opens normally later.
    msg.warn(`dict_open: attempt to open ${type}:${name} with both "open" lock and "access" lock`);
    return new Dict(type, name, key, writer, Kind.BadFlags, undefined, flags, flags);
  }

  let d: Dict | Promise<Dict>;
  if (type === "" || name === "") {
    d = broken(type, name, key, writer, flags, `open dictionary: expecting "type:name" form instead of "${typeName}"`);
  } else {
    const tt = findTableType(type);
    if (tt === undefined) {
      // dict_open3() returns this surrogate before its UTF-8 step.
      d = surrogate(type, name, key, writer, flags, `unsupported dictionary type: ${type}`, false);
    } else {
      try {
        const t = tt.open({ type, name, write: writer, flags }, OPEN_CONTEXT);
        d =
          t instanceof Promise
            ? t.then(
                (table) => finishOpen(type, name, key, writer, flags, table),
                (err) => openFailed(type, name, key, writer, flags, err),
              )
            : finishOpen(type, name, key, writer, flags, t);
      } catch (err) {
        d = openFailed(type, name, key, writer, flags, err);
      }
    }
  }
  if (d instanceof Promise) {
    const p = d.then((done) => {
      if (cache.get(key) === p) cache.set(key, done);
      return done;
    });
    cache.set(key, p);
    return p;
  }
  cache.set(key, d);
  return d;
}

function finishOpen(type: string, name: string, key: string, writer: boolean, openFlags: number, table: Table): Dict {
  let flags = table.flags;
  if (flags & DictFlag.OPEN_LOCK) {
    if (flags & DictFlag.MULTI_WRITER) {
      // A multi-writer safe table downgrades the persistent lock to a
      // temporary one (dict_open3()).
      flags = (flags & ~DictFlag.OPEN_LOCK) | DictFlag.LOCK;
    } else if (table.openLock) {
      try {
        table.openLock();
      } catch (err) {
        closeQuietly(table);
        const why = err instanceof Error ? err.message : String(err);
        return broken(type, name, key, writer, openFlags, `${type}:${name}: unable to get exclusive lock: ${why}`);
      }
    }
  }
  table.flags = flags;
  if (msg.verbose) msg.info(`dict_open: ${type}:${name}`);
  return new Dict(type, name, key, writer, Kind.Table, table, flags, openFlags);
}

function openFailed(type: string, name: string, key: string, writer: boolean, flags: number, err: unknown): Dict {
  if (err instanceof TableError && err.kind === "retry") return surrogate(type, name, key, writer, flags, err.message);
  const why = err instanceof TableError ? err.message : `cannot open ${type}:${name}: ${err instanceof Error ? err.message : String(err)}`;
  return broken(type, name, key, writer, flags, why);
}

/**
 * dict_surrogate(): log the failure now, fail each operation later. A
 * surrogate made by a driver gets the UTF-8 layer like any table; the one
 * for an unknown type does not (dict_open3() returns it early).
 */
function surrogate(type: string, name: string, key: string, writer: boolean, flags: number, reason: string, utf8Step = true): Dict {
  msg.error(reason);
  return new Dict(type, name, key, writer, Kind.Surrogate, undefined, flags | DictFlag.PATTERN, flags, reason, utf8Step);
}

function broken(type: string, name: string, key: string, writer: boolean, flags: number, reason: string): Dict {
  msg.error(reason);
  return new Dict(type, name, key, writer, Kind.Broken, undefined, flags | DictFlag.PATTERN, flags, reason);
}

/**
 * The key as the UTF-8 layer passes it on (checked, maybe case-folded), or
 * undefined when it is refused (warning logged). Keys pass unchanged when
 * the layer is absent.
 */
function utf8Key(d: Dict, key: string): string | undefined {
  if (!d.utf8) return key;
  if (!allAscii(key) && !validUtf8(key)) {
    msg.warn(`${d.label}: non-UTF-8 key "${key}": ${UTF8_ERROR}`);
    return undefined;
  }
  const fold = d.flags & FOLD_ANY;
  if (fold !== 0 && (fold & (d.flags & DictFlag.FIXED ? DictFlag.FOLD_FIX : DictFlag.FOLD_MUL)) !== 0) return casefold(key);
  return key;
}

/** Flags the driver sees: the UTF-8 layer has done the folding already. */
function driverFlags(d: Dict): number {
  return d.utf8 ? d.flags & ~FOLD_ANY : d.flags;
}

/** A failed table (surrogate or broken): log and give the status. */
function unavailable(d: Dict): number {
  msg.warn(`${d.label} is unavailable. ${d.reason}`);
  return d.kind === Kind.Surrogate ? Status.RETRY : Status.CONFIG;
}

function unsupported(d: Dict, op: string): number {
  msg.warn(`table ${d.label}: ${op} operation is not supported`);
  return Status.CONFIG;
}

/** Status for an exception from a driver operation (logged). */
function errorStatus(d: Dict, op: string, err: unknown): number {
  if (err instanceof TableError) {
    if (err.message) msg.warn(err.message);
    return err.kind === "retry" ? Status.RETRY : Status.CONFIG;
  }
  msg.warn(`${d.label}: ${op} failed: ${err instanceof Error ? err.message : String(err)}`);
  return Status.RETRY;
}

function statusResult(status: number): Result {
  return status === Status.RETRY ? R_RETRY : status === Status.CONFIG ? R_CONFIG : status === Status.BAD ? R_BAD : R_NOKEY;
}

function seqStatusResult(status: number): SeqResult {
  return status === Status.RETRY ? S_RETRY : status === Status.CONFIG ? S_CONFIG : status === Status.BAD ? S_BAD : S_NOKEY;
}

const TRY_BITS = DictFlag.TRY0NULL | DictFlag.TRY1NULL;

/** A driver may settle TRY0NULL/TRY1NULL on first use (dict_db.c): the open reply shows it. */
function syncTryBits(d: Dict): void {
  const t = d.table;
  if (t) d.flags = (d.flags & ~TRY_BITS) | (t.flags & TRY_BITS);
}

function setRequestFlags(d: Dict, requestFlags: number, extra = 0): void {
  d.flags = (d.flags & ~RQST_MASK) | (requestFlags & RQST_MASK) | extra;
}

function debugging(d: Dict): boolean {
  return (d.flags & DictFlag.DEBUG) !== 0 && d.table?.debugWrapper !== false;
}

/** Count an async operation; a retired table closes when the last ends. */
function track<T>(d: Dict, p: Promise<T>): Promise<T> {
  d.busy++;
  return p.finally(() => {
    if (--d.busy === 0 && d.retired && d.table) closeQuietly(d.table);
  });
}

// ---------------------------------------------------------------- lookup

/**
 * Debug line of a lookup. Usually DEBUG wraps the driver inside the UTF-8
 * layer (it sees the folded key); for utf8Inside tables it wraps the UTF-8
 * layer (it sees the key as received, and the layer's verdict).
 */
function debugLookup(d: Dict, key: string, driverKey: string, outcome: string): void {
  msg.info(`${d.label} lookup: "${d.table?.utf8Inside ? key : driverKey}" = "${outcome}"`);
}

function lookupDone(d: Dict, key: string, driverKey: string, value: string | undefined): Result {
  syncTryBits(d);
  const debug = debugging(d);
  const outside = debug && d.table?.utf8Inside === true;
  if (debug && !outside) debugLookup(d, key, driverKey, value ?? "not_found");
  if (value !== undefined && d.utf8 && !allAscii(value) && !validUtf8(value)) {
    msg.warn(`${d.label}: key "${key}": non-UTF-8 value "${value}": ${UTF8_ERROR}`);
    if (outside) debugLookup(d, key, driverKey, "error");
    return R_CONFIG;
  }
  if (outside) debugLookup(d, key, driverKey, value ?? "not_found");
  return value === undefined ? R_NOKEY : { status: Status.OK, value };
}

function lookupFailed(d: Dict, key: string, driverKey: string, err: unknown): Result {
  syncTryBits(d);
  const status = errorStatus(d, "lookup", err);
  if (debugging(d)) debugLookup(d, key, driverKey, "error");
  return statusResult(status);
}

/** Look up a key (proxymap_lookup_service). Never throws or rejects. */
export function dictGet(d: Dict, key: string, requestFlags: number): Result | Promise<Result> {
  if (d.kind === Kind.BadFlags) return R_BAD;
  setRequestFlags(d, requestFlags);
  const k = utf8Key(d, key);
  if (k === undefined) {
    if (debugging(d) && d.table?.utf8Inside) debugLookup(d, key, key, "not_found");
    return R_NOKEY;
  }
  const table = d.table;
  if (table === undefined) {
    const status = unavailable(d);
    if (debugging(d)) debugLookup(d, key, k, "error");
    return statusResult(status);
  }
  let v: string | undefined | Promise<string | undefined>;
  try {
    v = table.lookup(k, driverFlags(d));
  } catch (err) {
    return lookupFailed(d, key, k, err);
  }
  if (v instanceof Promise) {
    return track(
      d,
      v.then(
        (value) => lookupDone(d, key, k, value),
        (err) => lookupFailed(d, key, k, err),
      ),
    );
  }
  return lookupDone(d, key, k, v);
}

// ---------------------------------------------------------------- update/delete

function writeDone(d: Dict, op: "update" | "delete", line: string, ok: boolean): number {
  syncTryBits(d);
  if (debugging(d)) msg.info(`${line}: ${ok ? "success" : "failed"}`);
  return ok ? Status.OK : Status.NOKEY;
}

function writeFailed(d: Dict, op: "update" | "delete", line: string, err: unknown): number {
  syncTryBits(d);
  const status = errorStatus(d, op, err);
  if (debugging(d)) msg.info(`${line}: error`);
  return status;
}

/** Run a driver write; never throws. */
function runWrite(d: Dict, op: "update" | "delete", line: string, call: () => boolean | Promise<boolean>): number | Promise<number> {
  let r: boolean | Promise<boolean>;
  try {
    r = call();
  } catch (err) {
    return writeFailed(d, op, line, err);
  }
  if (r instanceof Promise) {
    return track(
      d,
      r.then(
        (ok) => writeDone(d, op, line, ok),
        (err) => writeFailed(d, op, line, err),
      ),
    );
  }
  return writeDone(d, op, line, r);
}

/**
 * Store a value (proxymap_update_service): the status to reply. SYNC_UPDATE
 * and DUP_REPLACE are forced, as the reference does, unless `forced` says
 * otherwise (a nested table's update uses its own flags). Never throws.
 */
export function dictPut(d: Dict, key: string, value: string, requestFlags: number, forced: number = DictFlag.SYNC_UPDATE | DictFlag.DUP_REPLACE): number | Promise<number> {
  if (d.kind === Kind.BadFlags) return Status.BAD;
  setRequestFlags(d, requestFlags, forced);
  const k = utf8Key(d, key);
  if (k === undefined) return Status.OK;
  if (d.utf8 && !allAscii(value) && !validUtf8(value)) {
    msg.warn(`${d.label}: key "${key}": non-UTF-8 value "${value}": ${UTF8_ERROR}`);
    return Status.OK;
  }
  const line = `${d.label} update: "${k}" = "${value}"`;
  const table = d.table;
  if (table === undefined) {
    const status = d.kind === Kind.Surrogate && !d.writer ? unsupported(d, "update") : unavailable(d);
    if (debugging(d)) msg.info(`${line}: error`);
    return status;
  }
  if (!table.update) return unsupported(d, "update");
  const update = table.update;
  const flags = driverFlags(d);
  return runWrite(d, "update", line, () => update.call(table, k, value, flags));
}

/** Delete a key (proxymap_delete_service); SYNC_UPDATE forced unless `forced` says otherwise. Never throws. */
export function dictDel(d: Dict, key: string, requestFlags: number, forced: number = DictFlag.SYNC_UPDATE): number | Promise<number> {
  if (d.kind === Kind.BadFlags) return Status.BAD;
  setRequestFlags(d, requestFlags, forced);
  const k = utf8Key(d, key);
  if (k === undefined) return Status.OK;
  const line = `${d.label} delete: "${k}"`;
  const table = d.table;
  if (table === undefined) {
    const status = d.kind === Kind.Surrogate && !d.writer ? unsupported(d, "delete") : unavailable(d);
    if (debugging(d)) msg.info(`${line}: error`);
    return status;
  }
  if (!table.delete) return unsupported(d, "delete");
  const del = table.delete;
  const flags = driverFlags(d);
  return runWrite(d, "delete", line, () => del.call(table, k, flags));
}

// ---------------------------------------------------------------- sequence

function seqDone(d: Dict, r: [string, string] | undefined): SeqResult {
  syncTryBits(d);
  if (debugging(d)) msg.info(r ? `${d.label} sequence: "${r[0]}" = "${r[1]}"` : `${d.label} sequence: found EOF`);
  return r ? { status: Status.OK, key: r[0], value: r[1] } : S_NOKEY;
}

function seqFailed(d: Dict, err: unknown): SeqResult {
  syncTryBits(d);
  const status = errorStatus(d, "sequence", err);
  if (debugging(d)) msg.info(`${d.label} sequence: found EOF`);
  return seqStatusResult(status);
}

/**
 * One step of a table walk (proxymap_sequence_service); fn 0 = first,
 * 1 = next (the service has refused other values). The UTF-8 layer does
 * not touch sequence, as in the reference. Never throws.
 */
export function dictSeq(d: Dict, fn: number, requestFlags: number): SeqResult | Promise<SeqResult> {
  if (d.kind === Kind.BadFlags) return S_BAD;
  setRequestFlags(d, requestFlags);
  const table = d.table;
  if (table === undefined) {
    const status = unavailable(d);
    if (debugging(d)) msg.info(`${d.label} sequence: found EOF`);
    return seqStatusResult(status);
  }
  if (!table.sequence) return seqStatusResult(unsupported(d, "sequence"));
  let r: [string, string] | undefined | Promise<[string, string] | undefined>;
  try {
    r = table.sequence(fn === 0 ? 0 : 1, d.flags);
  } catch (err) {
    return seqFailed(d, err);
  }
  if (r instanceof Promise) {
    return track(
      d,
      r.then(
        (x) => seqDone(d, x),
        (err) => seqFailed(d, err),
      ),
    );
  }
  return seqDone(d, r);
}

// ---------------------------------------------------------------- changes and closing

/** Probe a table's changed() (at most once per second unless forced). */
function probeChanged(d: Dict, force: boolean): boolean {
  const changed = d.table?.changed;
  if (!changed) return false;
  const now = Date.now();
  if (!force && now - d.lastProbe < PROBE_INTERVAL_MS) return d.lastChanged;
  d.lastProbe = now;
  try {
    d.lastChanged = changed.call(d.table) === true;
  } catch (err) {
    msg.warn(`${d.label}: change check failed: ${err instanceof Error ? err.message : String(err)}`);
    d.lastChanged = false;
  }
  return d.lastChanged;
}

/**
 * Cache keys ("type:name:flags", the names the reference logs) of open
 * read-service tables whose files changed on disk and that no request has
 * re-opened yet. Each table's file is checked at most once per second.
 */
export function changedTables(): string[] {
  const out: string[] = [];
  for (const [key, d] of cache) {
    if (d instanceof Promise || d.writer || !d.table?.changed || d.table.changeUnnoticedByReference) continue;
    if (probeChanged(d, false)) out.push(key);
  }
  return out;
}

function closeQuietly(table: Table): void {
  try {
    const r = table.close?.();
    if (r instanceof Promise) r.catch((err) => msg.warn(`close failed: ${err instanceof Error ? err.message : String(err)}`));
  } catch (err) {
    msg.warn(`close failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Take a table out of service; it closes once its operations in flight end. */
function retire(d: Dict): void {
  d.retired = true;
  if (d.busy === 0 && d.table) closeQuietly(d.table);
}

/** Close every open table and forget them (shutdown, tests). */
export async function closeAllDicts(): Promise<void> {
  const all = [...cache.values()];
  cache.clear();
  for (const entry of all) {
    const d = await Promise.resolve(entry).catch(() => undefined);
    if (d) retire(d);
  }
}

// ---------------------------------------------------------------- nested opens

const PROXY_COLON = "proxy:";

/** A Dict as another table sees it (OpenContext.openTable). */
function openedTable(d: Dict): OpenedTable {
  const own = () => d.flags;
  const settle = <T, R>(r: T | Promise<T>, f: (x: T) => R): R | Promise<R> => (r instanceof Promise ? r.then(f) : f(r));
  return {
    get label() {
      return d.label;
    },
    get flags() {
      return d.flags;
    },
    lookup: (key, flags = own()): OpResult | Promise<OpResult> =>
      settle(dictGet(d, key, flags), (r) => ({ status: r.status, value: r.value, flags: d.flags })),
    // proxywrite forces DUP_REPLACE and SYNC_UPDATE on the table a client names, not on tables
    // opened inside it: the reference's nested dict_put()/dict_del() use the nested table's flags.
    update: (key, value, flags = own()): OpResult | Promise<OpResult> =>
      settle(dictPut(d, key, value, flags, 0), (status) => ({ status, value: "", flags: d.flags })),
    delete: (key, flags = own()): OpResult | Promise<OpResult> =>
      settle(dictDel(d, key, flags, 0), (status) => ({ status, value: "", flags: d.flags })),
    sequence: (fn, flags = own()): SeqOpResult | Promise<SeqOpResult> =>
      settle(dictSeq(d, fn, flags), (r) => ({ status: r.status, key: r.key, value: r.value, flags: d.flags })),
  };
}

/** The context every driver's open() receives. */
export const OPEN_CONTEXT: OpenContext = {
  openTable(typeName, flags, opts) {
    let name = typeName;
    while (name.startsWith(PROXY_COLON)) name = name.slice(PROXY_COLON.length);
    const d = openDict(name, opts?.write ?? false, flags);
    return d instanceof Promise ? d.then(openedTable) : openedTable(d);
  },
};
