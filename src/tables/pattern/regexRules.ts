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
 * Where a walk runs. A POSIX regexec() or a PCRE2 match cannot be
 * interrupted, and on a hostile pattern or key it can take seconds to hours
 * (a back-reference is exponential in glibc; nested quantifiers in PCRE2 run
 * to the match limit, about 0.2 s per attempt). On the main thread that
 * would stall every client of the process. A worker round trip per lookup
 * would bound it, but would cost more than the walk itself: measured
 * (bench/blocking.ts, 22 address rules, address keys), the main thread
 * spends 5-9 us of CPU on a whole walk, 19-26 us on sending it to a worker
 * and taking the answer, and the latency grows by about 25 us. So a walk
 * starts on the main thread, and each pattern runs there only when the
 * engine says its time is bounded for this key (inline(): no back-reference
 * and a key of at most INLINE_MAX_KEY bytes; pcre: also with a lower match
 * limit, and a match that reaches it gives up); the walk also stops when it
 * has used INLINE_BUDGET_MS. From the first pattern that may not run here, the walk
 * goes on in a worker of the "pattern" pool (offload/pool.ts, matchJobs.ts),
 * which holds the same rules compiled and matches with the library's
 * defaults, so every answer and warning is the reference's.
 *
 * Logs: the warnings above as "TYPE map NAME, line N: ...", and the engine's
 * match errors during lookups.
 */
import { DictFlag } from "../../protocol/constants";
import { msg } from "../../log/msg";
import { TableError, type Table } from "../table";
import { fileToBase64 } from "../dictFile";
import { SRC_RHS_IS_FILE } from "../flagsStr";
import { cString, isSpaceCode } from "../../util/ctype";
import { trimTrailing } from "../../util/stringops";
import { lowercaseAscii } from "../utf8";
import type { LogicalLine } from "../../config/logicalLines";
import type { FileStamp } from "./source";
import { expandReplacement, prescanReplacement, sizeTAsInt, type MacToken } from "./macParse";
import { Op, RuleList, Suspend, walkFrom, type Rule } from "./rules";
import { OffloadPool } from "../offload/pool";
import type { MatchProgram, PatternSpec, RuleSpec, WalkAnswer, WalkRequest } from "./matchJobs";

/**
 * Longest key (bytes) a pattern may meet on the main thread. Both e-mail
 * addresses and host names fit (254 and 253). Measured with glibc 2.36: a
 * pattern without back-references costs at most about 0.25 ms at this length
 * once its automaton is built (building it, once per pattern, up to 15 ms
 * for a contrived 100-fold repetition); the cost grows with the square of
 * the length (32 ms for one rule at 4,000 bytes).
 */
export const INLINE_MAX_KEY = 256;
/** Main-thread time a walk may use before the rest goes to a worker. */
export const INLINE_BUDGET_MS = 2;
/**
 * The clock is read every this many pattern tests on short keys (a read
 * costs 50 ns, a test there 0.1-0.3 us); on keys longer than SHORT_KEY,
 * where one test may take a millisecond, before every test.
 */
const CLOCK_EVERY = 8;
const SHORT_KEY = 64;

/** A test() that may not finish on the main thread: the walk goes on in a worker. */
export const GIVE_UP = Symbol("give up");

/** The worker threads of regexp and pcre walks that may not run on the main thread. */
export const patternPool = new OffloadPool("pattern");

let programSeq = 0;

/** False: every walk runs on a worker (tests prove both ways give the same answers). */
let inlineWalks = true;

/** Tests: run every walk on a worker (false), or as usual (true). */
export function setInlineWalks(on: boolean): void {
  inlineWalks = on;
}
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
  /** What a worker compiles to get the same pattern: the text and the final options. */
  spec(c: C): PatternSpec;
  /** May this pattern run on the main thread against a key of this many bytes? */
  inline(c: C, keyLength: number): boolean;
  /** Number of capturing groups. */
  groups(c: C): number;
  /**
   * Run the pattern on the key: true/false as the C code decides it (an
   * execution error is logged and counts as no match, whatever the
   * negation). With nsub > 0, captured() afterwards gives group n's text.
   * GIVE_UP: the match would take longer than the main thread allows (not
   * logged); a worker runs it again.
   */
  test(c: C, match: boolean, key: string, nsub: number, where: Where): boolean | typeof GIVE_UP;
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

/** The capture n of a worker's answer, as the engines' captured(): "" when unset or empty. */
function capturedAt(offsets: number[], subject: string, n: number): string {
  const start = offsets[2 * n];
  const end = offsets[2 * n + 1];
  if (start === undefined || end === undefined || start < 0 || end <= start) return "";
  return subject.slice(start, end);
}

/** A loaded regexp or pcre table. */
export class RegexTable<C> implements Table {
  flags: number;
  /**
   * This table's rules as workers load them (made at the first walk that
   * needs one), as JSON text: handing a worker one string is a copy, where
   * thousands of rule objects would be cloned one by one on this thread.
   */
  private program: { key: string; json: string } | undefined;

  constructor(
    private readonly eng: RegexEngine<C>,
    private readonly name: string,
    private rules: RegexRule<C>[],
    private readonly stamp: FileStamp | undefined,
    flags: number,
  ) {
    this.flags = flags;
  }

  lookup(key: string, flags: number): string | undefined | Promise<string | undefined> {
    const eng = this.eng;
    if (msg.verbose) msg.info(`dict_${eng.type}_lookup: ${this.name}: ${key}`);
    const subject = flags & DictFlag.FOLD_MUL ? lowercaseAscii(key) : key;
    if (!inlineWalks) return this.walkOnWorker(subject, 0);
    const length = subject.length;
    const start = performance.now();
    const every = length > SHORT_KEY ? 1 : CLOCK_EVERY;
    let tests = 0;
    /** Run one pattern here, or say that the walk must go on in a worker. */
    const test = (c: C, match: boolean, nsub: number, r: RegexRule<C>): boolean | typeof GIVE_UP => {
      if (!eng.inline(c, length)) return GIVE_UP;
      if (++tests % every === 0 && performance.now() - start > INLINE_BUDGET_MS) return GIVE_UP;
      return eng.test(c, match, subject, nsub, r.where);
    };
    const walk = () =>
      walkFrom(
        this.rules,
        0,
        (r, i) => {
          const nsub = r.maxSub > 0 ? r.maxSub + 1 : 0;
          const t1 = test(r.first!, r.firstMatch, nsub, r);
          if (t1 === GIVE_UP) return new Suspend(i);
          if (!t1) return undefined;
          if (r.second !== undefined) {
            const t2 = test(r.second, r.secondMatch, 0, r);
            if (t2 === GIVE_UP) return new Suspend(i);
            if (!t2) return undefined;
          }
          if (r.maxSub === 0) return r.replacement;
          return expandReplacement(r.tokens, (n) => eng.captured(r.first!, subject, n));
        },
        (r, i) => {
          const t = test(r.first!, r.firstMatch, 0, r);
          return t === GIVE_UP ? new Suspend(i) : t;
        },
      );
    const out = eng.around ? eng.around(walk) : walk();
    return out instanceof Suspend ? this.walkOnWorker(subject, out.at) : out;
  }

  /** Walk from rule `from` on a worker; log its errors and expand its match here. */
  private walkOnWorker(subject: string, from: number): Promise<string | undefined> {
    const rules = this.rules;
    const program = (this.program ??= this.makeProgram());
    const request: WalkRequest = { key: program.key, from, subject };
    return patternPool.call<WalkAnswer>("match.walk", request, { key: program.key, job: "match.load", arg: program.json }).then(
      (a) => {
        for (const e of a.errors) msg.warn(`${rules[e.rule].where.text}: ${e.text}`);
        if (a.at < 0) return undefined;
        const r = rules[a.at];
        if (r.maxSub === 0) return r.replacement;
        return expandReplacement(r.tokens, (n) => capturedAt(a.offsets, subject, n));
      },
      (e) => Promise.reject(new TableError("retry", `${this.eng.type} map ${this.name}: ${(e as Error).message}`)),
    );
  }

  private makeProgram(): { key: string; json: string } {
    const spec = (c: C | undefined) => (c === undefined ? undefined : this.eng.spec(c));
    const rules = this.rules.map(
      (r): RuleSpec => ({
        op: r.op,
        endifAt: r.endifAt,
        first: spec(r.first),
        firstMatch: r.firstMatch,
        second: spec(r.second),
        secondMatch: r.secondMatch,
        nsub: r.op === Op.Match && r.maxSub > 0 ? r.maxSub + 1 : 0,
      }),
    );
    const program: MatchProgram = { key: `${this.eng.type}:${this.name}#${++programSeq}`, type: this.eng.type as MatchProgram["type"], rules };
    return { key: program.key, json: JSON.stringify(program) };
  }

  changed(): boolean {
    return this.stamp?.changed() ?? false;
  }

  readonly changeUnnoticedByReference = true;

  close(): void {
    if (this.program) patternPool.forget(this.program.key, "match.drop");
    this.program = undefined;
    for (const r of this.rules) {
      if (r.first !== undefined) this.eng.free(r.first);
      if (r.second !== undefined) this.eng.free(r.second);
    }
    this.rules = [];
  }
}
