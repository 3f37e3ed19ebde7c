/**
 * memcache/proto.ts - the three commands of memcached's text protocol that
 * Postfix's memcache client uses (get, set, delete) and their replies,
 * read the way global/memcache_proto.c and dict_memcache.c read them:
 *
 *  - a reply line is read with a bound (line_size_limit): at most that many
 *    bytes up to and including '\n'; a line ends in CRLF or a bare LF. A
 *    line that does not fit is an I/O error, and the rest of it is still in
 *    the stream;
 *  - `get` answers "END" (not found) or "VALUE <key> <flags> <bytes>", the
 *    data, CRLF and "END". The byte count is read as sscanf("VALUE %*s %*s
 *    %ld") does; a count that is negative or over data_size_limit is an
 *    unexpected reply. The data ends at its first NUL (a C string). A value
 *    whose "END" is missing or wrong is still the answer (the reference
 *    then drops the connection);
 *  - `set` and `delete` answer one line ("STORED", "DELETED", "NOT_FOUND",
 *    or an error text).
 *
 * Ours is stricter in one point that only a server other than memcached
 * could notice: the key of a VALUE line must be the key asked for (with
 * many requests in flight on one connection, a reply for another key means
 * the stream is out of step).
 *
 * Each parser also says whether the stream is still in step after the
 * reply (pipeline.ts closes the connection when it is not). Pure: no I/O,
 * no logging. Strings are byte strings.
 */
import type { ReplyParser, ReplyStep } from "../net/pipeline";
import { cString, isSpaceCode } from "../../util/ctype";

/** memcached's KEY_MAX_LENGTH: longer keys are refused with CLIENT_ERROR. */
export const MAX_KEY_LENGTH = 250;

export function getCommand(key: string): string {
  return `get ${key}\r\n`;
}

/** `set`, with the value's length as strlen() gives it (the caller passes a C string). */
export function setCommand(key: string, flags: number, ttl: number, value: string): string {
  return `set ${key} ${flags} ${ttl} ${value.length}\r\n${value}\r\n`;
}

export function deleteCommand(key: string): string {
  return `delete ${key}\r\n`;
}

/**
 * Would memcached take this `set` as one command? It refuses a key over
 * 250 bytes or a negative flags word with CLIENT_ERROR before it reads the
 * data, and then runs the data line as a command of its own (a value
 * "flush_all" empties the cache). Such a set must not be sent.
 */
export function setRefusal(key: string, flags: number): string | undefined {
  if (key.length > MAX_KEY_LENGTH) return `key is longer than ${MAX_KEY_LENGTH} bytes`;
  if (flags < 0) return `flags ${flags} is negative`;
  return undefined;
}

/** One reply line, or why it could not be read. */
type Line = { kind: "line"; text: string; next: number } | { kind: "more" } | { kind: "toolong" };

const MORE: ReplyStep<never> = Object.freeze({ kind: "more" });

/**
 * vstring_get_bound() and memcache_get(): the line at buf[pos..], of at
 * most `bound` bytes including its '\n' (a '\r' that takes the last place
 * may still be followed by its '\n'), without the CRLF or LF.
 */
export function readLine(buf: string, pos: number, bound: number): Line {
  const limit = pos + bound;
  const nl = buf.indexOf("\n", pos);
  if (nl >= 0 && nl < limit) {
    const end = nl > pos && buf.charCodeAt(nl - 1) === 0x0d ? nl - 1 : nl;
    return { kind: "line", text: buf.slice(pos, end), next: nl + 1 };
  }
  if (buf.length < limit) return { kind: "more" };
  // `bound` bytes read without '\n': fine only when the last was '\r' and '\n' follows.
  if (buf.charCodeAt(limit - 1) !== 0x0d) return { kind: "toolong" };
  if (buf.length === limit) return { kind: "more" };
  return buf.charCodeAt(limit) === 0x0a ? { kind: "line", text: buf.slice(pos, limit - 1), next: limit + 1 } : { kind: "toolong" };
}

/** The key and byte count of a VALUE line as sscanf("VALUE %s %*s %ld") reads it, or undefined. */
export function parseValueLine(line: string): { key: string; bytes: number } | undefined {
  if (!line.startsWith("VALUE")) return undefined;
  let i = 5;
  const skipSpace = () => {
    while (i < line.length && isSpaceCode(line.charCodeAt(i))) i++;
  };
  const word = (): string | undefined => {
    skipSpace();
    const from = i;
    while (i < line.length && !isSpaceCode(line.charCodeAt(i))) i++;
    return i > from ? line.slice(from, i) : undefined;
  };
  const key = word();
  if (key === undefined || word() === undefined) return undefined;
  skipSpace();
  const m = /^[+-]?[0-9]+/.exec(line.slice(i));
  if (!m) return undefined;
  return { key, bytes: Number(m[0]) };
}

/** What a `get` came back with. */
export type GetReply =
  | { readonly kind: "end" }
  | { readonly kind: "value"; readonly value: string }
  /** Not END, not a usable VALUE line (the line, for the warning). */
  | { readonly kind: "unexpected"; readonly line: string }
  /** The data or its CRLF did not arrive whole. */
  | { readonly kind: "data" }
  /** The reply line did not fit in line_size_limit. */
  | { readonly kind: "toolong" };

/** What a `set` or `delete` came back with: its line, or a line too long. */
export type LineReply = { readonly kind: "line"; readonly line: string } | { readonly kind: "toolong" };

function done<T>(value: T, used: number, broken = false): ReplyStep<T> {
  return { kind: "done", value, used, broken };
}

/** The parser of the reply to `get key`. */
export function getReplyParser(key: string, maxLine: number, maxData: number): ReplyParser<GetReply> {
  return (buf, pos, final) => {
    const head = readLine(buf, pos, maxLine);
    if (head.kind === "more") return MORE;
    if (head.kind === "toolong") return done<GetReply>({ kind: "toolong" }, pos, true);
    if (head.text === "END") return done<GetReply>({ kind: "end" }, head.next);
    const v = parseValueLine(head.text);
    if (v === undefined || v.bytes < 0 || v.bytes > maxData || v.key !== key) {
      // After a VALUE line, data of unknown length may follow: out of step.
      return done<GetReply>({ kind: "unexpected", line: head.text }, head.next, head.text.startsWith("VALUE"));
    }
    const dataEnd = head.next + v.bytes;
    if (buf.length < dataEnd + 2) return final ? done<GetReply>({ kind: "data" }, pos, true) : MORE;
    if (buf.charCodeAt(dataEnd) !== 0x0d || buf.charCodeAt(dataEnd + 1) !== 0x0a) return done<GetReply>({ kind: "data" }, pos, true);
    const value: GetReply = { kind: "value", value: cString(buf.slice(head.next, dataEnd)) };
    const tail = readLine(buf, dataEnd + 2, maxLine);
    if (tail.kind === "more") return final ? done(value, pos, true) : MORE;
    if (tail.kind === "toolong") return done(value, pos, true);
    return done(value, tail.next, tail.text !== "END");
  };
}

/** The parser of the one-line reply to `set` or `delete`. */
export function lineReplyParser(maxLine: number): ReplyParser<LineReply> {
  return (buf, pos) => {
    const l = readLine(buf, pos, maxLine);
    if (l.kind === "more") return MORE;
    if (l.kind === "toolong") return done<LineReply>({ kind: "toolong" }, pos, true);
    return done<LineReply>({ kind: "line", line: l.text }, l.next);
  };
}
