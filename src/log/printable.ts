/**
 * printable.ts - make a log line safe for a log file, as Postfix does.
 *
 * Postfix passes every log line through printable(): a byte that is not
 * printable ASCII becomes '?', except that with smtputf8_enable a
 * well-formed-looking UTF-8 sequence (lead byte 0xC2..0xFE followed by
 * continuation bytes) is kept. Lines here are byte strings (one char code per
 * byte), so the rule applies to char codes directly.
 *
 * Reads: nothing. Logs: nothing.
 */

/** The line with unprintable bytes replaced by '?'. */
export function printable(line: string, utf8: boolean): string {
  // Fast path: plain printable ASCII, the usual case.
  let i = 0;
  for (; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) break;
  }
  if (i === line.length) return line;

  let out = line.slice(0, i);
  while (i < line.length) {
    const c = line.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e) {
      out += line[i];
      i++;
    } else if (utf8 && c >= 194 && c <= 254 && isCont(line.charCodeAt(i + 1))) {
      let j = i + 1;
      while (isCont(line.charCodeAt(j))) j++;
      out += line.slice(i, j);
      i = j;
    } else {
      out += "?";
      i++;
    }
  }
  return out;
}

function isCont(c: number): boolean {
  return c >= 128 && c < 192;
}
