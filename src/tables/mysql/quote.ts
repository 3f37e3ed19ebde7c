/**
 * quote.ts - SQL string escaping exactly as the reference's
 * mysql_real_escape_string() does it (MariaDB Connector/C 3.3, the library
 * Debian's Postfix links): the same bytes in, the same bytes out, so our
 * statements are the reference's, byte for byte.
 *
 * Normal mode: NUL, \n, \r, \, ', " and Ctrl-Z (\032) get a backslash
 * (NUL as \0, \n as \n, \r as \r, Ctrl-Z as \Z); every other byte is copied.
 * When the server runs with sql_mode NO_BACKSLASH_ESCAPES, a backslash is an
 * ordinary character there, and only ' is doubled ('').
 *
 * Multi-byte client character sets: a valid multi-byte character is copied
 * whole, so a trail byte that happens to be 0x5C ('\') in big5, gbk,
 * gb18030, sjis or cp932 is not escaped; in big5, gbk, sjis, cp932, euckr,
 * gb2312, ujis and eucjpms a lead byte that does not start a valid
 * character is escaped with a backslash itself (Connector/C's mb_charlen
 * check; it never fires for gb18030 and the UTF-8 sets). For the UTF-8 sets
 * (the default, utf8mb4) and all single-byte sets this is plain byte-wise
 * escaping. These rules were read from the library's source and checked
 * byte by byte against the reference (test/unit/mysql-quote.test.ts).
 *
 * Hand-written: mysql2's own escape() escapes other characters (\b, \t) and
 * knows nothing of the client character set, so its output differs.
 *
 * Reads and logs nothing.
 */
import { cString } from "../../util/ctype";

/** How one client character set treats 8-bit bytes. */
interface MbRules {
  /** Length of the valid multi-byte character at s[i], or 0. */
  valid(s: string, i: number): number;
  /** True when a byte that starts no valid character still counts as a lead byte (escaped). */
  lead(b: number): boolean;
}

const inRange = (b: number, lo: number, hi: number): boolean => b >= lo && b <= hi;
const byteAt = (s: string, i: number): number => (i < s.length ? s.charCodeAt(i) : 0);

function twoByte(head: (b: number) => boolean, tail: (b: number) => boolean): (s: string, i: number) => number {
  return (s, i) => (head(byteAt(s, i)) && s.length - i > 1 && tail(byteAt(s, i + 1)) ? 2 : 0);
}

const sjisHead = (b: number) => inRange(b, 0x81, 0x9f) || inRange(b, 0xe0, 0xfc);
const sjisTail = (b: number) => inRange(b, 0x40, 0x7e) || inRange(b, 0x80, 0xfc);
const gbkHead = (b: number) => inRange(b, 0x81, 0xfe);
const gbkTail = (b: number) => inRange(b, 0x40, 0x7e) || inRange(b, 0x80, 0xfe);
const big5Head = (b: number) => inRange(b, 0xa1, 0xf9);
const big5Tail = (b: number) => inRange(b, 0x40, 0x7e) || inRange(b, 0xa1, 0xfe);
const eucByte = (b: number) => inRange(b, 0xa1, 0xfe);
const kata = (b: number) => inRange(b, 0xa1, 0xdf);

const SJIS: MbRules = { valid: twoByte(sjisHead, sjisTail), lead: sjisHead };
const GBK: MbRules = { valid: twoByte(gbkHead, gbkTail), lead: gbkHead };
const BIG5: MbRules = { valid: twoByte(big5Head, big5Tail), lead: big5Head };
const gbOdd = (b: number) => inRange(b, 0x81, 0xfe);
const GB18030: MbRules = {
  valid(s, i) {
    const n = s.length - i;
    if (n <= 1 || !gbOdd(byteAt(s, i))) return 0;
    const b = byteAt(s, i + 1);
    if (inRange(b, 0x40, 0x7e) || inRange(b, 0x80, 0xfe)) return 2;
    if (n > 3 && inRange(b, 0x30, 0x39) && gbOdd(byteAt(s, i + 2)) && inRange(byteAt(s, i + 3), 0x30, 0x39)) return 4;
    return 0;
  },
  lead: () => false,
};
const GB2312: MbRules = { valid: twoByte((b) => inRange(b, 0xa1, 0xf7), eucByte), lead: (b) => inRange(b, 0xa1, 0xf7) };
const EUCKR: MbRules = {
  valid: (s, i) => (s.length - i > 1 && byteAt(s, i) >= 0x80 && eucByte(byteAt(s, i + 1)) ? 2 : 0),
  lead: eucByte,
};
const UJIS: MbRules = {
  valid(s, i) {
    const a = byteAt(s, i);
    const b = byteAt(s, i + 1);
    if (a < 0x80) return 0;
    if (eucByte(a) && eucByte(b)) return 2;
    if (a === 0x8e && kata(b)) return 2;
    if (a === 0x8f && s.length - i > 2 && eucByte(b) && eucByte(byteAt(s, i + 2))) return 3;
    return 0;
  },
  lead: (b) => eucByte(b) || b === 0x8e || b === 0x8f,
};
const EUCJPMS: MbRules = {
  valid(s, i) {
    const a = byteAt(s, i);
    if (a < 0x80) return 0;
    const n = s.length - i;
    if (eucByte(a) && n > 1 && eucByte(byteAt(s, i + 1))) return 2;
    if (a === 0x8e && n > 1 && kata(byteAt(s, i + 1))) return 2;
    // Connector/C answers 2 for a valid 3-byte character here; we follow it.
    if (a === 0x8f && n > 2 && eucByte(byteAt(s, i + 1)) && eucByte(byteAt(s, i + 2))) return 2;
    return 0;
  },
  lead: (b) => eucByte(b) || b === 0x8e || b === 0x8f,
};

const MB_RULES: Record<string, MbRules> = {
  sjis: SJIS,
  cp932: SJIS,
  gbk: GBK,
  big5: BIG5,
  gb18030: GB18030,
  gb2312: GB2312,
  euckr: EUCKR,
  ujis: UJIS,
  eucjpms: EUCJPMS,
};

/** The escaping rules of one connection. */
export interface EscapeMode {
  /** Client character set name (as given to SET NAMES). */
  readonly charset: string;
  /** The server's sql_mode has NO_BACKSLASH_ESCAPES. */
  readonly noBackslashEscapes: boolean;
}

/** A quote function for the given connection state. */
export function makeEscaper(mode: EscapeMode): (s: string) => string {
  const rules = MB_RULES[mode.charset.toLowerCase()];
  return mode.noBackslashEscapes ? (s) => escapeQuotes(s, rules) : (s) => escapeSlashes(s, rules);
}

const SIMPLE_SAFE = /^[^\0\n\r\\'"\x1a\x80-\xff]*$/;

/** mysql_real_escape_string() in backslash mode. */
export function escapeSlashes(input: string, rules?: MbRules): string {
  const s = cString(input); // the reference quotes C strings
  if (SIMPLE_SAFE.test(s)) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const b = s.charCodeAt(i);
    if (rules && b >= 0x80) {
      const len = rules.valid(s, i);
      if (len > 0) {
        out += s.slice(i, i + len);
        i += len - 1;
        continue;
      }
      if (rules.lead(b)) {
        out += "\\" + s[i];
        continue;
      }
    }
    switch (b) {
      case 0x00:
        out += "\\0";
        break;
      case 0x0a:
        out += "\\n";
        break;
      case 0x0d:
        out += "\\r";
        break;
      case 0x5c:
        out += "\\\\";
        break;
      case 0x27:
        out += "\\'";
        break;
      case 0x22:
        out += '\\"';
        break;
      case 0x1a:
        out += "\\Z";
        break;
      default:
        out += s[i];
    }
  }
  return out;
}

/** mysql_real_escape_string() under NO_BACKSLASH_ESCAPES: only ' doubled. */
export function escapeQuotes(input: string, rules?: MbRules): string {
  const s = cString(input); // the reference quotes C strings
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const b = s.charCodeAt(i);
    if (rules && b >= 0x80) {
      const len = rules.valid(s, i);
      if (len > 0) {
        out += s.slice(i, i + len);
        i += len - 1;
        continue;
      }
    }
    out += b === 0x27 ? "''" : s[i];
  }
  return out;
}
