/**
 * text.ts - the byte-string helpers the network tables share: Postfix's
 * printable() with a chosen replacement byte (util/printable.c) and the
 * %XX quoting of tcp_table(5) (util/hex_quote.c).
 *
 * Pure; reads and logs nothing.
 */
import { isUtf8Enabled } from "../utf8";

function isCont(c: number): boolean {
  return c >= 128 && c < 192;
}

/**
 * printable(s, replacement): bytes that are not printable ASCII become the
 * replacement, except UTF-8-looking sequences when smtputf8 is enabled.
 */
export function printableWith(s: string, replacement: string): string {
  const utf8 = isUtf8Enabled();
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e) {
      out += s[i];
    } else if (utf8 && c >= 194 && c <= 254 && isCont(s.charCodeAt(i + 1))) {
      let j = i + 1;
      while (isCont(s.charCodeAt(j))) j++;
      out += s.slice(i, j);
      i = j - 1;
    } else {
      out += replacement;
    }
  }
  return out;
}

/** hex_quote(): '%', whitespace and unprintable bytes become %XX (upper case). */
export function hexQuote(raw: string): string {
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0) break; // a C string ends here
    out += c !== 0x25 && c > 0x20 && c < 0x7f ? raw[i] : "%" + c.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** hex_unquote(): %XX decoded; undefined when a '%' is not followed by two hex digits. */
export function hexUnquote(hex: string): string | undefined {
  let out = "";
  for (let i = 0; i < hex.length; i++) {
    if (hex[i] !== "%") {
      out += hex[i];
      continue;
    }
    const hi = hexDigit(hex.charCodeAt(i + 1));
    if (hi < 0) return undefined;
    const lo = hexDigit(hex.charCodeAt(i + 2));
    if (lo < 0) return undefined;
    out += String.fromCharCode((hi << 4) | lo);
    i += 2;
  }
  return out;
}
