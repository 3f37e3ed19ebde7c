/**
 * netstring.ts - the netstring encoding ("LEN:DATA,") that the socketmap
 * protocol wraps around each request and reply, as Postfix's
 * util/netstring.c reads and writes it: decimal length digits, ':', exactly
 * LEN bytes, ','. The decoder is incremental: it looks at what has arrived
 * so far and says "need more", "here is one netstring", or which of the
 * reference's error classes the input falls into.
 *
 * Pure: no I/O, no logging. Strings are byte strings (latin1).
 */

/** The reference's error classes and their texts (netstring_strerror()). */
export type NetstringError = "eof" | "time" | "format" | "size";

export const NETSTRING_ERROR_TEXT: Readonly<Record<NetstringError, string>> = {
  eof: "unexpected disconnect",
  time: "time limit exceeded",
  format: "input format error",
  size: "input exceeds size limit",
};

/** One netstring around a byte string. */
export function encodeNetstring(data: string): string {
  return `${data.length}:${data},`;
}

export type DecodeResult =
  | { readonly kind: "more" }
  | { readonly kind: "ok"; readonly value: string; readonly used: number }
  | { readonly kind: "error"; readonly error: "format" | "size" };

const MORE: DecodeResult = Object.freeze({ kind: "more" });

/** Larger lengths would overflow the reference's ssize_t: a size error. */
const LENGTH_OVERFLOW = Number.MAX_SAFE_INTEGER;

/**
 * Decode one netstring at the start of buf (a byte string). The length is
 * checked against limit only once its ':' has arrived, as the reference
 * does (it reads every digit first); a non-digit before ':' and anything
 * but ',' after the payload are format errors.
 */
export function decodeNetstring(buf: string, limit: number): DecodeResult {
  let len = 0;
  let i = 0;
  for (; ; i++) {
    if (i >= buf.length) return MORE;
    const c = buf.charCodeAt(i);
    if (c === 0x3a /* : */) break;
    if (c < 0x30 || c > 0x39) return { kind: "error", error: "format" };
    len = len * 10 + (c - 0x30);
    if (len > LENGTH_OVERFLOW) return { kind: "error", error: "size" };
  }
  if (len > limit) return { kind: "error", error: "size" };
  const start = i + 1;
  const end = start + len;
  if (buf.length <= end) return MORE;
  if (buf.charCodeAt(end) !== 0x2c /* , */) return { kind: "error", error: "format" };
  return { kind: "ok", value: buf.slice(start, end), used: end + 1 };
}
