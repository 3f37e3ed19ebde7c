/**
 * pcre.ts - the "pcre" table type: Perl-compatible regular expressions,
 * first match wins, with "$n" substitution (Postfix util/dict_pcre.c built
 * with PCRE2, pcre_table(5)).
 *
 * File format and lookup: pattern/regexRules.ts (shared with regexp). What
 * is pcre's own:
 * - patterns are compiled and matched by the system's libpcre2-8
 *   (src/sys/pcre2.ts), the library Debian's postfix-pcre links;
 * - options start as CASELESS|DOTALL; flags toggle: i CASELESS, m
 *   MULTILINE, s DOTALL, x EXTENDED, A ANCHORED, E DOLLAR_ENDONLY, U
 *   UNGREEDY; "X" (PCRE1's EXTRA) only warns that it is obsolete; another
 *   letter skips the rule;
 * - no second pattern; "$n" takes group n's text (nothing when empty).
 *
 * On the main thread (regexRules.ts: where a walk runs) a pattern runs only
 * against keys of at most INLINE_MAX_KEY bytes, and with a lower match limit
 * than the library's 10,000,000 (inlineMatchLimit()); a match that reaches
 * it (catastrophic backtracking, or a rare heavy but honest match) is run
 * again, with the rest of the walk, on a worker thread with the default
 * limits, so the answer and any "match limit exceeded" warning are the
 * reference's.
 *
 * When libpcre2-8 cannot be loaded the table fails to open with CONFIG and
 * a log line naming the package to install; it never matches differently.
 *
 * Flags: open flags plus PATTERN. Read service only. No sequence, update or
 * delete (the dict layer answers those). Difference from the reference: a
 * file changed on disk is noticed (changed()).
 *
 * Reads: the table file. Logs: the reference's per-line warnings,
 * compile errors ("error in regex at offset N: TEXT") and match errors.
 */
import { DictFlag } from "../protocol/constants";
import { msg } from "../log/msg";
import { TableError, type OpenArgs, type Table, type TableType, READ_ONLY } from "./table";
import {
  PCRE2_ANCHORED,
  PCRE2_CASELESS,
  PCRE2_DOLLAR_ENDONLY,
  PCRE2_DOTALL,
  PCRE2_ERROR_MATCHLIMIT,
  PCRE2_EXTENDED,
  PCRE2_LIBRARY,
  PCRE2_MULTILINE,
  PCRE2_UNGREEDY,
  Pcre2Regex,
  pcre2ErrorText,
  pcre2Missing,
  preloadPcre2,
} from "../sys/pcre2";
import { readPatternSource } from "./pattern/source";
import { GIVE_UP, INLINE_MAX_KEY, RegexTable, parseRegexRules, type RegexEngine, type Where } from "./pattern/regexRules";

const TYPE = "pcre";

/**
 * The match limit on the main thread. PCRE2 counts its internal match()
 * calls (about 20-50 ns each) afresh at each start position, so a match may
 * make up to (key length) x (limit) of them: the limit is INLINE_MATCH_STEPS
 * divided by the key's length, at most INLINE_MATCH_LIMIT, which bounds one
 * pattern on the main thread to about 200,000 calls (4-10 ms) whatever it
 * is. In practice a match stays far below: an address pattern such as
 * ^(.*)@(.*)\.example\.com$ needs a few hundred calls on a 40-byte key; a
 * catastrophic one reaches the limit at its first start position, in
 * 0.1-0.3 ms, where the default limit takes 0.2 s.
 */
export const INLINE_MATCH_LIMIT = 10_000;
export const INLINE_MATCH_STEPS = 200_000;

/** The main thread's match limit for a key of this length (rounded: one match context each). */
export function inlineMatchLimit(keyLength: number): number {
  const limit = Math.floor(INLINE_MATCH_STEPS / Math.max(1, keyLength) / 100) * 100;
  return Math.min(INLINE_MATCH_LIMIT, Math.max(100, limit));
}

interface Compiled {
  re: Pcre2Regex;
  ovector: number[];
  text: string;
  options: number;
}

const FLAG_BITS: Record<string, number> = {
  i: PCRE2_CASELESS,
  m: PCRE2_MULTILINE,
  s: PCRE2_DOTALL,
  x: PCRE2_EXTENDED,
  A: PCRE2_ANCHORED,
  E: PCRE2_DOLLAR_ENDONLY,
  U: PCRE2_UNGREEDY,
};

export const pcreEngine: RegexEngine<Compiled> = {
  type: TYPE,
  delimiterVerb: "ignoring",
  outOfRange: "out of range",
  defaultOptions: PCRE2_CASELESS | PCRE2_DOTALL,
  bangEndsFlags: false,
  trailingBackslashCloses: false,
  flag(ch: string, options: number, where: Where): number | undefined {
    const bit = Object.hasOwn(FLAG_BITS, ch) ? FLAG_BITS[ch] : undefined;
    if (bit !== undefined) return (options ^ bit) >>> 0;
    if (ch === "X") {
      msg.warn(`${where.text}: ignoring obsolete regexp option "${ch}"`);
      return options;
    }
    msg.warn(`${where.text}: unknown regexp option "${ch}": skipping this rule`);
    return undefined;
  },
  compile(p, _nosub, where) {
    const re = Pcre2Regex.compile(p.text, p.options);
    if ("error" in re) {
      msg.warn(`${where.text}: error in regex at offset ${re.offset}: ${pcre2ErrorText(re.error)}`);
      return undefined;
    }
    return { re, ovector: [], text: p.text, options: p.options };
  },
  spec: (c) => ({ text: c.text, options: c.options }),
  inline: (_c, keyLength) => keyLength <= INLINE_MAX_KEY,
  groups: (c) => c.re.captureCount,
  test(c, match, key, nsub, where) {
    const r = c.re.exec(key, nsub > 0, inlineMatchLimit(key.length));
    if ("error" in r) {
      if (r.error === PCRE2_ERROR_MATCHLIMIT) return GIVE_UP;
      msg.warn(`${where.text}: ${pcre2ErrorText(r.error)}`);
      return false;
    }
    if (r.match) c.ovector = r.ovector;
    return r.match ? match : !match;
  },
  captured(c, key, n) {
    const start = c.ovector[2 * n];
    const end = c.ovector[2 * n + 1];
    if (start === undefined || end === undefined || end - start <= 0) return "";
    return key.slice(start, end);
  },
  free: (c) => c.re.free(),
};

function open(args: OpenArgs): Table {
  const { name, flags } = args;
  const missing = pcre2Missing();
  if (missing !== undefined) {
    throw new TableError("config", `${TYPE}:${name}: cannot load ${PCRE2_LIBRARY} (${missing}); install it: apt-get install libpcre2-8-0`);
  }
  const src = readPatternSource(TYPE, name);
  const rules = parseRegexRules(pcreEngine, name, src.lines, flags);
  return new RegexTable(pcreEngine, name, rules, src.stamp, flags | DictFlag.PATTERN);
}

// prepare: libpcre2-8 is opened by path, which a chroot jail hides.
export const pcre: TableType = { type: TYPE, open, refuses: READ_ONLY, prepare: preloadPcre2 };
