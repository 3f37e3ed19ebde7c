/**
 * Reply encodings of the proxymap protocol, per request and generation
 * (../shared/PROTOCOL.md section 2). Pure: values in, bytes out.
 *
 * Lookup replies are the hot path: an OK reply of the classic shape is kept
 * per value in a cache, so a popular key costs one Map lookup and no
 * encoding. The cache is bounded by bytes, not entries (values come from
 * tables and from clients' keys, e.g. a regexp's $1, so one entry may be a
 * megabyte): only replies up to OK_CACHE_ENTRY_MAX bytes are kept, and the
 * oldest entries go once the total passes OK_CACHE_BYTES (README
 * "Memory").
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

/** Bytes the OK-reply cache may hold in all (keys and replies counted). */
export const OK_CACHE_BYTES = 4 * 1024 * 1024;
/** A larger reply is encoded each time: popular values are short, large ones are rarely repeated. */
export const OK_CACHE_ENTRY_MAX = 4096;
/** What one Map entry costs beyond its bytes (an estimate of the engine's own bookkeeping). */
const ENTRY_OVERHEAD = 96;

/** Insertion-ordered: the first entries are the oldest, evicted first. */
const okLookupCache = new Map<string, Buffer>();
let okCacheBytes = 0;

function entryCost(value: string, reply: Buffer): number {
  return value.length + reply.length + ENTRY_OVERHEAD;
}

/** Where the value starts in `status NUL 0 NUL value NUL ... NUL NUL`. */
const OK_VALUE_OFFSET = "status\x000\x00value\x00".length;

function remember(value: string, reply: Buffer): void {
  // The key is a fresh copy made from the reply's bytes: the value may be a
  // slice of a much larger string (a regexp's $1 of a huge key), which the
  // engine would otherwise keep alive as long as the entry.
  const key = reply.toString("latin1", OK_VALUE_OFFSET, OK_VALUE_OFFSET + value.length);
  okCacheBytes += entryCost(key, reply);
  okLookupCache.set(key, reply);
  if (okCacheBytes <= OK_CACHE_BYTES) return;
  // Evict the oldest quarter at once: one pass per many insertions, not
  // one per insertion.
  for (const [v, r] of okLookupCache) {
    okLookupCache.delete(v);
    okCacheBytes -= entryCost(v, r);
    if (okCacheBytes <= OK_CACHE_BYTES * 0.75) break;
  }
}

/** What the OK-reply cache holds now (tests, the README's bound). */
export function okReplyCacheUsage(): { entries: number; bytes: number } {
  return { entries: okLookupCache.size, bytes: okCacheBytes };
}

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
    if (reply.length <= OK_CACHE_ENTRY_MAX) remember(value, reply);
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
