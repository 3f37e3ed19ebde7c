/**
 * icu.ts - Unicode case folding through the system's ICU library (bun:ffi),
 * the same library and the same call (ucasemap_utf8FoldCase with locale
 * "en_US" and U_FOLD_CASE_DEFAULT) that Postfix's casefold() uses when it is
 * built with EAI support, as Debian's is. Full case folding is not in the
 * JavaScript runtime (toLowerCase() maps "ß" to itself, ICU folds it to
 * "ss"), and no npm package promises ICU's exact tables, hence this small
 * hand-written binding.
 *
 * Reads: the newest libicuuc.so.NN found in the usual library directories,
 * loaded on first use or by preloadIcu() (before a chroot: utf8.ts). Logs:
 * one warning when ICU cannot be loaded; callers then fall back to an
 * approximation (see utf8.ts).
 */
import { dlopen, FFIType, ptr } from "bun:ffi";
import { readdirSync } from "node:fs";
import { msg } from "../log/msg";

const LIB_DIRS = [
  "/lib/x86_64-linux-gnu",
  "/usr/lib/x86_64-linux-gnu",
  "/lib/aarch64-linux-gnu",
  "/usr/lib/aarch64-linux-gnu",
  "/usr/lib64",
  "/lib64",
  "/usr/lib",
  "/lib",
  "/usr/local/lib",
];

interface Binding {
  fold(csm: unknown, dest: unknown, destCap: number, src: unknown, srcLen: number, err: unknown): number;
  csm: unknown;
}

let binding: Binding | null | undefined;
const errCode = new Int32Array(1);
/** U_BUFFER_OVERFLOW_ERROR from utypes.h. */
const U_BUFFER_OVERFLOW_ERROR = 15;

/** Find libicuuc.so.NN; the highest version wins. */
function findLibrary(): { path: string; version: string } | undefined {
  let best: { path: string; version: string } | undefined;
  for (const dir of LIB_DIRS) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) {
      const m = /^libicuuc\.so\.(\d+)$/.exec(n);
      if (m && (!best || Number(m[1]) > Number(best.version))) best = { path: `${dir}/${n}`, version: m[1] };
    }
  }
  return best;
}

function load(): Binding | null {
  const found = findLibrary();
  if (!found) {
    msg.warn("casefold: ICU library libicuuc not found; non-ASCII keys are folded approximately");
    return null;
  }
  const v = found.version;
  try {
    const lib = dlopen(found.path, {
      [`ucasemap_open_${v}`]: { args: [FFIType.cstring, FFIType.u32, FFIType.ptr], returns: FFIType.ptr },
      [`ucasemap_utf8FoldCase_${v}`]: {
        args: [FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.ptr],
        returns: FFIType.i32,
      },
    });
    const open = lib.symbols[`ucasemap_open_${v}`] as (loc: unknown, opts: number, err: unknown) => unknown;
    errCode[0] = 0;
    // Postfix: ucasemap_open("en_US", U_FOLD_CASE_DEFAULT (0), &error).
    const csm = open(ptr(Buffer.from("en_US\0", "latin1")), 0, ptr(errCode));
    if (!csm || errCode[0] > 0) throw new Error(`ucasemap_open error ${errCode[0]}`);
    return { fold: lib.symbols[`ucasemap_utf8FoldCase_${v}`] as Binding["fold"], csm };
  } catch (err) {
    msg.warn(`casefold: cannot use ${found.path}: ${err instanceof Error ? err.message : String(err)}`);
    return null;
  }
}

/** Load ICU now (before chroot); true when it is usable. */
export function preloadIcu(): boolean {
  if (binding === undefined) binding = load();
  return binding !== null;
}

/**
 * Case-fold UTF-8 bytes with ICU. Returns undefined when ICU is not
 * available (the caller approximates).
 */
export function icuFoldCase(src: Buffer): Buffer | undefined {
  if (binding === undefined) binding = load();
  if (binding === null) return undefined;
  // Folding can grow a string (one "ß" becomes "ss"); three times the input
  // plus a little is always enough, and overflow is retried anyway.
  let cap = src.length * 3 + 16;
  for (let tries = 0; tries < 3; tries++) {
    const dest = Buffer.allocUnsafe(cap);
    errCode[0] = 0;
    const n = binding.fold(binding.csm, ptr(dest), cap, ptr(src), src.length, ptr(errCode));
    if (errCode[0] <= 0) return dest.subarray(0, n);
    if (errCode[0] !== U_BUFFER_OVERFLOW_ERROR) return undefined;
    cap = n + 1;
  }
  return undefined;
}
