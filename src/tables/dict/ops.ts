/**
 * ops.ts - the four operations on an open instance, as proxymap.c's
 * services perform them: each returns {status, value, flags} for that call
 * and never throws or rejects.
 *
 * The call's flags word:
 * - up to 3.10 (request shape "classic"): the instance's shared word with
 *   the request's bits put in (flags = (flags & ~RQST_MASK) | (request &
 *   RQST_MASK)), stored back as the reference stores it (the next `open`
 *   reply shows it);
 * - from 3.11 ("instance"): the request's whole word, as sent. It is the
 *   call's own, so overlapping requests with different flags cannot mix;
 *   it is also left on the instance as the reference leaves dict->flags
 *   (`word`), which is what a composite sharing that instance looks its
 *   member up with. Replies never read it.
 * A driver that settles TRY0NULL/TRY1NULL reports the new bits (Settled);
 * they go into the reply, and up to 3.10 into the shared word.
 *
 * A table without the operation answers CONFIG with the warning
 * "table TYPE:NAME: OP operation is not supported" (the reference exits).
 *
 * Statistics: each operation that reaches a table is counted with its
 * status (and timed) in the table's Counters when statistics are on
 * (src/stats/collector.ts measure()); the result passes through unchanged.
 *
 * Logs: that warning, and each failure's own (errors.ts).
 */
import { DictFlag, RQST_MASK, Status } from "../../protocol/constants";
import { msg } from "../../log/msg";
import { Settled, type Maybe, type OpResult, type Out, type SeqOpResult } from "../table";
import { reportError } from "./errors";
import { closeQuietly } from "./cache";
import type { Dict } from "./instance";
import { settle } from "./settle";
import { measure, startOf } from "../../stats/collector";
import { Op } from "../../stats/counters";

const TRY_BITS = DictFlag.TRY0NULL | DictFlag.TRY1NULL;

/** The flags word of one call (see the file comment). */
function callFlags(d: Dict, request: number): number {
  d.word = d.gen === "classic" ? (d.word & ~RQST_MASK) | (request & RQST_MASK) : request;
  return d.word;
}

/** The call's flags after the driver: TRY bits it settled. */
function flagsAfter<T>(d: Dict, call: number, r: Out<T>): number {
  if (!(r instanceof Settled)) return call;
  const after = (call & ~TRY_BITS) | (r.flags & TRY_BITS);
  d.word = (d.word & ~TRY_BITS) | (after & TRY_BITS);
  return after;
}

function plain<T>(r: Out<T>): T {
  return r instanceof Settled ? r.result : r;
}

/** Count an async operation; a retired instance closes when its last one ends. */
function tracked<R>(d: Dict, r: R | Promise<R>): R | Promise<R> {
  if (!(r instanceof Promise)) return r;
  d.busy++;
  return r.finally(() => {
    if (--d.busy === 0 && d.retired) closeQuietly(d.driver);
  });
}

function statusOf(kind: "retry" | "config"): number {
  return kind === "retry" ? Status.RETRY : Status.CONFIG;
}

function refused(op: string, d: Dict): OpResult {
  msg.warn(`table ${d.label}: ${op} operation is not supported`);
  return { status: Status.CONFIG, value: "", flags: d.gen === "classic" ? d.word : 0 };
}

/** Look up a key (proxymap_lookup_service). */
export function dictGet(d: Dict, key: string, request: number): Maybe<OpResult> {
  const c = d.stats;
  if (c === undefined) return lookupOp(d, key, request);
  const started = startOf();
  return measure(c, Op.lookup, started, lookupOp(d, key, request));
}

function lookupOp(d: Dict, key: string, request: number): Maybe<OpResult> {
  const t = d.table;
  const call = callFlags(d, request);
  return tracked(
    d,
    settle(
      () => t.lookup(key, call),
      (r): OpResult => {
        const value = plain(r);
        const flags = flagsAfter(d, call, r);
        return value === undefined ? { status: Status.NOKEY, value: "", flags } : { status: Status.OK, value, flags };
      },
      (err): OpResult => ({ status: statusOf(reportError(d.label, "lookup", err)), value: "", flags: call }),
    ),
  );
}

/** Run a write; the reply's status from its outcome. */
function write(d: Dict, op: "update" | "delete", call: number, run: () => Maybe<Out<boolean>>): Maybe<OpResult> {
  return tracked(
    d,
    settle(
      run,
      (r): OpResult => ({ status: plain(r) ? Status.OK : Status.NOKEY, value: "", flags: flagsAfter(d, call, r) }),
      (err): OpResult => ({ status: statusOf(reportError(d.label, op, err)), value: "", flags: call }),
    ),
  );
}

/**
 * Store a value (proxymap_update_service). The service adds SYNC_UPDATE
 * and DUP_REPLACE to a client's request, as the reference does; a table
 * updating its nested table (memcache's backup) passes that table's own.
 */
export function dictPut(d: Dict, key: string, value: string, request: number): Maybe<OpResult> {
  const c = d.stats;
  if (c === undefined) return updateOp(d, key, value, request);
  const started = startOf();
  return measure(c, Op.update, started, updateOp(d, key, value, request));
}

function updateOp(d: Dict, key: string, value: string, request: number): Maybe<OpResult> {
  const t = d.table;
  const call = callFlags(d, request);
  const update = t.update;
  if (!update) return refused("update", d);
  return write(d, "update", call, () => update.call(t, key, value, call));
}

/** Delete a key (proxymap_delete_service; the service adds SYNC_UPDATE). */
export function dictDel(d: Dict, key: string, request: number): Maybe<OpResult> {
  const c = d.stats;
  if (c === undefined) return deleteOp(d, key, request);
  const started = startOf();
  return measure(c, Op.delete, started, deleteOp(d, key, request));
}

function deleteOp(d: Dict, key: string, request: number): Maybe<OpResult> {
  const t = d.table;
  const call = callFlags(d, request);
  const del = t.delete;
  if (!del) return refused("delete", d);
  return write(d, "delete", call, () => del.call(t, key, call));
}

/** One step of a walk (proxymap_sequence_service); fn 0 = first, 1 = next. */
export function dictSeq(d: Dict, fn: number, request: number): Maybe<SeqOpResult> {
  const c = d.stats;
  if (c === undefined) return sequenceOp(d, fn, request);
  const started = startOf();
  return measure(c, Op.sequence, started, sequenceOp(d, fn, request));
}

function sequenceOp(d: Dict, fn: number, request: number): Maybe<SeqOpResult> {
  const t = d.table;
  const call = callFlags(d, request);
  const sequence = t.sequence;
  if (!sequence) return { ...refused("sequence", d), key: "" };
  return tracked(
    d,
    settle(
      () => sequence.call(t, fn === 0 ? 0 : 1, call),
      (r): SeqOpResult => {
        const kv = plain(r);
        const flags = flagsAfter(d, call, r);
        return kv === undefined ? { status: Status.NOKEY, key: "", value: "", flags } : { status: Status.OK, key: kv[0], value: kv[1], flags };
      },
      (err): SeqOpResult => ({ status: statusOf(reportError(d.label, "sequence", err)), key: "", value: "", flags: call }),
    ),
  );
}
