/**
 * attrList.ts - the smallest pieces of Postfix's attribute encoding that the
 * skeleton needs without the full codec: build a list, find where the first
 * complete list ends, and split a buffer into lists.
 *
 * A list is "name NUL value NUL" pairs closed by one more NUL (an empty name).
 * Used by -S mode (serve exactly one request), --demo and --self-test (a tiny
 * client), and tests. The service's own codec lives in src/protocol/.
 *
 * Reads: nothing. Logs: nothing.
 */

/** Encode pairs as one attribute list (byte strings). */
export function encodeList(pairs: ReadonlyArray<readonly [string, string]>): Uint8Array {
  let s = "";
  for (const [n, v] of pairs) s += `${n}\0${v}\0`;
  return Buffer.from(s + "\0", "latin1");
}

/** Offset just past the end of the first complete list at `from`, or -1. */
export function endOfList(buf: Uint8Array, from = 0): number {
  let i = from;
  for (;;) {
    if (i >= buf.length) return -1;
    if (buf[i] === 0) return i + 1; // empty name: end of list
    const nameEnd = buf.indexOf(0, i);
    if (nameEnd < 0) return -1;
    const valueEnd = buf.indexOf(0, nameEnd + 1);
    if (valueEnd < 0) return -1;
    i = valueEnd + 1;
  }
}

/** Decode complete lists; returns them and the number of bytes consumed. */
export function decodeLists(buf: Uint8Array): { lists: Array<Array<[string, string]>>; used: number } {
  const lists: Array<Array<[string, string]>> = [];
  let at = 0;
  for (;;) {
    const end = endOfList(buf, at);
    if (end < 0) break;
    const text = Buffer.from(buf.subarray(at, end - 1)).toString("latin1");
    const parts = text.split("\0");
    const pairs: Array<[string, string]> = [];
    for (let i = 0; i + 1 < parts.length; i += 2) pairs.push([parts[i], parts[i + 1]]);
    lists.push(pairs);
    at = end;
  }
  return { lists, used: at };
}
