/**
 * keyword.ts - how cidr, regexp and pcre tables recognise their "if" and
 * "endif" lines: strncasecmp() on the keyword, and the next byte must not
 * be an ASCII letter or digit (so "if/x/" and "if!/x/" are "if" lines,
 * "iffy" is not). Pure; reads and logs nothing.
 */

/** ISALNUM() of the C locale: ASCII letters and digits. */
export function isAlnumCode(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** Does line start with keyword (upper case given), case-insensitively, not followed by a letter or digit? */
export function startsWithKeyword(line: string, keyword: string): boolean {
  if (line.length < keyword.length) return false;
  for (let i = 0; i < keyword.length; i++) {
    let c = line.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    if (c !== keyword.charCodeAt(i)) return false;
  }
  return !isAlnumCode(line.charCodeAt(keyword.length));
}
