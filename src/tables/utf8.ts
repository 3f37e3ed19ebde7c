/**
 * utf8.ts - the byte-level string checks and case folding that Postfix's
 * dict layer uses: allascii(), valid_utf8_string(), lowercase() and
 * casefold() (util/allascii.c, valid_utf8_string.c, lowercase.c,
 * casefold.c), plus the process-wide "UTF-8 enabled" switch that Postfix
 * calls util_utf8_enable (from smtputf8_enable in main.cf).
 *
 * Strings are byte strings (one char code = one byte). Folding of
 * non-ASCII text goes to ICU (icu.ts), as the reference does; when ICU is
 * missing, an approximation through the JavaScript case mappings is used.
 *
 * ICU is loaded on the first non-ASCII key, which costs 10-25 ms that most
 * processes never pay; a process about to chroot loads it before the jail
 * (prepare.ts) when smtputf8 is enabled, since inside the jail the
 * library cannot be found and keys would be folded by the approximation
 * (missing entries that postmap folded with ICU).
 *
 * Reads and logs nothing itself (icu.ts logs when ICU is missing).
 */
import { DictFlag } from "../protocol/constants";
import { icuFoldCase } from "./icu";

let utf8Enabled = false;

/** Set at start-up from smtputf8_enable (Postfix: util_utf8_enable). */
export function setUtf8Enabled(on: boolean): void {
  utf8Enabled = on;
}

export function isUtf8Enabled(): boolean {
  return utf8Enabled;
}

/** DICT_NEED_UTF8_ACTIVATION(util_utf8_enable, flags). */
export function needUtf8Activation(flags: number): boolean {
  return utf8Enabled && (flags & DictFlag.UTF8_REQUEST) !== 0;
}

/** The warning text Postfix gives for bad UTF-8. */
export const UTF8_ERROR = "malformed UTF-8 or invalid codepoint";

/**
 * Postfix's allascii(): true when every byte is 7-bit. Like the C version,
 * an empty string is NOT "all ASCII" (callers then run the UTF-8 check,
 * which accepts it).
 */
export function allAscii(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * Postfix's valid_utf8_string(): well-formed UTF-8 without over-long forms,
 * surrogates (U+D800..U+DFFF) or code points above U+10FFFF.
 */
export function validUtf8(s: string): boolean {
  const end = s.length;
  for (let i = 0; i < end; i++) {
    const c0 = s.charCodeAt(i);
    if (c0 <= 0x7f) continue;
    if (c0 <= 0xdf) {
      if (c0 < 0xc2 || i + 1 >= end) return false;
      if ((s.charCodeAt(++i) & 0xc0) !== 0x80) return false;
    } else if (c0 <= 0xef) {
      if (i + 2 >= end) return false;
      const c1 = s.charCodeAt(++i);
      if (c1 < (c0 === 0xe0 ? 0xa0 : 0x80) || c1 > (c0 === 0xed ? 0x9f : 0xbf)) return false;
      if ((s.charCodeAt(++i) & 0xc0) !== 0x80) return false;
    } else if (c0 <= 0xf4) {
      if (i + 3 >= end) return false;
      const c1 = s.charCodeAt(++i);
      if (c1 < (c0 === 0xf0 ? 0x90 : 0x80) || c1 > (c0 === 0xf4 ? 0x8f : 0xbf)) return false;
      if ((s.charCodeAt(++i) & 0xc0) !== 0x80) return false;
      if ((s.charCodeAt(++i) & 0xc0) !== 0x80) return false;
    } else {
      return false;
    }
  }
  return true;
}

/** True when the string holds an ASCII upper-case letter. */
function hasAsciiUpper(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return true;
  }
  return false;
}

/**
 * Postfix's lowercase(): ASCII letters only, 8-bit bytes untouched. Returns
 * the same string (no allocation) when there is nothing to change.
 */
export function lowercaseAscii(s: string): string {
  if (!hasAsciiUpper(s)) return s;
  let out = "";
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) {
      out += s.slice(from, i) + String.fromCharCode(c + 0x20);
      from = i + 1;
    }
  }
  return out + s.slice(from);
}

/**
 * Postfix's casefold(): with UTF-8 enabled and a non-ASCII string, Unicode
 * full case folding (ICU); otherwise ASCII lowercasing. The input must be
 * valid UTF-8 when non-ASCII (dict.ts checks that first, as dict_utf8.c).
 */
export function casefold(s: string): string {
  if (!utf8Enabled || allAscii(s) || s.length === 0) return lowercaseAscii(s);
  const folded = icuFoldCase(Buffer.from(s, "latin1"));
  if (folded !== undefined) return folded.toString("latin1");
  return approximateFold(s);
}

/**
 * Without ICU: per code point, upper- then lower-case. Equal to ICU's full
 * folding for the common scripts ("ß" to "ss", final sigma, ligatures); it
 * differs for a few (Cherokee, U+1E9E).
 */
function approximateFold(s: string): string {
  const text = Buffer.from(s, "latin1").toString("utf8");
  let out = "";
  for (const ch of text) out += ch.toUpperCase().toLowerCase();
  return Buffer.from(out, "utf8").toString("latin1");
}
