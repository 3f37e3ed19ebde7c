/**
 * matchJobs.ts - regexp and pcre rule walks as worker jobs (offload/worker.ts
 * runs them; regexRules.ts sends them when a walk may not run on the main
 * thread: see its header for when).
 *
 * "match.load" compiles a table's rules in this worker (sent as JSON text; the main thread has
 * parsed the file, logged its warnings and compiled the same patterns, so
 * compiling cannot fail here); "match.walk" walks them for one key from a
 * given rule on, exactly as the reference: the library's default limits,
 * first match wins, if/endif; "match.drop" frees them.
 *
 * A walk answers the index of the rule that matched (-1: none), the
 * capture offsets of that rule's first pattern, and the execution errors
 * met on the way, in order, for the main thread to log.
 *
 * Reads nothing. Logs nothing.
 */
import { Op, Suspend, walkFrom, type Rule } from "./rules";
import { PosixRegex, cSubject, withCLocale } from "../../sys/regex";
import { Pcre2Regex, pcre2ErrorText } from "../../sys/pcre2";

/** One pattern as the worker compiles it: the text and the final compile options. */
export interface PatternSpec {
  text: string;
  options: number;
}

/** One rule of a program: the parts of a RegexRule that matching needs. */
export interface RuleSpec {
  op: Op;
  endifAt: number;
  first?: PatternSpec;
  firstMatch: boolean;
  second?: PatternSpec;
  secondMatch: boolean;
  /** Capture slots asked of the first pattern (0: none). */
  nsub: number;
}

export interface MatchProgram {
  key: string;
  type: "regexp" | "pcre";
  rules: RuleSpec[];
}

export interface WalkRequest {
  key: string;
  from: number;
  subject: string;
}

export interface WalkAnswer {
  /** Index of the rule that matched, -1 for none. */
  at: number;
  /** Start and end of each capture of that rule's first pattern (-1: unset). */
  offsets: number[];
  /** Execution errors, in the order met: the rule and the library's text. */
  errors: Array<{ rule: number; text: string }>;
}

/** A compiled pattern in a worker: match or not (with offsets when asked), or an error text. */
type Exec = (subject: string, nsub: number) => { match: boolean; offsets: number[] } | { error: string };

type LoadedRule = RuleSpec & Rule & { exec1?: Exec; exec2?: Exec };

interface Loaded {
  rules: LoadedRule[];
  /** Release the compiled patterns' C memory. */
  frees: Array<() => void>;
  /** regexp: the "C" locale around the walk, as on the main thread. */
  around: <T>(f: () => T) => T;
}

const programs = new Map<string, Loaded>();

/** The C bytes of the current subject, made once per walk for every POSIX pattern. */
let subjectBytes: Buffer = Buffer.alloc(1);

function posix(spec: PatternSpec): { exec: Exec; free: () => void } {
  const re = PosixRegex.compile(spec.text, spec.options);
  if ("error" in re) throw new Error(`regexp compile: ${re.error}`);
  return {
    exec: (_subject, nsub) => {
      const r = re.exec(subjectBytes, nsub);
      if ("error" in r) return { error: r.error };
      return { match: r.match, offsets: r.match ? r.groups.flat() : [] };
    },
    free: () => re.free(),
  };
}

function pcre(spec: PatternSpec): { exec: Exec; free: () => void } {
  const re = Pcre2Regex.compile(spec.text, spec.options);
  if ("error" in re) throw new Error(`pcre compile: error ${re.error} at offset ${re.offset}`);
  return {
    exec: (subject, nsub) => {
      const r = re.exec(subject, nsub > 0);
      if ("error" in r) return { error: pcre2ErrorText(r.error) };
      return { match: r.match, offsets: r.match ? r.ovector : [] };
    },
    free: () => re.free(),
  };
}

/** Compile a program (its JSON text, see RegexTable.makeProgram()). */
function load(json: string): void {
  const p = JSON.parse(json) as MatchProgram;
  drop(p.key);
  const compile = p.type === "regexp" ? posix : pcre;
  const frees: Array<() => void> = [];
  const rules = p.rules.map((r): LoadedRule => {
    const a = r.first ? compile(r.first) : undefined;
    const b = r.second ? compile(r.second) : undefined;
    if (a) frees.push(a.free);
    if (b) frees.push(b.free);
    return { ...r, lineno: 0, exec1: a?.exec, exec2: b?.exec };
  });
  programs.set(p.key, { rules, frees, around: p.type === "regexp" ? withCLocale : (f) => f() });
}

function walk(q: WalkRequest): WalkAnswer {
  const p = programs.get(q.key);
  if (!p) throw new Error(`no rules loaded for ${q.key}`);
  const errors: WalkAnswer["errors"] = [];
  let at = -1;
  let offsets: number[] = [];
  subjectBytes = cSubject(q.subject);
  // As the engines' test(): an execution error is logged and is no match, whatever the negation.
  const test = (exec: Exec, match: boolean, nsub: number, i: number): boolean => {
    const r = exec(q.subject, nsub);
    if ("error" in r) {
      errors.push({ rule: i, text: r.error });
      return false;
    }
    if (r.match && nsub > 0) offsets = r.offsets;
    return r.match ? match : !match;
  };
  p.around(() =>
    walkFrom<LoadedRule>(
      p.rules,
      q.from,
      (r, i): string | undefined | Suspend => {
        if (!test(r.exec1!, r.firstMatch, r.nsub, i)) return undefined;
        if (r.exec2 && !test(r.exec2, r.secondMatch, 0, i)) return undefined;
        at = i;
        return "";
      },
      (r, i) => test(r.exec1!, r.firstMatch, 0, i),
    ),
  );
  return { at, offsets: at < 0 ? [] : offsets, errors };
}

function drop(key: string): void {
  const p = programs.get(key);
  programs.delete(key);
  for (const free of p?.frees ?? []) free();
}

export const matchJobs = {
  "match.load": load,
  "match.walk": walk,
  "match.drop": drop,
};
