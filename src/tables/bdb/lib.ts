/**
 * lib.ts - the Berkeley DB library (libdb-5.3.so, the one Debian's Postfix
 * links) loaded at run time through bun:ffi, and the few libc calls the
 * binding needs (flock(2), errno).
 *
 * Berkeley DB's API is a C struct of function pointers per handle (DB,
 * DB_ENV, DBC): a method is called by reading its pointer at the offset that
 * db.h gives (offsets.generated.ts, made from db.h at build time by
 * scripts/gen-bdb-offsets.sh) and calling it through a CFunction. Because
 * those offsets are only right for the release whose db.h made them, the
 * library's db_version() must equal that release exactly, or nothing is
 * opened (CONFIG).
 *
 * Written by hand because no npm package binds the system's libdb 5.3 for
 * Bun, and a second implementation of the file format would make files that
 * Postfix's postmap and daemons might not read the same way.
 *
 * Berkeley DB reports details (e.g. "unexpected file type or format")
 * through an error callback; the binding collects them per call
 * (takeDbMessages()) so that the driver puts them into its warning.
 *
 * The library is loaded on first use, or before chroot by the hash and
 * btree types' prepare() (preloadLibdb(), called through src/tables/prepare.ts).
 *
 * Reads: nothing. Logs: nothing (errors are thrown as BdbUnavailable).
 */
import { CFunction, JSCallback, dlopen, ptr, read, toBuffer, type Pointer } from "bun:ffi";
import { DB_H_VERSION } from "./offsets.generated";
import { libcSymbols } from "../../sys/libc";
/** The shared objects tried, in order (Debian's libdb5.3 package). */
let LIB_NAMES = ["libdb-5.3.so", "/usr/lib/x86_64-linux-gnu/libdb-5.3.so", "/usr/lib/aarch64-linux-gnu/libdb-5.3.so"];
export const INSTALL_HINT = "apt-get install libdb5.3";

/** Tests only: try other library names (call before the first use in the process). */
export function setLibraryNamesForTest(names: string[]): void {
  LIB_NAMES = names;
}

/** Why the library cannot be used (missing, or a version not tested). */
export class BdbUnavailable extends Error {}

type FnSpec = { args: readonly string[]; returns: string };

function openLibdb() {
  let last: unknown;
  for (const name of LIB_NAMES) {
    try {
      return dlopen(name, {
        db_create: { args: ["ptr", "ptr", "u32"], returns: "i32" },
        db_env_create: { args: ["ptr", "u32"], returns: "i32" },
        db_version: { args: ["ptr", "ptr", "ptr"], returns: "ptr" },
        db_strerror: { args: ["i32"], returns: "ptr" },
      }).symbols;
    } catch (e) {
      last = e;
    }
  }
  throw new BdbUnavailable(
    `cannot load the Berkeley DB library libdb-5.3.so (${last instanceof Error ? last.message : String(last)}): ${INSTALL_HINT}`,
  );
}

const openLibc = libcSymbols({
  flock: { args: ["i32", "i32"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
  strlen: { args: ["ptr"], returns: "u64" },
});

export interface Libdb {
  db: ReturnType<typeof openLibdb>;
  c: ReturnType<typeof openLibc>;
  version: [number, number, number];
}

let loaded: Libdb | undefined;
let failure: BdbUnavailable | undefined;

/** The library, loaded and version-checked once per process; throws BdbUnavailable. */
export function libdb(): Libdb {
  if (loaded) return loaded;
  if (failure) throw failure;
  try {
    const db = openLibdb();
    const v = new Int32Array(3);
    db.db_version(ptr(v, 0), ptr(v, 4), ptr(v, 8));
    const version: [number, number, number] = [v[0], v[1], v[2]];
    if (version[0] !== DB_H_VERSION[0] || version[1] !== DB_H_VERSION[1] || version[2] !== DB_H_VERSION[2]) {
      throw new BdbUnavailable(
        `incorrect version of Berkeley DB: built and tested against ${DB_H_VERSION.join(".")}, ` +
          `run-time linked against ${version.join(".")}: ${INSTALL_HINT} (Debian 12: 5.3.28)`,
      );
    }
    loaded = { db, c: openLibc(), version };
    return loaded;
  } catch (e) {
    failure = e instanceof BdbUnavailable ? e : new BdbUnavailable(`${e instanceof Error ? e.message : String(e)}: ${INSTALL_HINT}`);
    throw failure;
  }
}

/** Load the library now (before a chroot, where it may be missing). Never throws. */
export function preloadLibdb(): boolean {
  try {
    libdb();
    return true;
  } catch {
    return false;
  }
}

/** The C string at p as a byte string. */
export function cstr(p: Pointer | number | null): string {
  if (!p) return "";
  const n = Number(libdb().c.strlen(p as Pointer));
  return n === 0 ? "" : toBuffer(p as Pointer, 0, n).toString("latin1");
}

/** db_strerror(): Berkeley DB's text for its own codes, strerror() for errno values. */
export function dbStrerror(code: number): string {
  return cstr(libdb().db.db_strerror(code) as Pointer | null);
}

/** errno of the last libc call made here. */
export function errno(): number {
  const p = libdb().c.__errno_location();
  return p ? read.i32(p, 0) : 0;
}

// ------------------------------------------------------------ methods

/**
 * Calling a method: one CFunction per (function address, signature),
 * shared by every handle, since all handles of a kind point at the same
 * library functions.
 */
const fnCache = new Map<string, (...a: unknown[]) => unknown>();

export function method(handle: number, offset: number, spec: FnSpec): (...a: unknown[]) => unknown {
  const fp = read.ptr(handle as unknown as Pointer, offset) as unknown as number;
  if (!fp) throw new Error(`Berkeley DB method at offset ${offset} is not set`);
  const key = `${fp}:${spec.args.join(",")}:${spec.returns}`;
  let f = fnCache.get(key);
  if (!f) {
    f = CFunction({ ptr: fp as unknown as Pointer, args: spec.args as never, returns: spec.returns as never }) as unknown as (
      ...a: unknown[]
    ) => unknown;
    fnCache.set(key, f);
  }
  return f;
}

// ------------------------------------------------------------ error messages

let pending: string[] = [];
let errcall: JSCallback | undefined;

/** The callback given to DB_ENV->set_errcall: collect the message. */
export function errcallPointer(): Pointer {
  if (!errcall) {
    errcall = new JSCallback(
      (_env: unknown, _pfx: unknown, text: Pointer | null) => {
        if (pending.length < 8) pending.push(text ? cstr(text) : "");
      },
      { args: ["ptr", "ptr", "ptr"], returns: "void" },
    );
  }
  return errcall.ptr as Pointer;
}

/** The messages Berkeley DB reported since the last call. */
export function takeDbMessages(): string[] {
  const out = pending;
  pending = [];
  return out;
}
