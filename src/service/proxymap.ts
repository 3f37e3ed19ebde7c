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
import { dictDel, dictGet, dictPut, dictSeq, openDict, changedTables, setMaxTables, type Dict } from "../tables/dict/index";
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
type Request = RequestAttrs & { gen: Gen };

export function createService(opts: ServiceOptions): ProxymapService {
  const writer = opts.serviceName === SERVICE_WRITE;
  const settings = serviceSettings(opts.config, writer);
  setMaxTables(settings.maxTables);
  const approved = approvedTableSet(opts.config, writer);
  const paramName = writer ? "proxy_write_maps" : "proxy_read_maps";
  const access = writer ? "read-write" : "read-only";
  let inFlight = 0;

  /** Strip proxy: prefixes, check approval, open (or reuse) the table. */
  function find(r: Request): Found | Promise<Found> {
    let name = r.table;
    while (name.startsWith(PROXY_PREFIX)) name = name.slice(PROXY_PREFIX.length);
    if (!name.includes(":")) return Status.BAD;
    if (!approved.has(name)) {
      msg.warn(`request for unapproved table: "${name}"`);
      msg.warn(`to approve this table for ${access} access, list proxy:${name} in main.cf:${paramName}`);
      return Status.DENY;
    }
    return openDict(name, writer, r.gen === "instance" ? r.instFlags : r.flags, r.gen);
  }

  /**
   * Find the request's table and run op on it; a status instead of a table
   * (DENY, BAD) is answered by fail. The dict layer owns the flags: each
   * operation hands back the word this request's reply carries.
   */
  function onTable<T>(r: Request, op: (d: Dict) => T | Promise<T>, fail: (status: number) => Buffer, reply: (x: T) => Buffer): Buffer | Promise<Buffer> {
    const run = (f: Found): Buffer | Promise<Buffer> => {
      if (typeof f === "number") return fail(f);
      const x = op(f);
      return x instanceof Promise ? x.then(reply) : reply(x);
    };
    const found = find(r);
    return found instanceof Promise ? found.then(run) : run(found);
  }

  function openOp(r: Request) {
    // Up to 3.10 the reply shows the instance's shared word; from 3.11 its
    // flags as first opened (proxy_map_find() resets them for every client).
    return onTable(
      r,
      (d) => d,
      (s) => openReply(s, 0),
      (d) => openReply(Status.OK, r.gen === "instance" ? d.openFlags : d.word),
    );
  }

  function lookupOp(r: Request) {
    return onTable(
      r,
      (d) => dictGet(d, r.key, r.flags),
      (s) => lookupReply(r.gen, s, 0, ""),
      (x) => lookupReply(r.gen, x.status, x.flags, x.value),
    );
  }

  function refuseWrite(op: "update" | "delete", r: Request): Buffer {
    msg.warn(`refusing ${r.table} ${op} request on non-${SERVICE_WRITE} service`);
    return writeReply(r.gen, Status.DENY, 0);
  }

  function updateOp(r: Request) {
    if (!writer) return refuseWrite("update", r);
    // Tables stay open between requests, so every update is synchronous,
    // and a repeated key replaces the old value rather than abort (as the
    // reference).
    return onTable(
      r,
      (d) => dictPut(d, r.key, r.value, r.flags | DictFlag.SYNC_UPDATE | DictFlag.DUP_REPLACE),
      (s) => writeReply(r.gen, s, 0),
      (x) => writeReply(r.gen, x.status, x.flags),
    );
  }

  function deleteOp(r: Request) {
    if (!writer) return refuseWrite("delete", r);
    return onTable(
      r,
      (d) => dictDel(d, r.key, r.flags | DictFlag.SYNC_UPDATE),
      (s) => writeReply(r.gen, s, 0),
      (x) => writeReply(r.gen, x.status, x.flags),
    );
  }

  function sequenceOp(r: Request) {
    if (r.func !== SEQ_FIRST && r.func !== SEQ_NEXT) return sequenceReply(r.gen, Status.BAD, 0, "", "");
    return onTable(
      r,
      (d) => dictSeq(d, r.func, r.flags),
      (s) => sequenceReply(r.gen, s, 0, "", ""),
      (x) => sequenceReply(r.gen, x.status, x.flags, x.key, x.value),
    );
  }

  const OPS: Record<RequestOp, (r: Request) => Buffer | Promise<Buffer>> = {
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
    installedGen: settings.installedGen,
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
