/**
 * macParse.ts - the replacement text of regexp and pcre rules: "$n", "${n}",
 * "$(n)" substitution and "$$" for a dollar sign, as Postfix's mac_parse()
 * (util/mac_parse.c) splits it and dict_regexp.c / dict_pcre.c check it.
 *
 * Three steps, as in the reference:
 * - parseReplacement(): split the text into literal and "$name" tokens.
 *   mac_parse's own syntax errors ("${" without its "}", a "$" with no name)
 *   end the token list with an error token; everything before it has been
 *   seen by the checker, as in C where the callback runs token by token.
 * - prescanReplacement(): the open-time check of every "$name" (digits
 *   only, at least 1), in token order, each failure with its own warning
 *   and the parse going on (except that a "${...}" after a failure ends it
 *   silently, as mac_parse checks its status there), then the largest
 *   number. A text without any
 *   "$n" becomes a constant (with "$$" already turned into "$").
 * - expandReplacement(): the lookup-time substitution with a function that
 *   gives the captured text of group n ("" when empty or unset).
 *
 * Number conversion follows atoi() on glibc x86_64 (strtol saturating at
 * LONG_MAX, then truncated to int) and the size_t compare the C code does,
 * so huge indexes give the reference's texts.
 *
 * Logs (through the warn callback): "truncated macro reference", "empty
 * macro name", "non-numeric replacement index", "out[- ]of[- ]range
 * replacement index" (each type has its own spelling).
 */
import { isSpaceCode } from "../../util/ctype";

/**
 * bracketed: the name was written "${...}" or "$(...)". mac_parse() checks
 * its error status after reading such a reference and stops there, silently,
 * when an earlier callback already failed (a plain "$x" goes on).
 */
export type MacToken =
  | { kind: "literal"; text: string }
  | { kind: "name"; text: string; bracketed: boolean }
  | { kind: "error"; warning: string; bracketed?: boolean };

function isAsciiAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** Split a replacement text as mac_parse() does. */
export function parseReplacement(value: string): MacToken[] {
  const out: MacToken[] = [];
  let buf = "";
  let i = 0;
  const n = value.length;
  while (i < n) {
    const ch = value[i];
    if (ch !== "$") {
      buf += ch;
      i++;
      continue;
    }
    if (value[i + 1] === "$") {
      buf += "$";
      i += 2;
      continue;
    }
    if (buf.length > 0) out.push({ kind: "literal", text: buf });
    buf = "";
    i++;
    const open = value[i];
    const bracketed = open === "(" || open === "{";
    if (bracketed) {
      const close = open === "(" ? ")" : "}";
      let level = 1;
      let e = i + 1;
      while (level > 0) {
        if (e >= n) {
          out.push({ kind: "error", warning: `truncated macro reference: "${value}"` });
          return out;
        }
        if (value[e] === open) level++;
        if (value[e] === close) level--;
        e++;
      }
      buf = value.slice(i + 1, e - 1);
      i = e;
    } else {
      let e = i;
      while (e < n && (isAsciiAlnum(value.charCodeAt(e)) || value[e] === "_")) e++;
      buf = value.slice(i, e);
      i = e;
    }
    if (buf.length === 0) {
      out.push({ kind: "error", warning: `empty macro name: "${value}"`, bracketed });
      return out;
    }
    out.push({ kind: "name", text: buf, bracketed });
    buf = "";
  }
  if (buf.length > 0) out.push({ kind: "literal", text: buf });
  return out;
}

/** Postfix alldig(): non-empty, ASCII digits only. */
export function allDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

const LONG_MAX = (1n << 63n) - 1n;

/**
 * atoi() on glibc LP64: strtol (leading blanks, sign, digits; saturates at
 * LONG_MIN/LONG_MAX) truncated to a 32-bit int.
 */
export function atoi(s: string): number {
  let i = 0;
  while (i < s.length && isSpaceCode(s.charCodeAt(i))) i++;
  let neg = false;
  if (s[i] === "+" || s[i] === "-") neg = s[i++] === "-";
  let v = 0n;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
    v = v * 10n + BigInt(c - 0x30);
    if (v > LONG_MAX + 1n) v = LONG_MAX + 1n;
  }
  if (neg) v = -v;
  if (v > LONG_MAX) v = LONG_MAX;
  return Number(BigInt.asIntN(32, v));
}

/** An int converted to size_t (C: size_t n = atoi(...)). */
function toSizeT(i: number): bigint {
  return BigInt.asUintN(64, BigInt(i));
}

export interface Prescan {
  /** False when a warning was given: the rule is skipped. */
  ok: boolean;
  /** The largest $number (size_t). 0n = no substitution. */
  maxSub: bigint;
  /** With maxSub 0: the constant result ("$$" made "$"). */
  literal?: string;
  tokens: MacToken[];
}

export interface PrescanTexts {
  /** "regexp map NAME, line N" */
  where: string;
  /** The spelling of the n < 1 warning: "out-of-range" (regexp) or "out of range" (pcre). */
  outOfRange: string;
}

/** The open-time check of a replacement text (dict_regexp_prescan, dict_pcre_prescan). */
export function prescanReplacement(value: string, texts: PrescanTexts, warn: (line: string) => void): Prescan {
  const tokens = parseReplacement(value);
  let ok = true;
  let maxSub = 0n;
  let literal: string | undefined;
  for (const t of tokens) {
    // After a failed check, mac_parse ends at the next "${...}" without a word.
    if (!ok && t.kind !== "literal" && t.bracketed) break;
    if (t.kind === "error") {
      warn(t.warning);
      ok = false;
    } else if (t.kind === "name") {
      literal = undefined;
      if (!allDigits(t.text)) {
        warn(`${texts.where}: non-numeric replacement index "${t.text}"`);
        ok = false;
        continue;
      }
      const n = toSizeT(atoi(t.text));
      if (n < 1n) {
        warn(`${texts.where}: ${texts.outOfRange} replacement index "${t.text}"`);
        ok = false;
        continue;
      }
      if (n > maxSub) maxSub = n;
    } else if (maxSub === 0n) {
      literal = t.text;
    }
  }
  return { ok, maxSub, literal: maxSub === 0n ? literal : undefined, tokens };
}

/** (int) of a size_t, for the "%d" of the reference's message. */
export function sizeTAsInt(n: bigint): number {
  return Number(BigInt.asIntN(32, n));
}

/**
 * Lookup-time substitution: literal tokens as they are, "$n" by group(n)
 * (the caller gives "" for an empty or unset group).
 */
export function expandReplacement(tokens: readonly MacToken[], group: (n: number) => string): string {
  let out = "";
  for (const t of tokens) {
    if (t.kind === "literal") out += t.text;
    else if (t.kind === "name") out += group(atoi(t.text));
  }
  return out;
}
