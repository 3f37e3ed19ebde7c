/**
 * $name expansion with Postfix's exact semantics (util/mac_parse.c and
 * util/mac_expand.c as of 3.7):
 *
 *   $name ${name} $(name)          the value ("" and UNDEF when undefined)
 *   $$                             a literal $
 *   ${name?text} ${name?{text}}    text when name is defined and non-empty
 *   ${name:text} ${name:{text}}    text when name is undefined or empty
 *   ${name?{a}:{b}}                either one
 *   ${{l} == {r} ? {a} : {b}}      relational operators == != < <= >= >
 *                                  (numeric when both sides are all digits),
 *                                  ${{l} <level {r}} etc. compare Postfix
 *                                  compatibility levels
 *
 * With `recurse`, values are expanded again (main.cf semantics). A syntax
 * error is warned about with the reference's wording and reported as
 * MAC_PARSE_ERROR; the caller decides (main.cf use makes it fatal).
 *
 * Hand-written: the results, including the odd corners (text after `?`
 * without braces is taken verbatim, errors stop further output), must match
 * Postfix byte for byte.
 */
import { macParse, MAC_PARSE_ERROR, MAC_PARSE_EXPR, MAC_PARSE_LITERAL, MAC_PARSE_OK, MAC_PARSE_UNDEF, type MacPiece } from "../util/macParse";
import { msg } from "../log/msg";
import { compatLevelFromString } from "./compatLevel";
import { CHARS_SPACE, cString, isAlnum, isDigit, spanOf } from "../util/ctype";

export { MAC_PARSE_OK, MAC_PARSE_ERROR, MAC_PARSE_UNDEF };

const LITERAL = MAC_PARSE_LITERAL;
const EXPR = MAC_PARSE_EXPR;
type Piece = MacPiece;

/** "use" = plain $name, "test" = $name?.. or $name:.. (informational). */
export type LookupMode = "use" | "test";
export type MacLookup = (name: string, mode: LookupMode) => string | undefined;

export interface MacExpandOptions {
  /** Expand looked-up values again ($name inside values). */
  recurse?: boolean;
}

// ---------------------------------------------------------------------------
// Relational operators.

const enum Op {
  EQ = 1,
  NE,
  LT,
  LE,
  GE,
  GT,
}
const OPERATORS: Record<string, Op> = { "==": Op.EQ, "!=": Op.NE, "<": Op.LT, "<=": Op.LE, ">=": Op.GE, ">": Op.GT };
/** The reference's list of operators as its diagnostics print it. */
const ANY_OPERATOR =
  '"' + "==" + '" or "' + "!=" + '"' + '" or "' + "<" + '"' + '" or "' + "<=" + '"' + '" or "' + ">=" + '"' + '" or "' + ">" + '"';
const OPERATOR_CHARS = "<>!=?+-*/~&|%";
const LONG_MAX = (1n << 63n) - 1n;

/** true/false, or undefined for an operand error (already reported). */
type Relop = (left: string, op: Op, right: string) => boolean | undefined;

function compare(delta: bigint | number, op: Op): boolean {
  switch (op) {
    case Op.EQ:
      return delta === 0 || delta === 0n;
    case Op.NE:
      return !(delta === 0 || delta === 0n);
    case Op.LT:
      return delta < 0;
    case Op.LE:
      return delta <= 0;
    case Op.GE:
      return delta >= 0;
    case Op.GT:
      return delta > 0;
  }
}

function allDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (const c of s) if (!isDigit(c)) return false;
  return true;
}

/** Numbers when both sides are all digits, else byte-wise strcmp. */
const defaultRelop: Relop = (left, op, right) => {
  if (allDigits(left) && allDigits(right)) {
    const l = BigInt(left);
    const r = BigInt(right);
    for (const v of [l, r]) {
      if (v > LONG_MAX) msg.fatal(`mac_exp_eval: bad conversion: ${v === l ? left : right}`);
    }
    return compare(l - r, op);
  }
  return compare(left < right ? -1 : left > right ? 1 : 0, op);
};

/** The `level` suffix: compare compatibility levels. */
const levelRelop: Relop = (left, op, right) => {
  const l = compatLevelFromString(left, msg.warn);
  if (l < 0n) return undefined;
  const r = compatLevelFromString(right, msg.warn);
  if (r < 0n) return undefined;
  return compare(l - r, op);
};

/** Operator suffixes Postfix daemons register (compat_level_relop_register). */
const SUFFIXED: Record<string, Relop> = {};
for (const op of Object.keys(OPERATORS)) SUFFIXED[op + "level"] = levelRelop;

// ---------------------------------------------------------------------------
// mac_expand.

interface Context {
  result: string;
  recurse: boolean;
  lookup: MacLookup;
  status: number;
  level: number;
}

/** Skip blanks; true (and the new index) when a '{' follows. */
function findLeftCurly(text: string, cp: number): number | undefined {
  const len = spanOf(text, cp, CHARS_SPACE);
  return text[cp + len] === "{" ? cp + len : undefined;
}

function parseError(mc: Context, line: string): number {
  msg.warn(line);
  return (mc.status |= MAC_PARSE_ERROR);
}

/** {payload} at text[cp] (a '{'): the payload and the index after the '}' and blanks. */
function curlyPayload(mc: Context, text: string, cp: number): { payload: string; next: number } | undefined {
  let level = 1;
  let i = cp + 1;
  for (;; i++) {
    if (i >= text.length) {
      parseError(mc, `unbalanced {} in attribute expression: "${text.slice(cp)}"`);
      return undefined;
    }
    if (text[i] === "{") level++;
    else if (text[i] === "}" && --level <= 0) break;
  }
  const payload = text.slice(cp + 1, i);
  const after = i + 1;
  return { payload, next: after + spanOf(text, after, CHARS_SPACE) };
}

function show20(text: string, from: number): string {
  return text.slice(from, from + 20);
}

/** {left} OP {right} at text[cp]: the fake lookup result ("true" or "") and next index. */
function parseRelational(mc: Context, text: string, cp: number): { value: string; next: number } | undefined {
  const left = curlyPayload(mc, text, cp);
  if (!left) return undefined;
  cp = left.next;
  const opPos = cp;
  const opLen = spanOf(text, cp, OPERATOR_CHARS);
  const opText = text.slice(cp, cp + opLen);
  const op = OPERATORS[opText];
  if (op === undefined) {
    parseError(mc, `${ANY_OPERATOR} expected at: "...${left.payload}}>>>${show20(text, cp)}"`);
    return undefined;
  }
  cp += opLen;
  let relop = defaultRelop;
  // The reference accepts an alphanumeric operator suffix once any is registered;
  // Postfix daemons always register "level".
  if (isAlnum(text[cp])) {
    const typePos = cp;
    let typeLen = 1;
    while (isAlnum(text[cp + typeLen])) typeLen++;
    cp += typeLen;
    const ext = SUFFIXED[text.slice(opPos, opPos + opLen + typeLen)];
    if (!ext) {
      parseError(mc, `bad operator suffix at: "...${opText}>>>${text.slice(typePos, typePos + typeLen)}"`);
      return undefined;
    }
    relop = ext;
  }
  const rightAt = findLeftCurly(text, cp);
  if (rightAt === undefined) {
    parseError(mc, `"{expression}" expected at: "...{${left.payload}} ${opText}>>>${show20(text, cp)}"`);
    return undefined;
  }
  const right = curlyPayload(mc, text, rightAt);
  if (!right) return undefined;
  const l = expandInto(left.payload, mc.lookup, mc.recurse);
  const r = expandInto(right.payload, mc.lookup, mc.recurse);
  mc.status |= l.status | r.status;
  let outcome: boolean | undefined;
  if (!(mc.status & MAC_PARSE_ERROR)) {
    outcome = relop(l.result, op, r.result);
    if (outcome === undefined) mc.status |= MAC_PARSE_ERROR;
  }
  if (mc.status & MAC_PARSE_ERROR) return undefined;
  return { value: outcome ? "true" : "", next: right.next };
}

function expandCallback(mc: Context, kind: Piece, text: string): number {
  if (mc.level++ > 100) parseError(mc, `unreasonable macro call nesting: "${text}"`);
  if (mc.status & MAC_PARSE_ERROR) return mc.status;

  if (kind === EXPR) {
    let cp = 0;
    let ch: string | undefined; // '?', ':' or undefined (end)
    let lookup: string | undefined;
    const curly = findLeftCurly(text, 0);
    if (curly !== undefined) {
      const rel = parseRelational(mc, text, curly);
      if (!rel) return mc.status;
      lookup = rel.value;
      cp = rel.next;
      ch = text[cp];
      if (ch !== undefined) {
        if (ch !== "?" && ch !== ":")
          return parseError(mc, `"?" or ":" expected at: "...}>>>${show20(text, cp)}"`);
        cp++;
      }
    } else {
      cp = spanOf(text, 0, CHARS_SPACE);
      const start = cp;
      let name: string;
      let mode: LookupMode;
      for (;; cp++) {
        const blanks = spanOf(text, cp, CHARS_SPACE);
        const next = text[cp + blanks];
        if (next === undefined) {
          name = text.slice(start, cp);
          mode = "use";
          ch = undefined;
          break;
        }
        if (next === "?" || next === ":") {
          name = text.slice(start, cp);
          cp += blanks + 1;
          mode = "test";
          ch = next;
          break;
        }
        if (!isAlnum(text[cp]) && text[cp] !== "_")
          return parseError(mc, `attribute name syntax error at: "...${text.slice(0, cp)}>>>${show20(text, cp)}"`);
      }
      lookup = mc.lookup(name, mode);
    }

    if (ch === "?") {
      let ifTrue: string;
      const at = findLeftCurly(text, cp);
      if (at !== undefined) {
        const p = curlyPayload(mc, text, at);
        if (!p) return mc.status;
        ifTrue = p.payload;
        cp = p.next;
      } else {
        ifTrue = text.slice(cp);
        cp = text.length;
      }
      if (lookup !== undefined && lookup !== "") mc.status |= macParse(ifTrue, (k, t) => expandCallback(mc, k, t), msg.warn);
      if (cp < text.length) {
        if (text[cp] !== ":") return parseError(mc, `":" expected at: "...${ifTrue}}>>>${show20(text, cp)}"`);
        cp += 1;
        ch = ":"; // fall through to the ':' operand
      }
    }
    if (ch === ":") {
      let ifFalse: string;
      const at = findLeftCurly(text, cp);
      if (at !== undefined) {
        const p = curlyPayload(mc, text, at);
        if (!p) return mc.status;
        ifFalse = p.payload;
        cp = p.next;
      } else {
        ifFalse = text.slice(cp);
        cp = text.length;
      }
      if (lookup === undefined || lookup === "") mc.status |= macParse(ifFalse, (k, t) => expandCallback(mc, k, t), msg.warn);
      if (cp < text.length) return parseError(mc, `unexpected input at: "...${ifFalse}}>>>${show20(text, cp)}"`);
    } else if (ch === undefined) {
      if (lookup === undefined) {
        mc.status |= MAC_PARSE_UNDEF;
      } else if (lookup === "") {
        // nothing to add
      } else if (mc.recurse) {
        mc.status |= macParse(lookup, (k, t) => expandCallback(mc, k, t), msg.warn);
      } else {
        mc.result += lookup;
      }
    }
  } else {
    mc.result += text;
  }
  mc.level--;
  return mc.status;
}

function expandInto(pattern: string, lookup: MacLookup, recurse: boolean): { result: string; status: number } {
  const mc: Context = { result: "", recurse, lookup, status: 0, level: 0 };
  const status = macParse(pattern, (k, t) => expandCallback(mc, k, t), msg.warn);
  return { result: mc.result, status };
}

/**
 * Expand `pattern`. Returns the text and the status bits (MAC_PARSE_ERROR
 * after a warned-about syntax error, MAC_PARSE_UNDEF when an undefined name
 * was used). Strings are byte strings; a NUL ends the pattern as in C.
 */
export function macExpand(
  pattern: string,
  lookup: MacLookup,
  opts: MacExpandOptions = {},
): { result: string; status: number } {
  return expandInto(cString(pattern), lookup, opts.recurse ?? false);
}
