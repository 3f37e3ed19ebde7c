/**
 * Character classes as Postfix's sys_defs.h defines them (ISSPACE, ISALNUM,
 * ISDIGIT): ASCII only, so 8-bit bytes are never space, letter or digit
 * whatever the locale. Strings are byte strings (one char code per byte).
 * Also the separator sets Postfix uses for lists and words.
 */

/** ", \t\r\n": list separator (CHARS_COMMA_SP). */
export const CHARS_COMMA_SP = ", \t\r\n";
/** " \t\r\n": word separator (CHARS_SPACE). */
export const CHARS_SPACE = " \t\r\n";
/** "{}": grouping (CHARS_BRACE). */
export const CHARS_BRACE = "{}";

/** ISSPACE() on a byte value: space, \t, \n, \v, \f, \r. */
export function isSpaceCode(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/** isspace() in the C locale: space, \t, \n, \v, \f, \r. */
export function isSpace(ch: string | undefined): boolean {
  return ch !== undefined && isSpaceCode(ch.charCodeAt(0));
}

export function isDigit(ch: string | undefined): boolean {
  if (ch === undefined) return false;
  const c = ch.charCodeAt(0);
  return c >= 0x30 && c <= 0x39;
}

export function isAlnum(ch: string | undefined): boolean {
  if (ch === undefined) return false;
  const c = ch.charCodeAt(0);
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** Length of the run of characters from `set` starting at `from` (strspn). */
export function spanOf(text: string, from: number, set: string): number {
  let i = from;
  while (i < text.length && set.includes(text[i])) i++;
  return i - from;
}

/** Length of the run of characters NOT in `set` starting at `from` (strcspn). */
export function spanNotOf(text: string, from: number, set: string): number {
  let i = from;
  while (i < text.length && !set.includes(text[i])) i++;
  return i - from;
}

/** A C string ends at its first NUL byte. */
export function cString(text: string): string {
  const nul = text.indexOf("\0");
  return nul < 0 ? text : text.slice(0, nul);
}
