/**
 * regex.ts - POSIX regular expressions of the C library (regcomp(3),
 * regexec(3), regerror(3), regfree(3)) through bun:ffi, for regexp tables.
 *
 * Why FFI and not JavaScript's RegExp: Postfix's regexp tables are POSIX
 * regular expressions as glibc implements them. POSIX matching is
 * leftmost-LONGEST (an alternation or repetition takes the longest overall
 * match, which changes what "$1" captures), bracket expressions have their
 * own rules ("[]a]", "[[:alpha:]]", no backslash escapes inside), basic
 * regular expressions (flag "x" turns REG_EXTENDED off) use "\(" "\{" and
 * back-references, and the error texts come from regerror(). A translation
 * to RegExp would differ in all of these; calling the same library the C
 * proxymap calls gives the same answers by construction.
 *
 * Memory: regex_t is 64 bytes on glibc x86_64 and aarch64; we allocate 256
 * (a margin for other layouts) and read re_nsub (a size_t) at offset 48
 * (after buffer, allocated, used, syntax, fastmap, translate: six
 * pointer-sized fields). regmatch_t is two regoff_t (int) on glibc: 8 bytes.
 * Compiled patterns live in C memory until free() is called.
 *
 * Locale: the C proxymap never calls setlocale(), so it matches in the "C"
 * locale (one byte = one character, case folding of ASCII only). Bun does
 * not call it either, but to be sure regcomp() and every lookup's walk run
 * with a "C" locale object installed for the calling thread (uselocale(3),
 * withCLocale()), whatever LANG says or anything else in the process sets.
 *
 * libc is opened lazily; preloadRegex() opens it before chroot (the jail
 * has no libc.so.6); the server's pre-jail hook calls it.
 *
 * Reads nothing. Logs nothing (callers turn errors into log lines).
 */
import { ptr, read, type Pointer } from "bun:ffi";
import { libcSymbols } from "./libc";

/** regcomp() flags (glibc <regex.h>). */
export const REG_EXTENDED = 1;
export const REG_ICASE = 2;
export const REG_NEWLINE = 4;
export const REG_NOSUB = 8;
/** regexec() result: no match. */
export const REG_NOMATCH = 1;

const REGEX_T_SIZE = 256;
const RE_NSUB_OFFSET = 48;
const REGMATCH_SIZE = 8;
/** regerror() buffer size used by Postfix (dict_regexp.c: char errbuf[256]). */
const ERRBUF_SIZE = 256;
const LC_CTYPE_MASK = 1 << 0;
const LC_COLLATE_MASK = 1 << 3;
const LC_MESSAGES_MASK = 1 << 5;

const bind = libcSymbols({
  regcomp: { args: ["ptr", "ptr", "i32"], returns: "i32" },
  regexec: { args: ["ptr", "ptr", "u64", "ptr", "i32"], returns: "i32" },
  regerror: { args: ["i32", "ptr", "ptr", "u64"], returns: "u64" },
  regfree: { args: ["ptr"], returns: "void" },
  malloc: { args: ["u64"], returns: "ptr" },
  free: { args: ["ptr"], returns: "void" },
  newlocale: { args: ["i32", "ptr", "ptr"], returns: "ptr" },
  uselocale: { args: ["ptr"], returns: "ptr" },
});
type Lib = { symbols: ReturnType<typeof bind> };
let lib: Lib["symbols"] | undefined;
let cLocale: Pointer | null = null;

function libc(): Lib["symbols"] {
  if (!lib) {
    lib = bind();
    cLocale = lib.newlocale(LC_CTYPE_MASK | LC_COLLATE_MASK | LC_MESSAGES_MASK, Buffer.from("C\0"), null) as Pointer | null;
  }
  return lib;
}

/** Open libc now (before chroot). */
export function preloadRegex(): void {
  libc();
}

/**
 * Run fn with the "C" locale installed for this thread (regcomp and regexec
 * consult the thread's locale). Callers that run many patterns on one key
 * wrap the whole walk once: PosixRegex.exec() itself does not switch.
 */
export function withCLocale<T>(fn: () => T): T {
  const c = libc();
  if (cLocale === null) return fn();
  const old = c.uselocale(cLocale) as Pointer | null;
  try {
    return fn();
  } finally {
    if (old !== null) c.uselocale(old);
  }
}

/** A NUL-terminated copy of a byte string. */
function cstr(s: string): Buffer {
  return Buffer.from(s + "\0", "latin1");
}

/** The bytes regexec() takes for a byte string (NUL-terminated). */
export function cSubject(s: string): Buffer {
  return cstr(s);
}

/** regerror() text for an error code of a compiled (or failed) pattern. */
function errorText(c: Lib["symbols"], code: number, re: Pointer | null): string {
  const buf = Buffer.alloc(ERRBUF_SIZE);
  c.regerror(code, re, buf, ERRBUF_SIZE);
  const nul = buf.indexOf(0);
  return buf.toString("latin1", 0, nul < 0 ? ERRBUF_SIZE : nul);
}

/** Outcome of regexec(): match (with offsets when asked), no match, or an error text. */
export type ExecResult = { match: true; groups: Array<[number, number]> } | { match: false } | { error: string };

const NO_MATCH: ExecResult = Object.freeze({ match: false });
const MATCH: ExecResult = Object.freeze({ match: true, groups: [] });

/** One compiled POSIX pattern. */
export class PosixRegex {
  private constructor(
    private re: Pointer | null,
    /** Number of parenthesized subexpressions (re_nsub). */
    readonly nsub: number,
  ) {}

  /** Compile pattern (a byte string, cut at a NUL as C sees it); an error gives regerror()'s text. */
  static compile(pattern: string, flags: number): PosixRegex | { error: string } {
    const c = libc();
    return withCLocale(() => {
      const re = c.malloc(REGEX_T_SIZE) as Pointer | null;
      if (re === null) return { error: "Memory exhausted" };
      const rc = c.regcomp(re, cstr(pattern), flags);
      if (rc !== 0) {
        const error = errorText(c, rc, re);
        c.free(re);
        return { error };
      }
      const nsub = Number(read.u64(re, RE_NSUB_OFFSET));
      return new PosixRegex(re, nsub);
    });
  }

  /**
   * regexec(subject, nmatch, eflags 0), in the caller's locale (run it
   * inside withCLocale()). subject is a byte string, or its bytes already
   * NUL-terminated (cSubject()) when one key meets many patterns. With
   * nmatch > 0 the result carries nmatch [start, end] pairs (-1 for a group
   * that did not take part).
   */
  exec(subject: string | Uint8Array, nmatch = 0): ExecResult {
    const re = this.re;
    if (re === null) return { error: "regex freed" };
    const c = libc();
    const s = typeof subject === "string" ? cSubject(subject) : subject;
    const pm = nmatch > 0 ? new Int32Array(nmatch * (REGMATCH_SIZE / 4)) : null;
    const rc = c.regexec(re, s, nmatch, pm === null ? null : ptr(pm), 0);
    if (rc === REG_NOMATCH) return NO_MATCH;
    if (rc !== 0) return { error: errorText(c, rc, re) };
    if (pm === null) return MATCH;
    const groups: Array<[number, number]> = [];
    for (let i = 0; i < nmatch; i++) groups.push([pm[2 * i], pm[2 * i + 1]]);
    return { match: true, groups };
  }

  /** Release the C memory; the object answers errors afterwards. */
  free(): void {
    if (this.re === null) return;
    const c = libc();
    c.regfree(this.re);
    c.free(this.re);
    this.re = null;
  }
}
