/**
 * The proxymap service: what the reference's proxymap.c does once a request
 * has been read. It checks each table against the approved list
 * (proxy_read_maps for the proxymap service, proxy_write_maps for
 * proxywrite), opens it through the dict layer (one shared instance per
 * table and instance flags), performs the operation and encodes the reply
 * in the request's own shape.
 *
 * Reads: main.cf through MainConfig (approval lists, settings below).
 * Logs: the reference's warnings for unapproved tables and for writes on
 * the read-only service; a warning when a request outlives daemon_timeout.
 *
 * Settings of our own (main.cf or -o):
 *  - proxymap_max_request_size (default 1048576): bytes one request may
 *    take before its connection is closed.
 *  - proxymap_protocol_greeting (auto | yes | no): whether a new client is
 *    greeted with `protocol=proxymap_protocol`, as Postfix 3.6 and later
 *    expect; auto follows the installed Postfix's mail_version.
 */
import type { MainConfig } from "../config/mainCf";
import { msg } from "../log/msg";
import { DictFlag, SEQ_FIRST, SEQ_NEXT, SERVICE_WRITE, Status } from "../protocol/constants";
import { GREETING, UNKNOWN_REPLY, lookupReply, openReply, sequenceReply, writeReply } from "../protocol/reply";
import type { Gen, RequestAttrs, RequestOp, Scanned } from "../protocol/scan";
import { dictDel, dictGet, dictPut, dictSeq, openDict, changedTables, type Dict } from "../tables/dict";
import { approvedTableSet } from "./approval";
import { ClientSession, type ClientIO, type RequestHandler, type Session } from "./session";
import { serviceSettings, type ServiceSettings } from "./settings";

export interface ServiceOptions {
  /** "proxymap" or "proxywrite" (anything else is fatal before this is built). */
  serviceName: string;
  config: MainConfig;
  /** How warnings name the client stream; "<service> socket" under master. */
  streamName?: string;
}

export interface ProxymapService {
  readonly writer: boolean;
  readonly settings: ServiceSettings;
  /** A session for a newly accepted client; greets it when configured. */
  connect(io: ClientIO, opts?: { greet?: boolean }): Session;
  /** Read service: names of file tables that changed on disk. */
  changedTable(): string | undefined;
  /** Requests in flight over all sessions (for the busy/idle report). */
  readonly inFlight: number;
}

const PROXY_PREFIX = "proxy:";

type Found = Dict | number;

export function createService(opts: ServiceOptions): ProxymapService {
  const writer = opts.serviceName === SERVICE_WRITE;
  const settings = serviceSettings(opts.config, writer);
  const approved = approvedTableSet(opts.config, writer);
  const paramName = writer ? "proxy_write_maps" : "proxy_read_maps";
  const access = writer ? "read-write" : "read-only";
  /** The flags each table had when first opened (3.11 semantics reset to these). */
  const firstFlags = new WeakMap<Dict, number>();
  let inFlight = 0;

  /** Strip proxy: prefixes, check approval, open (or reuse) the table. */
  function find(table: string, instFlags: number): Found | Promise<Found> {
    let name = table;
    while (name.startsWith(PROXY_PREFIX)) name = name.slice(PROXY_PREFIX.length);
    if (!name.includes(":")) return Status.BAD;
    if (!approved.has(name)) {
      msg.warn(`request for unapproved table: "${name}"`);
      msg.warn(`to approve this table for ${access} access, list proxy:${name} in main.cf:${paramName}`);
      return Status.DENY;
    }
    const d = openDict(name, writer, instFlags);
    return d instanceof Promise ? d.then(remember) : remember(d);
  }

  function remember(d: Dict): Dict {
    if (!firstFlags.has(d)) firstFlags.set(d, d.flags);
    return d;
  }

  /** Run `op` on the table once it is open; a status number passes through. */
  function withDict<T>(found: Found | Promise<Found>, op: (d: Dict) => T | Promise<T>, fail: (s: number) => T) {
    if (found instanceof Promise) return found.then((f) => (typeof f === "number" ? fail(f) : op(f)));
    return typeof found === "number" ? fail(found) : op(found);
  }

  /**
   * Run one operation on a shared table with the request's flags.
   * Classic (up to 3.10) requests change only the request bits of the shared
   * instance, as the reference does; the dict layer merges them. A 3.11
   * request brings its whole flag word and gets the result back; it must
   * not leave that word on the instance other clients share (3.11's
   * proxymap resets each instance to its first-open flags for the same
   * reason), so the instance's flags are put back once it is answered.
   */
  function runOp<T>(
    d: Dict,
    gen: Gen,
    flags: number,
    op: (flags: number) => T | Promise<T>,
    reply: (result: T, replyFlags: number) => Buffer,
  ): Buffer | Promise<Buffer> {
    if (gen === "classic") {
      const res = op(flags);
      return res instanceof Promise ? res.then((x) => reply(x, d.flags)) : reply(res, d.flags);
    }
    const saved = d.flags;
    d.flags = flags;
    const finish = (x: T): Buffer => {
      const out = reply(x, d.flags);
      d.flags = saved;
      return out;
    };
    const res = op(flags);
    return res instanceof Promise ? res.then(finish) : finish(res);
  }

  function openOp(r: RequestAttrs & { gen: Gen }) {
    const inst = r.gen === "instance" ? r.instFlags : r.flags;
    return withDict(
      find(r.table, inst),
      (d) => {
        // A table the reference could not even have opened (flags it panics
        // on) answers its status without flags.
        if (d.openStatus !== Status.OK) return openReply(d.openStatus, 0);
        return openReply(Status.OK, r.gen === "instance" ? (firstFlags.get(d) ?? d.flags) : d.flags);
      },
      (s) => openReply(s, 0),
    );
  }

  /** Find the request's table, run op on it with `flags`, reply; or reply the failure status. */
  function onTable<T>(
    r: RequestAttrs & { gen: Gen },
    flags: number,
    op: (d: Dict, flags: number) => T | Promise<T>,
    reply: (result: T, replyFlags: number) => Buffer,
    fail: (status: number) => Buffer,
  ): Buffer | Promise<Buffer> {
    const inst = r.gen === "instance" ? r.instFlags : r.flags;
    return withDict(find(r.table, inst), (d) => runOp(d, r.gen, flags, (f) => op(d, f), reply), fail);
  }

  function lookupOp(r: RequestAttrs & { gen: Gen }) {
    return onTable(
      r,
      r.flags,
      (d, f) => dictGet(d, r.key, f),
      (x, rf) => lookupReply(r.gen, x.status, rf, x.value),
      (s) => lookupReply(r.gen, s, 0, ""),
    );
  }

  function refuseWrite(op: "update" | "delete", r: RequestAttrs & { gen: Gen }): Buffer {
    msg.warn(`refusing ${r.table} ${op} request on non-${SERVICE_WRITE} service`);
    return writeReply(r.gen, Status.DENY, 0);
  }

  function updateOp(r: RequestAttrs & { gen: Gen }) {
    if (!writer) return refuseWrite("update", r);
    // Tables stay open between requests, so every update is synchronous, and
    // a repeated key replaces the old value rather than abort (as the reference).
    return onTable(
      r,
      r.flags | DictFlag.SYNC_UPDATE | DictFlag.DUP_REPLACE,
      (d, f) => dictPut(d, r.key, r.value, f),
      (x, rf) => writeReply(r.gen, x, rf),
      (s) => writeReply(r.gen, s, 0),
    );
  }

  function deleteOp(r: RequestAttrs & { gen: Gen }) {
    if (!writer) return refuseWrite("delete", r);
    return onTable(
      r,
      r.flags | DictFlag.SYNC_UPDATE,
      (d, f) => dictDel(d, r.key, f),
      (x, rf) => writeReply(r.gen, x, rf),
      (s) => writeReply(r.gen, s, 0),
    );
  }

  function sequenceOp(r: RequestAttrs & { gen: Gen }) {
    if (r.func !== SEQ_FIRST && r.func !== SEQ_NEXT) return sequenceReply(r.gen, Status.BAD, 0, "", "");
    return onTable(
      r,
      r.flags,
      (d, f) => dictSeq(d, r.func, f),
      (x, rf) => sequenceReply(r.gen, x.status, rf, x.key, x.value),
      (s) => sequenceReply(r.gen, s, 0, "", ""),
    );
  }

  const OPS: Record<RequestOp, (r: RequestAttrs & { gen: Gen }) => Buffer | Promise<Buffer>> = {
    open: openOp,
    lookup: lookupOp,
    update: updateOp,
    delete: deleteOp,
    sequence: sequenceOp,
  };

  function badReply(op: RequestOp, gen: Gen): Buffer {
    return failReply(op, gen, Status.BAD);
  }

  /**
   * A request that outlives daemon_timeout gets RETRY, so one stuck
   * database never holds a client for ever (the reference would be killed
   * by its watchdog instead, dropping every client).
   */
  function bounded(op: RequestOp, gen: Gen, table: string, p: Promise<Buffer>): Promise<Buffer> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<Buffer>((resolve) => {
      timer = setTimeout(() => {
        msg.warn(`${table}: ${op} request timed out after ${settings.requestTimeoutMs / 1000}s`);
        resolve(failReply(op, gen, Status.RETRY));
      }, settings.requestTimeoutMs);
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }

  /** A reply of op's shape carrying only a failure status. */
  function failReply(op: RequestOp, gen: Gen, status: number): Buffer {
    switch (op) {
      case "open":
        return openReply(status, 0);
      case "lookup":
        return lookupReply(gen, status, 0, "");
      case "sequence":
        return sequenceReply(gen, status, 0, "", "");
      default:
        return writeReply(gen, status, 0);
    }
  }

  const handler: RequestHandler = {
    streamName: opts.streamName ?? `${opts.serviceName} socket`,
    fallbackGen: settings.fallbackGen,
    maxRequestSize: settings.maxRequestSize,
    onAsync(delta) {
      inFlight += delta;
    },
    handle(s: Scanned) {
      switch (s.op) {
        case "none":
          return null;
        case "unknown":
          msg.warn(`unrecognized request: "${s.name}", ignored`);
          return UNKNOWN_REPLY;
        case "bad":
          return badReply(s.request, s.gen);
        default: {
          let reply: Buffer | Promise<Buffer>;
          try {
            reply = OPS[s.op](s);
          } catch (err) {
            msg.warn(`${s.table}: ${s.op} request failed: ${String(err)}`);
            return failReply(s.op, s.gen, Status.RETRY);
          }
          if (!(reply instanceof Promise)) return reply;
          const op = s.op;
          const gen = s.gen;
          const safe = reply.catch((err) => {
            msg.warn(`${s.table}: ${op} request failed: ${String(err)}`);
            return failReply(op, gen, Status.RETRY);
          });
          return bounded(op, gen, s.table, safe);
        }
      }
    },
  };

  return {
    writer,
    settings,
    connect(io, connectOpts) {
      if (connectOpts?.greet ?? settings.greeting) io.write(GREETING);
      return new ClientSession(io, handler);
    },
    changedTable() {
      return changedTables()[0];
    },
    get inFlight() {
      return inFlight;
    },
  };
}
