/**
 * macParse.ts - the replacement text of regexp and pcre rules: "$n", "${n}",
 * "$(n)" substitution and "$$" for a dollar sign, as Postfix's mac_parse()
 * (util/mac_parse.c) splits it and dict_regexp.c / dict_pcre.c check it.
 *
 * The splitting is Postfix's one mac_parse() (util/macParse.ts). Two steps:
 * - prescanReplacement(): the open-time check of every "$name" (digits
 *   only, at least 1) as mac_parse() finds it, each failure with its own
 *   warning and the parse going on (except that a "${...}" after a failure
 *   ends it silently, as mac_parse checks its status there), then the
 *   largest number. A text without any "$n" becomes a constant (with "$$"
 *   already turned into "$").
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
import { macParse, MAC_PARSE_ERROR, MAC_PARSE_LITERAL, MAC_PARSE_OK } from "../../util/macParse";

export type MacToken = { kind: "literal"; text: string } | { kind: "name"; text: string } | { kind: "error"; warning: string };

/** Split a replacement text as mac_parse() does (a syntax error ends the list with an error token). */
export function parseReplacement(value: string): MacToken[] {
  const out: MacToken[] = [];
  macParse(
    value,
    (kind, text) => {
      out.push(kind === MAC_PARSE_LITERAL ? { kind: "literal", text } : { kind: "name", text });
      return MAC_PARSE_OK;
    },
    (warning) => out.push({ kind: "error", warning }),
  );
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

/**
 * The open-time check of a replacement text (dict_regexp_prescan,
 * dict_pcre_prescan), as mac_parse()'s action: each "$name" is checked as it
 * is found; a failed one is warned about and fails the action, so that
 * mac_parse() ends at the next "${...}" as in the reference.
 */
export function prescanReplacement(value: string, texts: PrescanTexts, warn: (line: string) => void): Prescan {
  const tokens: MacToken[] = [];
  let ok = true;
  let maxSub = 0n;
  let literal: string | undefined;
  const check = (kind: number, text: string): number => {
    if (kind === MAC_PARSE_LITERAL) {
      tokens.push({ kind: "literal", text });
      if (maxSub === 0n) literal = text;
      return MAC_PARSE_OK;
    }
    tokens.push({ kind: "name", text });
    literal = undefined;
    if (!allDigits(text)) {
      warn(`${texts.where}: non-numeric replacement index "${text}"`);
      ok = false;
      return MAC_PARSE_ERROR;
    }
    const n = toSizeT(atoi(text));
    if (n < 1n) {
      warn(`${texts.where}: ${texts.outOfRange} replacement index "${text}"`);
      ok = false;
      return MAC_PARSE_ERROR;
    }
    if (n > maxSub) maxSub = n;
    return MAC_PARSE_OK;
  };
  macParse(value, check, (line) => {
    warn(line);
    ok = false;
  });
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
