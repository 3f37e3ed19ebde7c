/**
 * Logical lines of a Postfix file (main.cf, table sources, table
 * configuration files), as readllines() (util/readlline.c) delivers them:
 * comment lines (first non-blank character '#'), blank and empty lines are
 * dropped, also between a line and its continuation; a line that starts
 * with whitespace continues the previous logical line (joined without the
 * newline, its leading whitespace kept); a logical line that itself starts
 * with whitespace is dropped with a warning. A '#' later on a line is text.
 *
 * Input is the file as a byte string (latin1). A line may hold NUL bytes;
 * they are kept here, and callers see the text up to the first NUL as the
 * C code does.
 *
 * Hand-written: it must reproduce Postfix's reader byte for byte, which no
 * general-purpose config parser does. One implementation for every caller.
 *
 * Logs: `PATH: logical line must not start with whitespace: "..."`.
 */
import { msg } from "../log/msg";
import { cString, isSpaceCode } from "../util/ctype";

export interface LogicalLine {
  /** The joined text (may hold NULs). */
  text: string;
  /** Number of the first physical line (1-based), as Postfix reports it. */
  lineno: number;
}

export function logicalLines(data: string, path: string): LogicalLine[] {
  const out: LogicalLine[] = [];
  const n = data.length;
  let pos = 0;
  let counter = 0;
  for (;;) {
    let buf = "";
    let first = 0;
    for (;;) {
      const start = buf.length;
      const nl = data.indexOf("\n", pos);
      const sawNewline = nl >= 0;
      const chunk = sawNewline ? data.slice(pos, nl) : data.slice(pos);
      pos = sawNewline ? nl + 1 : n;
      if (sawNewline || chunk.length > 0) counter++;
      let i = 0;
      while (i < chunk.length && isSpaceCode(chunk.charCodeAt(i))) i++;
      if (i < chunk.length && chunk.charCodeAt(i) !== 0x23 /* # */) {
        buf += chunk;
        if (start === 0) first = counter;
      }
      if (!sawNewline) break;
      if (buf.length > 0) {
        const next = pos < n ? data.charCodeAt(pos) : -1;
        if (next !== 0x23 && !isSpaceCode(next)) break;
      }
    }
    if (buf.length === 0) return out;
    if (isSpaceCode(buf.charCodeAt(0))) {
      const shown = cString(buf).slice(0, 30);
      msg.warn(`${path}: logical line must not start with whitespace: "${shown}${buf.length > 30 ? "..." : ""}"`);
      continue;
    }
    out.push({ text: buf, lineno: first });
  }
}
