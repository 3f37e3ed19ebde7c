/**
 * Logical lines of a Postfix configuration file, the way readllines()
 * (util/readlline.c) assembles them: a line that starts with whitespace
 * continues the previous one; lines that are empty, all whitespace, or whose
 * first non-blank character is '#' are dropped (also between a line and its
 * continuation). Continuation text is joined as is: no newline, leading
 * whitespace kept. A '#' later on a line is text, not a comment.
 *
 * Logs: "warning: PATH: logical line must not start with whitespace: ..."
 * for continuation text with nothing before it (the text is skipped), as
 * Postfix does.
 *
 * Hand-written: it must reproduce Postfix's reader byte for byte, which no
 * general-purpose config parser does.
 */
import { msg } from "../log/msg";
import { isSpace } from "./ctype";

export interface LogicalLine {
  /** The joined text (may still contain NUL bytes; callers cut at NUL). */
  text: string;
  /** Number of the physical line where the logical line starts (1-based). */
  firstLine: number;
  /** Number of the last physical line read for it. */
  lastLine: number;
}

/** Split `content` (a whole file, byte string) into logical lines. */
export function readLogicalLines(content: string, path: string): LogicalLine[] {
  const out: LogicalLine[] = [];
  let pos = 0;
  let lineno = 0;
  let firstLine = 0;

  // One call of readllines(): returns "" at end of input.
  const readOne = (): string => {
    for (;;) {
      let buf = "";
      for (;;) {
        const start = buf.length;
        const nl = content.indexOf("\n", pos);
        const end = nl < 0 ? content.length : nl;
        const physical = content.slice(pos, end);
        const sawNewline = nl >= 0;
        pos = sawNewline ? nl + 1 : content.length;
        if (sawNewline || physical.length > 0) lineno += 1;
        buf += physical;
        let i = start;
        while (i < buf.length && isSpace(buf[i])) i++;
        if (i === buf.length || buf[i] === "#") buf = buf.slice(0, start);
        else if (start === 0) firstLine = lineno;
        if (!sawNewline) break; // end of file
        if (buf.length > 0) {
          const next = pos < content.length ? content[pos] : undefined;
          if (next !== "#" && !isSpace(next)) break;
        }
      }
      if (buf.length > 0 && isSpace(buf[0])) {
        const shown = buf.slice(0, 30) + (buf.length > 30 ? "..." : "");
        msg.warn(`${path}: logical line must not start with whitespace: "${shown}"`);
        continue; // Postfix reads the next logical line instead
      }
      return buf;
    }
  };

  for (;;) {
    const text = readOne();
    if (text.length === 0) break;
    out.push({ text, firstLine, lastLine: lineno });
  }
  return out;
}
