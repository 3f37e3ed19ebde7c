/**
 * regexRules.ts - the file format that regexp and pcre tables share
 * (Postfix util/dict_regexp.c and util/dict_pcre.c, regexp_table(5),
 * pcre_table(5)), parsed with an engine that knows the pattern language:
 *
 *   [!]/pattern/flags  replacement     a match rule ("!" negates; any
 *                                      delimiter that is not a letter or
 *                                      digit: "#pattern#" works too)
 *   if [!]/pattern/flags               rules up to "endif" apply on a match
 *   endif
 *
 * The reading, with the reference's order of checks and warnings: the line
 * is stripped of trailing whitespace; the pattern runs to the next unescaped
 * delimiter (a backslash escapes any character, and stays in the pattern);
 * the engine reads the flags; the replacement is the rest after whitespace
 * (empty: warning, empty result); "$n" checks (macParse.ts); "$n" with a
 * negated pattern or with NO_REGSUB (open flags) skips the rule; the pattern
 * compiles (the engine's error text) and must have as many groups as the
 * largest "$n". "if" takes one pattern and warns about text after it;
 * "endif" without "if" is skipped; other lines are "unrecognized".
 *
 * Lookup (RegexTable): the key is folded to ASCII lower case when the
 * request has FOLD_MUL (the UTF-8 layer, when active, has already folded it
 * and cleared the bit), then the rules are walked: first match wins.
 *
 * Logs: the warnings above as "TYPE map NAME, line N: ...", and the engine's
 * match errors during lookups.
 */
import { DictFlag } from "../../protocol/constants";
import { msg } from "../../log/msg";
import type { Table } from "../table";
import { fileToBase64 } from "../dictFile";
import { SRC_RHS_IS_FILE } from "../flagsStr";
import { cString, isSpaceCode, trimTrailing } from "../strings";
import { lowercaseAscii } from "../utf8";
import type { LogicalLine } from "../../config/logicalLines";
import type { FileStamp } from "./source";
import { expandReplacement, prescanReplacement, sizeTAsInt, type MacToken } from "./macParse";
import { Op, RuleList, walkRules, type Rule } from "./rules";
import { isAlnumCode, startsWithKeyword } from "./keyword";

/** One "/pattern/flags" as read from a line, before compiling. */
export interface RawPattern {
  text: string;
  options: number;
  match: boolean;
}

/** Where a rule is, for messages: "TYPE map NAME, line N". */
export interface Where {
  text: string;
  lineno: number;
}

/** What a regexp or pcre engine provides to the shared parser and lookup. */
export interface RegexEngine<C> {
  /** "regexp" or "pcre". */
  type: string;
  /** The verb of the missing-delimiter warning: "skipping" (regexp), "ignoring" (pcre). */
  delimiterVerb: string;
  /** The n < 1 spelling: "out-of-range" (regexp), "out of range" (pcre). */
  outOfRange: string;
  /** Default options of a pattern. */
  defaultOptions: number;
  /** Does a "!" end the flags (regexp's "/p1/!/p2/" form)? */
  bangEndsFlags: boolean;
  /**
   * A backslash just before the end of the line: regexp ends the pattern
   * there (the backslash dropped) and accepts it; pcre reports a missing
   * closing delimiter.
   */
  trailingBackslashCloses: boolean;
  /** Apply one flag letter: the new options, or undefined (rule skipped, warned). */
  flag(ch: string, options: number, where: Where): number | undefined;
  /** Compile; undefined when it fails (warned). nosub: no group offsets will be asked for. */
  compile(p: RawPattern, nosub: boolean, where: Where): C | undefined;
  /** Number of capturing groups. */
  groups(c: C): number;
  /**
   * Run the pattern on the key: true/false as the C code decides it (an
   * execution error is logged and counts as no match, whatever the
   * negation). With nsub > 0, captured() afterwards gives group n's text.
   */
  test(c: C, match: boolean, key: string, nsub: number, where: Where): boolean;
  /** The text of group n of the last test() with nsub > 0 ("" when empty or unset). */
  captured(c: C, key: string, n: number): string;
  free(c: C): void;
  /** Optional: run a whole lookup walk inside this (regexp: the "C" locale). */
  around?<T>(walk: () => T): T;
}

export interface RegexRule<C> extends Rule {
  first?: C;
  firstMatch: boolean;
  /** regexp only: the "/p1/!/p2/" second pattern. */
  second?: C;
  secondMatch: boolean;
  maxSub: number;
  /** maxSub 0: the constant result; else the tokens to expand. */
  replacement: string;
  tokens: MacToken[];
  /** For messages at lookup time. */
  where: Where;
}

/** Read "[!]DELIM pattern DELIM flags" from line at i; undefined when skipped (warned). */
function getPattern<C>(eng: RegexEngine<C>, line: string, i: number, where: Where): { pat: RawPattern; at: number } | undefined {
  let match = true;
  for (; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 0x21) match = !match;
    else if (!isSpaceCode(c)) break;
  }
  if (i >= line.length) {
    msg.warn(`${where.text}: no regexp: skipping this rule`);
    return undefined;
  }
  const delim = line[i++];
  const start = i;
  let backslashAtEnd = false;
  while (i < line.length) {
    if (line[i] === "\\") {
      if (i + 1 < line.length) i++;
      else {
        backslashAtEnd = true;
        break;
      }
    } else if (line[i] === delim) {
      break;
    }
    i++;
  }
  const closed = i < line.length && (!backslashAtEnd || eng.trailingBackslashCloses);
  if (!closed) {
    msg.warn(`${where.text}: no closing regexp delimiter "${delim}": ${eng.delimiterVerb} this rule`);
    return undefined;
  }
  const text = line.slice(start, i++);
  let options = eng.defaultOptions;
  while (i < line.length && !isSpaceCode(line.charCodeAt(i)) && !(eng.bangEndsFlags && line[i] === "!")) {
    const next = eng.flag(line[i], options, where);
    if (next === undefined) return undefined;
    options = next;
    i++;
  }
  return { pat: { text, options, match }, at: i };
}

function parseMatchRule<C>(eng: RegexEngine<C>, line: string, where: Where, flags: number): RegexRule<C> | undefined {
  const first = getPattern(eng, line, 0, where);
  if (!first) return undefined;
  let p = first.at;
  let second: RawPattern | undefined;
  if (eng.bangEndsFlags && line[p] === "!") {
    const s = getPattern(eng, line, p, where);
    if (!s) return undefined;
    second = s.pat;
    p = s.at;
  }
  while (p < line.length && isSpaceCode(line.charCodeAt(p))) p++;
  let text = line.slice(p);
  if (text.length === 0) msg.warn(`${where.text}: no replacement text: using empty string`);
  if (flags & SRC_RHS_IS_FILE) {
    const f = fileToBase64(text);
    if ("err" in f) {
      msg.warn(`${where.text}: ${f.err}: skipping this rule`);
      return undefined;
    }
    text = f.value;
  }
  const pre = prescanReplacement(text, { where: where.text, outOfRange: eng.outOfRange }, (l) => msg.warn(l));
  if (!pre.ok) {
    msg.warn(`${where.text}: bad replacement syntax: skipping this rule`);
    return undefined;
  }
  if (pre.maxSub > 0n && !first.pat.match) {
    msg.warn(`${where.text}: $number found in negative match replacement text: skipping this rule`);
    return undefined;
  }
  if (pre.maxSub > 0n && flags & DictFlag.NO_REGSUB) {
    msg.warn(`${where.text}: regular expression substitution is not allowed: skipping this rule`);
    return undefined;
  }
  const c1 = eng.compile(first.pat, pre.maxSub === 0n, where);
  if (c1 === undefined) return undefined;
  if (pre.maxSub > BigInt(eng.groups(c1))) {
    msg.warn(`${where.text}: out of range replacement index "${sizeTAsInt(pre.maxSub)}": skipping this rule`);
    eng.free(c1);
    return undefined;
  }
  let c2: C | undefined;
  if (second) {
    c2 = eng.compile(second, true, where);
    if (c2 === undefined) {
      eng.free(c1);
      return undefined;
    }
  }
  return {
    op: Op.Match,
    lineno: where.lineno,
    endifAt: -1,
    first: c1,
    firstMatch: first.pat.match,
    second: c2,
    secondMatch: second?.match ?? true,
    maxSub: Number(pre.maxSub),
    replacement: pre.maxSub === 0n ? (pre.literal ?? text) : text,
    tokens: pre.tokens,
    where,
  };
}

/** dict_regexp_parseline() / dict_pcre_parse_rule(). */
function parseLine<C>(eng: RegexEngine<C>, line: string, where: Where, nesting: number, flags: number): RegexRule<C> | undefined {
  const base = { lineno: where.lineno, endifAt: -1, firstMatch: true, secondMatch: true, maxSub: 0, replacement: "", tokens: [], where };
  if (!isAlnumCode(line.charCodeAt(0))) return parseMatchRule(eng, line, where, flags);
  if (startsWithKeyword(line, "IF")) {
    let p = 2;
    while (p < line.length && isSpaceCode(line.charCodeAt(p))) p++;
    const got = getPattern(eng, line, p, where);
    if (!got) return undefined;
    p = got.at;
    while (p < line.length && isSpaceCode(line.charCodeAt(p))) p++;
    if (p < line.length) {
      msg.warn(`${where.text}: ignoring extra text after IF statement: "${line.slice(p)}"`);
      msg.warn(`${where.text}: do not prepend whitespace to statements between IF and ENDIF`);
    }
    const c = eng.compile(got.pat, false, where); // the reference adds no REG_NOSUB here
    if (c === undefined) return undefined;
    return { ...base, op: Op.If, first: c, firstMatch: got.pat.match };
  }
  if (startsWithKeyword(line, "ENDIF")) {
    if (nesting === 0) {
      msg.warn(`${where.text}: ignoring ENDIF without matching IF`);
      return undefined;
    }
    let p = 5;
    while (p < line.length && isSpaceCode(line.charCodeAt(p))) p++;
    if (p < line.length) msg.warn(`${where.text}: ignoring extra text after ENDIF`);
    return { ...base, op: Op.Endif };
  }
  msg.warn(`${where.text}: ignoring unrecognized request`);
  return undefined;
}

/** Parse every logical line into rules (warnings logged). */
export function parseRegexRules<C>(eng: RegexEngine<C>, name: string, lines: readonly LogicalLine[], flags: number): RegexRule<C>[] {
  const list = new RuleList<RegexRule<C>>();
  for (const { text, lineno } of lines) {
    const line = trimTrailing(cString(text));
    if (line.length === 0) continue;
    const rule = parseLine(eng, line, { text: `${eng.type} map ${name}, line ${lineno}`, lineno }, list.nesting, flags);
    if (rule) list.add(rule);
  }
  return list.finish(eng.type, name);
}

/** A loaded regexp or pcre table. */
export class RegexTable<C> implements Table {
  flags: number;
  constructor(
    private readonly eng: RegexEngine<C>,
    private readonly name: string,
    private rules: RegexRule<C>[],
    private readonly stamp: FileStamp | undefined,
    flags: number,
  ) {
    this.flags = flags;
  }

  lookup(key: string, flags: number): string | undefined {
    const eng = this.eng;
    if (msg.verbose) msg.info(`dict_${eng.type}_lookup: ${this.name}: ${key}`);
    const subject = flags & DictFlag.FOLD_MUL ? lowercaseAscii(key) : key;
    const walk = () => walkRules(
      this.rules,
      (r) => {
        const nsub = r.maxSub > 0 ? r.maxSub + 1 : 0;
        if (!eng.test(r.first!, r.firstMatch, subject, nsub, r.where)) return undefined;
        if (r.second !== undefined && !eng.test(r.second, r.secondMatch, subject, 0, r.where)) return undefined;
        if (r.maxSub === 0) return r.replacement;
        return expandReplacement(r.tokens, (n) => eng.captured(r.first!, subject, n));
      },
      (r) => eng.test(r.first!, r.firstMatch, subject, 0, r.where),
    );
    return eng.around ? eng.around(walk) : walk();
  }

  changed(): boolean {
    return this.stamp?.changed() ?? false;
  }

  readonly changeUnnoticedByReference = true;

  close(): void {
    for (const r of this.rules) {
      if (r.first !== undefined) this.eng.free(r.first);
      if (r.second !== undefined) this.eng.free(r.second);
    }
    this.rules = [];
  }
}
