/**
 * stringops.ts - the small string parsers of Postfix's util/ library that
 * configuration and table drivers share, with their semantics and error
 * texts: trimblanks(), balpar(), extpar(), split_qnameval(). Written for
 * byte strings; whitespace is C-locale isspace() on 7-bit bytes only
 * (ctype.ts).
 *
 * Pure; reads and logs nothing.
 */

import { CHARS_BRACE, isSpaceCode } from "./ctype";

/** The string without trailing whitespace (trimblanks()). */
export function trimTrailing(s: string): string {
  let end = s.length;
  while (end > 0 && isSpaceCode(s.charCodeAt(end - 1))) end--;
  return end === s.length ? s : s.slice(0, end);
}

/** The string without leading whitespace. */
export function trimLeading(s: string): string {
  let i = 0;
  while (i < s.length && isSpaceCode(s.charCodeAt(i))) i++;
  return i === 0 ? s : s.slice(i);
}


/** balpar(): length of the leading balanced "{...}" group, or 0. */
export function balpar(s: string, parens = CHARS_BRACE): number {
  if (s[0] !== parens[0]) return 0;
  let level = 1;
  for (let i = 1; i < s.length; i++) {
    const ch = s[i];
    if (ch === parens[1]) {
      if (--level === 0) return i + 1;
    } else if (ch === parens[0]) {
      level++;
    }
  }
  return 0;
}

/**
 * extpar(): the text inside "{ ... }", optionally stripped of surrounding
 * whitespace, and an error text when the grouping is bad (the text is still
 * returned, as the C version leaves it in place).
 */
export function extpar(s: string, strip: boolean, parens = CHARS_BRACE): { text: string; err?: string } {
  let text: string;
  let err: string | undefined;
  if (s[0] !== parens[0]) {
    err = `no '${parens[0]}' at start of text in "${s}"`;
    text = s;
  } else {
    const len = balpar(s, parens);
    if (len === 0) {
      err = `missing '${parens.slice(1)}' in "${s}"`;
      text = s.slice(1);
    } else {
      if (len !== s.length) err = `syntax error after '${parens.slice(1)}' in "${s}"`;
      text = s.slice(1, len - 1);
    }
  }
  if (strip) text = trimLeading(trimTrailing(text));
  return err === undefined ? { text } : { text, err };
}

/**
 * split_qnameval(): "key = value" where the key may hold quoted or
 * backslash-escaped whitespace and '=' (kept in quoted form).
 */
export function splitQnameval(buf: string): { key: string; value: string } | { err: string } {
  const n = buf.length;
  let k = 0;
  while (k < n && isSpaceCode(buf.charCodeAt(k))) k++;
  if (k >= n) return { err: "no key found; expected format: key = value" };
  let inQuotes = false;
  let e = k;
  for (; e < n; e++) {
    const c = buf.charCodeAt(e);
    if (c === 0x5c /* \ */) {
      if (++e >= n) break;
    } else if (isSpaceCode(c) || c === 0x3d /* = */) {
      if (!inQuotes) break;
    } else if (c === 0x22 /* " */) {
      inQuotes = !inQuotes;
    }
  }
  if (inQuotes) return { err: "unbalanced '\"'" };
  if (e > n) e = n;
  let v = e;
  while (v < n && isSpaceCode(buf.charCodeAt(v))) v++;
  if (buf[v] !== "=") return { err: "missing '=' after attribute name" };
  v++;
  while (v < n && isSpaceCode(buf.charCodeAt(v))) v++;
  return { key: buf.slice(k, e), value: trimTrailing(buf.slice(v)) };
}
