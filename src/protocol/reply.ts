/**
 * Reply encodings of the proxymap protocol, per request and generation
 * (../shared/PROTOCOL.md section 2). Pure: values in, bytes out.
 *
 * Lookup replies are the hot path: an OK reply of the classic shape is kept
 * per value in a bounded cache, so a popular key costs one Map lookup and no
 * encoding.
 */
import { encodeAttrs, formatCUnsigned } from "./attr";
import type { Gen } from "./scan";
import { Status } from "./constants";

/** The greeting 3.6+ clients wait for before their first request. */
export const GREETING = encodeAttrs([["protocol", "proxymap_protocol"]]);

/** Reply to an unrecognized request: status BAD alone. */
export const UNKNOWN_REPLY = encodeAttrs([["status", Status.BAD]]);

export function openReply(status: number, flags: number): Buffer {
  return encodeAttrs([
    ["status", status],
    ["flags", formatCUnsigned(flags)],
  ]);
}

const OK_CACHE_LIMIT = 4096;
const okLookupCache = new Map<string, Buffer>();

export function lookupReply(gen: Gen, status: number, flags: number, value: string): Buffer {
  if (gen === "instance") {
    return encodeAttrs([
      ["status", status],
      ["flags", formatCUnsigned(flags)],
      ["value", value],
    ]);
  }
  if (status !== Status.OK) return encodeAttrs([["status", status], ["value", value]]);
  let reply = okLookupCache.get(value);
  if (reply === undefined) {
    reply = encodeAttrs([["status", Status.OK], ["value", value]]);
    if (okLookupCache.size >= OK_CACHE_LIMIT) okLookupCache.clear();
    okLookupCache.set(value, reply);
  }
  return reply;
}

/** update and delete replies. */
export function writeReply(gen: Gen, status: number, flags: number): Buffer {
  return gen === "instance"
    ? encodeAttrs([["status", status], ["flags", formatCUnsigned(flags)]])
    : encodeAttrs([["status", status]]);
}

export function sequenceReply(gen: Gen, status: number, flags: number, key: string, value: string): Buffer {
  return gen === "instance"
    ? encodeAttrs([
        ["status", status],
        ["flags", formatCUnsigned(flags)],
        ["key", key],
        ["value", value],
      ])
    : encodeAttrs([
        ["status", status],
        ["key", key],
        ["value", value],
      ]);
}
