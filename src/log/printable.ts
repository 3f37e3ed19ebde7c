/**
 * printable.ts - make a log line safe for a log file, as Postfix does.
 *
 * Postfix passes every log line through printable(): a byte that is not
 * printable ASCII becomes '?', except that with smtputf8_enable a UTF-8
 * character is kept. Up to 3.10 "UTF-8" means a lead byte 0xC2..0xFE
 * followed by continuation bytes; from 3.11 a well-formed character
 * (parse_utf8_char(): no over-long forms, surrogates or code points above
 * U+10FFFF), and a bad sequence loses only its first byte. Which rule
 * applies is process-wide, from the installed Postfix (setStrictUtf8).
 * Lines here are byte strings (one char code per byte), so the rules apply
 * to char codes directly.
 *
 * Reads: nothing. Logs: nothing.
 */

let strictUtf8 = false;

/** From Postfix 3.11 on, printable() checks UTF-8 strictly (see above). */
export function setStrictUtf8(on: boolean): void {
  strictUtf8 = on;
}

/** The end (exclusive) of the well-formed UTF-8 character at i, or -1 (parse_utf8_char()). */
function utf8CharEnd(s: string, i: number): number {
  const c0 = s.charCodeAt(i);
  const tail = (j: number, lo = 0x80, hi = 0xbf) => {
    const c = s.charCodeAt(j);
    return c >= lo && c <= hi;
  };
  if (c0 >= 0xc2 && c0 <= 0xdf) return tail(i + 1) ? i + 2 : -1;
  if (c0 >= 0xe0 && c0 <= 0xef) {
    const ok = tail(i + 1, c0 === 0xe0 ? 0xa0 : 0x80, c0 === 0xed ? 0x9f : 0xbf) && tail(i + 2);
    return ok ? i + 3 : -1;
  }
  if (c0 >= 0xf0 && c0 <= 0xf4) {
    const ok = tail(i + 1, c0 === 0xf0 ? 0x90 : 0x80, c0 === 0xf4 ? 0x8f : 0xbf) && tail(i + 2) && tail(i + 3);
    return ok ? i + 4 : -1;
  }
  return -1;
}

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
    } else if (utf8 && strictUtf8) {
      const end = c >= 0x80 ? utf8CharEnd(line, i) : -1;
      out += end < 0 ? "?" : line.slice(i, end);
      i = end < 0 ? i + 1 : end;
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
