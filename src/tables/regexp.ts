/**
 * regexp.ts - the "regexp" table type: POSIX regular expressions, first
 * match wins, with "$n" substitution (Postfix util/dict_regexp.c,
 * regexp_table(5)).
 *
 * File format and lookup: pattern/regexRules.ts (shared with pcre). What is
 * regexp's own:
 * - patterns are compiled and run by the C library (src/sys/regex.ts), in
 *   the "C" locale, as the reference does;
 * - options start as REG_EXTENDED|REG_ICASE; flag "i" toggles REG_ICASE,
 *   "m" toggles REG_NEWLINE, "x" toggles REG_EXTENDED (so "x" means basic
 *   regular expressions, not "extended syntax"); any other letter skips
 *   the rule;
 * - "/p1/!/p2/": a second pattern that must (not) match as well;
 * - a pattern without "$n" in its result is compiled with REG_NOSUB;
 * - a backslash at the very end of the line ends the pattern.
 *
 * On the main thread (regexRules.ts: where a walk runs) a pattern runs only
 * when it has no back-reference ("\1".."\9": glibc matches those by
 * backtracking, exponential in the key) and the key has at most
 * INLINE_MAX_KEY bytes; otherwise the walk goes on in a worker thread.
 *
 * Flags: open flags plus PATTERN. Read service only. No sequence, update or
 * delete (the dict layer answers those). Differences from the reference: a
 * file changed on disk is noticed (changed()), the reference keeps its
 * rules until its process ends.
 *
 * Reads: the table file. Logs: the reference's per-line warnings, regcomp()
 * and regexec() errors as "regexp map NAME, line N: TEXT".
 */
import { DictFlag } from "../protocol/constants";
import { msg } from "../log/msg";
import { type OpenArgs, type Table, type TableType, READ_ONLY } from "./table";
import { PosixRegex, REG_EXTENDED, REG_ICASE, REG_NEWLINE, REG_NOSUB, cSubject, preloadRegex, withCLocale } from "../sys/regex";
import { readPatternSource } from "./pattern/source";
import { INLINE_MAX_KEY, RegexTable, parseRegexRules, type RegexEngine, type Where } from "./pattern/regexRules";

const TYPE = "regexp";

/** A compiled rule pattern and the group offsets of its last match. */
interface Compiled {
  re: PosixRegex;
  groups: Array<[number, number]>;
  /** What was compiled: the text and the options with REG_NOSUB if added. */
  text: string;
  options: number;
  /** Has a back-reference: never run on the main thread. */
  backref: boolean;
}

/**
 * Does a pattern contain a back-reference (a backslash and a digit 1-9, in
 * basic and extended syntax alike)? Inside a bracket expression the same
 * two characters are no back-reference; counting them as one only sends
 * that pattern to the worker.
 */
export function hasBackReference(text: string): boolean {
  for (let i = 0; i < text.length - 1; i++) {
    if (text.charCodeAt(i) !== 0x5c) continue;
    const d = text.charCodeAt(i + 1);
    if (d >= 0x31 && d <= 0x39) return true;
    i++; // an escaped character, possibly a backslash
  }
  return false;
}

/** The C bytes of the key being looked up: made once per lookup, not once per rule. */
let lastKey: string | undefined;
let lastBytes: Buffer = Buffer.alloc(1);

function keyBytes(key: string): Buffer {
  if (key !== lastKey) {
    lastBytes = cSubject(key);
    lastKey = key;
  }
  return lastBytes;
}

export const regexpEngine: RegexEngine<Compiled> = {
  type: TYPE,
  delimiterVerb: "skipping",
  outOfRange: "out-of-range",
  defaultOptions: REG_EXTENDED | REG_ICASE,
  bangEndsFlags: true,
  trailingBackslashCloses: true,
  flag(ch: string, options: number, where: Where): number | undefined {
    switch (ch) {
      case "i":
        return options ^ REG_ICASE;
      case "m":
        return options ^ REG_NEWLINE;
      case "x":
        return options ^ REG_EXTENDED;
      default:
        msg.warn(`${where.text}: unknown regexp option "${ch}": skipping this rule`);
        return undefined;
    }
  },
  compile(p, nosub, where) {
    const options = p.options | (nosub ? REG_NOSUB : 0);
    const re = PosixRegex.compile(p.text, options);
    if ("error" in re) {
      msg.warn(`${where.text}: ${re.error}`);
      return undefined;
    }
    return { re, groups: [], text: p.text, options, backref: hasBackReference(p.text) };
  },
  spec: (c) => ({ text: c.text, options: c.options }),
  inline: (c, keyLength) => !c.backref && keyLength <= INLINE_MAX_KEY,
  groups: (c) => c.re.nsub,
  test(c, match, key, nsub, where) {
    const r = c.re.exec(keyBytes(key), nsub);
    if ("error" in r) {
      msg.warn(`${where.text}: ${r.error}`);
      return false;
    }
    if (r.match) c.groups = r.groups;
    return r.match ? match : !match;
  },
  captured(c, key, n) {
    const g = c.groups[n];
    if (g === undefined || g[0] < 0 || g[0] === g[1]) return "";
    return key.slice(g[0], g[1]);
  },
  free: (c) => c.re.free(),
  around: withCLocale,
};

function open(args: OpenArgs): Table {
  const { name, flags } = args;
  const src = readPatternSource(TYPE, name);
  // A directory: the reference's reads fail silently and it sees no rules.
  const rules = parseRegexRules(regexpEngine, name, src.lines, flags);
  return new RegexTable(regexpEngine, name, rules, src.stamp, flags | DictFlag.PATTERN);
}

// prepare: regcomp/regexec are bound from libc.so.6 by path, which a chroot jail hides.
export const regexp: TableType = { type: TYPE, open, refuses: READ_ONLY, prepare: preloadRegex };
