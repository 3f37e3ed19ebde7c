/**
 * pcre2.ts - the PCRE2 library (8-bit code units, libpcre2-8.so.0) through
 * bun:ffi, for pcre tables.
 *
 * Why FFI: Debian's postfix-pcre links this same system library; calling
 * it gives the same matches, captures and error texts as the C proxymap by
 * construction (a translation to JavaScript's RegExp would differ in
 * possessive quantifiers, \A \z \Z, (?x) comments, recursion, callouts,
 * Unicode properties, the "U" ungreedy flag, and error messages).
 *
 * Loaded lazily on first use, and before a chroot by preloadPcre2() (the
 * server's pre-jail hook: the jail has no /usr/lib). When the library is
 * missing, pcre2Missing() tells why; the table then answers CONFIG.
 *
 * Compiled patterns and match data live in C memory until free().
 *
 * Matching runs with the library's default limits, as the reference (it
 * passes no match context), unless the caller asks for a lower match limit:
 * pcre.ts does on the main thread, to bound the time of one match there (a
 * match that reaches the lower limit is run again on a worker thread with
 * the default limits, so the answer is always the reference's).
 *
 * Reads nothing. Logs nothing (callers turn errors into log lines).
 */
import { dlopen, ptr, read, type Pointer } from "bun:ffi";

/** Compile options (pcre2.h), the ones pcre_table(5) flags toggle. */
export const PCRE2_ANCHORED = 0x80000000;
export const PCRE2_CASELESS = 0x00000008;
export const PCRE2_DOLLAR_ENDONLY = 0x00000010;
export const PCRE2_DOTALL = 0x00000020;
export const PCRE2_EXTENDED = 0x00000080;
export const PCRE2_MULTILINE = 0x00000400;
export const PCRE2_UNGREEDY = 0x00040000;
export const PCRE2_ERROR_NOMATCH = -1;
/** The match limit was reached (pcre2.h PCRE2_ERROR_MATCHLIMIT). */
export const PCRE2_ERROR_MATCHLIMIT = -47;
const PCRE2_INFO_CAPTURECOUNT = 4;
const PCRE2_ZERO_TERMINATED = 0xffffffffffffffffn;
/** Postfix's message buffer size (dict_pcre.c DICT_PCRE_GET_ERROR_BUF_LEN). */
const ERROR_BUF_LEN = 256;

export const PCRE2_LIBRARY = "libpcre2-8.so.0";
let libraryName = PCRE2_LIBRARY;

const symbols = {
  pcre2_compile_8: { args: ["ptr", "u64", "u32", "ptr", "ptr", "ptr"], returns: "ptr" },
  pcre2_code_free_8: { args: ["ptr"], returns: "void" },
  pcre2_pattern_info_8: { args: ["ptr", "u32", "ptr"], returns: "i32" },
  pcre2_match_data_create_from_pattern_8: { args: ["ptr", "ptr"], returns: "ptr" },
  pcre2_match_data_free_8: { args: ["ptr"], returns: "void" },
  pcre2_match_8: { args: ["ptr", "ptr", "u64", "u64", "u32", "ptr", "ptr"], returns: "i32" },
  pcre2_get_ovector_pointer_8: { args: ["ptr"], returns: "ptr" },
  pcre2_get_ovector_count_8: { args: ["ptr"], returns: "u32" },
  pcre2_get_error_message_8: { args: ["i32", "ptr", "u64"], returns: "i32" },
  pcre2_match_context_create_8: { args: ["ptr"], returns: "ptr" },
  pcre2_set_match_limit_8: { args: ["ptr", "u32"], returns: "i32" },
} as const;

type Lib = ReturnType<typeof dlopen<typeof symbols>>;
let lib: Lib["symbols"] | undefined;
let loadError: string | undefined;

function pcre2(): Lib["symbols"] | undefined {
  if (lib || loadError !== undefined) return lib;
  try {
    lib = dlopen(libraryName, symbols).symbols;
  } catch (e) {
    loadError = e instanceof Error ? e.message : String(e);
  }
  return lib;
}

/**
 * Load another file instead (tests: a name that does not exist stands for
 * a machine without libpcre2). Forgets the library loaded so far.
 */
export function usePcre2Library(name: string): void {
  libraryName = name;
  lib = undefined;
  loadError = undefined;
}

/** Load the library now (before chroot). Silent when it is missing. */
export function preloadPcre2(): void {
  pcre2();
}

/** undefined when the library can be used, else the loader's complaint. */
export function pcre2Missing(): string | undefined {
  pcre2();
  return lib ? undefined : (loadError ?? "not loaded");
}

/** Match contexts by match limit, made once each (never freed: there are one or two). */
const contexts = new Map<number, Pointer | null>();

function matchContext(l: Lib["symbols"], limit: number): Pointer | null {
  let c = contexts.get(limit);
  if (c === undefined) {
    c = l.pcre2_match_context_create_8(null) as Pointer | null;
    if (c !== null) l.pcre2_set_match_limit_8(c, limit);
    contexts.set(limit, c);
  }
  return c;
}

function need(): Lib["symbols"] {
  const l = pcre2();
  if (!l) throw new Error(`${libraryName}: ${loadError}`);
  return l;
}

/**
 * pcre2_get_error_message() into a 256-byte buffer, or Postfix's fallback
 * text when that fails (unknown code, or a message too long for the buffer).
 */
export function pcre2ErrorText(code: number): string {
  const buf = Buffer.alloc(ERROR_BUF_LEN);
  const len = need().pcre2_get_error_message_8(code, buf, ERROR_BUF_LEN);
  return len > 0 ? buf.toString("latin1", 0, len) : `unexpected pcre2 error code ${code}`;
}

/** Outcome of a match: the capture offsets (unset = -1), no match, or an error code. */
export type Pcre2Result = { match: true; ovector: number[] } | { match: false } | { error: number };

/** One compiled pattern with its match data block. */
export class Pcre2Regex {
  private constructor(
    private code: Pointer | null,
    private md: Pointer | null,
    /** Number of capturing groups (PCRE2_INFO_CAPTURECOUNT). */
    readonly captureCount: number,
  ) {}

  /** Compile pattern (a byte string, cut at a NUL as C sees it). */
  static compile(pattern: string, options: number): Pcre2Regex | { error: number; offset: number } {
    const l = need();
    const nul = pattern.indexOf("\0");
    const text = Buffer.from((nul < 0 ? pattern : pattern.slice(0, nul)) + "\0", "latin1");
    const err = new Int32Array(1);
    const off = new BigUint64Array(1);
    const code = l.pcre2_compile_8(text, PCRE2_ZERO_TERMINATED, options >>> 0, ptr(err), ptr(off), null) as Pointer | null;
    if (code === null) return { error: err[0], offset: Number(off[0]) };
    const count = new Uint32Array(1);
    l.pcre2_pattern_info_8(code, PCRE2_INFO_CAPTURECOUNT, ptr(count));
    const md = l.pcre2_match_data_create_from_pattern_8(code, null) as Pointer | null;
    return new Pcre2Regex(code, md, count[0]);
  }

  /**
   * pcre2_match(subject, whole length, start 0, options 0). On a match the
   * ovector pairs of every group (up to the pattern's capture count) are
   * returned; PCRE2_UNSET becomes -1. matchLimit > 0 lowers the match limit
   * (PCRE2_ERROR_MATCHLIMIT when reached); 0 keeps the library's default.
   */
  exec(subject: string, wantOffsets: boolean, matchLimit = 0): Pcre2Result {
    const l = need();
    if (this.code === null || this.md === null) return { error: -50 /* PCRE2_ERROR_NULL */ };
    // C passes strlen(key): the subject ends at its first NUL.
    const nul = subject.indexOf("\0");
    const s = Buffer.from(nul < 0 ? subject : subject.slice(0, nul), "latin1");
    const ctx = matchLimit > 0 ? matchContext(l, matchLimit) : null;
    const rc = l.pcre2_match_8(this.code, s.length ? s : Buffer.alloc(1), s.length, 0, 0, this.md, ctx);
    if (rc === PCRE2_ERROR_NOMATCH) return { match: false };
    if (rc <= 0) return { error: rc };
    const ovector: number[] = [];
    if (wantOffsets) {
      const pairs = l.pcre2_get_ovector_count_8(this.md);
      const ov = l.pcre2_get_ovector_pointer_8(this.md) as Pointer | null;
      if (ov !== null) {
        for (let i = 0; i < pairs * 2; i++) {
          const v = read.u64(ov, i * 8);
          ovector.push(v === 0xffffffffffffffffn ? -1 : Number(v));
        }
      }
    }
    return { match: true, ovector };
  }

  free(): void {
    const l = lib;
    if (!l) return;
    if (this.md !== null) l.pcre2_match_data_free_8(this.md);
    if (this.code !== null) l.pcre2_code_free_8(this.code);
    this.md = null;
    this.code = null;
  }
}
