/**
 * pgsql/encoding.ts - the client encoding of a pgsql table's connections:
 * how a key is quoted into the query (libpq's PQescapeStringConn), how the
 * query's bytes reach the server and how result bytes come back.
 *
 * The reference sets the client encoding with PQsetClientEncoding() after
 * connecting: LATIN1 in Postfix 3.7 (hard-wired), the `encoding` setting
 * (default UTF8) from 3.8 on. It then sends the query's bytes as they are
 * and receives the server's conversion of each value.
 *
 * Bun's SQL client speaks UTF-8 only (its strings go out as UTF-8 and text
 * comes back as UTF-8), so our connections always run with client_encoding
 * UTF8 and the reference's encoding is emulated at this edge:
 *   LATIN1: a byte string's chars are Latin-1 code points (one byte, one
 *     char), so sending it as Unicode text is what the server's LATIN1 to
 *     database conversion would have made of the bytes; a result is decoded
 *     from UTF-8 and each char must be a code point up to 255 (its byte);
 *     one above fails the query as the server's conversion to LATIN1 fails
 *     it, with the server's words ("character with byte sequence 0xe2 0x82
 *     0xac in encoding "UTF8" has no equivalent in encoding "LATIN1"").
 *     Exact for UTF8 and LATIN1 databases (the conversions compose); a
 *     SQL_ASCII database does no conversion at all: results are taken as
 *     the bytes stored, 8-bit bytes of a key reach it UTF-8 encoded.
 *   UTF8: the bytes are UTF-8 already; the query is sent as their
 *     decoding (a query that is not valid UTF-8 fails as the server would
 *     fail it), results are taken as the bytes received.
 * Other client encodings are not supported (a CONFIG error at open).
 *
 * Quoting (PQescapeStringConn, libpq 15.11 and later: the CVE-2025-1094
 * fix): ' is doubled; \ is doubled when the server's
 * standard_conforming_strings is off; in a multi-byte encoding (UTF8) each
 * 8-bit character must be complete and valid, else the quoting fails with
 * "incomplete multibyte character" / "invalid multibyte character" (the
 * reference then gives up on that host). LATIN1 accepts every byte.
 *
 * Pure; reads and logs nothing.
 */

/** The client encodings we can emulate. */
export type ClientEncoding = "LATIN1" | "UTF8";

/**
 * PostgreSQL's name for an encoding name as written (pg_char_to_encoding:
 * case and non-alphanumerics ignored, aliases), or undefined when it names
 * another encoding or none.
 */
export function clientEncodingOf(name: string): ClientEncoding | undefined {
  const clean = name.toLowerCase().replace(/[^a-z0-9]/g, "");
  if (clean === "utf8" || clean === "unicode") return "UTF8";
  if (clean === "latin1" || clean === "iso88591") return "LATIN1";
  return undefined;
}

/** True when PostgreSQL knows the name at all (pg_encname_tbl), for the reference's error path. */
export function knownEncodingName(name: string): boolean {
  const clean = name.toLowerCase().replace(/[^a-z0-9]/g, "");
  return KNOWN.has(clean);
}

const KNOWN = new Set(
  (
    "abc alt big5 euccn eucjis2004 eucjp euckr euctw gb18030 gbk iso88591 iso885910 iso885913 iso885914 iso885915 " +
    "iso88592 iso88593 iso88594 iso88595 iso88596 iso88597 iso88598 iso88599 johab koi8 koi8r koi8u latin1 latin10 " +
    "latin2 latin3 latin4 latin5 latin6 latin7 latin8 latin9 mskanji muleinternal shiftjis shiftjis2004 sjis sqlascii " +
    "tcvn tcvn5712 uhc unicode utf8 vscii win win1250 win1251 win1252 win1253 win1254 win1255 win1256 win1257 win1258 " +
    "win866 win874 win932 win936 win949 win950 windows1250 windows1251 windows1252 windows1253 windows1254 windows1255 " +
    "windows1256 windows1257 windows1258 windows866 windows874 windows932 windows936 windows949 windows950"
  ).split(" "),
);

/** Length of the UTF-8 character starting with byte b (pg_utf_mblen). */
export function utf8CharLength(b: number): number {
  if ((b & 0x80) === 0) return 1;
  if ((b & 0xe0) === 0xc0) return 2;
  if ((b & 0xf0) === 0xe0) return 3;
  if ((b & 0xf8) === 0xf0) return 4;
  return 1;
}

/** pg_utf8_islegal(): the `len` bytes of s at i form one valid UTF-8 character. */
export function utf8Legal(s: string, i: number, len: number): boolean {
  const b0 = s.charCodeAt(i);
  if (len > 4) return false;
  for (let k = len - 1; k >= 2; k--) {
    const c = s.charCodeAt(i + k);
    if (c < 0x80 || c > 0xbf) return false;
  }
  if (len >= 2) {
    const c = s.charCodeAt(i + 1);
    const [lo, hi] = b0 === 0xe0 ? [0xa0, 0xbf] : b0 === 0xed ? [0x80, 0x9f] : b0 === 0xf0 ? [0x90, 0xbf] : b0 === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    if (c < lo || c > hi) return false;
  }
  if (b0 >= 0x80 && b0 < 0xc2) return false;
  return b0 <= 0xf4;
}

/** A failed quoting: the text libpq leaves in PQerrorMessage(). */
export class QuoteError extends Error {}

/**
 * PQescapeStringConn() of a C string (the input ends at its first NUL).
 * Throws QuoteError with libpq's message when a multi-byte character is
 * incomplete or invalid (only possible with UTF8).
 */
export function escapeString(input: string, encoding: ClientEncoding, standardStrings: boolean): string {
  const nul = input.indexOf("\0");
  const n = nul < 0 ? input.length : nul;
  let out = "";
  let from = 0;
  for (let i = 0; i < n; i++) {
    const b = input.charCodeAt(i);
    if (b === 0x27 || (b === 0x5c && !standardStrings)) {
      // Copy up to and including the character, and start the next run with it again: doubled.
      out += input.slice(from, i + 1);
      from = i;
      continue;
    }
    if (b < 0x80 || encoding === "LATIN1") continue;
    const len = utf8CharLength(b);
    if (n - i < len) throw new QuoteError("incomplete multibyte character\n");
    if (!utf8Legal(input, i, len)) throw new QuoteError("invalid multibyte character\n");
    i += len - 1;
  }
  return out + input.slice(from, n);
}

/**
 * The server's report_invalid_encoding() text for the first byte sequence
 * of s that is not valid UTF-8, or undefined when s is valid UTF-8.
 */
export function invalidUtf8Report(s: string): string | undefined {
  for (let i = 0; i < s.length; i++) {
    const b = s.charCodeAt(i);
    if (b < 0x80) continue;
    const len = utf8CharLength(b);
    if (i + len <= s.length && utf8Legal(s, i, len)) {
      i += len - 1;
      continue;
    }
    const shown: string[] = [];
    for (let k = i; k < Math.min(i + len, s.length, i + 8); k++) shown.push(`0x${s.charCodeAt(k).toString(16).padStart(2, "0")}`);
    return `invalid byte sequence for encoding "UTF8": ${shown.join(" ")}`;
  }
  return undefined;
}

/** The text the server is sent for a query's bytes; undefined when it is not valid in the encoding. */
export function queryText(query: string, encoding: ClientEncoding): string | undefined {
  if (encoding === "LATIN1" || isAscii(query)) return query;
  return invalidUtf8Report(query) === undefined ? Buffer.from(query, "latin1").toString("utf8") : undefined;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

function isAsciiBytes(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] > 0x7f) return false;
  return true;
}

/** A result value the client encoding cannot represent: the server's conversion error. */
export class ConversionError extends Error {}

/**
 * The byte string the reference would have received for a value the
 * server sent us as UTF-8 (`raw` for a SQL_ASCII database: the bytes
 * stored). Throws ConversionError for a character LATIN1 cannot hold.
 */
export function resultBytes(value: Uint8Array, encoding: ClientEncoding, raw: boolean): string {
  const b = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (encoding === "UTF8" || raw || isAsciiBytes(b)) return b.toString("latin1");
  const text = b.toString("utf8");
  checkLatin1(text);
  return text;
}

/** Throws the server's conversion error for the first character of `text` above U+00FF. */
export function checkLatin1(text: string): void {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0xff) {
      const cp = text.codePointAt(i)!;
      const seq = [...Buffer.from(String.fromCodePoint(cp), "utf8")].map((x) => `0x${x.toString(16).padStart(2, "0")}`).join(" ");
      throw new ConversionError(`character with byte sequence ${seq} in encoding "UTF8" has no equivalent in encoding "LATIN1"`);
    }
  }
}

/** A server message (UTF-8 from our session) as the reference's LATIN1 session shows it. */
export function messageBytes(text: string, encoding: ClientEncoding): string {
  if (encoding === "UTF8") return Buffer.from(text, "utf8").toString("latin1");
  let out = "";
  for (const ch of text) out += ch.codePointAt(0)! > 0xff ? "?" : ch;
  return out;
}
