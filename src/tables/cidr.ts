/**
 * cidr.ts - the "cidr" table type: network address patterns and their
 * results, first match wins (Postfix util/dict_cidr.c, cidr_table(5)).
 *
 * Each logical line of the file (or of the inline "{...}" spec) is one of:
 *   [!]pattern  result     (pattern: pattern/cidrMatch.ts; "!" negates)
 *   if [!]pattern          (the rules up to "endif" apply only on a match)
 *   endif
 * "if"/"endif" are case-insensitive and must not be followed by a letter or
 * digit. A bad line is logged as "cidr map NAME, line N: REASON: skipping
 * this rule" and left out. A lookup key that is not an IPv4 or IPv6 address
 * matches nothing. Keys are not case-folded (addresses have no case).
 *
 * Flags: the open flags plus PATTERN (what the open reply shows). Read
 * service only ("map requires O_RDONLY access mode" on the write service,
 * as the reference). No sequence, update or delete: the dict layer answers
 * those with a warning and a status.
 *
 * Differences from the reference (README): a cidr "file" that is a
 * directory makes the reference exit ("cidr map NAME: read error"); here
 * the table answers CONFIG with that text. A file changed on disk is
 * noticed (changed()) and the dict layer re-opens it; the reference keeps
 * the rules it loaded until its process ends.
 *
 * Reads: the table file. Logs: the per-line warnings above, "IF has no
 * matching ENDIF", and with -v the reference's "dict_cidr_open: add" and
 * "dict_cidr_lookup" lines.
 */
import { DictFlag } from "../protocol/constants";
import { msg } from "../log/msg";
import { TableError, type OpenArgs, type Table, type TableType, READ_ONLY } from "./table";
import { fileToBase64 } from "./dictFile";
import { SRC_RHS_IS_FILE } from "./flagsStr";
import { cString, isSpaceCode } from "../util/ctype";
import { trimTrailing } from "../util/stringops";
import { readPatternSource, type FileStamp } from "./pattern/source";
import { Op, RuleList, walkRules, type Rule } from "./pattern/rules";
import { cidrMatches, parseCidrKey, parseCidrPattern, type CidrKey, type CidrPattern } from "./pattern/cidrMatch";
import { inetNtop, preloadInet } from "./pattern/inet";
import { startsWithKeyword } from "./pattern/keyword";

const TYPE = "cidr";

interface CidrRule extends Rule {
  pattern?: CidrPattern;
  value: string;
}

/** Skip "!" and whitespace from i, counting negations. */
function negations(line: string, i: number): { at: number; match: boolean } {
  let match = true;
  for (; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 0x21 /* ! */) match = !match;
    else if (!isSpaceCode(c)) break;
  }
  return { at: i, match };
}

/** dict_cidr_parse_rule(): one rule, or the reason it is skipped. */
export function parseCidrRule(line: string, lineno: number, nesting: number, flags: number): CidrRule | { error: string } {
  let rule: CidrRule;
  if (startsWithKeyword(line, "IF")) {
    const { at, match } = negations(line, 2);
    if (at >= line.length) return { error: "no address pattern" };
    const p = parseCidrPattern(trimTrailing(line.slice(at)), match);
    if ("error" in p) return p;
    rule = { op: Op.If, lineno, endifAt: -1, pattern: p, value: "" };
  } else if (startsWithKeyword(line, "ENDIF")) {
    let i = 5;
    while (i < line.length && isSpaceCode(line.charCodeAt(i))) i++;
    if (i < line.length) return { error: "garbage after ENDIF" };
    if (nesting === 0) return { error: "ENDIF without IF" };
    rule = { op: Op.Endif, lineno, endifAt: -1, value: "" };
  } else {
    const { at, match } = negations(line, 0);
    let e = at;
    while (e < line.length && !isSpaceCode(line.charCodeAt(e))) e++;
    const pattern = line.slice(at, e);
    let v = e + 1;
    while (v < line.length && isSpaceCode(line.charCodeAt(v))) v++;
    const value = v < line.length ? trimTrailing(line.slice(v)) : "";
    if (pattern.length === 0) return { error: "no address pattern" };
    const p = parseCidrPattern(pattern, match);
    if ("error" in p) return p;
    if (value.length === 0) return { error: "no lookup result" };
    rule = { op: Op.Match, lineno, endifAt: -1, pattern: p, value };
  }
  if (flags & SRC_RHS_IS_FILE) {
    const f = fileToBase64(rule.value);
    if ("err" in f) return { error: f.err };
    rule.value = f.value;
  }
  return rule;
}

class CidrTable implements Table {
  flags: number;
  constructor(
    private readonly name: string,
    private readonly rules: readonly CidrRule[],
    private readonly stamp: FileStamp | undefined,
    flags: number,
  ) {
    this.flags = flags;
  }

  lookup(key: string): string | undefined {
    if (msg.verbose) msg.info(`dict_cidr_lookup: ${this.name}: ${key}`);
    const addr: CidrKey | undefined = parseCidrKey(key);
    if (addr === undefined) return undefined;
    return walkRules(
      this.rules,
      (r) => (cidrMatches(r.pattern!, addr) ? r.value : undefined),
      (r) => cidrMatches(r.pattern!, addr),
    );
  }

  changed(): boolean {
    return this.stamp?.changed() ?? false;
  }

  readonly changeUnnoticedByReference = true;
}

function open(args: OpenArgs): Table {
  const { name, flags } = args;
  const src = readPatternSource(TYPE, name);
  // The reference exits here (msg_fatal); we fail this table only.
  if (src.readError !== undefined) throw new TableError("config", `${TYPE} map ${name}: read error: ${src.readError}`);
  const list = new RuleList<CidrRule>();
  for (const { text, lineno } of src.lines) {
    const r = parseCidrRule(cString(text), lineno, list.nesting, flags);
    if ("error" in r) {
      msg.warn(`${TYPE} map ${name}, line ${lineno}: ${r.error}: skipping this rule`);
      continue;
    }
    if (msg.verbose) {
      const p = r.pattern;
      // cidr_match_endif() zeroes the entry: inet_ntop of family 0 fails and the reference dies; show what it holds.
      msg.info(`dict_cidr_open: add ${p ? inetNtop(p.family, p.net) : "0.0.0.0"}/${p ? p.shift : 0} ${r.value}`);
    }
    list.add(r);
  }
  return new CidrTable(name, list.finish(TYPE, name), src.stamp, flags | DictFlag.PATTERN);
}

// prepare: inet_pton/inet_ntop are bound from libc.so.6 by path, which a chroot jail hides.
export const cidr: TableType = { type: TYPE, open, refuses: READ_ONLY, prepare: preloadInet };
